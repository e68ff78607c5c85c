"""Streaming writers: seconds and peak RSS of export_png / export_tiff at growing canvas widths.

Each (width, format) runs in its own subprocess so that its peak RSS (ru_maxrss) is its own.
The canvas (height x width x 3, gradients + texture + noise, not zeros) is filled once per
width in another subprocess, so filling does not count toward the exporters' peak.

    .venv/bin/python benchmarks/bench_writers.py                      # widths 4096 16384 38912
    .venv/bin/python benchmarks/bench_writers.py --widths 4096 --height 512

Peak RSS should stay flat as the width grows tenfold: exporters hold one band of rows.
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nuwa_inf.infer.pixel_canvas import PixelCanvas  # noqa: E402
from nuwa_inf.infer.writers import export_png, export_preview, export_tiff  # noqa: E402

FILL_ROWS = 64


def fill(path: Path, height: int, width: int) -> None:
    """Paint an image-like canvas band by band: colour gradients, a periodic texture, pixel noise."""
    rng = np.random.default_rng(0)
    x = np.arange(width, dtype=np.float32)
    with PixelCanvas(path, height, width) as canvas:
        for y0 in range(0, height, FILL_ROWS):
            rows = min(FILL_ROWS, height - y0)
            y = np.arange(y0, y0 + rows, dtype=np.float32)[:, None]
            r = 128 + 80 * np.sin(x / 900 + y / 300)
            g = 128 + 60 * np.cos(x / 1300 - y / 500) + 20 * np.sin(x / 37) * np.cos(y / 29)
            b = 100 + 0.003 * x + 0.02 * y + 30 * np.sin((x + y) / 61)
            band = np.stack(np.broadcast_arrays(r, g, b), axis=-1)  # (rows, width, 3)
            band += rng.normal(0, 4, band.shape).astype(np.float32)
            canvas.write_region(y0, 0, np.clip(band, 0, 255).astype(np.uint8))


def run_export(path: Path, height: int, width: int, fmt: str, out_dir: Path) -> dict:
    import psutil

    canvas = PixelCanvas(path, height, width, create=False)
    rss_before = psutil.Process().memory_info().rss
    start = time.perf_counter()
    if fmt == "png":
        out = export_png(canvas, out_dir / f"w{width}.png")
    elif fmt == "tiff":
        out = export_tiff(canvas, out_dir / f"w{width}.tif")
    else:
        out = export_preview(canvas, out_dir / f"w{width}.preview.png")
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    raw = height * width * 3
    return {
        "format": fmt,
        "width": width,
        "height": height,
        "seconds": round(seconds, 2),
        "raw_MB_per_s": round(raw / seconds / 1e6, 1),
        "ratio": round(raw / out.stat().st_size, 2),
        "rss_before_MiB": round(rss_before / 2**20, 1),
        "peak_rss_MiB": round(peak / 2**20, 1),
    }


def child(argv: list[str]) -> None:
    args = argparse.Namespace(**json.loads(argv[0]))
    if args.task == "fill":
        fill(Path(args.path), args.height, args.width)
    else:
        result = run_export(Path(args.path), args.height, args.width, args.task, Path(args.out_dir))
        print(json.dumps(result))


def spawn(**task) -> str:
    done = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(task)], check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[4096, 16384, 38912])
    parser.add_argument("--height", type=int, default=2048)
    parser.add_argument("--formats", nargs="+", default=["png", "tiff", "preview"])
    parser.add_argument("--dir", type=Path, default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="bench_writers.", dir=args.dir))
    try:
        print(f"{'format':8} {'width':>6} {'height':>6} {'seconds':>8} {'MB/s':>7} {'ratio':>6} "
              f"{'RSS before':>11} {'peak RSS':>9}")
        for width in args.widths:
            canvas_path = scratch / f"w{width}.raw"
            spawn(task="fill", path=str(canvas_path), height=args.height, width=width)
            for fmt in args.formats:
                r = json.loads(spawn(task=fmt, path=str(canvas_path), height=args.height, width=width,
                                     out_dir=str(scratch)))
                print(f"{r['format']:8} {r['width']:>6} {r['height']:>6} {r['seconds']:>8.2f} "
                      f"{r['raw_MB_per_s']:>7.1f} {r['ratio']:>6.2f} {r['rss_before_MiB']:>8.1f} MiB "
                      f"{r['peak_rss_MiB']:>5.1f} MiB", flush=True)
            for leftover in scratch.glob(f"w{width}*"):
                leftover.unlink()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2:])
    else:
        main()
