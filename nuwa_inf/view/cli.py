"""`nuwa-inf view IMAGE|RUN_DIR [-o DIR] [--open] [--overwrite]`: a deep-zoom page of a finished image."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "view", help="a deep-zoom HTML page of an image: pan, zoom, overview (works offline)",
        description="Cut IMAGE (or the largest PNG/TIFF in RUN_DIR) into a Deep Zoom tile pyramid "
                    "and write one self-contained page, DIR/index.html, that pans and zooms it from "
                    "file:// or any static web server. Link to a place with "
                    "index.html#x=X&y=Y&zoom=Z (image pixels at the centre; zoom 1 = 1:1).")
    p.add_argument("image", metavar="IMAGE|RUN_DIR", help="a finished image, or a folder holding one")
    p.add_argument("-o", "--output", metavar="DIR", default=None,
                   help="output folder (default: <image stem>_zoom/ next to the image)")
    p.add_argument("--format", choices=("jpeg", "webp"), default="jpeg",
                   help="tile format (default jpeg: several times faster to write than webp)")
    p.add_argument("--quality", type=int, default=85, help="tile quality 1..100 (default 85)")
    p.add_argument("--open", action="store_true", help="open the page in a web browser")
    p.add_argument("--overwrite", action="store_true", help="replace an existing zoom folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import webbrowser

    from .build import build_zoom

    page = build_zoom(args.image, args.output, overwrite=args.overwrite, fmt=args.format, quality=args.quality)
    url = page.resolve().as_uri()
    print(f"wrote {page}; open {url} (link to a place: #x=X&y=Y&zoom=1)")
    if args.open and not webbrowser.open(url):
        print(f"could not start a web browser; open {url} yourself")
    return 0
