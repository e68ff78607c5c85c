"""`nuwa-inf animate` and `nuwa-inf generate --frames`: clip jobs from the command line.

`ClipSettings` + `run_clip` are the shared core (the Python API calls them too): they check
the settings, set up or resume the run directory and run the clip engine; `write_clip` turns
the run's frames into the output (.mp4, .webm, .gif, .webp or a frame folder).
"""
from __future__ import annotations

import argparse
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .keep_motion import MAX_TEMPERATURE

if TYPE_CHECKING:
    import numpy as np

    from .bundle import ModelBundle
    from .clip_engine import ClipSpec

MAX_CLIP_FRAMES = 10_000
# a clip's sampling temperature unless --temperature says otherwise. Measured with
# benchmarks/bench_video.py on the first video model (2 held-out stills, 8 frames): at 1 every token
# that the model does not copy from the frame before is redrawn at random, and the scene dissolves
# into noise within 8 frames (motion 8.9× real's, flicker 98×); at 0.6 motion 3.4×, flicker 29×;
# at 0.3 the scene holds (motion 1.5×, flicker 8×, no two frames the same)
DEFAULT_CLIP_TEMPERATURE = 0.3
MAX_CLIP_PIXELS = 4096 * 4096     # per frame
# logit bonus (before the temperature) of the token a place held in the frame before, unless
# --persistence says otherwise. Measured with benchmarks/bench_video.py (4 held-out stills, 16
# frames, temperature 0.3), motion / flicker / drift × real's: 0 → 0.87 / 4.9 / 2.34; 0.5 → 0.61 /
# 2.7 / 1.84; 0.75 → 0.46 / 1.6 / 1.87 (two pairs of identical frames); 1 → 0.38 / 1.1 / 1.43 (one
# pair): no setting met both targets. With the deflicker (video/deflicker.py, on by default since
# 2026-12-05; same benchmark, one session): 0 → 0.66 / 0.4 / 2.33; 0.25 → 0.56 / 0.3 / 2.19;
# 0.5 → 0.50 / 0.2 / 1.85. The median takes the flicker, so less persistence buys motion back
DEFAULT_PERSISTENCE = 0.25
FIRST_FRAME_CHOICES = ("auto", "image", "clip")
# strength of the code prior of a given frame 0 (code_prior.py: codes that frame does not use within 8
# token rows of a height get −W there), unless --code-prior says otherwise. Measured with
# benchmarks/bench_video.py (4 held-out cases; motion / drift × real's): animating a real still,
# W 0 → 0.56 / 2.19, 1 → 0.48 / 1.97, 2 → 0.43 / 2.07 (motion falls below half of real's: off); text-to-video
# from a drawn frame 0 (8 frames), W 0 → 1.58 / 8.5 (the night clip 2.31), 1 → 1.27 / 6.5 (every case within
# 0.87–1.64), 2 → 1.24 / 6.8: the rogue codes a clip drifts by (orange specks in a grey sky) are held back
DEFAULT_ANIMATE_CODE_PRIOR = 0.0
DEFAULT_DRAWN_CODE_PRIOR = 1.0
# target share of token places that change per frame (keep_motion.py): a patch whose neighbourhood
# changed less between the two frames before it is sampled hotter. 0 turns it off. Measured with
# benchmarks/bench_video.py (4 held-out stills, 16 frames, seed 0; motion per case (day / sunset / night /
# snowy), flicker, drift × real's, seam). The first video model (stage 7, cap 0.6): 0 → 0.62 / 0.70 / 0.32 /
# 0.60, 0.3, 2.19, 1.03; 0.1 → 0.85 / 0.92 / 0.50 / 0.76, 0.5, 2.68, 1.02; 0.15 → 0.95 / 1.10 / 0.57 / 0.91, 0.6,
# 2.64, 1.01; 0.2 → 1.00 / 1.07 / 0.61 / 0.94, 0.6, 3.33, 1.02. Stage 7b (2026-12-06, fifth session), which
# copies more surely, with the cap at 0.9: 0.15 → 0.90 / 1.16 / 0.51 / 0.83, 0.4, 2.68; 0.25 → 1.08 / 1.38 /
# 0.51 / 0.91, 0.3, 2.44 (seed 1: 1.16 / 1.36 / 0.67 / 0.64, mean 0.96, drift 2.27); at 0.15 with the old cap
# 0.50 / 0.62 / 0.36 / 0.48. Text-to-video (a frame 0 drawn from the prompt, 8 frames): stage 7 moved enough
# without it (motion 1.27 at 0, every case in 0.5–2×; at 0.15 1.48, the night clip 2.04×); stage 7b at 0 moved
# 0.28 / 0.67 / 0.55 / 0.41 with identical frames, at 0.25 0.61 / 1.07 / 1.42 / 0.84, so it is on there too
DEFAULT_KEEP_MOTION = 0.25


