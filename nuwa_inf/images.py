"""Image input that never surprises: any file PIL can read becomes an (H, W, 3) uint8 array.

Every problem with a user's file (missing, a directory, empty, truncated, not an image,
absurdly large, zero size, an unsupported mode) is raised as a one-line `UserError` that
names the file. Also the checks for output paths (`check_output_path`, `refuse_overwrite`).

Mode handling in `load_rgb`:
  RGBA/LA/PA/P-with-transparency -> composited on white
  I;16* (16-bit grey)            -> value * 255 / 65535, rounded
  I (32-bit int)                 -> same as 16-bit when within 0..65535 (PNG/TIFF 16-bit), else min-max
  F (float)                      -> 0..1 scaled by 255, 0..255 kept, anything else min-max
  CMYK, YCbCr, 1, L, ...         -> PIL's convert("RGB")
  EXIF orientation               -> applied (`ImageOps.exif_transpose`)
16-bit RGB(A) PNGs come out of PIL as 8-bit RGB(A) already; that is what we use.
"""
from __future__ import annotations

import contextlib
import os
import struct
import warnings
import zlib
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from nuwa_inf.errors import UserError

# 1.5 Gpx: 4.5 GB as RGB uint8. Far above any canvas we make, far below a decompression bomb.
DEFAULT_MAX_PIXELS = 1_500_000_000
OUTPUT_SUFFIXES = (".png", ".tif", ".tiff")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
# Errors PIL (and the codecs below it) raise for a broken file.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError)
_ORIENTATION_TAG = 0x0112


