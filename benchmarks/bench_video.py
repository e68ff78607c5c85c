"""Video benchmark: animate held-out procedural stills and compare the clips with the real ones.

Each case is a procedural clip (seeds from 97000, attributes fixed per case across day /
sunset / night, lake / river) that no model trained on. Its frame 0 is the still; the model
animates it to `--frames` frames (`Model.animate`), and the generated clip is scored beside
the real clip with `nuwa_inf/eval/video_metrics.py`:

  motion ratio     generated motion ÷ real motion (target 0.5–2)
  flicker ratio    generated flicker ÷ real flicker (target ≤ 1.5)
  identical pairs  consecutive generated frames that are the same (target 0)
  drift ratio      generated drift (last frame vs frame 0, block statistics) ÷ real drift
  first-frame PSNR frame 0 vs the still (the tokenizer's round trip bounds it)
  seam             mean per-frame seam ratio (target ≤ 1.05)
  s/frame          wall time per generated frame
and peak RSS of one animation at each of `--rss-frames` (each in a fresh subprocess: the
pool is bounded by the extent in time, so 16 and 64 frames should peak alike).
`--real-only` scores the real clips and a frozen copy of each (what "no motion" scores), no model.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_video.py --real-only
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_video.py --cases 4 --json /work/runs/bench_video.json \\
        --picture docs/animation.webp --strip docs/animation_frames.png --rss-frames 16,64
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from nuwa_inf.data.procedural import render_clip
from nuwa_inf.eval.video_metrics import clip_figures

CASES = [{"time": "day", "water": "lake"}, {"time": "sunset", "water": "lake"},
         {"time": "night", "water": "river"}, {"time": "day", "water": "river", "palette": "ink"}]
SEED = 97000


def real_clip(case: int, width: int, height: int, frames: int) -> np.ndarray:
    return render_clip(width, height, frames, SEED + case, CASES[case % len(CASES)])


def score(real: np.ndarray, generated: np.ndarray, seconds: float | None) -> dict:
    """Figures of the generated clip and their ratios to the real clip's."""
    mine, truth = clip_figures(generated, real[0]), clip_figures(real)
    out = {**{k: round(v, 4) for k, v in mine.items()},
           "motion_ratio": round(mine["motion"] / max(truth["motion"], 1e-9), 3),
           "flicker_ratio": round(mine["flicker"] / max(truth["flicker"], 1e-9), 3),
           "drift_ratio": round(mine["drift"] / max(truth["drift"], 1e-9), 3),
           "real": {k: round(v, 4) for k, v in truth.items()}}
    if seconds is not None:
        out["seconds_per_frame"] = round(seconds / max(1, generated.shape[0] - 1), 2)
    return out


def peak_rss(model: str | None, frames: int, width: int, height: int) -> float:
    """Peak RSS (MiB) of one animation of `frames` frames, in a fresh process."""
    code = ("import resource, sys, nuwa_inf\n"
            "from benchmarks.bench_video import real_clip\n"
            f"still = real_clip(0, {width}, {height}, 1)[0]\n"
            f"nuwa_inf.load({model!r}).animate(still, frames={frames}, output=None)\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n")
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def write_picture(path: Path, pairs: list[tuple[np.ndarray, np.ndarray]], fps: float) -> None:
    """An animated WebP: per case real (top) over generated (bottom), cases side by side."""
    frames = [np.concatenate([np.concatenate([r[t], g[t]], axis=0) for r, g in pairs], axis=1)
              for t in range(pairs[0][0].shape[0])]
    images = [Image.fromarray(f).resize((f.shape[1] // 2, f.shape[0] // 2), Image.LANCZOS) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0, quality=85)


def write_strip(path: Path, pairs: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """A still contact sheet: per case frames 0, T/2, T-1 of the real clip, then of the generated one."""
    rows = []
    for real, generated in pairs:
        picks = [0, real.shape[0] // 2, real.shape[0] - 1]
        rows.append(np.concatenate([real[t] for t in picks] + [generated[t] for t in picks], axis=1))
    sheet = np.concatenate(rows, axis=0)
    Image.fromarray(sheet).resize((sheet.shape[1] // 2, sheet.shape[0] // 2), Image.LANCZOS).save(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="model directory (default: the bundled model)")
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--fps", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    parser.add_argument("--picture", default=None, help="animated WebP of real vs generated")
    parser.add_argument("--strip", default=None, help="PNG contact sheet of real vs generated")
    parser.add_argument("--rss-frames", default="", help="e.g. 16,64: peak RSS of one animation per count")
    parser.add_argument("--real-only", action="store_true", help="score real clips and frozen copies, no model")
    args = parser.parse_args()
    results: dict = {"cases": [], "args": vars(args)}
    pairs = []
    model = None
    if not args.real_only:
        import nuwa_inf
        model = nuwa_inf.load(args.model)
    for case in range(args.cases):
        real = real_clip(case, args.width, args.height, args.frames)
        if model is None:
            generated, seconds = np.repeat(real[:1], args.frames, axis=0), None     # frozen: "no motion"
            record = {"real_vs_frozen": score(real, generated, None), "real_vs_real": score(real, real, None)}
        else:
            started = time.monotonic()
            generated = model.animate(real[0], frames=args.frames, seed=args.seed + case)
            seconds = time.monotonic() - started
            record = score(real, generated, seconds)
        record["attributes"] = CASES[case % len(CASES)]
        results["cases"].append(record)
        pairs.append((real, generated))
        print(json.dumps({"case": case, **record}))
    if model is not None:
        keys = ["motion_ratio", "flicker_ratio", "drift_ratio", "identical_pairs", "first_frame_psnr", "seam",
                "seconds_per_frame"]
        results["mean"] = {k: round(float(np.mean([c[k] for c in results["cases"]])), 3) for k in keys}
        print("mean:", json.dumps(results["mean"]))
    if args.rss_frames and model is not None:
        results["peak_rss_mib"] = {n: round(peak_rss(args.model, int(n), args.width, args.height), 1)
                                   for n in args.rss_frames.split(",")}
        print("peak RSS (MiB):", results["peak_rss_mib"])
    results["bench_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if args.picture:
        write_picture(Path(args.picture), pairs, args.fps)
    if args.strip:
        write_strip(Path(args.strip), pairs)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
