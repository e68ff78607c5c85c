"""Text-to-video's frame 0, drawn by the model's image transformer; the clip then animates it.

The video transformer samples a clip at temperature 0.3 (clip_cli.DEFAULT_CLIP_TEMPERATURE): hot
enough to move a scene, cool enough to keep it. Drawn by it at that temperature, a whole frame 0
from a prompt came out a blurred field that hardly moved (motion 0.13× real clips',
`bench_video.py --from-text`); at temperature 1 the cooler frames after it repainted it (flicker
8×, drift 8×). So frame 0 is made the way a still is: text-to-image by the image transformer, at
`draw_scale(width, height)`× the frame's size (its scrolls were 2048 px high; at 256 px high it draws
blurred blobs), shrunk to the frame with a Lanczos filter — with a prompt, by the text-to-image
transformer (text/) where the model has one, as `generate --text` draws. The clip animates that
frame as `animate` does a still: frame 0 given, its tokens the style memory.

The drawing is a canvas job of its own, in RUN/first_frame/ (resumable like any), and its result
is kept as RUN/first_frame.png, which a resumed clip reads back instead of drawing again.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .bundle import ModelBundle
    from .clip_engine import ClipSpec

DRAW_HEIGHT = 2048  # px: frame 0 is drawn about this high (the training scrolls' height) ...
MAX_SCALE = 4       # ... but at most this many times the frame's size
FIRST_FRAME_FILE = "first_frame.png"
FIRST_FRAME_RUN = "first_frame"


def draw_scale(width: int, height: int) -> int:
    """How many times the frame's size frame 0 is drawn at: 4 for a 256-px-high frame, 2 for 1024,
    1 from 2048 — and never wider than a canvas may be."""
    from .placement import MAX_SIDE

    return max(1, min(MAX_SCALE, DRAW_HEIGHT // height, MAX_SIDE // width))


def image_bundle(video: "ModelBundle", loaded: "ModelBundle | None" = None, text: str = "") -> "ModelBundle | None":
    """The image model beside a video transformer (the bundled layout: transformer/ and video/ in
    one directory); None for a directory that holds a video model alone. With a prompt, the
    directory's text-to-image transformer (text/) where it has one, as `generate --text` draws.
    `loaded`: the caller's image model of that directory, used instead of loading it again."""
    from .bundle import has_text_model, load_bundle

    directory = video.directory
    if not (directory / "transformer").is_dir() or not (directory / "video").is_dir():
        return None
    part = "text" if text and has_text_model(directory) else "transformer"
    if (loaded is not None and loaded.directory == directory and loaded.part == part
            and loaded.transformer.cfg.extent_t == 0):
        return loaded
    images = load_bundle(directory, str(next(video.transformer.parameters()).device), text=part == "text")
    return images if images.transformer.cfg.extent_t == 0 else None


def cannot_draw(images: "ModelBundle | None", video: "ModelBundle", text: str) -> str | None:
    """Why frame 0 cannot be drawn by `images` (the image model beside `video`), or None."""
    if images is None:
        return (f"no image transformer beside the video one ({video.directory} has no transformer/ and video/ "
                f"side by side)")
    if text and images.transformer.text is None:
        return f"a prompt, and the image transformer in {video.directory / images.part} has no text encoder"
    return None


def draw_first_frame(images: "ModelBundle", spec: "ClipSpec", run_dir: Path, batch: int = 16,
                     backend: str = "auto", progress: bool = True) -> np.ndarray:
    """(height, width, 3) uint8 frame 0 of the text-to-video clip `spec`: text-to-image with its
    prompt, seed, guidance and truncations (temperature: its `first_frame_temperature`, else the
    image default 1) at `draw_scale`× the frame's size, shrunk; read back from `run_dir`
    when drawn before."""
    from PIL import Image

    from ..images import load_rgb
    from .cli import CanvasSettings, run_canvas
    from .engine import remove_run_dir
    from .writers import export_png

    done = run_dir / FIRST_FRAME_FILE
    if done.is_file():
        return load_rgb(done)
    scale = draw_scale(spec.width, spec.height)
    canvas = CanvasSettings(width=spec.width * scale, height=spec.height * scale, seed=spec.seed, text=spec.text,
                            guidance=spec.guidance, batch=batch, top_k=spec.top_k, top_p=spec.top_p,
                            min_p=spec.min_p,
                            temperature=1.0 if spec.first_frame_temperature is None else spec.first_frame_temperature)
    job_dir = run_dir / FIRST_FRAME_RUN
    resume = job_dir if (job_dir / "job.json").is_file() else None
    result = run_canvas(images, None, canvas, run_dir=None if resume else job_dir, resume=resume, backend=backend,
                        progress=progress, same_settings=True)
    try:
        drawn = result.canvas.read_region(0, 0, canvas.height, canvas.width)   # (H·s, W·s, 3)
    finally:
        result.canvas.close()
    frame = np.array(Image.fromarray(drawn).resize((spec.width, spec.height), Image.LANCZOS))
    export_png(np.ascontiguousarray(frame), done)
    remove_run_dir(job_dir)
    return frame