def load_rgb(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image file fully and return it as an (H, W, 3) uint8 array (EXIF orientation applied)."""
    path = _check_input_file(path)
    with _open_image(path, max_pixels) as im:
        try:
            im.load()  # force a full decode: a truncated file fails here, not later
        except _DECODE_ERRORS as exc:
            raise UserError(f"{path}: cannot decode image ({_one_line(exc)}); "
                            "is the file truncated or corrupt?") from None
        im = _apply_exif_orientation(im)
        return _to_rgb_array(im, path)


def image_size(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """(width, height) from the header only, after EXIF orientation, with the same checks as `load_rgb`."""
    path = _check_input_file(path)
    with _open_image(path, max_pixels) as im:
        width, height = im.size
        if _header_orientation(im) in (5, 6, 7, 8):  # the transposing orientations
            width, height = height, width
        return width, height


def check_output_path(path: str | os.PathLike, allowed: tuple[str, ...] = OUTPUT_SUFFIXES) -> Path:
    """Check that `path` can be written as an image: supported extension, existing writable folder."""
    path = Path(os.path.expanduser(os.fspath(path)))
    if path.is_dir():
        raise UserError(f"{path}: is a directory, expected an output file name")
    suffix = path.suffix.lower()
    if suffix not in allowed:
        shown = suffix or "no extension"
        raise UserError(f"{path}: unsupported output type ({shown}); use one of {', '.join(allowed)}")
    parent = path.parent
    if not parent.exists():
        raise UserError(f"{path}: folder {parent} does not exist")
    if not parent.is_dir():
        raise UserError(f"{path}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{path}: folder {parent} is not writable")
    return path


def refuse_overwrite(path: str | os.PathLike, force: bool) -> None:
    """Raise if `path` exists and `force` is not set (the caller decides the policy)."""
    if not force and os.path.lexists(path):
        raise UserError(f"{path}: already exists (use --overwrite to overwrite)")


# ----------------------------------------------------------------------------- checks


def _check_input_file(path: str | os.PathLike) -> Path:
    path = Path(os.path.expanduser(os.fspath(path)))
    try:
        st = path.stat()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot access ({_one_line(exc)})") from None
    if path.is_dir():
        raise UserError(f"{path}: is a directory, expected an image file")
    if st.st_size == 0:
        raise UserError(f"{path}: file is empty")
    return path


def _check_png_header(path: Path, max_pixels: int) -> None:
    """Read a PNG's IHDR ourselves so zero and absurd sizes get a clear message before any decode."""
    try:
        with open(path, "rb") as f:
            head = f.read(24)
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({_one_line(exc)})") from None
    if not head.startswith(_PNG_SIGNATURE):
        return
    if len(head) < 24 or head[12:16] != b"IHDR":
        raise UserError(f"{path}: broken PNG header; is the file truncated or corrupt?")
    width, height = struct.unpack(">II", head[16:24])
    _check_size(path, width, height, max_pixels)


def _check_size(path: Path, width: int, height: int, max_pixels: int) -> None:
    if width == 0 or height == 0:
        raise UserError(f"{path}: image has zero size ({width}x{height})")
    if width * height > max_pixels:
        raise UserError(
            f"{path}: image is {width}x{height} = {width * height / 1e6:.0f} Mpx, over the limit of "
            f"{max_pixels / 1e6:.0f} Mpx (decompression bomb?)"
        )


@contextlib.contextmanager
def _open_image(path: Path, max_pixels: int) -> Iterator[Image.Image]:
    """Open `path` with PIL's header checks under our pixel limit; strict about truncation."""
    _check_png_header(path, max_pixels)
    with _strict_pil(max_pixels):
        try:
            im = Image.open(path)
        except Image.DecompressionBombError as exc:
            raise UserError(f"{path}: image too large ({_one_line(exc)})") from None
        except UnidentifiedImageError:
            raise UserError(f"{path}: not an image (or a format PIL cannot read)") from None
        except PermissionError:
            raise UserError(f"{path}: cannot read (permission denied)") from None
        except _DECODE_ERRORS as exc:
            raise UserError(f"{path}: cannot read image header ({_one_line(exc)})") from None
        try:
            _check_size(path, im.width, im.height, max_pixels)
            yield im
        finally:
            im.close()


@contextlib.contextmanager
def _strict_pil(max_pixels: int) -> Iterator[None]:
    """PIL's global switches, set for one read: our pixel limit, no silent truncation."""
    saved = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
    Image.MAX_IMAGE_PIXELS = max_pixels  # PIL warns above this, raises above twice this
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we check the size ourselves
            yield
    finally:
        Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = saved


# ----------------------------------------------------------------------------- orientation


def _apply_exif_orientation(im: Image.Image) -> Image.Image:
    try:
        rotated = ImageOps.exif_transpose(im)
    except _DECODE_ERRORS + (KeyError, TypeError):
        return im  # a corrupt EXIF block: the pixels are still fine, keep them as stored
    return im if rotated is None else rotated


def _header_orientation(im: Image.Image) -> int:
    """EXIF orientation without decoding pixels (PNG: only an eXIf chunk before the image data)."""
    try:
        if im.format == "PNG":
            raw = im.info.get("exif")
            if not raw:
                return 1
            exif = Image.Exif()
            exif.load(raw)
        else:
            exif = im.getexif()
        return int(exif.get(_ORIENTATION_TAG, 1))
    except _DECODE_ERRORS + (KeyError, TypeError):
        return 1


# ----------------------------------------------------------------------------- modes


def _to_rgb_array(im: Image.Image, path: Path) -> np.ndarray:
    mode = im.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        grey = _to_uint8(np.asarray(im), mode)  # (H, W)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode in _ALPHA_MODES or "transparency" in im.info:
        try:
            rgba = np.asarray(im.convert("RGBA"))  # (H, W, 4)
        except ValueError as exc:
            raise UserError(f"{path}: cannot convert mode {mode} to RGB ({_one_line(exc)})") from None
        return _composite_on_white(rgba)
    try:
        rgb = im if mode == "RGB" else im.convert("RGB")
    except ValueError as exc:
        raise UserError(f"{path}: cannot convert mode {mode} to RGB ({_one_line(exc)})") from None
    return np.array(rgb, dtype=np.uint8)  # a copy: np.asarray would give a read-only view of PIL's bytes


def _to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    """Scale a greyscale integer or float image to 0..255 without clipping away its range."""
    if mode.startswith("I;16"):
        return _scale_16bit(values)
    if values.size == 0:
        return values.astype(np.uint8)
    lo, hi = values.min(), values.max()
    if mode == "I" and lo >= 0 and hi <= 65535:
        return _scale_16bit(values)  # PNG/TIFF 16-bit grey arrives as mode "I"
    if mode == "F" and np.isfinite(lo) and np.isfinite(hi):
        if lo >= 0 and hi <= 1:
            return np.rint(values * 255).astype(np.uint8)
        if lo >= 0 and hi <= 255:
            return np.rint(values).astype(np.uint8)
    finite = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = finite.min(), finite.max()
    if hi <= lo:
        return np.zeros(values.shape, np.uint8)
    return np.rint((finite - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def _scale_16bit(values: np.ndarray) -> np.ndarray:
    wide = values.astype(np.uint32)
    return ((wide * 255 + 32767) // 65535).astype(np.uint8)


def _composite_on_white(rgba: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 -> (H, W, 3) uint8: rgb * a + 255 * (1 - a), rounded."""
    alpha = rgba[:, :, 3:4].astype(np.uint16)
    rgb = rgba[:, :, :3].astype(np.uint16)
    out = (rgb * alpha + 255 * (255 - alpha) + 127) // 255
    return out.astype(np.uint8)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
