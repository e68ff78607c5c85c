"""Continuation benchmark with an answer key: cut the centre of a procedural scroll, extend it back.

For each case (a fixed style: palette, time of day, snow, water) a wide scroll is rendered with
a held-out seed (`image_seed(95000, i)`, the i-th scroll of `nuwa-inf data procedural --seed
95000`; no bundled model trained on it), its centre piece (`--piece` px wide, full height) is
cut out and extended back to the full width

  * by nuwa-inf (`model.extend(piece, width, height, anchor="center")`, timed), and
  * by PatchMatch (the `pypatchmatch` package, `pip install -e .[bench]`) as a sliding window:
    keep the `--keep` px next to the hole, fill the next `--step` px, repeat outward on both
    sides. It is slow (minutes per scroll), so each result is cached as a PNG under
    `--out/peer/`, keyed by case, seed and sizes, and reused by later runs (for new models).

and the generated region (everything outside the piece) is compared with the true scroll at the
same place (`nuwa_inf/eval/continuation.py` defines the figures):

    carry   Fréchet distance of 256-px block statistics to the truth's ÷ that of scrolls of
            unrelated style (3, other palette or time of day), for light (luma), palette
            (chroma) and texture (gradient energy) apart; carry is the mean of the three
            parts. 0 perfect, 1 no better than another scroll.
    layout  mean |Δ| of per-stretch row-band colours vs the truth ÷ the unrelated scrolls'.
    border  |horizontal gradient| at the piece's edges ÷ a few hundred px away (1.0 = invisible),
            beside the truth's own value at the same columns; border/truth their ratio.
    copy    share of textured 16×16 blocks that are near-exact copies of a window of the piece
            (or, for nuwa-inf, of the piece's tokenizer round trip), near-exact relative to
            the block's own texture.
    wall    seconds for the extension.

The "other seed" row is the floor: a real scroll of the case's exact attributes, scored like a
continuation. The "truth" row is the truth scored against itself (carry and layout 0 by
construction; copy should be ~0: a check on the copy metric).

Two more rows say what the model's tokenizer allows (skip them with `--no-round-trips`):
"truth round trip" is the true scroll encoded and decoded (`model.reconstruct`): a perfect
transformer, one that drew the truth's own tokens, scores this — the ceiling of any model on
this tokenizer; "other seed round trip" is the floor scroll's round trip: what continuing the
style can reach through this tokenizer (the fair floor for a token model). The carry's texture
part sees the detail the decoder cannot draw, so these rows sit well above 0 and the floor.

Writes `--json`, prints a table per case and the mean, and writes a side-by-side picture per
case (truth / nuwa-inf / PatchMatch, each downscaled to `--strip-width`, the piece's edges
marked by red ticks) as JPEG under `--out`; `--picture FILE.webp` writes one small combined
picture of the first `--picture-cases` cases (< 150 KB, for the README).

    .venv/bin/pip install -e .[bench]
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_continuation.py --threads 1 \\
        --width 3072 --height 512 --piece 1024 --cases 2                     # minutes
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_continuation.py --threads 1 --cases 4 \\
        --json /work/runs/bench_continuation/full.json --picture docs/continuation.webp --keep-images
    # the figures changed? score the kept images again (the PatchMatch cache is reused anyway)
    ... --rescore /work/runs/bench_continuation/full.json --json /work/runs/bench_continuation/full2.json
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

from common import machine_info, print_table  # noqa: E402  (adds the repo to sys.path)
from nuwa_inf.data.cli import image_seed  # noqa: E402
from nuwa_inf.data.procedural import caption, full_attributes, render_scroll  # noqa: E402
from nuwa_inf.eval.continuation import CARRY_PARTS, continuation_figures, truth_reference  # noqa: E402
from nuwa_inf.infer.cli import DEFAULT_FIRST_ROW_TEMPERATURE  # noqa: E402

TRUTH_SEED, FLOOR_SEED, UNRELATED_SEED = 95000, 95500, 96000  # `--seed` bases of `nuwa-inf data procedural`
CASES = [  # (name, fixed attributes); the others (mist, trees, water where not given) come from the seed
    ("blue-green day, river", {"palette": "blue-green", "time": "day", "snow": False, "water": "river"}),
    ("ink sunset", {"palette": "ink", "time": "sunset", "snow": False}),
    ("blue-green night", {"palette": "blue-green", "time": "night", "snow": False}),
    ("ink snowy day", {"palette": "ink", "time": "day", "snow": True}),
    ("ink day", {"palette": "ink", "time": "day", "snow": False}),
    ("blue-green sunset", {"palette": "blue-green", "time": "sunset", "snow": False}),
]
METHODS = ("nuwa-inf", "PatchMatch", "other seed", "truth", "truth round trip", "other seed round trip")
PATCH_PX = 256  # the placement snaps a centred input to this grid (model patch width)
PICTURE_BYTES = 150_000


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-").replace("--", "-")


# ---------------------------------------------------------------- scrolls


class Scrolls:
    """Renders of (seed, attrs) at one size, kept in memory (the unrelated ones serve several cases)."""

    def __init__(self, width: int, height: int):
        self.width, self.height, self._cache = width, height, {}

    def get(self, seed: int, attrs: dict) -> np.ndarray:
        key = (seed, json.dumps(attrs, sort_keys=True))
        if key not in self._cache:
            self._cache[key] = render_scroll(self.width, self.height, seed, attrs=attrs)
        return self._cache[key]


def case_spec(index: int) -> dict:
    """Case `index`: its style cycles through CASES; truth and floor seeds are its own."""
    name, attrs = CASES[index % len(CASES)]
    seed = image_seed(TRUTH_SEED, index)
    full = full_attributes(seed, attrs)
    return {"index": index, "name": name, "fixed": attrs, "attrs": full, "seed": seed,
            "floor_seed": image_seed(FLOOR_SEED, index), "key": f"{index}_{slug(name)}"}


def unrelated_specs(case_attrs: dict, count: int) -> list[tuple[int, dict]]:
    """`count` scrolls of random style whose (palette, time) differ from the case's (seeds from 96000)."""
    out, j = [], 0
    while len(out) < count:
        seed = image_seed(UNRELATED_SEED, j)
        attrs = full_attributes(seed, None)
        if (attrs["palette"], attrs["time"]) != (case_attrs["palette"], case_attrs["time"]):
            out.append((seed, attrs))
        j += 1
    return out


