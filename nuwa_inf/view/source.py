"""Which image to show: an image file, or a folder (a run's output folder) that holds one.

A folder is searched (not recursively) for PNG and TIFF files; with several, the one with the
most pixels wins, so a folder holding `scroll.png` and its `scroll_preview.png` shows the scroll.
Every problem is a one-line `UserError` naming the path.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import UserError
from ..images import DEFAULT_MAX_PIXELS

IMAGE_SUFFIXES = (".png", ".tif", ".tiff")


def find_image(path: str | os.PathLike) -> Path:
    """The image file that `path` names, or the largest PNG/TIFF directly inside the folder `path`."""
    path = Path(os.path.expanduser(os.fspath(path)))
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    if path.is_dir():
        candidates = sorted(p for p in path.iterdir()
                            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
        if not candidates:
            raise UserError(f"{path}: no PNG or TIFF image in this folder")
        sized = [(width * height, p) for p in candidates for width, height in [_readable_size(p)]
                 if width * height > 0]
        if not sized:
            raise UserError(f"{path}: none of its {len(candidates)} PNG/TIFF files can be read as an image")
        return max(sized, key=lambda pair: pair[0])[1]
    image_size(path)  # raises for anything that is not a readable image of a sane size
    return path


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file's header, via libvips; a UserError for anything else."""
    import pyvips

    if path.stat().st_size == 0:
        raise UserError(f"{path}: file is empty")
    try:
        header = pyvips.Image.new_from_file(os.fspath(path), access="sequential")
    except pyvips.Error as err:
        raise UserError(f"{path}: not an image libvips can read ({_first_line(err)})") from None
    width, height = header.width, header.height
    if width * height > DEFAULT_MAX_PIXELS:
        raise UserError(f"{path}: image is {width}x{height}, over the limit of "
                        f"{DEFAULT_MAX_PIXELS / 1e6:.0f} Mpx (decompression bomb?)")
    return width, height


def _readable_size(path: Path) -> tuple[int, int]:
    try:
        return image_size(path)
    except UserError:
        return 0, 0  # a broken file in a folder is skipped, not fatal


def _first_line(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    # pyvips puts "unable to load from file ..." first and the loader's reason after it
    return lines[-1] if lines else type(err).__name__
