"""`build_zoom`: image -> a folder with the tile pyramid and its page, which appears whole or not at all.

Everything is written into a hidden temporary folder next to the output and renamed into place
at the end, so a failed or killed build leaves no half folder. An existing non-empty output
folder is replaced only with `overwrite`, and only if it looks like one of ours (it has an
`index.html` and a `tiles_files/`): `--overwrite` never deletes a folder of something else.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ..errors import UserError
from .page import PAGE_NAME, write_page
from .pyramid import DZ_NAME, check_options, write_pyramid
from .source import find_image


def default_output(image: Path) -> Path:
    """`<image stem>_zoom/` next to the image."""
    return image.with_name(f"{image.stem}_zoom")


def build_zoom(image_path: str | os.PathLike, out_dir: str | os.PathLike | None = None, *,
               overwrite: bool = False, fmt: str = "jpeg", quality: int = 85) -> Path:
    """Write the deep-zoom page of `image_path` (an image, or a folder holding one) into `out_dir`.

    Returns the page's path, `out_dir`/index.html. The default `out_dir` is `default_output(image)`.
    """
    _require_pyvips()
    check_options(fmt, quality)
    image = find_image(image_path)
    out = Path(os.path.expanduser(os.fspath(out_dir))) if out_dir is not None else default_output(image)
    check_output_dir(out, overwrite, image)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        source = write_pyramid(image, staging, fmt, quality)
        write_page(staging, source, title=f"{image.name} ({source.width}×{source.height})")
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes 0700; give the folder the usual permissions
        _move_into_place(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out / PAGE_NAME


def check_output_dir(out: Path, overwrite: bool, image: Path | None = None) -> None:
    """Raise `UserError` unless `out` can be (re)placed: see the module docstring."""
    if not out.parent.is_dir():
        raise UserError(f"{out}: folder {out.parent} does not exist")
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise UserError(f"{out}: folder {out.parent} is not writable")
    if not os.path.lexists(out):
        return
    if not out.is_dir() or out.is_symlink():
        raise UserError(f"{out}: exists and is not a folder")
    if not any(out.iterdir()):
        return
    if not overwrite:
        raise UserError(f"{out}: folder is not empty (use --overwrite to replace it)")
    if not is_zoom_folder(out):
        raise UserError(f"{out}: not a zoom folder (no {PAGE_NAME} and {DZ_NAME}_files/); "
                        f"not replacing it even with --overwrite")
    if image is not None and out.resolve() in image.resolve().parents:
        raise UserError(f"{out}: holds the image {image.name}; not replacing it")


def is_zoom_folder(folder: Path) -> bool:
    return (folder / PAGE_NAME).is_file() and (folder / f"{DZ_NAME}_files").is_dir()


def _move_into_place(staging: Path, out: Path) -> None:
    if os.path.lexists(out) and any(out.iterdir()):  # an old zoom folder: swap, then delete the old one
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
        os.replace(out, old / "page")
        os.replace(staging, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, out)  # an empty folder is replaced by rename(2) itself


def _require_pyvips() -> None:
    try:
        import pyvips  # noqa: F401
    except (ImportError, OSError) as err:  # OSError: the package is there but libvips is not
        raise UserError(f"nuwa-inf view needs libvips: pip install pyvips pyvips-binary ({err})") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