# ---------------------------------------------------------------- the peer: sliding-window PatchMatch


def patchmatch_extend(piece: np.ndarray, width: int, x0: int, keep: int, step: int, patch_size: int,
                      seed: int) -> np.ndarray:
    """Extend `piece` (placed at column x0) to `width` columns with PatchMatch, `step` px at a time.

    Each step inpaints a window of the `keep` known px next to the hole plus the `step`-px hole;
    the right side is filled outward first, then the left. The truth never enters: the canvas
    starts black outside the piece and only filled columns become known.
    """
    from patchmatch import patch_match

    patch_match.set_random_seed(seed)
    height, piece_w = piece.shape[:2]
    canvas = np.zeros((height, width, 3), np.uint8)
    canvas[:, x0:x0 + piece_w] = piece
    known_lo, known_hi = x0, x0 + piece_w

    def fill(lo: int, hi: int, hole_lo: int, hole_hi: int) -> None:
        window = canvas[:, lo:hi].copy()
        mask = np.zeros(window.shape[:2], np.uint8)
        mask[:, hole_lo - lo:hole_hi - lo] = 255
        canvas[:, lo:hi] = patch_match.inpaint(window, mask, patch_size=patch_size)

    while known_hi < width:
        hole_hi = min(width, known_hi + step)
        fill(max(known_lo, known_hi - keep), hole_hi, known_hi, hole_hi)
        log(f"  PatchMatch: columns {known_hi}-{hole_hi} filled")
        known_hi = hole_hi
    while known_lo > 0:
        hole_lo = max(0, known_lo - step)
        fill(hole_lo, min(known_hi, known_lo + keep), hole_lo, known_lo)
        log(f"  PatchMatch: columns {hole_lo}-{known_lo} filled")
        known_lo = hole_lo
    return canvas


