"""`nuwa-inf extend` and `nuwa-inf generate`: the canvas jobs from the command line.

`CanvasSettings` + `run_canvas` are the shared core: the Python API (`nuwa_inf.api`)
calls them too, so both validate, place, set up run directories and resume alike.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .clip_cli import (
    DEFAULT_ANIMATE_CODE_PRIOR,
    DEFAULT_CLIP_TEMPERATURE,
    DEFAULT_DRAWN_CODE_PRIOR,
    clip_flags,
    register_animate,
)

if TYPE_CHECKING:  # heavy imports stay out of `nuwa-inf --help`
    import numpy as np

    from .bundle import ModelBundle
    from .engine import JobSpec
    from .pixel_canvas import PixelCanvas

# classifier-free guidance with a prompt, unless --guidance says otherwise. Measured with
# benchmarks/bench_text.py on the bundled model (stage 4e, 12 prompts at 1024×512): mean probe
# accuracy 0.58 at 1, 0.67 at 3 (time of day 0.83 → 1.00, palette 0.67 → 0.83)
DEFAULT_GUIDANCE = 3.0
# with a prompt, the share of the input's style memory the prompted branch reads, unless
# --style-weight says otherwise. Measured with benchmarks/bench_text.py on stage 4f (2 pieces per
# edit × 2 sides, guidance 3): the prompted attribute read in 0.33 of the regions at 1, 0.75 at
# 0.5 (night 0 → 0.75, palette 0.5 → 1.0), 0.83 at 0.25, where night pieces lose their night
DEFAULT_STYLE_WEIGHT = 0.5
# extend's temperature of each patch's first token row (which sets the patch's palette), unless
# --first-row-temperature says otherwise. Measured with benchmarks/bench_continuation.py (4 held-out
# 4096×1024 cases, piece 1024): carry 0.512 → 0.439 at 0.7 (0.449 at 0.5), layout 0.492 → 0.360,
# border ÷ truth 1.83 → 1.26; the night case gains most (it keeps its dark sky on one side)
DEFAULT_FIRST_ROW_TEMPERATURE = 0.7
# extend's code prior without a prompt (codes the input does not use within 128 px of a row's height
# get −W on their logit), unless --code-prior says otherwise; off with a prompt, which may ask for
# what the input lacks. Measured with benchmarks/bench_continuation.py (4 held-out 8192×2048 cases,
# stage 4h, two sampling seeds): see README, "Continuation against the truth"
DEFAULT_CODE_PRIOR = 1.0
# ... and how much more, at most, a code pays there whose colour is far from every colour the input's
# codes have near that height (infer/code_prior.py), unless --code-prior-far says otherwise. Measured
# with benchmarks/bench_continuation.py and by the dark and pale specks in the main job's sky: README,
# "Continuation against the truth"
DEFAULT_CODE_PRIOR_FAR = 2.0
# a job without an input (generate, text-to-video's frame 0): codes far in colour from what the canvas
# already holds near each height get −W × their farness (infer/canvas_prior.py), unless --canvas-prior
# says otherwise
DEFAULT_CANVAS_PRIOR = 0.0
# extend without a prompt: the share of each token's probabilities that the input's votes take at
# most (codes the input puts where its neighbourhood looks like the token's, scaled by how much they
# agree; infer/neighbour_match.py), unless --neighbour-match says otherwise; off with a prompt, which
# may ask for what the input lacks. Measured with benchmarks/bench_continuation.py (4 held-out
# 8192×2048 cases, three sampling seeds): README, "Continuation against the truth"
DEFAULT_NEIGHBOUR_MATCH = 1.0
# extend without a prompt: how hard the generated rows' mean colour at each height is pulled back to
# the input's (infer/colour_tilt.py, whitened by the input's colour spread), unless --colour-tilt says
# otherwise; off with a prompt, which may ask for another light. Measured with
# benchmarks/bench_continuation.py (4 held-out 8192×2048 cases, three sampling seeds): the night's
# layout within its target on every seed, the mean level; README, "Continuation against the truth"
DEFAULT_COLOUR_TILT = 0.5
# extend without a prompt: how much of the decoder's colour cast, measured on the input (its pixels
# against its own decoded tokens), is taken off every decoded window (infer/colour_match.py; chroma
# only), unless --colour-match says otherwise; off with a prompt, which may ask for colours the input
# lacks (the fit knows only the input's). Measured with benchmarks/bench_continuation.py (4 held-out
# 8192×2048 cases, three sampling seeds): README, "Continuation against the truth"
DEFAULT_COLOUR_MATCH = 1.0
# extend: how much of the input's lost fine detail (its pixels less its own decoded tokens, high-passed)
# is laid onto each decoded block from its look-alike input block at about the same height
# (infer/detail_transfer.py), neighbours joined along quilting cuts; off with a prompt, which may ask for
# what the input lacks. At 1 it lowered carry in every held-out case on three seeds
# (benchmarks/bench_continuation.py), and with the cuts the main job's seam ratio is 1.02 (whole blocks:
# 1.61; target ≤ 1.05): README, "Continuation against the truth"
DEFAULT_DETAIL_TRANSFER = 1.0
# test-time adaptation (--adapt STEPS, off unless asked for: it costs minutes the main job does not
# have, and on the main job it took the block statistics past their target). Measured with
# benchmarks/bench_continuation.py (held-out 8192×2048 cases, stage 4h, two sampling seeds): see
# README, "Continuation against the truth"
DEFAULT_ADAPT_STEPS = 100
MAX_ADAPT_STEPS = 100_000
ORDERS = "auto | strips | outward | raster | column | row-right-down | ... (8 sweep directions)"


@dataclass
class CanvasSettings:
    """What to make: canvas size, where the input goes, the order and the sampling knobs."""

    width: int
    height: int
    anchor: str = "center"
    order: str = "auto"
    seed: int = 0
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.0    # drop codes below min_p × the likeliest's probability (model/sampler.py)
    batch: int = 16
    blend: int = 256      # widest ramp (px) of the multi-band blend of the input into its surroundings
    text: str = ""        # prompt (the model needs a text encoder)
    guidance: float | None = None   # classifier-free guidance on the prompt; None: DEFAULT_GUIDANCE with a prompt
    first_row_temperature: float | None = None   # a patch's first token row; None: `temperature`
    edge_tokens: int = 2  # outer token columns/rows of the input regenerated (infer/placement.py)
    input_guidance: float = 1.0     # classifier-free guidance on the input (engine.JobSpec); 1: none
    input_blind: str = "memory"     # what its blind branch lacks: "memory" | "all" (memory and context)
    colour_prior: float = 0.0       # strength of the input's palette at each height (infer/colour_prior.py)
    code_prior: float | None = None  # penalty on codes the input does not use near each height (infer/code_prior.py);
                                     # None: DEFAULT_CODE_PRIOR without a prompt, 0 with one
    code_prior_far: float | None = None  # up to this much more for a far colour; None: DEFAULT_CODE_PRIOR_FAR
    canvas_prior: float | None = None  # without an input: far colours' penalty (infer/canvas_prior.py);
                                       # None: DEFAULT_CANVAS_PRIOR
    neighbour_match: float | None = None  # with an input: the share of its votes (infer/neighbour_match.py);
                                          # None: DEFAULT_NEIGHBOUR_MATCH without a prompt, 0 with one
    colour_tilt: float | None = None  # with an input: pull of the rows' mean colour to its own
                                      # (infer/colour_tilt.py); None: DEFAULT_COLOUR_TILT
    colour_match: float | None = None  # with an input: share of the decoder's colour cast taken off
                                       # (infer/colour_match.py); None: DEFAULT_COLOUR_MATCH
    detail_transfer: float | None = None  # with an input: share of its lost detail laid onto look-alike
                                          # blocks (infer/detail_transfer.py); None: DEFAULT_DETAIL_TRANSFER
    style_weight: float = DEFAULT_STYLE_WEIGHT  # with a prompt: the share of the input's style memory read
    adapt: int = 0        # steps of test-time adaptation to the input (infer/adapt.py); 0: off
    detail_match: bool = True  # scale the decoder's finest detail to the input's (infer/detail.py)

    @property
    def guidance_scale(self) -> float:
        return (DEFAULT_GUIDANCE if self.text else 1.0) if self.guidance is None else self.guidance

    def _unless_prompted(self, value: float | None, default: float) -> float:
        """`value`, or when unset `default` without a prompt and 0 with one (a prompt may ask for
        what the input lacks: another light, snow, night)."""
        return (0.0 if self.text else default) if value is None else value

    @property
    def code_prior_strength(self) -> float:
        return self._unless_prompted(self.code_prior, DEFAULT_CODE_PRIOR)

    @property
    def code_prior_far_extra(self) -> float:
        return DEFAULT_CODE_PRIOR_FAR if self.code_prior_far is None else self.code_prior_far

    @property
    def canvas_prior_strength(self) -> float:
        return DEFAULT_CANVAS_PRIOR if self.canvas_prior is None else self.canvas_prior

    @property
    def neighbour_match_share(self) -> float:
        return self._unless_prompted(self.neighbour_match, DEFAULT_NEIGHBOUR_MATCH)

    @property
    def colour_tilt_strength(self) -> float:
        return self._unless_prompted(self.colour_tilt, DEFAULT_COLOUR_TILT)

    @property
    def colour_match_strength(self) -> float:
        return self._unless_prompted(self.colour_match, DEFAULT_COLOUR_MATCH)

    @property
    def detail_transfer_strength(self) -> float:
        return self._unless_prompted(self.detail_transfer, DEFAULT_DETAIL_TRANSFER)

    def check(self) -> None:
        """Raise `UserError` for settings no job can use (sizes are checked when placing)."""
        from ..errors import UserError
        from ..model.orders import ALIASES, DIRECTIONS

        if self.batch <= 0:
            raise UserError(f"--batch must be positive, got {self.batch}")
        if self.temperature < 0:
            raise UserError(f"--temperature must be >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise UserError(f"--top-k must be >= 0, got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise UserError(f"--top-p must be in (0, 1], got {self.top_p}")
        if not 0 <= self.min_p < 1:
            raise UserError(f"--min-p must be in [0, 1), got {self.min_p}")
        if self.blend < 0:
            raise UserError(f"--blend must be >= 0 pixels, got {self.blend}")
        if not 0 <= self.edge_tokens <= 16:
            raise UserError(f"--edge-tokens must lie in [0, 16], got {self.edge_tokens}")
        if self.first_row_temperature is not None and self.first_row_temperature < 0:
            raise UserError(f"--first-row-temperature must be >= 0, got {self.first_row_temperature}")
        if self.guidance is not None and not 0 <= self.guidance <= 30:
            raise UserError(f"--guidance must lie in [0, 30], got {self.guidance}")
        if not 0 <= self.input_guidance <= 30:
            raise UserError(f"--input-guidance must lie in [0, 30], got {self.input_guidance}")
        if not 0 <= self.colour_prior <= 10:
            raise UserError(f"--colour-prior must lie in [0, 10], got {self.colour_prior}")
        if self.code_prior is not None and not 0 <= self.code_prior <= 10:
            raise UserError(f"--code-prior must lie in [0, 10], got {self.code_prior}")
        if self.code_prior_far is not None and not 0 <= self.code_prior_far <= 10:
            raise UserError(f"--code-prior-far must lie in [0, 10], got {self.code_prior_far}")
        if self.canvas_prior is not None and not 0 <= self.canvas_prior <= 10:
            raise UserError(f"--canvas-prior must lie in [0, 10], got {self.canvas_prior}")
        if self.neighbour_match is not None and not 0 <= self.neighbour_match <= 1:
            raise UserError(f"--neighbour-match must lie in [0, 1], got {self.neighbour_match}")
        if self.colour_tilt is not None and not 0 <= self.colour_tilt <= 10:
            raise UserError(f"--colour-tilt must lie in [0, 10], got {self.colour_tilt}")
        if self.colour_match is not None and not 0 <= self.colour_match <= 2:
            raise UserError(f"--colour-match must lie in [0, 2], got {self.colour_match}")
        if self.detail_transfer is not None and not 0 <= self.detail_transfer <= 2:
            raise UserError(f"--detail-transfer must lie in [0, 2], got {self.detail_transfer}")
        if not 0 <= self.adapt <= MAX_ADAPT_STEPS:
            raise UserError(f"--adapt must lie in [0, {MAX_ADAPT_STEPS}] steps, got {self.adapt}")
        if not 0 <= self.style_weight <= 1:
            raise UserError(f"--style-weight must lie in [0, 1], got {self.style_weight}")
        if self.input_blind not in ("memory", "all"):
            raise UserError(f"--input-blind must be 'memory' or 'all', got {self.input_blind!r}")
        if self.text is not None and len(self.text) > 2000:
            raise UserError(f"--text is {len(self.text)} characters long; keep the prompt under 2000")
        valid = {"auto", "strips", "outward"} | set(DIRECTIONS) | set(ALIASES)
        if self.order not in valid:
            raise UserError(f"--order {self.order!r} is not one of {', '.join(sorted(valid))}")


@dataclass
class CanvasResult:
    """A finished job: its pixels (disk-backed; the caller exports and closes them) and run directory."""

    canvas: "PixelCanvas"
    spec: "JobSpec"
    run_dir: Path
    temporary: bool  # the run directory was made for this job and may be removed


def run_canvas(bundle: "ModelBundle", image: "np.ndarray | None", settings: CanvasSettings, *,
               run_dir: str | os.PathLike | None = None, resume: str | os.PathLike | None = None,
               temp_parent: str | os.PathLike | None = None, temp_prefix: str = ".nuwa.run.",
               backend: str = "auto", progress: bool = True, announce: bool = False,
               on_progress: Callable[[int, int], None] | None = None,
               same_settings: bool = False) -> CanvasResult:
    """Place `image` (H, W, 3 uint8, or None for unconditional) on the canvas and run the job.

    The run directory is `resume` (continue that run), else `run_dir` (must be empty), else
    a new temporary directory under `temp_parent`. With `same_settings`, resuming a run
    whose saved job differs from `settings` in anything is refused (the CLI only checks
    that the input and the model are the same, and takes the rest from the saved job).
    """
    from .engine import CanvasRun, JobSpec, check_disk_space, open_run_dir
    from .placement import place

    settings.check()
    in_h, in_w = image.shape[:2] if image is not None else (0, 0)
    cfg = bundle.transformer.cfg
    placement = place(settings.width, settings.height, in_w, in_h, settings.anchor,
                      bundle.tokenizer.downsample, cfg.patch_h, cfg.patch_w)
    spec = JobSpec(width=settings.width, height=settings.height, x0=placement.x0, y0=placement.y0,
                   in_w=in_w, in_h=in_h,
                   input_sha=hashlib.sha1(image.tobytes()).hexdigest()[:16] if image is not None else "",
                   seed=settings.seed, temperature=settings.temperature, top_k=settings.top_k,
                   top_p=settings.top_p, min_p=settings.min_p, order=settings.order,
                   model_hash=bundle.weights_hash,
                   blend=settings.blend, text=settings.text or "", guidance=settings.guidance_scale,
                   first_row_temperature=settings.first_row_temperature, edge_tokens=settings.edge_tokens,
                   input_guidance=settings.input_guidance, input_blind=settings.input_blind,
                   colour_prior=settings.colour_prior, code_prior=settings.code_prior_strength,
                   code_prior_far=settings.code_prior_far_extra if settings.code_prior_strength > 0 else 0.0,
                   code_prior_edge_rows=True,
                   canvas_prior=settings.canvas_prior_strength if image is None else 0.0,
                   neighbour_match=settings.neighbour_match_share if image is not None else 0.0,
                   colour_tilt=settings.colour_tilt_strength if image is not None else 0.0,
                   colour_match=settings.colour_match_strength if image is not None else 0.0,
                   detail_transfer=settings.detail_transfer_strength if image is not None else 0.0,
                   style_weight=settings.style_weight, adapt=settings.adapt if image is not None else 0,
                   detail_match=settings.detail_match and image is not None)
    if not resume:
        check_disk_space(Path(run_dir) if run_dir else Path(temp_parent or tempfile.gettempdir()), spec)
    spec, directory, temporary = open_run_dir(spec, JobSpec, run_dir, resume, temp_parent, temp_prefix,
                                              same_settings, announce)
    job = CanvasRun(bundle, spec, directory, image, batch=settings.batch, backend=backend,
                    progress=progress, on_progress=on_progress)
    canvas = job.run(resume=bool(resume))
    return CanvasResult(canvas, spec, directory, temporary)


def _sampling_flags(parser: argparse.ArgumentParser, clip: bool = False) -> None:
    """The flags of a canvas job; `clip`: of a clip job (animate), without the image-only ones."""
    parser.add_argument("-o", "--output", required=True,
                        help="output .mp4, .webm, .gif, .webp or a frame folder (ending in /)" if clip else
                        "output .png or .tif/.tiff (BigTIFF for huge); with --frames a clip: .mp4, .webm, .gif, "
                        ".webp or a frame folder")
    parser.add_argument("--width", type=int, required=not clip, default=None)
    parser.add_argument("--height", type=int, required=not clip, default=None)
    parser.add_argument("--model", default=None, help="model directory (default: the bundled model)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=None,
                        help=f"sampling temperature (default 1; {DEFAULT_CLIP_TEMPERATURE} for a clip)")
    parser.add_argument("--top-k", type=int, default=0, help="0 = off")
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--min-p", type=float, default=0.0, metavar="P",
                        help="drop codes less likely than P × the likeliest one (0 = off)")
    if not clip:
        parser.add_argument("--first-row-temperature", type=float, default=None, metavar="T",
                            help="temperature of each patch's first token row, which sets its palette (extend's "
                                 f"default {DEFAULT_FIRST_ROW_TEMPERATURE}; generate's: --temperature)")
        parser.add_argument("--blend", type=int, default=256, metavar="PX",
                            help="blend the input into its surroundings over this many pixels, fine detail over "
                                 "fewer (multi-band; default 256, at most a quarter of the input; 0: a 32-px "
                                 "feather)")
        parser.add_argument("--edge-tokens", type=int, default=2, metavar="N",
                            help="regenerate the input's outer N token columns/rows, which its encoding alone "
                                 "gets wrong (default 2; its pixels stay)")
        parser.add_argument("--input-guidance", type=float, default=1.0, metavar="S",
                            help="classifier-free guidance on the input: logits = blind + S·(seeing − blind), "
                                 "the blind branch without the input's style memory (1 = off; twice the time)")
        parser.add_argument("--input-blind", choices=("memory", "all"), default="memory",
                            help="what guidance on the input leaves out of its blind branch: the style memory, "
                                 "or the memory and the neighbouring patches")
        parser.add_argument("--colour-prior", type=float, default=0.0, metavar="W",
                            help="carry the input's palette at each height: W × the log-density of the input's "
                                 "colours in that row added to every code's logit (0 = off)")
        parser.add_argument("--code-prior-far", type=float, default=None, metavar="E",
                            help="with the code prior: a code whose colour is far from every colour the input's "
                                 "codes have near a row's height pays up to E × W more there (default "
                                 f"{DEFAULT_CODE_PRIOR_FAR:g}; 0 = the flat prior)")
        parser.add_argument("--canvas-prior", type=float, default=None, metavar="W",
                            help="without an input (generate): codes far in colour from what the canvas already "
                                 "holds near a row's height get −W × their farness there, so one patch cannot "
                                 f"switch the scene (default {DEFAULT_CANVAS_PRIOR:g}; 0 = off)")
        parser.add_argument("--neighbour-match", type=float, default=None, metavar="L",
                            help="with an input: mix the input's votes into each token's probabilities at "
                                 "share L × how much they agree (the codes the input puts where its "
                                 "neighbourhood looks like the token's, near the same height; default "
                                 f"{DEFAULT_NEIGHBOUR_MATCH:g}, 0 with --text; 0 = off)")
        parser.add_argument("--colour-tilt", type=float, default=None, metavar="W",
                            help="with an input: pull the mean colour that the generated rows reach at each "
                                 "height back to the input's, with strength W (default "
                                 f"{DEFAULT_COLOUR_TILT:g}, 0 with --text; 0 = off)")
        parser.add_argument("--colour-match", type=float, default=None, metavar="W",
                            help="with an input: take W × the decoder's colour cast, measured on the input's own "
                                 "decoded tokens, off every decoded pixel (chroma only; default "
                                 f"{DEFAULT_COLOUR_MATCH:g}, 0 with --text; 0 = off)")
        parser.add_argument("--detail-transfer", type=float, default=None, metavar="W",
                            help="with an input: add W × the fine detail its tokens lose (its pixels less its "
                                 "own decoded tokens, high-passed) to each decoded block, from the input block "
                                 "that looks most alike at about its height, neighbours joined along quilting "
                                 f"cuts (default {DEFAULT_DETAIL_TRANSFER:g}, 0 with --text; 0 = off)")
        parser.add_argument("--adapt", type=int, default=0, metavar="STEPS",
                            help="first fine-tune a copy of the model on the input itself for STEPS steps "
                                 f"(test-time adaptation; {DEFAULT_ADAPT_STEPS} measured well, ≈ 1.6–2 s a step "
                                 "on 2 CPU cores; 0 = off)")
        parser.add_argument("--no-detail-match", dest="detail_match", action="store_false",
                            help="draw the decoder's finest detail as it comes (default: scaled to the amount the "
                                 "input has, which calms the decoder's grain on dark inputs)")
        parser.add_argument("--style-weight", type=float, default=DEFAULT_STYLE_WEIGHT, metavar="W",
                            help="with --text: the share of the input's style the prompted branch reads (default "
                                 f"{DEFAULT_STYLE_WEIGHT:g}; 1 = all, lower lets the prompt outvote the input)")
    parser.add_argument("--code-prior", type=float, default=None, metavar="W",
                        help="codes the input (a clip: its given frame 0) does not use within 128 px of a row's "
                             f"height get −W on their logit there (extend's default {DEFAULT_CODE_PRIOR:g} without "
                             f"--text, 0 with it; a clip's {DEFAULT_ANIMATE_CODE_PRIOR:g} on a still, "
                             f"{DEFAULT_DRAWN_CODE_PRIOR:g} on a drawn frame 0; 0 = off)")
    parser.add_argument("--text", default="",
                        help="prompt, e.g. \"ink-wash scroll landscape at night, a lake\" "
                             "(needs a model with a text encoder; without an input, or with one on a canvas "
                             "up to 1024 px high, it is drawn by the model's text-to-image transformer, "
                             "text/, where it has one)")
    parser.add_argument("--guidance", type=float, default=None,
                        help=f"classifier-free guidance on the prompt (default {DEFAULT_GUIDANCE} with --text; "
                             "1 = off)")
    parser.add_argument("--batch", type=int, default=16, help="max patches sampled together")
    parser.add_argument("--order", default="raster" if clip else None,
                        help="each frame's sweep (default raster)" if clip else ORDERS + " (default auto)")
    parser.add_argument("--run-dir", default=None,
                        help="where run state lives (default: a temp dir next to the output)")
    parser.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue a killed run")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--attn-backend", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    if not clip:
        parser.add_argument("--preview", default=None, help="also write a small preview PNG here")
        parser.add_argument("--zoom", default=None, metavar="DIR",
                            help="also write a deep-zoom page of the output into DIR (as `nuwa-inf view`)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument("--quiet", action="store_true")


def _settings(args: argparse.Namespace) -> CanvasSettings:
    return CanvasSettings(width=args.width, height=args.height, anchor=getattr(args, "anchor", "center"),
                          order=args.order or "auto", seed=args.seed,
                          temperature=1.0 if args.temperature is None else args.temperature, top_k=args.top_k,
                          top_p=args.top_p, min_p=args.min_p, batch=args.batch, blend=args.blend, text=args.text,
                          guidance=args.guidance, first_row_temperature=args.first_row_temperature,
                          edge_tokens=args.edge_tokens, input_guidance=args.input_guidance,
                          input_blind=args.input_blind, colour_prior=args.colour_prior,
                          code_prior=getattr(args, "code_prior", None), style_weight=args.style_weight,
                          code_prior_far=getattr(args, "code_prior_far", None),
                          canvas_prior=getattr(args, "canvas_prior", None),
                          neighbour_match=getattr(args, "neighbour_match", None),
                          colour_tilt=getattr(args, "colour_tilt", None),
                          colour_match=getattr(args, "colour_match", None),
                          detail_transfer=getattr(args, "detail_transfer", None),
                          adapt=getattr(args, "adapt", 0), detail_match=getattr(args, "detail_match", True))


def run_canvas_job(args: argparse.Namespace, image_path: str | None) -> int:
    import torch

    if getattr(args, "frames", None) is not None:  # generate --frames: a clip
        from .clip_cli import run_clip_job

        return run_clip_job(args, None)

    from ..errors import UserError
    from ..images import check_output_path, load_rgb, refuse_overwrite
    from ..kernels import resolve_backend
    from .bundle import draws_with_text_model, load_bundle
    from .engine import remove_run_dir
    from .writers import export, export_preview

    settings = _settings(args)
    settings.check()
    if args.threads is not None and args.threads <= 0:
        raise UserError(f"--threads must be positive, got {args.threads}")
    out = check_output_path(args.output)
    refuse_overwrite(out, args.overwrite)
    if args.preview:
        check_output_path(args.preview, (".png",))
    torch.set_num_threads(args.threads or max(1, os.cpu_count() or 1))
    # a prompt draws with the model's text-to-image transformer, where it has one (bundle.py says when)
    bundle = load_bundle(args.model, args.device,
                         text=draws_with_text_model(args.text, image_path is not None, settings.height))
    try:
        resolve_backend(args.attn_backend, next(bundle.transformer.parameters()).device)
    except ValueError as err:
        raise UserError(f"--attn-backend: {err}") from None
    image = load_rgb(image_path) if image_path else None
    result = run_canvas(bundle, image, settings, run_dir=args.run_dir, resume=args.resume,
                        temp_parent=out.parent, temp_prefix=f".{out.stem}.run.", backend=args.attn_backend,
                        progress=not args.quiet, announce=not args.quiet)
    export(result.canvas, out)
    if args.preview:
        export_preview(result.canvas, args.preview)
    result.canvas.close()
    if result.temporary:
        remove_run_dir(result.run_dir)
    page = None
    if args.zoom:
        from ..view import build_zoom

        page = build_zoom(out, args.zoom, overwrite=args.overwrite)
    if not args.quiet:
        spec = result.spec
        print(f"wrote {out} ({spec.width}x{spec.height})" + (f", preview {args.preview}" if args.preview else "")
              + (f", zoom page {page}" if page else ""))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    extend = subparsers.add_parser("extend", help="outpaint an image to a larger canvas")
    extend.add_argument("input", help="the image to extend")
    extend.add_argument("--anchor", default="center", help="left | center | right | top | bottom | X,Y")
    _sampling_flags(extend)
    extend.set_defaults(func=lambda args: run_canvas_job(args, args.input))
    extend.set_defaults(first_row_temperature=DEFAULT_FIRST_ROW_TEMPERATURE)
    generate = subparsers.add_parser("generate", help="generation of any size, from a prompt (--text) or unconditional;"
                                                      " a clip with --frames")
    _sampling_flags(generate)
    clip_flags(generate)
    generate.set_defaults(func=lambda args: run_canvas_job(args, None))
    register_animate(subparsers, _sampling_flags)
