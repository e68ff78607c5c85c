"""The clip engine: image animation and text-to-video, frame by frame with a temporal pool.

Frames are generated in order, each frame's patches in a spatial sweep (raster by default).
A patch's context is its neighbours in the current frame (as in images) plus the same place
and its neighbours in the previous `extent_t` frames, each with its offset (Δt, Δrow, Δcol)
for the direction controller; rotary positions carry the frame index (model/rope.py). The
Nearby Context Pool drops a patch after the last wave that reads it, so it holds at most
about extent_t + 1 frames: memory does not grow with the clip's length. Animation gives
frame 0 (the still, encoded); text-to-video either has the image transformer draw it first
(`first_frame="image"`, first_frame.py), after which the clip is an animation of it, or samples
it with the video transformer like the later frames ("clip"). The style memory of a given frame 0
is its tokens (as in training, video crops read their clip's first frame).

Run directory (a killed run continues to the same clip):
    job.json                  the job (ClipSpec)
    state.json                {"wave": next wave, "frames": frames written, "files": {...}}
    tokens_<w>.npy            (T, h, w) token frames after wave w-1 (-1 = not generated yet)
    pool_<w>.safetensors      the pool's live K/V (pool_uncond_<w> with guidance)
    frames/frame_00000.png    decoded frames, written as each frame is complete
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from ..atomic import atomic_path, write_json
from ..checkpoint import load_tensors, save_tensors
from ..errors import UserError
from ..model.context_pool import ContextPool
from ..model.memory import StyleSource
from ..model.orders import build_schedule, sweep_order
from ..model.sampler import WaveSampler, patch_canvas_rows, patch_uniforms, sample_guided
from ..tokenizer.tiled import decode_tiled, encode_tiled
from .code_prior import patch_row_bias, row_code_prior
from .engine import CHECKPOINT_SECONDS, DECODE_TILE, prompt_ids
from .keep_motion import motion_temperature, recent_change
from .waves import context_layout, prefill_known
from .writers import export_png

MAX_FRAMES = 10_000
# the code prior's edge rule (code_prior.py: the canvas's first and last token rows keep to frame 0's
# own codes of those rows) on a clip's drawn frames; off: the clips' figures were measured without it
CODE_PRIOR_EDGE_ROWS = False


@dataclass
class ClipSpec:
    width: int
    height: int
    frames: int
    fps: float = 8.0
    animate: bool = True             # frame 0 is the given still (else generated: text-to-video)
    input_sha: str = ""
    seed: int = 0
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.0               # sampler.pick_tokens
    order: str = "raster"            # each frame's spatial sweep
    model_hash: str = ""
    text: str = ""
    guidance: float = 1.0
    persistence: float = 0.0         # logit bonus of the token the same place held in the frame before
    first_frame_temperature: float | None = None  # a generated frame 0's (text-to-video); None: `temperature`
    code_prior: float = 0.0          # −W on codes a given frame 0 does not use near each height (code_prior.py)
    first_frame: str = "clip"        # text-to-video's frame 0: "clip" (the video transformer samples it) or
                                     # "image" (drawn by the image transformer, first_frame.py, then given)
    keep_motion: float = 0.0         # target share of tokens changing per frame (keep_motion.py); 0: off


def patch_positions(patches: list) -> torch.Tensor:
    """Patch positions (t, row, col) → (n, 3) int64: the rotary embedding's frame, row, col."""
    return torch.tensor([list(p) for p in patches], dtype=torch.int64).reshape(-1, 3)