@dataclass
class ClipSettings:
    frames: int
    fps: float = 8.0
    seed: int = 0
    temperature: float = DEFAULT_CLIP_TEMPERATURE
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.0
    batch: int = 16
    order: str = "raster"
    text: str = ""
    guidance: float | None = None
    persistence: float = DEFAULT_PERSISTENCE
    first_frame_temperature: float | None = None  # text-to-video's frame 0; None: 1 drawn, `temperature` sampled
    code_prior: float | None = None  # −W on codes a given frame 0 does not use near each height;
                                     # None: DEFAULT_ANIMATE_CODE_PRIOR / DEFAULT_DRAWN_CODE_PRIOR
    first_frame: str = "auto"   # text-to-video's frame 0: "image" (drawn by the image transformer,
                                # first_frame.py), "clip" (by the video transformer), "auto": image where
                                # the model has an image transformer beside its video one
    keep_motion: float | None = None  # keep_motion.py; None: DEFAULT_KEEP_MOTION

    def check(self) -> None:
        from ..errors import UserError
        from ..model.orders import ALIASES, DIRECTIONS
        from .cli import CanvasSettings

        if not 1 <= self.frames <= MAX_CLIP_FRAMES:
            raise UserError(f"--frames must be in 1..{MAX_CLIP_FRAMES}, got {self.frames}")
        if not 0 < self.fps <= 240:
            raise UserError(f"--fps must be in (0, 240], got {self.fps}")
        if self.order not in set(DIRECTIONS) | set(ALIASES):
            raise UserError(f"--order {self.order!r}: a clip's frames take a sweep order "
                            f"({', '.join(sorted(set(DIRECTIONS) | set(ALIASES)))})")
        if not 0 <= self.persistence <= 20:
            raise UserError(f"--persistence must lie in [0, 20], got {self.persistence}")
        if self.keep_motion is not None and not 0 <= self.keep_motion <= 1:
            raise UserError(f"--keep-motion is a share of tokens per frame in [0, 1], got {self.keep_motion}")
        if self.code_prior is not None and not 0 <= self.code_prior <= 10:
            raise UserError(f"--code-prior must lie in [0, 10], got {self.code_prior}")
        if self.first_frame not in FIRST_FRAME_CHOICES:
            raise UserError(f"--first-frame must be one of {', '.join(FIRST_FRAME_CHOICES)}, got {self.first_frame!r}")
        if self.first_frame_temperature is not None and self.first_frame_temperature < 0:
            raise UserError(f"--first-frame-temperature must be >= 0, got {self.first_frame_temperature}")
        CanvasSettings(width=1, height=1, seed=self.seed, temperature=self.temperature, top_k=self.top_k,
                       top_p=self.top_p, min_p=self.min_p, batch=self.batch, text=self.text,
                       guidance=self.guidance).check()

    def code_prior_strength(self, drawn: bool) -> float:
        """The code prior's strength for a still given (`drawn` False) or a frame 0 drawn from the prompt."""
        if self.code_prior is not None:
            return self.code_prior
        return DEFAULT_DRAWN_CODE_PRIOR if drawn else DEFAULT_ANIMATE_CODE_PRIOR

    @property
    def keep_motion_share(self) -> float:
        """keep_motion.py's target rate: `keep_motion`, or DEFAULT_KEEP_MOTION where it is None."""
        return DEFAULT_KEEP_MOTION if self.keep_motion is None else self.keep_motion

    @property
    def guidance_scale(self) -> float:
        from .cli import DEFAULT_GUIDANCE

        return (DEFAULT_GUIDANCE if self.text else 1.0) if self.guidance is None else self.guidance


@dataclass
class ClipResult:
    frames: list[Path]
    spec: "ClipSpec"
    run_dir: Path
    temporary: bool
    still: "np.ndarray | None" = None   # frame 0's pixels where given (animate) or drawn (text-to-video)


def check_frame_size(width: int, height: int) -> None:
    from ..errors import UserError

    if width <= 0 or height <= 0 or width * height > MAX_CLIP_PIXELS:
        raise UserError(f"frames of {width}x{height} px: each side must be positive and a frame at most "
                        f"{MAX_CLIP_PIXELS // 1_000_000} Mpx")
    if width % 16 or height % 16:
        raise UserError(f"frames of {width}x{height} px: width and height must be multiples of 16")


