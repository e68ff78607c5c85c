"""`nuwa-inf eval IMAGE [--reference REF ...] [--patch 256] [--exclude X0,Y0,X1,Y1] [--json FILE] [--plot FILE]`.

Prints seam ratio, block-statistics distance against the real-vs-real noise floor, and drift
as a small table; `--json` writes the same figures (nan as null) atomically; `--plot` draws
them per column window along the canvas (`columns.py`, `plot.py`).
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from ..atomic import write_json
from ..errors import UserError
from ..plots import check_plot_path
from .block_stats import block_features
from .columns import column_profile
from .metrics import evaluate
from .plot import plot_columns
from .seams import Box

MIN_PATCH = 8
LOAD_STRIP = 2048  # px


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="quality figures of a canvas: seam ratio, block statistics, drift",
                              description="Quality figures without downloaded networks: seam ratio "
                                          "(1.0 = seamless), block-statistics distance vs real blocks "
                                          "(÷ real-vs-real noise floor), drift along the canvas.")
    p.add_argument("image", help="generated canvas (PNG, TIFF, ...)")
    p.add_argument("--reference", nargs="+", default=[], metavar="REF",
                   help="real images whose blocks set the target statistics")
    p.add_argument("--patch", type=int, default=256, help="patch size in px (default 256)")
    p.add_argument("--exclude", metavar="X0,Y0,X1,Y1",
                   help="input region in px, left out of the block figures")
    p.add_argument("--repeats", type=int, default=8, help="random reference splits for the noise floor")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="FILE", help="also write the figures to this JSON file")
    p.add_argument("--plot", metavar="FILE", help="also draw seam ratio, reference distance and drift per "
                                                 "column window along x (.png/.svg/.pdf; needs matplotlib)")
    p.add_argument("--plot-window", type=int, default=None, metavar="PX",
                   help="column window of --plot, a multiple of --patch (default: the narrowest "
                        "holding 8 blocks, e.g. 256 on a 2048-px-high canvas)")
    p.set_defaults(func=run)


def load_rgb(path: str, patch: int) -> np.ndarray:
    """Image file -> (H, W, 3) uint8; any unreadable or too-small input is a UserError."""
    from ..images import image_size

    image_size(path)  # header checks first: missing, empty, zero size, decompression bomb
    from PIL import Image

    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # scrolls are legitimately huge (38912×2048)
    try:
        with Image.open(path) as img:
            img.load()
            width, height = img.size
            # copy in column strips: one decoded image plus one array, never a third full-size copy
            array = np.empty((height, width, 3), dtype=np.uint8)
            for x0 in range(0, width, LOAD_STRIP):
                x1 = min(x0 + LOAD_STRIP, width)
                array[:, x0:x1] = np.asarray(img.crop((x0, 0, x1, height)).convert("RGB"))
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, expected an image") from None
    except (OSError, ValueError, SyntaxError) as err:  # PIL: UnidentifiedImageError, truncated files
        raise UserError(f"{path}: cannot read as an image ({err.__class__.__name__})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = previous
    h, w = array.shape[:2]
    if h < patch or w < patch:
        raise UserError(f"{path}: {w}x{h} is smaller than one {patch}x{patch} patch")
    return array


def parse_exclude(text: str, width: int, height: int) -> Box:
    try:
        x0, y0, x1, y1 = (int(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"--exclude {text!r}: expected four integers X0,Y0,X1,Y1") from None
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise UserError(f"--exclude {text!r}: need 0 <= X0 < X1 <= {width} and 0 <= Y0 < Y1 <= {height}")
    return x0, y0, x1, y1


def _json_ready(obj):
    if isinstance(obj, dict):
        return {k: _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_ready(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.{digits}f}"


def format_table(path: str, figures: dict) -> str:
    seam, blocks, drift = figures["seam"], figures["blocks"], figures["drift"]
    lines = [
        f"{path}: {figures['width']}x{figures['height']} px, patch {figures['patch']}, "
        f"{figures['generated_blocks']} blocks measured"
        + (f", {figures['reference_blocks']} reference blocks" if blocks else ", no reference"),
        f"  {'figure':<22}{'value':>10}   notes",
        f"  {'seam ratio':<22}{_fmt(seam['ratio']):>10}   x-lines {_fmt(seam['ratio_x'])}, "
        f"y-lines {_fmt(seam['ratio_y'])}; 1.0 = seamless",
        f"  {'  control (mid-patch)':<22}{_fmt(figures['seam_control']['ratio']):>10}   "
        f"lines half a patch off the grid: content alone",
    ]
    if blocks:
        lines += [
            f"  {'block distance':<22}{_fmt(blocks['distance']):>10}   squared Fréchet, generated vs real half",
            f"  {'noise floor':<22}{_fmt(blocks['noise_floor']):>10}   real half vs real half, "
            f"mean of {blocks['repeats']}",
            f"  {'distance / floor':<22}{_fmt(blocks['ratio'], 2):>10}   ~1 = as close as real to real",
        ]
        if blocks["scenes"]:
            lines += [
                f"  {'scene floor':<22}{_fmt(blocks['scene_floor']):>10}   each reference vs the others, "
                f"mean of {blocks['scenes']}",
                f"  {'distance / scene floor':<22}{_fmt(blocks['scene_ratio'], 2):>10}   "
                f"~1 = as close as another real scene",
            ]
    else:
        lines.append(f"  {'block distance':<22}{'n/a':>10}   give --reference REF to measure it")
    verdict = ""
    if math.isfinite(drift["ratio"]):
        verdict = "no drift" if drift["ratio"] <= drift["threshold"] else "DRIFT"
    lines.append(f"  {'drift late/early':<22}{_fmt(drift['ratio'], 2):>10}   {verdict + '; ' if verdict else ''}"
                 f"{drift['what']}; <= {drift['threshold']} = no drift")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.patch < MIN_PATCH:
        raise UserError(f"--patch {args.patch}: must be at least {MIN_PATCH}")
    if args.repeats < 1:
        raise UserError(f"--repeats {args.repeats}: must be at least 1")
    if args.json and not Path(args.json).resolve().parent.is_dir():
        raise UserError(f"--json {args.json}: folder does not exist")
    if args.plot:
        check_plot_path(args.plot)
    if args.plot_window is not None and (args.plot_window <= 0 or args.plot_window % args.patch):
        raise UserError(f"--plot-window {args.plot_window}: must be a positive multiple of --patch {args.patch}")
    # references first: a bad reference fails before the big canvas is measured
    # one reference in memory at a time: only its block features are kept
    ref_features = [block_features(load_rgb(ref, args.patch), args.patch).features for ref in args.reference]
    image = load_rgb(args.image, args.patch)
    exclude = parse_exclude(args.exclude, image.shape[1], image.shape[0]) if args.exclude else None
    figures = evaluate(image, patch=args.patch, exclude=exclude, repeats=args.repeats, seed=args.seed,
                       reference_features=ref_features)
    if figures["generated_blocks"] == 0:
        raise UserError(f"{args.image}: no whole {args.patch}x{args.patch} block outside --exclude")
    figures["image"] = str(args.image)
    figures["references"] = [str(r) for r in args.reference]
    print(format_table(args.image, figures))
    if args.json:
        write_json(args.json, _json_ready(figures))
    if args.plot:
        profile = column_profile(image, args.patch, args.plot_window, exclude,
                                 np.concatenate(ref_features) if ref_features else None, args.seed, args.repeats)
        if plot_columns(profile, args.plot, Path(args.image).name, figures["seam"]["ratio"], exclude):
            print(f"wrote {args.plot} (windows of {profile.window} px)")
    return 0

