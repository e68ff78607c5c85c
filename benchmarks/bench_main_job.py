"""The main job, measured: extend the bundled example scroll to W×2048 with the bundled model.

Reports wall time, tokens/s, peak RSS (of the extend process alone) and the quality figures of
`nuwa-inf eval` against real procedural scrolls of the same size (block statistics vs the
real-vs-real noise floor and vs the scene floor, seam ratio, drift), the input region excluded,
and the same figures for a real piece of another scroll in the same style and for its tokenizer
round trip: what a real scene scores, and the floor the tokenizer sets before the transformer
draws a single token (its 16-px token grid shows in the seam ratio).

The references are `--references` scrolls (seeds from 4242) in the example's style
(`--reference-attrs`, default blue-green by day, as the example is): a continuation of the input
should look like them. Block statistics against one scroll of another palette measure the
palette more than the model.

    .venv/bin/python benchmarks/bench_main_job.py                       # 38912×2048 (the demo)
    .venv/bin/python benchmarks/bench_main_job.py --width 8192 --json /tmp/main8k.json
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "nuwa_inf" / "assets" / "example_scroll.png"


def run(cmd: list[str]) -> float:
    started = time.monotonic()
    subprocess.run(cmd, check=True, cwd=ROOT)
    return time.monotonic() - started


def render_scrolls(out_dir: Path, count: int, width: int, height: int, seed: int, attrs: str) -> list[Path]:
    """`count` real scrolls of this size in the given style, rendered once and kept."""
    style = attrs.replace("=", "-").replace(" ", "_") or "any"
    folder = out_dir / f"real_{width}x{height}_seed{seed}_{style}"
    run([sys.executable, "-m", "nuwa_inf", "data", "procedural", "--out", str(folder), "--count", str(count),
         "--width", str(width), "--height", str(height), "--seed", str(seed),
         *(["--attrs", *attrs.split()] if attrs else [])])
    return [folder / f"scroll_{index:05d}.png" for index in range(count)]


def evaluate(image: Path, references: list[Path], out: Path, extra: tuple[str, ...] = ()) -> dict:
    run([sys.executable, "-m", "nuwa_inf", "eval", str(image), "--reference", *map(str, references),
         "--json", str(out), *extra])
    return json.loads(out.read_text())


def tokenizer_floor(references: list[Path], out_dir: Path, width: int, height: int, attrs: str,
                    model: str | None) -> dict:
    """Quality figures of a real piece `width` wide (same style, a seed outside the pool) and of its
    tokenizer round trip, both against the references: the difference is what the tokenizer alone costs."""
    piece = render_scrolls(out_dir, 1, width, height, 9999, attrs)[0]
    round_trip = out_dir / f"round_trip_{width}.png"
    cmd = [sys.executable, "-m", "nuwa_inf", "reconstruct", str(piece), "-o", str(round_trip), "--overwrite"]
    run(cmd + (["--model", model] if model else []))
    return {"real_piece": evaluate(piece, references, out_dir / "real_piece.json"),
            "round_trip": evaluate(round_trip, references, out_dir / "round_trip.json")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=38912)
    parser.add_argument("--height", type=int, default=2048)
    parser.add_argument("--out-dir", default="/tmp/nuwa_main_job")
    parser.add_argument("--model", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--extra", default="", help="extra flags for extend, e.g. '--top-k 100'")
    parser.add_argument("--skip-eval", action="store_true")
    parser.add_argument("--floor-width", type=int, default=4096,
                        help="width of the real piece whose round trip sets the tokenizer floor (0 = skip)")
    parser.add_argument("--references", type=int, default=3, help="real scrolls in the reference pool")
    parser.add_argument("--reference-attrs", default="palette=blue-green time=day",
                        help="scene attributes of the references ('' = any style)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"scroll_{args.width}x{args.height}.png"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "nuwa_inf", "extend", str(EXAMPLE), "-o", str(out), "--width", str(args.width),
           "--height", str(args.height), "--seed", str(args.seed), "--preview", str(out_dir / "preview.png")]
    cmd += ["--model", args.model] if args.model else []
    cmd += args.extra.split()
    wall = run(cmd)
    peak_rss_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    input_tokens = (2048 // 16) * (2048 // 16)
    tokens = (args.width // 16) * (args.height // 16) - input_tokens
    record = {"width": args.width, "height": args.height, "wall_s": round(wall, 1),
              "tokens_per_s": round(tokens / wall, 1), "peak_rss_mib": round(peak_rss_mib, 1)}
    print(f"extend {args.width}x{args.height}: {wall:.1f} s wall, {tokens / wall:.0f} generated tokens/s "
          f"(end to end), peak RSS {peak_rss_mib:.0f} MiB")
    if not args.skip_eval:
        references = render_scrolls(out_dir, args.references, args.width, args.height, 4242, args.reference_attrs)
        x0 = (args.width - 2048) // 2 // 256 * 256
        y0 = (args.height - 2048) // 2 // 256 * 256 if args.height > 2048 else 0
        record["references"] = {"count": args.references, "attrs": args.reference_attrs, "first_seed": 4242}
        record["quality"] = evaluate(out, references, out_dir / "quality.json",
                                     ("--exclude", f"{x0},{y0},{x0 + 2048},{y0 + 2048}"))
        if args.floor_width:
            record["tokenizer_floor"] = tokenizer_floor(references, out_dir, args.floor_width, args.height,
                                                        args.reference_attrs, args.model)
            for name, figures in [("generated", record["quality"]), *record["tokenizer_floor"].items()]:
                print(f"{name:>10}: seam ratio {figures['seam']['ratio']:.3f}, "
                      f"block distance {figures['blocks']['ratio']:.1f}x the floor, "
                      f"{figures['blocks']['scene_ratio']:.2f}x the scene floor")
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2))
    print(json.dumps({k: v for k, v in record.items() if k not in ("quality", "tokenizer_floor")}))


if __name__ == "__main__":
    main()