def run_clip(bundle: "ModelBundle", still: "np.ndarray | None", width: int, height: int, settings: ClipSettings, *,
             run_dir: str | os.PathLike | None = None, resume: str | os.PathLike | None = None,
             temp_parent: str | os.PathLike | None = None, temp_prefix: str = ".nuwa.clip.",
             backend: str = "auto", progress: bool = True, announce: bool = False,
             on_progress: Callable[[int, int], None] | None = None, same_settings: bool = False,
             images: "ModelBundle | None" = None) -> ClipResult:
    """Animate `still` (H, W, 3 uint8; frame 0) or, without one, generate a clip of
    `width`×`height` frames; resume `resume`'s run, or start one in `run_dir` or a temp dir.
    `images`: the image model beside the video one, when the caller holds it (it draws frame 0)."""
    from ..errors import UserError
    from .clip_engine import ClipRun, ClipSpec
    from .engine import open_run_dir
    from .first_frame import cannot_draw, draw_first_frame, image_bundle

    settings.check()
    check_frame_size(width, height)
    first_frame = "clip"
    if still is None and settings.first_frame != "clip":
        images = image_bundle(bundle, loaded=images, text=settings.text or "")
        why = cannot_draw(images, bundle, settings.text or "")
        if why and settings.first_frame == "image":
            raise UserError(f"--first-frame image needs the image transformer to draw frame 0: {why}")
        first_frame = "clip" if why else "image"
    spec = ClipSpec(width=width, height=height, frames=settings.frames, fps=settings.fps, animate=still is not None,
                    input_sha=hashlib.sha1(still.tobytes()).hexdigest()[:16] if still is not None else "",
                    seed=settings.seed, temperature=settings.temperature, top_k=settings.top_k, top_p=settings.top_p,
                    min_p=settings.min_p, order=settings.order, model_hash=bundle.weights_hash,
                    text=settings.text or "",
                    guidance=settings.guidance_scale, persistence=settings.persistence,
                    first_frame_temperature=settings.first_frame_temperature, first_frame=first_frame,
                    code_prior=settings.code_prior_strength(drawn=first_frame == "image"),
                    keep_motion=settings.keep_motion_share)
    spec, directory, temporary = open_run_dir(spec, ClipSpec, run_dir, resume, temp_parent, temp_prefix,
                                              same_settings, announce)
    if not spec.animate and spec.first_frame == "image":  # text-to-video: frame 0 drawn as a still first
        drawer = image_bundle(bundle, loaded=images, text=spec.text)
        still = draw_first_frame(drawer, spec, directory, settings.batch, backend, progress)
    job = ClipRun(bundle, spec, directory, still, batch=settings.batch, backend=backend, progress=progress,
                  on_progress=on_progress)
    return ClipResult(job.run(resume=bool(resume)), spec, directory, temporary, still)


