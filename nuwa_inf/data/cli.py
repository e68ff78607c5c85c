"""`nuwa-inf data procedural`: write procedural scroll landscapes (PNG + caption) or short clips.

    nuwa-inf data procedural --out data/scrolls --count 300 --width 2048 --height 2048 --seed 0
    nuwa-inf data procedural --out data/strip --count 1 --width 38912 --height 2048 --seed 7
    nuwa-inf data procedural --out data/clips --count 20 --width 256 --height 256 --video --frames 16
    nuwa-inf data procedural --out data/day --count 8 --attrs palette=blue-green time=day

`--attrs` fixes scene attributes (palette, time, snow, water, mist, trees) for every item; the
others are still drawn from each item's seed.

Images go to DIR/scroll_00000.png with the caption in DIR/scroll_00000.txt; clips to
DIR/clip_00000/frame_0000.png ... with the caption in DIR/clip_00000.txt. Every file is
written atomically and the caption last, so an interrupted run is resumed by running the
same command again: finished items are skipped (unless --overwrite).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..atomic import write_bytes
from ..errors import UserError
from ..infer.writers import export_png
from .procedural import MAX_SIZE, caption, full_attributes, render_scroll

MAX_COUNT = 10_000_000
MAX_FRAMES = 10_000


def image_seed(seed: int, index: int) -> int:
    """The landscape seed of item `index` of a run started with `--seed seed`."""
    return int(np.random.SeedSequence([int(seed) % (1 << 63), int(index)]).generate_state(1)[0])


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "procedural", help="write procedural scroll landscapes (the offline domain dataset)",
        description="Render procedural shan-shui scroll landscapes with captions, or short clips with --video.")
    parser.add_argument("--out", required=True, help="output directory (created if missing)")
    parser.add_argument("--count", type=int, default=1, help="number of images or clips (default 1)")
    parser.add_argument("--width", type=int, default=2048, help="width in pixels (default 2048)")
    parser.add_argument("--height", type=int, default=2048, help="height in pixels (default 2048)")
    parser.add_argument("--seed", type=int, default=0, help="base seed; item i uses a seed derived from it and i")
    parser.add_argument("--video", action="store_true", help="write clips as frame folders instead of images")
    parser.add_argument("--frames", type=int, default=16, help="frames per clip with --video (default 16)")
    parser.add_argument("--attrs", nargs="+", default=[], metavar="KEY=VALUE",
                        help="fix scene attributes for every item, e.g. palette=blue-green time=day snow=false")
    parser.add_argument("--overwrite", action="store_true", help="re-render items that already exist")
    parser.set_defaults(func=run)


def parse_attrs(pairs: list[str]) -> dict:
    """['palette=blue-green', 'snow=false', 'trees=none'] → {'palette': 'blue-green', 'snow': False, 'trees': None}."""
    words = {"true": True, "false": False, "none": None}
    attrs = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--attrs takes KEY=VALUE pairs, got {pair!r}")
        attrs[key.strip()] = words.get(value.strip().lower(), value.strip())
    return attrs


def _check_args(args: argparse.Namespace) -> Path:
    if not 1 <= args.count <= MAX_COUNT:
        raise UserError(f"--count must be in 1..{MAX_COUNT}, got {args.count}")
    for flag in ("width", "height"):
        value = getattr(args, flag)
        if not 1 <= value <= MAX_SIZE:
            raise UserError(f"--{flag} must be in 1..{MAX_SIZE}, got {value}")
    if args.video and not 1 <= args.frames <= MAX_FRAMES:
        raise UserError(f"--frames must be in 1..{MAX_FRAMES}, got {args.frames}")
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create output directory {out}: {err.strerror or err}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise UserError(f"output directory {out} is not writable")
    return out


def _save_png(path: Path, pixels: np.ndarray) -> None:
    """Atomic PNG write straight from the uint8 array, a band of rows at a time (no PIL copy)."""
    export_png(pixels, path)


def run(args: argparse.Namespace) -> int:
    attrs = parse_attrs(args.attrs)
    full_attributes(0, attrs)  # bad names or values fail before anything is written
    out = _check_args(args)
    units = args.frames if args.video else 1
    total = args.count * units * args.width
    with tqdm(total=total, unit="col", unit_scale=True, desc="procedural", dynamic_ncols=True) as bar:
        for index in range(args.count):
            seed = image_seed(args.seed, index)
            scene_attrs = full_attributes(seed, attrs)
            text = caption(scene_attrs) + "\n"
            if args.video:
                name = f"clip_{index:05d}"
                done = (out / f"{name}.txt").exists()
                if done and not args.overwrite:
                    bar.update(units * args.width)
                    continue
                frames_dir = out / name
                frames_dir.mkdir(exist_ok=True)
                for t in range(args.frames):
                    frame = render_scroll(args.width, args.height, seed, attrs=scene_attrs, frame=float(t),
                                          progress=bar.update)
                    _save_png(frames_dir / f"frame_{t:04d}.png", frame)
            else:
                name = f"scroll_{index:05d}"
                done = (out / f"{name}.png").exists() and (out / f"{name}.txt").exists()
                if done and not args.overwrite:
                    bar.update(args.width)
                    continue
                # rendered block by block into one uint8 array: no float copy of the whole image,
                # and the PNG is encoded from that array in bands (peak ~ 3 bytes per pixel)
                pixels = render_scroll(args.width, args.height, seed, attrs=scene_attrs, progress=bar.update)
                _save_png(out / f"{name}.png", pixels)
                del pixels
            write_bytes(out / f"{name}.txt", text.encode())
    return 0
