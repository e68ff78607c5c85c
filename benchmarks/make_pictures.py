"""The README's pictures of the main job, made from its output so they cannot go stale silently.

    python benchmarks/make_pictures.py SCROLL.png [--input nuwa_inf/assets/example_scroll.png] [--docs docs]

writes into docs/:
    main_job_strip.jpg    the whole 38912×2048 strip, 1600 px wide, in four stacked quarters
    main_job_edges.jpg    1:1 crops across the input's left and right edges (512 px each side)
The continuation side-by-side is `bench_continuation.py --picture docs/continuation.webp`, the
text examples `bench_text.py --picture docs/text_control.webp`. Run `make demo` first for
SCROLL.png (scroll_38912x2048.png).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw

Image.MAX_IMAGE_PIXELS = None


def strip_picture(scroll: Image.Image, width: int = 1600, rows: int = 4) -> Image.Image:
    """The whole strip downscaled to `width`·rows px and cut into `rows` stacked pieces."""
    small = scroll.resize((width * rows, max(1, round(scroll.height * width * rows / scroll.width))),
                          Image.Resampling.LANCZOS)
    pieces = [small.crop((i * width, 0, (i + 1) * width, small.height)) for i in range(rows)]
    out = Image.new("RGB", (width, rows * small.height + (rows - 1) * 4), "white")
    for i, piece in enumerate(pieces):
        out.paste(piece, (0, i * (small.height + 4)))
    return out


def edge_picture(scroll: Image.Image, x0: int, x1: int, half: int = 512) -> Image.Image:
    """1:1 crops centred on the input's left (x0) and right (x1) edges, side by side, edges marked."""
    crops = [scroll.crop((x - half, 0, x + half, scroll.height)) for x in (x0, x1)]
    out = Image.new("RGB", (4 * half + 8, scroll.height), "white")
    for i, crop in enumerate(crops):
        out.paste(crop, (i * (2 * half + 8), 0))
    draw = ImageDraw.Draw(out)
    for i in range(2):
        x = i * (2 * half + 8) + half
        for y in range(0, scroll.height, 48):  # a dashed red line on the input's edge
            draw.line([(x, y), (x, y + 24)], fill=(220, 30, 30), width=2)
    return out.resize((out.width // 2, out.height // 2), Image.Resampling.LANCZOS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scroll")
    parser.add_argument("--input", default="nuwa_inf/assets/example_scroll.png")
    parser.add_argument("--docs", default="docs")
    args = parser.parse_args()
    scroll = Image.open(args.scroll).convert("RGB")
    piece = Image.open(args.input)
    docs = Path(args.docs)
    docs.mkdir(parents=True, exist_ok=True)
    # the engine centres the input on the patch grid (infer/placement.py: 256-px patches)
    x0 = (scroll.width - piece.width) // 2 // 256 * 256
    strip_picture(scroll).save(docs / "main_job_strip.jpg", quality=75)
    edge_picture(scroll, x0, x0 + piece.width).save(docs / "main_job_edges.jpg", quality=78)
    for name in ("main_job_strip.jpg", "main_job_edges.jpg"):
        print(f"wrote {docs / name} ({(docs / name).stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