def cached_patchmatch(out_dir: Path, case: dict, piece: np.ndarray, width: int, x0: int,
                      args: argparse.Namespace) -> tuple[np.ndarray, float, bool]:
    """The PatchMatch extension of this case: from the cache if there, else computed and cached.
    Returns (image, wall seconds when it was computed, whether it came from the cache)."""
    height = piece.shape[0]
    name = (f"patchmatch_{case['key']}_seed{case['seed']}_{width}x{height}_piece{piece.shape[1]}"
            f"_keep{args.keep}_step{args.step}_ps{args.peer_patch}")
    png, meta = out_dir / "peer" / f"{name}.png", out_dir / "peer" / f"{name}.json"
    if png.is_file() and meta.is_file():
        with Image.open(png) as img:
            cached = np.asarray(img.convert("RGB"))
        if cached.shape == (height, width, 3) and np.array_equal(cached[:, x0:x0 + piece.shape[1]], piece):
            return cached, json.loads(meta.read_text())["wall_s"], True
        log(f"  cached {png.name} does not fit this case: recomputing")
    started = time.monotonic()
    image = patchmatch_extend(piece, width, x0, args.keep, args.step, args.peer_patch, seed=0)
    wall = time.monotonic() - started
    png.parent.mkdir(parents=True, exist_ok=True)
    tmp = png.with_name(png.name + ".tmp.png")
    Image.fromarray(image).save(tmp)
    os.replace(tmp, png)
    meta.write_text(json.dumps({"wall_s": wall, "machine": machine_info(), "keep": args.keep, "step": args.step,
                                "patch_size": args.peer_patch, "seed": case["seed"]}, indent=2) + "\n")
    return image, wall, False