class ClipRun:
    """One animate / generate-frames job bound to its run directory."""

    def __init__(self, bundle, spec: ClipSpec, run_dir: Path, still: np.ndarray | None, batch: int = 16,
                 backend: str = "auto", progress: bool = True, on_progress: Callable[[int, int], None] | None = None):
        self.bundle, self.spec, self.run_dir, self.still = bundle, spec, run_dir, still
        self.batch, self.backend, self.progress, self.on_progress = batch, backend, progress, on_progress
        cfg = self.cfg = bundle.transformer.cfg
        if cfg.extent_t < 1 and spec.frames > 1:
            raise UserError("this model reads no earlier frames (extent_t 0): animate and --frames need a video "
                            "model (nuwa-inf train model --video)")
        f = self.f = bundle.tokenizer.downsample
        self.rows = -(-spec.height // (f * cfg.patch_h))
        self.cols = -(-spec.width // (f * cfg.patch_w))
        self.tok_h, self.tok_w = self.rows * cfg.patch_h, self.cols * cfg.patch_w
        # frame 0 is given when animating (the still) or when the image transformer drew it
        self.given_first = spec.animate or spec.first_frame == "image"
        if self.given_first and (still is None or still.shape[:2] != (spec.height, spec.width)):
            raise UserError("animation needs its still, of the clip's size")
        # frame 0's patches are known when given; then every frame in the spatial sweep
        known = [(0, r, c) for r in range(self.rows) for c in range(self.cols)] if self.given_first else []
        order = [p for p in sweep_order(self.rows, self.cols, spec.order, spec.frames)
                 if not (self.given_first and p[0] == 0)]
        self.schedule = build_schedule(order, known, (cfg.extent_t, cfg.extent_h, cfg.extent_w),
                                       (spec.frames, self.rows, self.cols))
        self.waves = self.schedule.waves
        self.evict_after: dict[int, list] = {}   # wave → patches no later wave reads
        for q, last in self.schedule.last_use.items():
            self.evict_after.setdefault(last, []).append(q)
        self.text_ids = prompt_ids(bundle.transformer, spec.text)
        self.guided = self.text_ids is not None and spec.guidance != 1.0
        self.frames_dir = run_dir / "frames"
        self.checkpoint_seconds = CHECKPOINT_SECONDS   # state is saved after a wave once this long has passed

    # -- geometry -------------------------------------------------------------------------
    def _patch(self, tokens: np.ndarray, pos) -> np.ndarray:
        ph, pw = self.cfg.patch_h, self.cfg.patch_w
        t, r, c = pos
        return tokens[t, r * ph:(r + 1) * ph, c * pw:(c + 1) * pw].reshape(-1)

    def _held(self, tokens: np.ndarray, patches: list) -> torch.Tensor | None:
        """(n, P) tokens the patches' places held in the frame before (-1 in frame 0); None
        without persistence."""
        if not self.spec.persistence:
            return None
        held = [self._patch(tokens, (t - 1, r, c)) if t > 0 else np.full(self.cfg.patch_tokens, -1)
                for t, r, c in patches]
        return torch.from_numpy(np.stack(held).astype(np.int64))

    def _code_prior(self, tokens: np.ndarray) -> torch.Tensor | None:
        """(token rows, V): −strength on the codes a given frame 0 does not use within reach of
        each height (code_prior.py: rogue codes, an orange speck in a grey sky, are what a clip
        drifts by); None when off or when frame 0 is sampled. Read from the tokens, so resume-exact."""
        if not self.given_first or self.spec.code_prior <= 0:
            return None
        return self.spec.code_prior * row_code_prior(tokens[0], 0, self.tok_h, self.cfg.vocab_size,
                                                     edge_rows=CODE_PRIOR_EDGE_ROWS)

    def _set_patch(self, tokens: np.ndarray, pos, values: np.ndarray) -> None:
        ph, pw = self.cfg.patch_h, self.cfg.patch_w
        t, r, c = pos
        tokens[t, r * ph:(r + 1) * ph, c * pw:(c + 1) * pw] = values.reshape(ph, pw)

    def _canvas_rows(self, patches: list) -> torch.Tensor:
        return patch_canvas_rows(patches, -(-self.spec.height // self.f), self.cfg.patch_h)

    def _initial_tokens(self) -> np.ndarray:
        """(T, h, w) token frames, -1 where unknown; a given frame 0 is the still, encoded
        (mirror-padded to whole patches where the frame is not)."""
        tokens = np.full((self.spec.frames, self.tok_h, self.tok_w), -1, dtype=np.int32)
        if self.given_first:
            h, w = self.tok_h * self.f, self.tok_w * self.f
            still = self.still
            if still.shape[:2] != (h, w):
                still = np.pad(still, ((0, h - still.shape[0]), (0, w - still.shape[1]), (0, 0)), mode="reflect")
            tokens[0] = encode_tiled(self.bundle.tokenizer, still)
        return tokens

    def _samplers(self, tokens: np.ndarray) -> list[WaveSampler]:
        model = self.bundle.transformer
        style = None
        if self.given_first:  # the still's style, as training crops read their clip's first frame
            style = StyleSource(torch.from_numpy(tokens[0].astype(np.int64)), 0, -(-self.spec.height // self.f))
        samplers = [WaveSampler(model, self.pools[0], self.backend, style, self.text_ids)]
        if self.guided:
            samplers.append(WaveSampler(model, self.pools[1], self.backend, style, None))
        return samplers

    # -- checkpoints ------------------------------------------------------------------------
    def _save_state(self, wave: int, tokens: np.ndarray, frames_done: int) -> None:
        with atomic_path(self.run_dir / f"tokens_{wave}.npy") as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, tokens)
        files = {"tokens": f"tokens_{wave}.npy"}
        positions: list = []
        for name, pool in zip(("pool", "pool_uncond"), self.pools, strict=False):
            pool_tensors, positions = pool.state()
            files[name] = f"{name}_{wave}.safetensors"
            save_tensors(self.run_dir / files[name], pool_tensors)
        write_json(self.run_dir / "state.json", {"wave": wave, "frames": frames_done, "pool_positions": positions,
                                                 "files": files})
        for old in list(self.run_dir.glob("tokens_*.npy")) + list(self.run_dir.glob("pool*.safetensors")):
            if old.name not in files.values():
                old.unlink(missing_ok=True)

    def _load_state(self) -> tuple[int, np.ndarray, int]:
        state = json.loads((self.run_dir / "state.json").read_text())
        tokens = np.load(self.run_dir / state["files"]["tokens"])
        for name, pool in zip(("pool", "pool_uncond"), self.pools, strict=False):
            pool.restore(load_tensors(self.run_dir / state["files"][name]), state["pool_positions"])
        return state["wave"], tokens, state["frames"]

    # -- frames -----------------------------------------------------------------------------
    def frame_path(self, t: int) -> Path:
        return self.frames_dir / f"frame_{t:05d}.png"

    def _write_ready_frames(self, tokens: np.ndarray, frames_done: int) -> int:
        """Decode and write every complete frame after the last one written, in order."""
        while frames_done < self.spec.frames and (tokens[frames_done] >= 0).all():
            pixels = decode_tiled(self.bundle.tokenizer, tokens[frames_done], tile=DECODE_TILE)
            export_png(np.ascontiguousarray(pixels[:self.spec.height, :self.spec.width]), self.frame_path(frames_done))
            frames_done += 1
        return frames_done

    # -- the run ----------------------------------------------------------------------------
    def _temperature(self, tokens: np.ndarray, pos) -> float:
        """A patch's sampling temperature: a generated frame 0 may take its own
        (`first_frame_temperature`); later frames the clip's, raised where the clip has stopped
        moving around the patch (`keep_motion`, keep_motion.py)."""
        spec = self.spec
        if pos[0] == 0 and spec.first_frame_temperature is not None and not self.given_first:
            return spec.first_frame_temperature
        change = recent_change(tokens, pos, (self.cfg.patch_h, self.cfg.patch_w)) if spec.keep_motion else None
        return motion_temperature(spec.temperature, spec.keep_motion, change)

    def _by_temperature(self, chunk: list, tokens: np.ndarray) -> list[tuple[list, float]]:
        """The chunk's patches in groups of one sampling temperature (`_temperature`), in order of
        first appearance."""
        groups: dict[float, list] = {}
        for p in chunk:
            groups.setdefault(self._temperature(tokens, p), []).append(p)
        return [(group, temperature) for temperature, group in groups.items()]

    def run(self, resume: bool) -> list[Path]:
        """Generate (or continue) the clip → the paths of its frames, in order."""
        spec, cfg = self.spec, self.cfg
        self.pools = [ContextPool(cfg.layers, cfg.heads, cfg.patch_tokens, cfg.head_dim, capacity=32)
                      for _ in range(2 if self.guided else 1)]
        self.pool = self.pools[0]
        self.frames_dir.mkdir(parents=True, exist_ok=True)
        if resume and (self.run_dir / "state.json").is_file():
            start_wave, tokens, frames_done = self._load_state()
            self.samplers = self._samplers(tokens)
        else:
            tokens = self._initial_tokens()
            self.samplers = self._samplers(tokens)
            prefill_known(self.schedule, self.samplers, self.pools, cfg, lambda p: self._patch(tokens, p),
                          patch_positions, self._canvas_rows, self.batch)
            start_wave = 0
            frames_done = self._write_ready_frames(tokens, 0)
            self._save_state(0, tokens, frames_done)
        self.prior = self._code_prior(tokens)
        total = len(self.schedule.order)
        done = sum(len(w) for w in self.waves[:start_wave])
        bar = tqdm(total=total, initial=done, unit="patch", desc="animating" if spec.animate else "generating",
                   dynamic_ncols=True, disable=not self.progress, mininterval=1.0)
        last_save = time.monotonic()
        for w in range(start_wave, len(self.waves)):
            for start in range(0, len(self.waves[w]), self.batch):
                chunk = self.waves[w][start:start + self.batch]
                for group, temperature in self._by_temperature(chunk, tokens):  # patches are batch-invariant
                    uniforms = patch_uniforms(spec.seed, group, cfg.patch_tokens)
                    layout = context_layout(self.schedule, self.pool, cfg, group)
                    new, kv = sample_guided(self.samplers, spec.guidance, layout, patch_positions(group), uniforms,
                                            temperature, spec.top_k, spec.top_p,
                                            canvas_rows=self._canvas_rows(group), prefer=self._held(tokens, group),
                                            prefer_bias=spec.persistence, min_p=spec.min_p,
                                            row_bias=patch_row_bias(self.prior, group, cfg.patch_h))
                    for pool, (k, v) in zip(self.pools, kv, strict=True):
                        pool.add(group, k, v)
                    for i, p in enumerate(group):
                        self._set_patch(tokens, p, new[i].numpy())
                done += len(chunk)
                bar.update(len(chunk))
                bar.set_postfix_str(f"frame {frames_done}/{spec.frames}")
                if self.on_progress:
                    self.on_progress(done, total)
            for pool in self.pools:
                pool.evict(self.evict_after.get(w, []))
            frames_done = self._write_ready_frames(tokens, frames_done)
            if time.monotonic() - last_save >= self.checkpoint_seconds:
                self._save_state(w + 1, tokens, frames_done)
                last_save = time.monotonic()
        bar.close()
        frames_done = self._write_ready_frames(tokens, frames_done)
        self._save_state(len(self.waves), tokens, frames_done)
        self.peak_pool = self.pool.peak
        return [self.frame_path(t) for t in range(spec.frames)]
