"""The generation engine: place the input, walk the waves, stream pixels to disk, resume.

Run directory (everything a killed run needs to continue and give the same image):
    job.json                 the job: sizes, placement, seed, sampling, order, model hash
    state.json               {"wave": next wave, "decoded": token columns decoded, "files": {...}}
    tokens_<w>.npy           token canvas after wave w-1 (-1 = not generated yet)
    pool_<w>.safetensors     the Nearby Context Pool's live K/V at that point
    pool_uncond_<w>.safetensors   with text and guidance: the unconditional branch's pool
    pixels.raw               decoded pixels (PixelCanvas), written as regions become final
state.json is renamed into place after the files it names, so a kill at any moment leaves
a consistent checkpoint; work after it is redone identically (per-patch RNG).
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from functools import cache, partial
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from ..atomic import atomic_path, write_json
from ..checkpoint import load_tensors, save_tensors
from ..errors import UserError
from ..kernels import PatchLayout
from ..model.context_pool import ContextPool
from ..model.memory import StyleSource
from ..model.orders import build_schedule, known_raster, make_order
from ..model.sampler import WaveSampler, patch_canvas_rows, patch_rows_cols, patch_uniforms, sample_guided
from ..model.text import check_prompt
from ..tokenizer.tiled import decode_tiled, encode_tiled
from .adapt import adapted_model
from .border_blend import bands, blend_band, blend_width, in_any_band
from .canvas_prior import canvas_colour_prior
from .code_prior import patch_row_bias, row_code_prior
from .colour_match import fit_shift, job_shift, shift_colours
from .colour_prior import code_colours, row_prior
from .colour_tilt import colour_tilt
from .detail import fit_alpha, fit_window, job_alpha, scale_fine
from .detail_transfer import RING, build_bank, job_bank, transfer_detail
from .neighbour_match import InputNeighbours, PatchNeighbours, code_digits
from .pixel_canvas import PixelCanvas
from .placement import ENCODE_PAD, Placement, feather_alpha
from .waves import context_layout, prefill_known

# decode tiles (token rows, cols). The tile is the main job's peak memory, and decoding is a third or
# more of its time. Decoding 128×288 tokens of the bundled tokenizer (2 threads, back to back):
# 128×48 tiles (full-height strips of a 2048-px canvas: no vertical margin, only 2 × 7 of 48
# columns decoded twice) 20.1 s and 1150 MiB above the process's base; 64×64 21.5 s, 708 MiB;
# 64×48 22.7 s, 575 MiB; 128×32 22.2 s, 945 MiB. The main job peaked at 2052 MiB at 128×48, at
# 1656 MiB at 64×64 (README, "Measured figures")
DECODE_TILE = (64, 64)
CHECKPOINT_SECONDS = float(os.environ.get("NUWA_CHECKPOINT_SECONDS", "20"))


@dataclass
class JobSpec:
    width: int
    height: int
    x0: int = 0
    y0: int = 0
    in_w: int = 0
    in_h: int = 0
    input_sha: str = ""
    seed: int = 0
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.0               # drop codes below min_p × the likeliest's probability (sampler.pick_tokens)
    order: str = "auto"
    feather: int = 32                # with blend 0: the old linear feather from input to generated pixels
    model_hash: str = ""
    blend: int = 256                 # widest ramp of the multi-band blend around the input (border_blend.py)
    edge_tokens: int = 2             # outer token columns/rows of the input regenerated (placement.py)
    text: str = ""                   # the prompt (text-to-image, text-guided outpainting)
    guidance: float = 1.0            # classifier-free guidance scale on the prompt (1: none)
    # classifier-free guidance on the input (1: none): logits = blind + S·(seeing − blind), the
    # blind branch the same job without the input's style memory ("memory") or without the
    # memory and the neighbours' context ("all")
    input_guidance: float = 1.0
    input_blind: str = "memory"
    first_row_temperature: float | None = None   # a patch's first token row (None: `temperature`)
    colour_prior: float = 0.0        # strength of the input's palette at each height (colour_prior.py); 0: off
    code_prior: float = 0.0          # penalty on codes the input does not use near each height (code_prior.py)
    # ... and up to this much more on such a code whose colour is far from every used one (code_prior.py).
    # 0 here, so that runs saved before the option resume as they were; new jobs get the CLI's default
    code_prior_far: float = 0.0
    # keep the canvas's top and bottom token rows to the input's own codes of those rows (code_prior.py).
    # False here, so that runs saved before the rule resume as they were; new jobs get True
    code_prior_edge_rows: bool = False
    canvas_prior: float = 0.0        # without an input: −W × colour farness from what is drawn near each height
    neighbour_match: float = 0.0     # share of the input's votes in each token's probabilities (neighbour_match.py)
    colour_tilt: float = 0.0         # pull of the generated rows' mean colour back to the input's (colour_tilt.py)
    # with a prompt, how much of the style memory's read the prompted branch takes (memory.py):
    # below 1 the input's style yields to a prompt that edits it (the other branch keeps all of it).
    # 1 here, so that runs saved before the option resume as they were; new jobs get the CLI's default
    style_weight: float = 1.0
    adapt: int = 0                   # steps of test-time adaptation to the input before sampling (adapt.py)
    # scale the decoder's finest detail to the input's own (detail.py). False here, so that runs
    # saved before the option resume as they were; new jobs get the CLI's default
    detail_match: bool = False
    # take the decoder's colour cast, measured on the input, off every decoded window, with this
    # strength (colour_match.py). 0 here, so that runs saved before the option resume as they were
    colour_match: float = 0.0
    # lay the input's lost fine detail onto every decoded block from its look-alike input block, with
    # this strength (detail_transfer.py). 0 here, so that runs saved before the option resume as they were
    detail_transfer: float = 0.0


def _in_turn(steps, pixels: np.ndarray, origin: tuple[int, int]) -> np.ndarray:
    """A decoded window's `pixels` (top-left at canvas pixel `origin`) through each of the filters
    `steps` (`step(pixels, origin)`), in order."""
    for step in steps:
        pixels = step(pixels, origin)
    return pixels


def _anywhere(filter_pixels, **settings):
    """A pixel-by-pixel filter as a decoded window's step (`_in_turn`): the same wherever the window lies."""
    return lambda pixels, origin: filter_pixels(pixels, **settings)