# ---------------------------------------------------------------- pictures


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def side_by_side(strips: list[tuple[str, np.ndarray]], piece: tuple[int, int], strip_width: int,
                 title: str | None = None) -> Image.Image:
    """Strips stacked vertically, each downscaled to `strip_width`, with a label bar above it and red
    ticks at the piece's edges (top and bottom: a line through the picture would hide the seam)."""
    height, width = strips[0][1].shape[:2]
    strip_h = max(1, round(height * strip_width / width))
    label_h = max(14, strip_width // 64)
    font = _font(label_h - 4)
    title_h = label_h + 4 if title else 0
    canvas = Image.new("RGB", (strip_width, title_h + len(strips) * (label_h + strip_h)), (32, 32, 32))
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((6, 2), title, fill=(255, 255, 255), font=font)
    edges = [round(x * strip_width / width) for x in piece]
    tick = max(4, strip_h // 20)
    y = title_h
    for label, image in strips:
        draw.text((6, y + 1), label, fill=(230, 230, 230), font=font)
        y += label_h
        canvas.paste(Image.fromarray(image).resize((strip_width, strip_h), Image.Resampling.LANCZOS), (0, y))
        for x in edges:
            draw.line([(x, y), (x, y + tick)], fill=(255, 40, 40), width=2)
            draw.line([(x, y + strip_h - tick), (x, y + strip_h - 1)], fill=(255, 40, 40), width=2)
        y += strip_h
    return canvas


def save_small_webp(image: Image.Image, path: Path, limit: int = PICTURE_BYTES) -> int:
    """Save as WebP at the highest quality (80, 70, ...) that stays under `limit` bytes; returns the size."""
    for quality in range(80, 9, -10):
        buffer = io.BytesIO()
        image.save(buffer, "WEBP", quality=quality, method=6)
        if buffer.tell() < limit or quality == 10:
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return buffer.tell()


def figure_label(method: str, figures: dict | None, wall: float | None) -> str:
    if figures is None:
        return method
    text = (f"{method}: carry {figures['carry']:.2f}  layout {figures['layout']:.2f}  "
            f"border {figures['border']:.2f} (truth {figures['border_truth']:.2f})  "
            f"copy {percent(figures['copy']['share'], 0)} %")
    return text + (f"  {wall:.0f} s" if wall is not None else "")


# ---------------------------------------------------------------- tables and JSON


def table_row(method: str, figures: dict | None, wall: float | None) -> list:
    if figures is None:
        return [method] + ["-"] * (len(HEADERS) - 1)
    parts = [f"{figures['carry_parts'][name]:.3f}" for name in CARRY_PARTS]
    return [method, f"{figures['carry']:.3f}", *parts, f"{figures['layout']:.3f}", f"{figures['border']:.2f}",
            f"{figures['border_vs_truth']:.2f}", percent(figures['copy']['share'], 1),
            "-" if wall is None else f"{wall:.0f}"]


def percent(share: float | None, digits: int) -> str:
    """A share as a percentage, "-" where it was not measured (`--copy-sample 0`)."""
    return "-" if share is None or math.isnan(share) else f"{100 * share:.{digits}f}"


HEADERS = ["method", "carry", *(f"({name})" for name in CARRY_PARTS), "layout", "border", "border/truth",
           "copy %", "wall s"]


def mean_figures(cases: list[dict], method: str) -> dict | None:
    rows = [c["figures"].get(method) for c in cases if c["figures"].get(method) is not None]
    if not rows:
        return None
    walls = [c["wall_s"][method] for c in cases if c["wall_s"].get(method) is not None]

    def mean(values):
        values = [v for v in values if v is not None and not math.isnan(v)]
        return float(np.mean(values)) if values else float("nan")

    return {"carry": mean([r["carry"] for r in rows]),
            "carry_parts": {name: mean([r["carry_parts"][name] for r in rows]) for name in CARRY_PARTS},
            "layout": mean([r["layout"] for r in rows]),
            "border": mean([r["border"] for r in rows]), "border_vs_truth": mean([r["border_vs_truth"] for r in rows]),
            "border_truth": mean([r["border_truth"] for r in rows]),
            "copy": {"share": mean([r["copy"]["share"] for r in rows])},
            "wall_s": mean(walls) if walls else None, "cases": len(rows)}


def clean(value):
    """NaN / inf → None, numpy scalars → Python, recursively (strict JSON)."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(clean(payload), indent=2) + "\n")
    os.replace(tmp, path)


# ---------------------------------------------------------------- main


def git_state() -> dict | None:
    """HEAD and the files that differ from it: which code produced the figures."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return {"head": head.stdout.strip(), "changed": [line[3:] for line in dirty.stdout.splitlines()]}


def prompt_settings(case: dict, args: argparse.Namespace) -> dict:
    """extend's prompt arguments for `case` under --caption/--guidance/--style-weight."""
    if args.caption == "none":
        return {}
    settings = {"text": caption(case["attrs"]), "guidance": args.guidance}
    if args.style_weight is not None:
        settings["style_weight"] = args.style_weight
    return settings


def piece_start(width: int, piece: int) -> int:
    """The first column of the centre piece: where extend's "center" anchor puts it."""
    return (width - piece) // 2 // PATCH_PX * PATCH_PX


def run_case(case: dict, scrolls: Scrolls, model, args: argparse.Namespace, out_dir: Path,
             previous: dict | None = None) -> dict:
    width, height = scrolls.width, scrolls.height
    x0 = piece_start(width, args.piece)
    piece_cols = (x0, x0 + args.piece)
    log(f"case {case['key']}: {case['name']}, seed {case['seed']}, {width}x{height}, "
        f"piece columns {piece_cols[0]}-{piece_cols[1]}")
    truth = scrolls.get(case["seed"], case["attrs"])
    floor = scrolls.get(case["floor_seed"], case["attrs"])
    unrelated = unrelated_specs(case["attrs"], args.unrelated)
    unrelated_images = [scrolls.get(seed, attrs) for seed, attrs in unrelated]
    piece = np.ascontiguousarray(truth[:, x0:x0 + args.piece])
    ref = truth_reference(truth, piece_cols, unrelated_images)
    images: dict[str, np.ndarray | None] = {"truth": truth, "other seed": floor}
    walls: dict[str, float | None] = dict.fromkeys(METHODS)
    extra = {}

    if model is not None:
        kept = out_dir / f"{case['key']}_nuwa-inf.png"
        if previous is not None:  # --rescore: the image an earlier run kept, and its wall time
            log(f"  nuwa-inf: reusing {kept}")
            with Image.open(kept) as img:
                ours = np.asarray(img.convert("RGB"))
            walls["nuwa-inf"] = previous["wall_s"]["nuwa-inf"]
        else:
            log("  nuwa-inf: extending")
            started = time.monotonic()
            first_row = None if args.first_row_temperature < 0 else args.first_row_temperature
            ours = np.asarray(model.extend(piece, width=width, height=height, anchor="center", seed=args.seed,
                                           batch=args.batch, first_row_temperature=first_row,
                                           temperature=args.temperature, min_p=args.min_p,
                                           input_guidance=args.input_guidance,
                                           input_blind=args.input_blind,
                                           colour_prior=args.colour_prior, code_prior=args.code_prior,
                                           code_prior_far=args.code_prior_far, adapt=args.adapt,
                                           neighbour_match=args.neighbour_match, colour_tilt=args.colour_tilt,
                                           colour_match=args.colour_match,
                                           detail_transfer=args.detail_transfer,
                                           detail_match=args.detail_match,
                                           **prompt_settings(case, args)
                                           ).convert("RGB"))
            walls["nuwa-inf"] = time.monotonic() - started
        # the piece keeps its own pixels at least a quarter of its width from its edges (the blend reaches no further)
        inner = (slice(None), slice(x0 + args.piece // 4 + 1, x0 + args.piece - args.piece // 4 - 1))
        if not np.array_equal(ours[inner], truth[inner]):
            raise SystemExit("the extended image does not hold the piece where this benchmark cut it "
                             f"(columns {piece_cols}): the placement rule changed?")
        log(f"  nuwa-inf: {walls['nuwa-inf']:.1f} s")
        images["nuwa-inf"] = ours
        if args.copy_sample > 0:  # where token copies would land
            extra["nuwa-inf"] = [np.asarray(model.reconstruct(piece).convert("RGB"))]
        if args.keep_images and previous is None:
            Image.fromarray(ours).save(kept)
    if model is not None and not args.no_round_trips:
        log("  round trips of the truth and the floor")
        for method, image in (("truth round trip", truth), ("other seed round trip", floor)):
            images[method] = np.asarray(model.reconstruct(image).convert("RGB"))
    if not args.no_peer:
        log("  PatchMatch: cached or computed now")
        peer, wall, cached = cached_patchmatch(out_dir, case, piece, width, x0, args)
        walls["PatchMatch"] = wall
        log(f"  PatchMatch: {wall:.1f} s" + (" (cached)" if cached else ""))
        images["PatchMatch"] = peer

    figures = {}
    for method in METHODS:
        if images.get(method) is None:
            figures[method] = None
            continue
        log(f"  scoring {method}")
        figures[method] = continuation_figures(images[method], ref, extra_sources=extra.get(method, ()),
                                               copy_sample=args.copy_sample, seed=case["index"])
    print(f"\ncase {case['key']}: {case['name']} ({json.dumps(case['attrs'])}), seed {case['seed']}, "
          f"{width}x{height}, piece columns {piece_cols[0]}-{piece_cols[1]}")
    print_table(HEADERS, [table_row(m, figures[m], walls[m]) for m in METHODS])
    print(flush=True)

    strips = [("truth", truth)] + [(figure_label(m, figures[m], walls[m]), images[m])
                                   for m in ("nuwa-inf", "PatchMatch") if images.get(m) is not None]
    picture = side_by_side(strips, piece_cols, args.strip_width,
                           title=f"{case['name']}  (seed {case['seed']}, {width}x{height}, piece marked red)")
    picture_path = out_dir / f"{case['key']}_{width}x{height}.jpg"
    picture.save(picture_path, quality=90)
    return {"case": case, "piece_columns": list(piece_cols),
            "unrelated": [{"seed": s, "attrs": a} for s, a in unrelated],
            "figures": figures, "wall_s": walls, "picture": str(picture_path),
            "peer_cached": None if args.no_peer else cached,
            "copy_sources": {m: [] if args.copy_sample == 0 else
                             ["piece"] + (["piece round trip"] if m in extra else []) for m in METHODS},
            "_strips": strips, "_piece": piece_cols}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model directory (default: the bundled one)")
    parser.add_argument("--cases", type=int, default=6, help=f"number of cases (styles cycle through {len(CASES)})")
    parser.add_argument("--only", default=None, metavar="I,J",
                        help="run only these case indices (of the first --cases), e.g. 0,2")
    parser.add_argument("--width", type=int, default=8192)
    parser.add_argument("--height", type=int, default=2048)
    parser.add_argument("--piece", type=int, default=2048, help="width of the centre piece that is extended")
    parser.add_argument("--unrelated", type=int, default=3, help="scrolls of other styles: the carry/layout yardstick")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed of extend")
    parser.add_argument("--batch", type=int, default=16, help="extend's batch (does not change the image)")
    parser.add_argument("--temperature", type=float, default=1.0, help="extend's sampling temperature")
    parser.add_argument("--first-row-temperature", type=float, default=DEFAULT_FIRST_ROW_TEMPERATURE,
                        help=f"extend's temperature of each patch's first token row (default "
                             f"{DEFAULT_FIRST_ROW_TEMPERATURE}, extend's; -1: --temperature)")
    parser.add_argument("--min-p", type=float, default=0.0, help="extend's min-p truncation (0: off)")
    parser.add_argument("--input-guidance", type=float, default=1.0, help="extend's guidance on the input (1: off)")
    parser.add_argument("--input-blind", choices=("memory", "all"), default="memory",
                        help="what the blind branch of --input-guidance lacks")
    parser.add_argument("--colour-prior", type=float, default=0.0, help="extend's colour prior strength (0: off)")
    parser.add_argument("--code-prior", type=float, default=None,
                        help="extend's code prior strength (0: off; default: extend's)")
    parser.add_argument("--code-prior-far", type=float, default=None,
                        help="extend's extra code prior on far colours (0: the flat prior; default: extend's)")
    parser.add_argument("--adapt", type=int, default=0, metavar="STEPS",
                        help="extend's test-time adaptation to the piece (0: off)")
    parser.add_argument("--neighbour-match", type=float, default=None,
                        help="extend's share of the input's votes (0: off; default: extend's)")
    parser.add_argument("--colour-tilt", type=float, default=None,
                        help="extend's pull of the rows' mean colour to the input's (0: off; default: extend's)")
    parser.add_argument("--colour-match", type=float, default=None,
                        help="extend's colour match strength (default: extend's)")
    parser.add_argument("--detail-transfer", type=float, default=None,
                        help="extend's detail transfer strength (default: extend's)")
    parser.add_argument("--no-detail-match", dest="detail_match", action="store_false",
                        help="extend without matching the decoder's finest detail to the piece's")
    parser.add_argument("--caption", choices=("none", "truth"), default="none",
                        help="prompt extend with the case's true caption (truth: what a perfect describer "
                             "of the input would say) or not at all")
    parser.add_argument("--guidance", type=float, default=None, help="extend's text guidance (with --caption)")
    parser.add_argument("--style-weight", type=float, default=None, help="extend's style weight (with --caption)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-model", action="store_true", help="skip nuwa-inf (e.g. only fill the PatchMatch cache)")
    parser.add_argument("--no-peer", action="store_true", help="skip PatchMatch")
    parser.add_argument("--no-round-trips", action="store_true",
                        help="skip the tokenizer round trips of the truth and the floor (the token model's "
                             "ceiling and fair floor)")
    parser.add_argument("--keep", type=int, default=2048, help="PatchMatch: known px kept next to the hole")
    parser.add_argument("--step", type=int, default=1024, help="PatchMatch: px filled per step")
    parser.add_argument("--peer-patch", type=int, default=3, help="PatchMatch patch radius (patches of 2r+1 px)")
    parser.add_argument("--copy-sample", type=int, default=1024,
                        help="generated 16-px blocks checked for copies (0: no copy figure, for quick A/Bs)")
    parser.add_argument("--out", default="/work/runs/bench_continuation", help="pictures and the PatchMatch cache")
    parser.add_argument("--json", default=None, help="write all figures here")
    parser.add_argument("--strip-width", type=int, default=2048, help="width of each strip in the per-case pictures")
    parser.add_argument("--picture", default=None, help="also write one small combined WebP of a few cases here")
    parser.add_argument("--picture-cases", type=int, default=3)
    parser.add_argument("--picture-width", type=int, default=1024)
    parser.add_argument("--keep-images", action="store_true", help="also save nuwa-inf's full-size output as PNG")
    parser.add_argument("--rescore", metavar="JSON", default=None,
                        help="score the nuwa-inf images an earlier --keep-images run (this JSON) left under "
                             "--out instead of extending again (after a change to the figures)")
    args = parser.parse_args(argv)
    if not 0 < args.piece < args.width or args.cases < 1 or args.unrelated < 1:
        parser.error("need 0 < --piece < --width, --cases ≥ 1 and --unrelated ≥ 1")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    model = None
    if not args.no_model:
        import torch

        import nuwa_inf

        if args.threads:
            torch.set_num_threads(args.threads)
        model = nuwa_inf.load(args.model, device=args.device)
        if model.patch_pixels[1] != PATCH_PX:
            raise SystemExit(f"this benchmark assumes {PATCH_PX}-px patches, the model has {model.patch_pixels}")
    scrolls = Scrolls(args.width, args.height)
    settings = {k: v for k, v in vars(args).items()}
    settings["model_dir"] = str(model.directory) if model is not None else None
    settings["git"] = git_state()
    payload = {"settings": settings, "machine": machine_info(args.threads), "cases": []}
    earlier = {}
    if args.rescore:
        old = json.loads(Path(args.rescore).read_text())
        earlier = {c["case"]["key"]: c for c in old["cases"]}
        for key in ("width", "height", "piece", "seed", "model"):
            if old["settings"][key] != getattr(args, key):
                parser.error(f"--rescore {args.rescore} was run with --{key} {old['settings'][key]}")
        settings["rescored_from"] = args.rescore
    results = []
    indices = range(args.cases) if args.only is None else sorted({int(i) for i in args.only.split(",")})
    for index in indices:
        case = case_spec(index)
        if args.rescore and case["key"] not in earlier:
            parser.error(f"--rescore {args.rescore} has no case {case['key']}")
        result = run_case(case, scrolls, model, args, out_dir, earlier.get(case["key"]))
        results.append(result)
        payload["cases"].append({k: v for k, v in result.items() if not k.startswith("_")})
        if args.json:
            write_json(Path(args.json), payload)

    means = {m: mean_figures(payload["cases"], m) for m in METHODS}
    payload["mean"] = means
    print(f"mean over {len(results)} cases ({args.width}x{args.height}, piece {args.piece}):")
    print_table(HEADERS, [table_row(m, means[m], means[m]["wall_s"] if means[m] else None) for m in METHODS])
    if args.picture:
        parts = [side_by_side(r["_strips"], r["_piece"], args.picture_width,
                              title=f"{r['case']['name']} (seed {r['case']['seed']})")
                 for r in results[: args.picture_cases]]
        combined = Image.new("RGB", (args.picture_width, sum(p.height for p in parts)))
        y = 0
        for part in parts:
            combined.paste(part, (0, y))
            y += part.height
        size = save_small_webp(combined, Path(args.picture))
        log(f"combined picture: {args.picture} ({size / 1000:.0f} KB)")
        payload["combined_picture"] = args.picture
    if args.json:
        write_json(Path(args.json), payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
