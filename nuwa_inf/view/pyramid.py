"""The Deep Zoom tile pyramid of one image, cut by libvips `dzsave`, streamed.

    tiles.dzi                     the standard description (for other viewers; ours reads it inline)
    tiles_files/L/C_R.jpg         level L (0 = 1x1 px, L_max = full size), column C, row R

Level L is the image shrunk by 2^(L_max - L) (sizes rounded up), L_max = ceil(log2(max(W, H))).
Tiles are `TILE_SIZE` px with `OVERLAP` px repeated on each inner edge (so a tile file is up to
TILE_SIZE + 2·OVERLAP px), the usual Deep Zoom layout. The image is read once, top to bottom
(`access="sequential"`): libvips keeps a few tile rows of every level in memory, never the whole
image: a 38912×2048 PNG takes ~4 s and ~190 MB in libvips on 2 cores (JPEG tiles; WebP ~15 s).
Alpha is composited on white and 16-bit or grey images become 8-bit sRGB, like `images.load_rgb`;
EXIF orientation is not applied (our canvases carry none).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError

TILE_SIZE = 254  # + 1 px overlap each side = 256 px files
OVERLAP = 1
FORMATS = {"jpeg": "jpg", "webp": "webp"}  # --format -> tile file extension
DZ_NAME = "tiles"


@dataclass(frozen=True)
class TileSource:
    """What a viewer needs to find and place every tile; written into the page as JSON."""

    width: int
    height: int
    tile_size: int
    overlap: int
    max_level: int
    extension: str  # "jpg" or "webp"
    url: str  # folder of the levels, relative to the page, ending in "/"

    def as_json_dict(self) -> dict:
        """The keys viewer.js reads (camelCase, as JavaScript spells them)."""
        return {"width": self.width, "height": self.height, "tileSize": self.tile_size, "overlap": self.overlap,
                "maxLevel": self.max_level, "extension": self.extension, "url": self.url}


def max_level(width: int, height: int) -> int:
    """Deep Zoom's top level: the smallest L with 2^L >= the longer side."""
    return max(0, math.ceil(math.log2(max(width, height))))


def check_options(fmt: str, quality: int) -> None:
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    if not 1 <= quality <= 100:
        raise UserError(f"--quality {quality}: must be in 1..100")


def write_pyramid(image_path: Path, folder: Path, fmt: str = "jpeg", quality: int = 85) -> TileSource:
    """Cut `image_path` into `folder`/tiles.dzi + `folder`/tiles_files/; a UserError if it cannot be decoded."""
    import pyvips

    check_options(fmt, quality)
    extension = FORMATS[fmt]
    try:
        # fail_on="truncated": a cut-off file is an error, not an image with a grey bottom
        image = pyvips.Image.new_from_file(os.fspath(image_path), access="sequential", fail_on="truncated")
        image = _as_srgb8(image)
        image.dzsave(os.fspath(folder / DZ_NAME), suffix=f".{extension}[Q={quality}]",
                     tile_size=TILE_SIZE, overlap=OVERLAP, depth="onepixel")
    except pyvips.Error as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        raise UserError(f"{image_path}: cannot make tiles ({lines[-1] if lines else 'libvips error'}); "
                        f"is the image truncated or corrupt, or the disk full?") from None
    top = max_level(image.width, image.height)
    if not (folder / f"{DZ_NAME}_files" / str(top)).is_dir():  # our level arithmetic must match libvips'
        raise RuntimeError(f"dzsave wrote no level {top} for a {image.width}x{image.height} image")
    return TileSource(width=image.width, height=image.height, tile_size=TILE_SIZE, overlap=OVERLAP,
                      max_level=top, extension=extension, url=f"{DZ_NAME}_files/")


def _as_srgb8(image):
    """Any libvips image -> 3-band 8-bit sRGB: alpha over white, 16-bit and grey converted."""
    if image.hasalpha():
        image = image.flatten(background=[65535 if image.format == "ushort" else 255])
    if image.interpretation != "srgb" or image.format != "uchar":
        image = image.colourspace("srgb")  # b-w / grey16 / rgb16 / cmyk -> 8-bit srgb
    if image.format != "uchar":  # an odd format colourspace left alone (e.g. float "multiband")
        image = image.cast("uchar")
    if image.bands == 1:
        image = image.bandjoin([image, image])
    return image[:3] if image.bands > 3 else image