class CanvasRun:
    """One extend/generate job bound to its run directory."""

    def __init__(self, bundle, spec: JobSpec, run_dir: Path, image: np.ndarray | None,
                 batch: int = 16, backend: str = "auto", progress: bool = True,
                 on_progress: Callable[[int, int], None] | None = None):
        self.bundle, self.spec, self.run_dir, self.image = bundle, spec, run_dir, image
        self.batch, self.backend, self.progress, self.on_progress = batch, backend, progress, on_progress
        tok, cfg = bundle.tokenizer, bundle.transformer.cfg
        self.cfg = cfg
        self.transformer = bundle.transformer  # or its copy adapted to the input (adapt.py), set in run()
        self.post = None                       # the decoded windows' filter (colour_match.py, detail.py), set in run()
        # tokens read around a decoded window: the decoder's reach, and the transfer's cuts read the
        # choices of the blocks RING beyond, whose pixels must then be exact too (detail_transfer.py)
        self.margin = tok.decoder_margin + (RING if spec.detail_transfer > 0 and image is not None else 0)
        self.placement = Placement(spec.width, spec.height, spec.x0, spec.y0, spec.in_w, spec.in_h,
                                   tok.downsample, cfg.patch_h, cfg.patch_w, spec.edge_tokens)
        pl = self.placement
        self.region = pl.known_patches()
        order = make_order(spec.order, pl.rows, pl.cols, self.region)
        self.schedule = build_schedule(order, known_raster(self.region), (0, cfg.extent_h, cfg.extent_w),
                                       (1, pl.rows, pl.cols))
        self.waves = self.schedule.waves
        self.text_ids = prompt_ids(bundle.transformer, spec.text)
        self.text_guided = self.text_ids is not None and spec.guidance != 1.0
        self.input_guided = spec.input_guidance != 1.0 and image is not None
        if self.text_guided and self.input_guided:
            raise UserError("guidance on the prompt and on the input cannot be combined (yet): give one of them")
        self.guided = self.text_guided or self.input_guided
        self.guidance = spec.guidance if self.text_guided else spec.input_guidance

    # -- set-up -------------------------------------------------------------------------
    def _initial_tokens(self) -> np.ndarray:
        pl, f = self.placement, self.placement.f
        tokens = np.full((pl.tok_h, pl.tok_w), -1, dtype=np.int32)
        ty0, tx0, ty1, tx1 = pl.known_tokens()
        if ty1 > ty0 and tx1 > tx0:
            # the whole input, mirror-padded on its open sides, encoded; its known tokens kept
            top, left, bottom, right = pl.open_sides()
            h, w = self.image.shape[:2]
            pads = [min(ENCODE_PAD * s, n - 1) // f * f for s, n in ((top, h), (bottom, h), (left, w), (right, w))]
            padded = np.pad(self.image, ((pads[0], pads[1]), (pads[2], pads[3]), (0, 0)), mode="reflect")
            ey0, ex0 = -(-pl.y0 // f) - pads[0] // f, -(-pl.x0 // f) - pads[2] // f   # token of padded[0, 0]
            oy, ox = (ey0 * f - (pl.y0 - pads[0])), (ex0 * f - (pl.x0 - pads[2]))       # to whole tokens
            rows, cols = (padded.shape[0] - oy) // f, (padded.shape[1] - ox) // f
            grid = encode_tiled(self.bundle.tokenizer, padded[oy: oy + rows * f, ox: ox + cols * f])
            tokens[ty0:ty1, tx0:tx1] = grid[ty0 - ey0: ty1 - ey0, tx0 - ex0: tx1 - ex0]
        return tokens

    def _patch(self, tokens: np.ndarray, pos) -> np.ndarray:
        ph, pw = self.cfg.patch_h, self.cfg.patch_w
        _, r, c = pos
        return tokens[r * ph:(r + 1) * ph, c * pw:(c + 1) * pw].reshape(-1)

    def _set_patch(self, tokens: np.ndarray, pos, values: np.ndarray) -> None:
        ph, pw = self.cfg.patch_h, self.cfg.patch_w
        _, r, c = pos
        tokens[r * ph:(r + 1) * ph, c * pw:(c + 1) * pw] = values.reshape(ph, pw)

    def _layout(self, patches: list) -> PatchLayout:
        return context_layout(self.schedule, self.pool, self.cfg, patches)

    def _canvas_rows(self, patches: list) -> torch.Tensor:
        """Where the patches sit between the canvas's top and bottom edge (band embedding)."""
        canvas_token_rows = -(-self.spec.height // self.placement.f)
        return patch_canvas_rows(patches, canvas_token_rows, self.cfg.patch_h)

    def _style(self, tokens: np.ndarray) -> StyleSource | None:
        """The input's known tokens, for the style memory (memory.py); None without input."""
        ty0, tx0, ty1, tx1 = self.placement.known_tokens()
        if ty1 <= ty0 or tx1 <= tx0:
            return None
        canvas_token_rows = -(-self.spec.height // self.placement.f)
        known = torch.from_numpy(tokens[ty0:ty1, tx0:tx1].astype(np.int64))
        return StyleSource(known, ty0, canvas_token_rows)

    def _samplers(self, tokens: np.ndarray) -> list[WaveSampler]:
        """[conditional] or, with guidance, [conditional, unconditional] samplers: without the
        prompt (text guidance) or blind to the input (input guidance)."""
        model, style = self.transformer, self._style(tokens)
        yielding = self.spec.style_weight if self.text_ids is not None else 1.0
        samplers = [WaveSampler(model, self.pools[0], self.backend, style, self.text_ids, style_weight=yielding)]
        if self.text_guided:
            samplers.append(WaveSampler(model, self.pools[1], self.backend, style, None))
        elif self.input_guided:
            samplers.append(WaveSampler(model, self.pools[1], self.backend, None, self.text_ids,
                                        blind=self.spec.input_blind == "all"))
        return samplers

    def _prefill(self, tokens: np.ndarray) -> None:
        """K/V of the given patches, wave by wave in raster order (as in training)."""
        prefill_known(self.schedule, self.samplers, self.pools, self.cfg, lambda p: self._patch(tokens, p),
                      patch_rows_cols, self._canvas_rows, self.batch)

    # -- checkpoints --------------------------------------------------------------------
    def _save_state(self, wave: int, tokens: np.ndarray, decoded: np.ndarray) -> None:
        with atomic_path(self.run_dir / f"tokens_{wave}.npy") as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, tokens)
        files = {"tokens": f"tokens_{wave}.npy"}
        for name, pool in zip(("pool", "pool_uncond"), self.pools, strict=False):  # one or two pools
            pool_tensors, positions = pool.state()
            files[name] = f"{name}_{wave}.safetensors"
            save_tensors(self.run_dir / files[name], pool_tensors)
        self.canvas.flush()
        state = {"wave": wave, "decoded": decoded.astype(int).tolist(), "pool_positions": positions,
                 "blended": sorted(self.blended), "files": files}
        write_json(self.run_dir / "state.json", state)
        for old in list(self.run_dir.glob("tokens_*.npy")) + list(self.run_dir.glob("pool*.safetensors")):
            if old.name not in state["files"].values():
                old.unlink(missing_ok=True)

    def _load_state(self):
        state = json.loads((self.run_dir / "state.json").read_text())
        tokens = np.load(self.run_dir / state["files"]["tokens"])
        for name, pool in zip(("pool", "pool_uncond"), self.pools, strict=False):  # the same positions in both
            pool.restore(load_tensors(self.run_dir / state["files"][name]), state["pool_positions"])
        self.blended = set(state.get("blended", []))
        return state["wave"], tokens, np.array(state["decoded"], dtype=bool)

    # -- decoding -----------------------------------------------------------------------
    def _sink(self, y: int, x: int, pixels: np.ndarray) -> None:
        """Write a decoded tile (cropped to the canvas), blending the input over its region."""
        spec = self.spec
        h = min(pixels.shape[0], spec.height - y)
        w = min(pixels.shape[1], spec.width - x)
        if h <= 0 or w <= 0:
            return
        pixels = pixels[:h, :w]
        if self.image is not None:
            iy0, ix0 = max(y, spec.y0), max(x, spec.x0)
            iy1, ix1 = min(y + h, spec.y0 + spec.in_h), min(x + w, spec.x0 + spec.in_w)
            if iy1 > iy0 and ix1 > ix0:
                pixels = pixels.copy()
                alpha = self.alpha[iy0 - spec.y0: iy1 - spec.y0, ix0 - spec.x0: ix1 - spec.x0, None]
                own = self.image[iy0 - spec.y0: iy1 - spec.y0, ix0 - spec.x0: ix1 - spec.x0].astype(np.float32)
                region = pixels[iy0 - y: iy1 - y, ix0 - x: ix1 - x].astype(np.float32)
                blended = np.round(alpha * own + (1 - alpha) * region)
                pixels[iy0 - y: iy1 - y, ix0 - x: ix1 - x] = blended.astype(np.uint8)
        self.canvas.write_region(y, x, pixels)

    def _decode_ready(self, tokens: np.ndarray, decoded: np.ndarray, final: bool, min_cols: int = 64) -> None:
        """Decode token columns whose pixels can no longer change (all tokens within the margin known)."""
        margin = self.margin
        complete = (tokens >= 0).all(axis=0)
        padded = np.concatenate([np.ones(margin, bool), complete, np.ones(margin, bool)])
        window = np.lib.stride_tricks.sliding_window_view(padded, 2 * margin + 1).all(axis=1)
        ready = window & ~decoded
        x = 0
        width = len(ready)
        while x < width:
            if not ready[x]:
                x += 1
                continue
            end = x
            while end < width and ready[end]:
                end += 1
            if final or end - x >= min_cols or end == width or x == 0:
                self._decode_columns(tokens, x, end)
                decoded[x:end] = True
            x = end

    def _decode_columns(self, tokens: np.ndarray, a: int, b: int) -> None:
        """Write the pixels of token columns [a, b): decoded, except where a column is the input's
        own pixels at every height (`_own_columns`): those take them as they are."""
        c = a
        while c < b:
            own, end = self.own_cols[c], c
            while end < b and self.own_cols[end] == own:
                end += 1
            if own:
                f, x0 = self.placement.f, self.spec.x0
                self.canvas.write_region(0, c * f, np.ascontiguousarray(self.image[:, c * f - x0: end * f - x0]))
            else:
                decode_tiled(self.bundle.tokenizer, tokens, tile=DECODE_TILE, margin=self.margin, sink=self._sink,
                             cols=(c, end), post=self.post)
            c = end

    def _own_columns(self) -> np.ndarray:
        """(token columns,) bool: columns that hold the input's own pixels over the whole canvas
        height (the input spans it and its blend weight is 1 there), so decoding them would be
        thrown away by `_sink`'s blend (1 · own + 0 · decoded)."""
        spec, f = self.spec, self.placement.f
        own = np.zeros(self.placement.tok_w, dtype=bool)
        if self.image is None or spec.y0 > 0 or spec.in_h < spec.height:
            return own
        whole = spec.in_w // f                                   # the input's whole token columns (x0 is token aligned)
        solid = (self.alpha[:, :whole * f] >= 1).all(axis=0)      # (whole · f,): pixel columns kept whole
        own[spec.x0 // f: spec.x0 // f + whole] = solid.reshape(whole, f).all(axis=1)
        return own

    def _blend_ready(self, tokens: np.ndarray, decoded: np.ndarray) -> None:
        """Blend the input into its surroundings along each open side whose pixels are final."""
        spec, f = self.spec, self.placement.f
        for band in self.bands:
            if band.side in self.blended:
                continue
            cy0, cx0, cy1, cx1 = band.context
            a, b = cx0 // f, -(-cx1 // f)
            if not decoded[a:b].all():
                continue
            pixels = decode_tiled(self.bundle.tokenizer, tokens, tile=DECODE_TILE, margin=self.margin, cols=(a, b),
                                  post=self.post)
            region = pixels[cy0:cy1, cx0 - a * f: cx1 - a * f]
            own = self.image[cy0 - spec.y0: cy1 - spec.y0, cx0 - spec.x0: cx1 - spec.x0]
            input_rect = (spec.y0, spec.x0, spec.y0 + spec.in_h, spec.x0 + spec.in_w)
            out = blend_band(band, own, region, input_rect, self.open_sides, self.blend_px)
            self.canvas.write_region(band.rect[0], band.rect[1], out)
            self.blended.add(band.side)

    def _post(self, tokens: np.ndarray):
        """With an input: the filter every decoded window passes through — the decoder's colour cast
        taken off (`colour_match` > 0, colour_match.py), its finest band scaled to the input's amount
        (`detail_match`, detail.py), then the input's lost detail laid onto each block from its
        look-alike (`detail_transfer` > 0, detail_transfer.py) —, all fitted once on the input (at
        most its centre 2048 px) against its own decoded tokens and kept in the run directory; None
        where none acts."""
        spec = self.spec
        ty0, tx0, ty1, tx1 = self.placement.known_tokens()
        if ty1 <= ty0 or tx1 <= tx0 or (not spec.detail_match and spec.colour_match <= 0
                                        and spec.detail_transfer <= 0):
            return None
        f = self.placement.f
        (rows, cols), (ys, xs) = fit_window(ty1 - ty0, tx1 - tx0, f)

        @cache  # decoded once for every fit, and only for a fit not kept in the run directory yet
        def input_and_decoded() -> tuple[np.ndarray, np.ndarray]:
            ry0, rx0 = (ty0 + rows.start) * f - spec.y0, (tx0 + cols.start) * f - spec.x0  # in the input
            window = tokens[ty0:ty1, tx0:tx1][rows, cols]
            decoded = decode_tiled(self.bundle.tokenizer, window, tile=DECODE_TILE)[ys, xs]
            return self.image[ry0: ry0 + window.shape[0] * f, rx0: rx0 + window.shape[1] * f][ys, xs], decoded

        steps = []
        if spec.colour_match > 0:
            matrix = job_shift(self.run_dir, lambda: fit_shift(*input_and_decoded()))
            steps.append(_anywhere(shift_colours, matrix=matrix, strength=spec.colour_match))
        if spec.detail_match:
            alpha = job_alpha(self.run_dir, lambda: fit_alpha(*input_and_decoded()))
            if alpha != 1.0:
                steps.append(_anywhere(scale_fine, alpha=alpha))
        if spec.detail_transfer > 0:
            def bank():  # the input against its decoded tokens as the steps above leave them
                original, decoded = input_and_decoded()
                first_row = ty0 + rows.start + ys.start // f
                return build_bank(original, _in_turn(steps, decoded, (first_row * f, 0)), first_row, f)
            steps.append(partial(transfer_detail, bank=job_bank(self.run_dir, bank), strength=spec.detail_transfer))
        return partial(_in_turn, steps) if steps else None

    def _adapt(self, tokens: np.ndarray) -> None:
        """With `adapt` steps and an input: sample with a copy of the transformer fine-tuned on the
        input's known tokens (adapt.py; trained once, kept in the run directory for a resume)."""
        ty0, tx0, ty1, tx1 = self.placement.known_tokens()
        if self.spec.adapt <= 0 or ty1 <= ty0 or tx1 <= tx0:
            return
        canvas = (ty0, -(-self.spec.height // self.placement.f))
        self.transformer = adapted_model(self.bundle.transformer, self.run_dir, tokens[ty0:ty1, tx0:tx1], canvas,
                                         self.spec.adapt, self.spec.seed, self.backend, self.progress)

    def _logit_prior(self, tokens: np.ndarray) -> torch.Tensor | None:
        """(canvas token rows, V) the input's priors at each height (its palette, colour_prior.py;
        the codes it uses, code_prior.py: read from its kept tokens, the same on resume), each
        × its strength, summed; None when both are off."""
        spec, pl = self.spec, self.placement
        if self.image is None or (spec.colour_prior <= 0 and spec.code_prior <= 0):
            return None
        rows = pl.rows * self.cfg.patch_h
        prior = torch.zeros(rows, self.cfg.vocab_size)
        needs_colours = spec.colour_prior > 0 or (spec.code_prior > 0 and spec.code_prior_far > 0)
        colours = code_colours(self.bundle.tokenizer) if needs_colours else None
        if spec.colour_prior > 0:
            prior += spec.colour_prior * row_prior(self.image, spec.y0, rows, colours, pl.f)
        ty0, tx0, ty1, tx1 = pl.known_tokens()
        if spec.code_prior > 0 and ty1 > ty0 and tx1 > tx0:
            prior += spec.code_prior * row_code_prior(tokens[ty0:ty1, tx0:tx1], ty0, rows, self.cfg.vocab_size,
                                                      colours=colours, far_extra=spec.code_prior_far,
                                                      edge_rows=spec.code_prior_edge_rows)
        return prior

    def _match_source(self, tokens: np.ndarray) -> InputNeighbours | None:
        """The input's kept tokens, ready to vote on each token's code (neighbour_match.py), or
        None when the match is off or there is no input."""
        ty0, tx0, ty1, tx1 = self.placement.known_tokens()
        if self.image is None or self.spec.neighbour_match <= 0 or ty1 <= ty0 or tx1 <= tx0:
            return None
        return InputNeighbours(tokens[ty0:ty1, tx0:tx1], ty0, code_digits(self.bundle.tokenizer.quantizer))

    # -- the run ------------------------------------------------------------------------
    def run(self, resume: bool) -> PixelCanvas:
        spec, pl, cfg = self.spec, self.placement, self.cfg
        # with guidance the unconditional branch has a pool of its own, fed the same patches
        self.pools = [ContextPool(cfg.layers, cfg.heads, cfg.patch_tokens, cfg.head_dim, capacity=32)
                      for _ in range(2 if self.guided else 1)]
        self.pool = self.pools[0]  # its slots index both pools' layouts
        self.bands, self.blended = [], set()
        if self.image is not None:
            self.open_sides = open_sides = pl.open_sides()
            self.blend_px = blend_width(spec.blend, spec.in_w, spec.in_h)
            if self.blend_px > 0:  # the input's own pixels outside the bands, decoded ones in them until blended
                self.bands = bands(spec.x0, spec.y0, spec.in_w, spec.in_h, open_sides, self.blend_px)
                self.alpha = (~in_any_band(self.bands, spec.y0, spec.x0, spec.in_h, spec.in_w)).astype(np.float32)
            else:
                self.alpha = feather_alpha(spec.in_h, spec.in_w, spec.feather, open_sides)
        self.own_cols = self._own_columns()
        resuming = resume and (self.run_dir / "state.json").is_file()
        self.canvas = PixelCanvas(self.run_dir / "pixels.raw", spec.height, spec.width, create=not resuming)
        if resuming:
            start_wave, tokens, decoded = self._load_state()
            self.post = self._post(tokens)
            self._adapt(tokens)
            self.samplers = self._samplers(tokens)
        else:
            tokens = self._initial_tokens()
            decoded = np.zeros(pl.tok_w, dtype=bool)
            self.post = self._post(tokens)
            self._adapt(tokens)
            self.samplers = self._samplers(tokens)
            self._prefill(tokens)
            start_wave = 0
            self._save_state(0, tokens, decoded)
        self.prior = self._logit_prior(tokens)
        match_source = self._match_source(tokens)
        colours = code_colours(self.bundle.tokenizer) if self.image is None and spec.canvas_prior > 0 else None
        tilt_colours = code_colours(self.bundle.tokenizer) if self.image is not None and spec.colour_tilt > 0 else None
        total = len(self.schedule.order)
        done = sum(len(w) for w in self.waves[:start_wave])
        bar = tqdm(total=total, initial=done, unit="patch", desc="generating", dynamic_ncols=True,
                   disable=not self.progress, mininterval=1.0)
        started, made, last_save = time.monotonic(), 0, time.monotonic()
        for w in range(start_wave, len(self.waves)):
            prior = self.prior if colours is None else spec.canvas_prior * canvas_colour_prior(tokens, colours)
            if tilt_colours is not None:
                tilt = colour_tilt(tokens, self.placement.known_tokens(), tilt_colours, spec.colour_tilt)
                prior = tilt if prior is None else prior + tilt
            before_wave = tokens.copy() if match_source is not None else None  # a wave's patches do not see each other
            for start in range(0, len(self.waves[w]), self.batch):
                chunk = self.waves[w][start:start + self.batch]
                given = np.stack([self._patch(tokens, p) for p in chunk])
                forced = torch.from_numpy(given.astype(np.int64)) if (given >= 0).any() else None
                uniforms = patch_uniforms(spec.seed, chunk, cfg.patch_tokens)
                match = (None if match_source is None else
                         PatchNeighbours(match_source, before_wave, chunk, cfg.patch_h, cfg.patch_w, cfg.vocab_size))
                new, kv = sample_guided(self.samplers, self.guidance, self._layout(chunk), patch_rows_cols(chunk),
                                        uniforms, spec.temperature, spec.top_k, spec.top_p, forced=forced,
                                        canvas_rows=self._canvas_rows(chunk),
                                        first_row_temperature=spec.first_row_temperature,
                                        row_bias=patch_row_bias(prior, chunk, cfg.patch_h), min_p=spec.min_p,
                                        match=match, match_weight=spec.neighbour_match)
                for pool, (k, v) in zip(self.pools, kv, strict=True):
                    pool.add(chunk, k, v)
                for i, p in enumerate(chunk):
                    self._set_patch(tokens, p, new[i].numpy())
                made += len(chunk)
                bar.update(len(chunk))
                rate = made * cfg.patch_tokens / max(1e-6, time.monotonic() - started)
                bar.set_postfix_str(f"{rate:.0f} tok/s, wave {w + 1}/{len(self.waves)}")
                if self.on_progress:
                    self.on_progress(done + made, total)
            for pool in self.pools:
                pool.evict([q for q, last in self.schedule.last_use.items() if last == w])
            self._decode_ready(tokens, decoded, final=False)
            self._blend_ready(tokens, decoded)
            if time.monotonic() - last_save > CHECKPOINT_SECONDS:
                self._save_state(w + 1, tokens, decoded)
                last_save = time.monotonic()
        bar.close()
        self._decode_ready(tokens, decoded, final=True)
        self._blend_ready(tokens, decoded)
        self._save_state(len(self.waves), tokens, decoded)
        self.tokens = tokens
        return self.canvas


def prompt_ids(model, text: str) -> torch.Tensor | None:
    """(1, T) word ids of the prompt `text`, None without one; the words the model does not know
    are named on stderr (and read as unknown), a model without text refuses a prompt."""
    if not text:
        return None
    if model.text is None:
        raise UserError("this model has no text encoder: --text needs a model trained with captions")
    ids, unknown = check_prompt(text, model.text_vocab, model.cfg.text_len)
    if unknown:
        print(f"nuwa-inf: warning: words the model does not know (read as unknown): {', '.join(unknown)}",
              file=sys.stderr)
    return torch.tensor([ids], dtype=torch.int64)


def check_disk_space(directory: Path, spec: JobSpec) -> None:
    """Refuse a job whose pixel canvas (H·W·3 bytes in the run directory) cannot fit on the disk."""
    needed = spec.width * spec.height * 3
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if needed > free:
        raise UserError(f"a {spec.width}x{spec.height} canvas needs {needed / 1e9:.1f} GB of disk for its pixels "
                        f"in {directory}, only {free / 1e9:.1f} GB free (pick a smaller size or another --run-dir)")


def write_job(run_dir: Path, spec) -> None:
    write_json(run_dir / "job.json", asdict(spec))


def read_job(run_dir: Path, kind: type = JobSpec):
    """The job saved in `run_dir` (a JobSpec, or a ClipSpec with `kind`)."""
    path = run_dir / "job.json"
    if not path.is_file():
        raise UserError(f"--resume {run_dir}: no job.json there (not a nuwa-inf run directory)")
    try:
        return kind(**json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError) as err:
        raise UserError(f"{path} is corrupt ({err})") from None


def open_run_dir(spec, kind: type, run_dir, resume, temp_parent, temp_prefix: str, same_settings: bool,
                 announce: bool):
    """(the job's spec, its run directory, whether that directory is a temporary one) for a job
    described by `spec` (a `kind`): `resume`'s run (same input and model; with `same_settings`
    the same everything), else `run_dir` (must be empty), else a new temporary directory."""
    import tempfile
    from dataclasses import asdict

    if resume:
        directory = Path(resume)
        saved = read_job(directory, kind)
        if saved.input_sha != spec.input_sha or saved.model_hash != spec.model_hash:
            raise UserError(f"--resume {directory}: that run used a different input or model")
        if same_settings and saved != spec:
            changed = [k for k, v in asdict(saved).items() if getattr(spec, k) != v]
            raise UserError(f"run directory {directory} holds a job with different {', '.join(changed)}")
        return saved, directory, False
    if run_dir:
        directory = Path(run_dir)
        if directory.exists() and any(directory.iterdir()):
            raise UserError(f"--run-dir {directory} is not empty (use --resume {directory} to continue it)")
        directory.mkdir(parents=True, exist_ok=True)
        temporary = False
    else:
        directory, temporary = Path(tempfile.mkdtemp(prefix=temp_prefix, dir=temp_parent)), True
    write_job(directory, spec)
    if announce:
        print(f"run directory: {directory} (resume with --resume {directory})")
    return spec, directory, temporary


def remove_run_dir(run_dir: Path) -> None:
    shutil.rmtree(run_dir, ignore_errors=True)
