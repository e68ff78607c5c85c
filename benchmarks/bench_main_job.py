"""The main job, measured: extend the bundled example scroll to W×2048 with the bundled model.

Reports wall time, tokens/s, peak RSS (of the extend process alone) and the quality figures of
`nuwa-inf eval` against a real procedural scroll of the same size (block statistics vs the
real-vs-real noise floor, seam ratio, drift), the input region excluded, and the same figures for
the tokenizer's own round trip of a piece of that real scroll: the floor the tokenizer sets before
the transformer draws a single token (its 16-px token grid shows in the seam ratio).

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


def evaluate(image: Path, reference: Path, out: Path, extra: tuple[str, ...] = ()) -> dict:
    run([sys.executable, "-m", "nuwa_inf", "eval", str(image), "--reference", str(reference), "--json", str(out), *extra])
    return json.loads(out.read_text())


def tokenizer_floor(reference: Path, out_dir: Path, width: int, model: str | None) -> dict:
    """Quality figures of a real piece (the reference's first `width` columns) and of its tokenizer
    round trip, both against the whole reference: the difference is what the tokenizer alone costs."""
    from PIL import Image
    Image.MAX_IMAGE_PIXELS = None
    piece = out_dir / f"reference_piece_{width}.png"
    with Image.open(reference) as image:
        image.crop((0, 0, min(width, image.width), image.height)).save(piece)
    round_trip = out_dir / f"round_trip_{width}.png"
    cmd = [sys.executable, "-m", "nuwa_inf", "reconstruct", str(piece), "-o", str(round_trip), "--overwrite"]
    run(cmd + (["--model", model] if model else []))
    return {"real_piece": evaluate(piece, reference, out_dir / "real_piece.json"),
            "round_trip": evaluate(round_trip, reference, out_dir / "round_trip.json")}


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
        reference = out_dir / f"reference_{args.width}x{args.height}.png"
        if not reference.exists():
            run([sys.executable, "-m", "nuwa_inf", "data", "procedural", "--out", str(out_dir / "ref"), "--count", "1",
                 "--width", str(args.width), "--height", str(args.height), "--seed", "4242"])
            (out_dir / "ref" / "scroll_00000.png").rename(reference)
        x0 = (args.width - 2048) // 2 // 256 * 256
        y0 = (args.height - 2048) // 2 // 256 * 256 if args.height > 2048 else 0
        record["quality"] = evaluate(out, reference, out_dir / "quality.json",
                                     ("--exclude", f"{x0},{y0},{x0 + 2048},{y0 + 2048}"))
        if args.floor_width:
            record["tokenizer_floor"] = tokenizer_floor(reference, out_dir, args.floor_width, args.model)
            for name, figures in [("generated", record["quality"]), *record["tokenizer_floor"].items()]:
                print(f"{name:>10}: seam ratio {figures['seam']['ratio']:.3f}, "
                      f"block distance {figures['blocks']['ratio']:.1f}x the floor")
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2))
    print(json.dumps({k: v for k, v in record.items() if k not in ("quality", "tokenizer_floor")}))


if __name__ == "__main__":
    main()
