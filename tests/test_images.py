"""load_rgb / image_size on a generated corpus of odd modes and broken files; output path checks."""
from __future__ import annotations

import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from nuwa_inf.errors import UserError
from nuwa_inf.images import check_output_path, image_size, load_rgb, refuse_overwrite
from unprivileged import run_unprivileged, shared_folder


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _handmade_png(width: int, height: int, bit_depth: int, colour_type: int, rows: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(rows))
        + _png_chunk(b"IEND", b"")
    )


def _noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# ----------------------------------------------------------------------------- modes


def test_rgb_png_round_trips_exactly(tmp_path):
    pixels = _noise(7, 11)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    out = load_rgb(tmp_path / "a.png")
    assert out.dtype == np.uint8 and out.shape == (7, 11, 3)
    assert out.flags.writeable and out.flags.c_contiguous
    np.testing.assert_array_equal(out, pixels)


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.array([[[255, 0, 0, 0], [255, 0, 0, 255], [0, 0, 0, 128]]], np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = load_rgb(tmp_path / "a.png")
    np.testing.assert_array_equal(out[0, 0], [255, 255, 255])  # fully transparent -> white
    np.testing.assert_array_equal(out[0, 1], [255, 0, 0])  # opaque -> itself
    np.testing.assert_array_equal(out[0, 2], [127, 127, 127])  # half black over white


def test_la_is_composited_on_white(tmp_path):
    la = np.array([[[0, 0], [0, 255]]], np.uint8)
    Image.fromarray(la, "LA").save(tmp_path / "a.png")
    out = load_rgb(tmp_path / "a.png")
    np.testing.assert_array_equal(out[0], [[255, 255, 255], [0, 0, 0]])


def test_palette_with_transparent_index(tmp_path):
    im = Image.new("P", (2, 1))
    im.putpalette([0, 0, 255] + [0, 255, 0] + [0] * 762)
    im.putdata([0, 1])
    im.save(tmp_path / "a.png", transparency=0)
    out = load_rgb(tmp_path / "a.png")
    np.testing.assert_array_equal(out[0], [[255, 255, 255], [0, 255, 0]])


def test_16bit_grey_uses_the_full_range(tmp_path):
    ramp = np.linspace(0, 65535, 256).astype(np.uint16).reshape(16, 16)
    Image.fromarray(ramp).save(tmp_path / "a.png")  # mode I;16
    out = load_rgb(tmp_path / "a.png")
    assert out.shape == (16, 16, 3)
    assert out.min() == 0 and out.max() == 255
    np.testing.assert_array_equal(out[..., 0], np.rint(ramp / 257).astype(np.uint8))
    assert np.all(np.diff(out[..., 0].ravel().astype(int)) >= 0)  # monotone, nothing clipped


def test_16bit_rgb_png_keeps_the_high_byte(tmp_path):
    values = np.array([[[0, 32896, 65535], [257, 514, 65280]]], dtype=">u2")  # (1, 2, 3) big-endian
    rows = b"\x00" + values.tobytes()
    (tmp_path / "a.png").write_bytes(_handmade_png(2, 1, 16, 2, rows))
    out = load_rgb(tmp_path / "a.png")
    np.testing.assert_allclose(out[0].astype(int), values[0] / 257, atol=1)


def test_32bit_int_and_float_grey_are_scaled(tmp_path):
    ints = np.array([[0, 32768, 65535]], np.int32)
    Image.fromarray(ints, "I").save(tmp_path / "i.tif")
    np.testing.assert_array_equal(load_rgb(tmp_path / "i.tif")[0, :, 0], [0, 128, 255])
    floats = np.array([[0.0, 0.5, 1.0]], np.float32)
    Image.fromarray(floats, "F").save(tmp_path / "f.tif")
    np.testing.assert_array_equal(load_rgb(tmp_path / "f.tif")[0, :, 0], [0, 128, 255])
    wide = np.array([[-10.0, 0.0, 1000.0]], np.float32)  # no natural range: min-max
    Image.fromarray(wide, "F").save(tmp_path / "w.tif")
    np.testing.assert_array_equal(load_rgb(tmp_path / "w.tif")[0, :, 0], [0, 3, 255])


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    red = Image.new("CMYK", (8, 8), (0, 255, 255, 0))
    red.save(tmp_path / "a.jpg", quality=95)
    out = load_rgb(tmp_path / "a.jpg")
    assert out.shape == (8, 8, 3)
    r, g, b = out[4, 4].astype(int)
    assert r > 200 and g < 60 and b < 60


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = 255  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display needs 90 degrees clockwise
    Image.fromarray(pixels).save(tmp_path / "a.jpg", exif=exif.tobytes(), quality=95)
    out = load_rgb(tmp_path / "a.jpg")
    assert out.shape == (40, 20, 3)  # width and height swapped
    assert out[:15].mean() > 200 and out[25:].mean() < 50  # the white half is now on top
    assert image_size(tmp_path / "a.jpg") == (20, 40)


def test_one_pixel_image(tmp_path):
    Image.new("RGB", (1, 1), (1, 2, 3)).save(tmp_path / "a.png")
    out = load_rgb(tmp_path / "a.png")
    np.testing.assert_array_equal(out, [[[1, 2, 3]]])
    assert image_size(tmp_path / "a.png") == (1, 1)


def test_image_size_reads_the_header(tmp_path):
    Image.fromarray(_noise(5, 9)).save(tmp_path / "a.png")
    assert image_size(tmp_path / "a.png") == (9, 5)


# ----------------------------------------------------------------------------- bad files


def _assert_user_error(path, *fragments, loader=load_rgb, **kwargs):
    with pytest.raises(UserError) as info:
        loader(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert os.path.basename(str(path)) in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_missing_path(tmp_path):
    _assert_user_error(tmp_path / "nope.png", "no such file")
    _assert_user_error(tmp_path / "nope.png", "no such file", loader=image_size)


def test_directory(tmp_path):
    (tmp_path / "dir.png").mkdir()
    _assert_user_error(tmp_path / "dir.png", "directory")


def test_empty_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    _assert_user_error(tmp_path / "empty.png", "empty")


def test_text_file_named_png(tmp_path):
    (tmp_path / "notes.png").write_text("this is not a picture\n")
    _assert_user_error(tmp_path / "notes.png", "not an image")
    _assert_user_error(tmp_path / "notes.png", "not an image", loader=image_size)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated_file(tmp_path, suffix):
    Image.fromarray(_noise(64, 64)).save(tmp_path / f"full{suffix}")
    data = (tmp_path / f"full{suffix}").read_bytes()
    (tmp_path / f"cut{suffix}").write_bytes(data[: len(data) // 2])
    _assert_user_error(tmp_path / f"cut{suffix}", "truncated")


def test_truncated_file_fails_even_if_pil_was_told_to_allow_it(tmp_path, monkeypatch):
    Image.fromarray(_noise(64, 64)).save(tmp_path / "full.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "full.png").read_bytes()[:3000])
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    _assert_user_error(tmp_path / "cut.png", "truncated")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # the global is restored


def test_decompression_bomb_header(tmp_path):
    (tmp_path / "bomb.png").write_bytes(_handmade_png(200000, 200000, 8, 2, b""))
    _assert_user_error(tmp_path / "bomb.png", "200000x200000", "limit")
    _assert_user_error(tmp_path / "bomb.png", "limit", loader=image_size)


def test_pixel_limit_argument(tmp_path):
    Image.fromarray(_noise(20, 20)).save(tmp_path / "a.png")
    Image.fromarray(_noise(20, 20)).save(tmp_path / "a.jpg")
    _assert_user_error(tmp_path / "a.png", "limit", max_pixels=100)
    _assert_user_error(tmp_path / "a.jpg", "limit", max_pixels=100)  # PIL's own bomb check path
    assert load_rgb(tmp_path / "a.png", max_pixels=400).shape == (20, 20, 3)


def test_zero_size_png(tmp_path):
    (tmp_path / "zero.png").write_bytes(_handmade_png(0, 5, 8, 2, b""))
    _assert_user_error(tmp_path / "zero.png", "zero size")


# ----------------------------------------------------------------------------- outputs


def test_check_output_path_accepts_supported_types(tmp_path):
    for name in ("a.png", "a.tif", "a.TIFF"):
        assert check_output_path(tmp_path / name) == tmp_path / name


def test_check_output_path_rejects(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        check_output_path(tmp_path / "missing" / "a.png")
    with pytest.raises(UserError, match="unsupported output type"):
        check_output_path(tmp_path / "a.bmp")
    (tmp_path / "d.png").mkdir()
    with pytest.raises(UserError, match="is a directory"):
        check_output_path(tmp_path / "d.png")
    assert check_output_path(tmp_path / "a.gif", allowed=(".gif",)).suffix == ".gif"


def test_check_output_path_rejects_read_only_folder():
    with shared_folder() as folder:
        locked, open_ = folder / "locked", folder / "open"
        locked.mkdir(mode=0o555)
        open_.mkdir(mode=0o777)
        locked.chmod(0o555)  # mkdir's mode is masked by the umask
        open_.chmod(0o777)

        def check() -> None:
            assert check_output_path(open_ / "a.png").name == "a.png"  # a writable folder passes
            with pytest.raises(UserError, match="not writable"):
                check_output_path(locked / "a.png")

        run_unprivileged(check)


def test_refuse_overwrite(tmp_path):
    target = tmp_path / "a.png"
    refuse_overwrite(target, force=False)  # nothing there: fine
    target.write_bytes(b"x")
    with pytest.raises(UserError, match="already exists"):
        refuse_overwrite(target, force=False)
    refuse_overwrite(target, force=True)