def clip_frames(frames: list[Path], deflicker: bool = True, still: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """The run's frame files as (H, W, 3) uint8 frames, through the temporal median with
    `deflicker`, then with the `still`'s own detail added back where given (video/still_detail.py)."""
    from ..images import load_rgb
    from ..video.deflicker import temporal_median
    from ..video.still_detail import add_still_detail

    frames_out = (load_rgb(path) for path in frames)
    if deflicker:
        frames_out = temporal_median(frames_out)
    return add_still_detail(frames_out, still) if still is not None else frames_out


def write_clip(frames: list[Path], out: Path, fps: float, overwrite: bool, deflicker: bool = True,
               still: np.ndarray | None = None) -> Path:
    """The run's frame files → the output clip (format by `out`'s suffix); see `clip_frames`."""
    from ..video.writers import open_clip_writer

    with open_clip_writer(out, fps, overwrite=overwrite) as writer:
        for frame in clip_frames(frames, deflicker, still):
            writer.write(frame)
    return out


def run_clip_job(args: argparse.Namespace, still_path: str | None) -> int:
    """`animate INPUT` (still_path) or `generate --frames T` (None) from parsed flags."""
    import torch

    from ..errors import UserError
    from ..images import load_rgb
    from ..kernels import resolve_backend
    from ..video.clips import is_video_file
    from ..video.writers import check_clip_output
    from .bundle import load_bundle
    from .engine import remove_run_dir

    temperature = DEFAULT_CLIP_TEMPERATURE if args.temperature is None else args.temperature
    settings = ClipSettings(frames=args.frames, fps=args.fps, seed=args.seed, temperature=temperature,
                            top_k=args.top_k, top_p=args.top_p, min_p=args.min_p, batch=args.batch,
                            order=args.order or "raster",
                            text=args.text, guidance=args.guidance, persistence=args.persistence,
                            first_frame_temperature=args.first_frame_temperature, first_frame=args.first_frame,
                            code_prior=args.code_prior, keep_motion=args.keep_motion)
    settings.check()
    if args.threads is not None and args.threads <= 0:
        raise UserError(f"--threads must be positive, got {args.threads}")
    out = check_clip_output(args.output, args.overwrite)
    if still_path is not None and is_video_file(still_path):
        raise UserError(f"{still_path} is a video; animate takes a still image (PNG, JPEG, ...)")
    if still_path is not None and (args.first_frame != "auto" or args.first_frame_temperature is not None):
        raise UserError("--first-frame and --first-frame-temperature are for text-to-video (generate --frames): "
                        "animate's frame 0 is the still")
    still = load_rgb(still_path) if still_path else None
    if still is not None:
        height, width = still.shape[:2]
        if (args.width or width) != width or (args.height or height) != height:
            raise UserError(f"animate keeps the still's size ({width}x{height}); resize the still instead")
    else:
        if not args.width or not args.height:
            raise UserError("generate --frames needs --width and --height")
        width, height = args.width, args.height
    check_frame_size(width, height)
    torch.set_num_threads(args.threads or max(1, os.cpu_count() or 1))
    bundle = load_bundle(args.model, args.device, video=True)
    try:
        resolve_backend(args.attn_backend, next(bundle.transformer.parameters()).device)
    except ValueError as err:
        raise UserError(f"--attn-backend: {err}") from None
    result = run_clip(bundle, still, width, height, settings, run_dir=args.run_dir, resume=args.resume,
                      temp_parent=out.parent, temp_prefix=f".{out.name}.run.", backend=args.attn_backend,
                      progress=not args.quiet, announce=not args.quiet)
    write_clip(result.frames, out, result.spec.fps, args.overwrite, deflicker=not args.no_deflicker,
               still=None if args.no_still_detail else result.still)
    if result.temporary:
        remove_run_dir(result.run_dir)
    if not args.quiet:
        spec = result.spec
        print(f"wrote {out} ({spec.frames} frames of {spec.width}x{spec.height} at {spec.fps:g} fps)")
    return 0


def clip_flags(parser: argparse.ArgumentParser) -> None:
    """The flags a clip job adds (animate has them all; generate gains --frames and --fps)."""
    parser.add_argument("--frames", type=int, default=None, metavar="T",
                        help="frames of the clip (generate: makes a clip instead of an image)")
    parser.add_argument("--fps", type=float, default=8.0, help="frames per second of the output clip (default 8)")
    parser.add_argument("--persistence", type=float, default=DEFAULT_PERSISTENCE, metavar="B",
                        help="logit bonus of the token a place held in the frame before: steadier frames, "
                             f"less motion (default {DEFAULT_PERSISTENCE:g})")
    parser.add_argument("--keep-motion", type=float, default=None, metavar="R",
                        help="keep the clip moving: where fewer than R of the tokens around a patch changed "
                             f"between the two frames before it, sample it hotter (up to {MAX_TEMPERATURE:g}; "
                             f"0 = off; default {DEFAULT_KEEP_MOTION:g})")
    parser.add_argument("--no-deflicker", action="store_true",
                        help="write the frames as sampled, without the temporal median of three frames that "
                             "removes back-and-forth shimmer (video/deflicker.py)")
    parser.add_argument("--no-still-detail", action="store_true",
                        help="write the frames as the tokenizer draws them, without the detail of frame 0's "
                             "still (the input, or text-to-video's drawn frame 0) added back (video/still_detail.py)")
    parser.add_argument("--first-frame", choices=FIRST_FRAME_CHOICES, default="auto",
                        help="text-to-video's frame 0: drawn by the image transformer as a still, then animated "
                             "(image), or sampled by the video transformer like the other frames (clip); auto: "
                             "image where the model has both (default)")
    parser.add_argument("--first-frame-temperature", type=float, default=None, metavar="T",
                        help="text-to-video: the temperature of frame 0 (default: 1 for a drawn frame 0, "
                             "--temperature for a sampled one)")


def register_animate(subparsers: argparse._SubParsersAction, sampling_flags: Callable) -> None:
    animate = subparsers.add_parser("animate", help="animate a still image: clouds, mist and water move")
    animate.add_argument("input", help="the still (frame 0 of the clip)")
    sampling_flags(animate, clip=True)
    clip_flags(animate)
    animate.set_defaults(func=lambda args: run_clip_job(args, args.input), frames=16)
