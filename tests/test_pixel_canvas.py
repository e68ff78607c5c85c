"""PixelCanvas (disk-backed pixels that survive a restart) and the streaming PNG/TIFF/preview writers."""
from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from nuwa_inf.errors import UserError
from nuwa_inf.infer import writers
from nuwa_inf.infer.pixel_canvas import PixelCanvas
from nuwa_inf.infer.writers import PNG_FILTERS, export, export_png, export_preview, export_tiff


def _image_like(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Gradients plus noise: compresses like a picture, not like zeros or pure noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / w, y * 255 / h, (x + y) % 97 * 2.5], axis=-1)
    return np.clip(base + rng.normal(0, 8, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.fixture
def canvas(tmp_path):
    pixels = _image_like(300, 1000)
    with PixelCanvas(tmp_path / "pixels.raw", 300, 1000) as c:
        c.write_region(0, 0, pixels)
        yield c, pixels


def test_new_canvas_is_black_and_sized(tmp_path):
    with PixelCanvas(tmp_path / "p.raw", 4, 5) as c:
        assert c.shape == (4, 5, 3)
        assert (tmp_path / "p.raw").stat().st_size == 4 * 5 * 3
        assert not c.read_region(0, 0, 4, 5).any()


def test_regions_survive_reopening(tmp_path):
    pixels = _image_like(40, 70)
    c = PixelCanvas(tmp_path / "p.raw", 40, 70)
    c.write_region(0, 0, pixels[:10])  # whole rows
    c.write_region(10, 0, pixels[10:, :33])  # partial rows, left
    c.write_region(10, 33, pixels[10:, 33:])  # partial rows, right
    c.flush()
    del c  # like a killed process: the file is all there is
    with PixelCanvas(tmp_path / "p.raw", 40, 70, create=False) as again:
        np.testing.assert_array_equal(again.read_region(0, 0, 40, 70), pixels)
        np.testing.assert_array_equal(again.read_region(5, 7, 20, 31), pixels[5:25, 7:38])
        bands = list(again.iter_bands(rows=16))
        assert [y0 for y0, _ in bands] == [0, 16, 32]
        np.testing.assert_array_equal(np.concatenate([b for _, b in bands]), pixels)


def test_reopen_checks_the_size(tmp_path):
    PixelCanvas(tmp_path / "p.raw", 4, 5).close()
    with pytest.raises(UserError, match="expected"):
        PixelCanvas(tmp_path / "p.raw", 4, 6, create=False)
    with pytest.raises(UserError, match="not found"):
        PixelCanvas(tmp_path / "other.raw", 4, 5, create=False)


def test_out_of_bounds_and_wrong_dtype_are_refused(tmp_path):
    with PixelCanvas(tmp_path / "p.raw", 4, 5) as c:
        with pytest.raises(ValueError, match="outside"):
            c.write_region(2, 0, np.zeros((3, 5, 3), np.uint8))
        with pytest.raises(ValueError, match="outside"):
            c.read_region(0, 4, 1, 2)
        with pytest.raises(ValueError, match="uint8"):
            c.write_region(0, 0, np.zeros((1, 1, 3), np.float32))


@pytest.mark.parametrize("png_filter", sorted(PNG_FILTERS))
def test_png_round_trip_every_filter(tmp_path, png_filter):
    pixels = _image_like(37, 101, seed=1)
    # band_rows=8 so the filter crosses band boundaries (the row above comes from the previous band)
    export_png(pixels, tmp_path / "a.png", filter=png_filter, band_rows=8)
    with Image.open(tmp_path / "a.png") as im:
        assert im.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(im), pixels)


def test_png_round_trip_from_disk_canvas(canvas, tmp_path):
    c, pixels = canvas
    out = export_png(c, tmp_path / "a.png", compress_level=6)
    assert out == tmp_path / "a.png"
    with Image.open(out) as im:
        np.testing.assert_array_equal(np.asarray(im), pixels)


@pytest.mark.parametrize("compression", ["zlib", None])
def test_tiff_round_trip(canvas, tmp_path, compression):
    c, pixels = canvas
    export_tiff(c, tmp_path / "a.tif", compression=compression)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "a.tif"), pixels)
    with tifffile.TiffFile(tmp_path / "a.tif") as tif:
        assert tif.is_bigtiff and tif.pages[0].is_tiled
    with Image.open(tmp_path / "a.tif") as im:
        np.testing.assert_array_equal(np.asarray(im), pixels)


def test_export_dispatches_on_extension(canvas, tmp_path):
    c, pixels = canvas
    export(c, tmp_path / "a.png")
    export(c, tmp_path / "a.TIFF")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "a.png")), pixels)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "a.TIFF"), pixels)
    with pytest.raises(UserError, match="unsupported output type"):
        export(c, tmp_path / "a.jpg")
    with pytest.raises(UserError, match="does not exist"):
        export(c, tmp_path / "missing" / "a.png")


def test_preview_is_an_area_average(tmp_path):
    pixels = np.zeros((6, 9, 3), np.uint8)
    pixels[:, :3] = 30
    pixels[:, 3:] = 90
    pixels[:, 8] = 0  # the last 3x1 block: (90 + 90 + 0) / 3 = 60
    export_preview(pixels, tmp_path / "p.png", max_width=3)
    small = np.asarray(Image.open(tmp_path / "p.png"))
    assert small.shape == (2, 3, 3)
    np.testing.assert_array_equal(small[:, :, 0], [[30, 90, 60], [30, 90, 60]])


def test_preview_partial_blocks_at_the_edges(canvas, tmp_path):
    c, pixels = canvas
    export_preview(c, tmp_path / "p.png", max_width=300)  # factor ceil(1000 / 300) = 4
    small = np.asarray(Image.open(tmp_path / "p.png"))
    assert small.shape == (75, 250, 3)
    expected = pixels.reshape(75, 4, 250, 4, 3).astype(float).mean(axis=(1, 3))
    assert np.abs(small - expected).max() <= 0.5 + 1e-9


class _FailingCanvas:
    """Reads fine for the first bands, then fails like a disk error mid-export."""

    height, width = 300, 1000

    def __init__(self, pixels):
        self.pixels, self.reads = pixels, 0

    def read_region(self, y0, x0, h, w):
        self.reads += 1
        if self.reads > 2:
            raise OSError("simulated read failure")
        return self.pixels[y0 : y0 + h, x0 : x0 + w]


@pytest.mark.parametrize("name", ["old.png", "old.tif"])
def test_failed_export_leaves_the_old_file_untouched(tmp_path, name):
    target = tmp_path / name
    target.write_bytes(b"previous result")
    with pytest.raises(OSError, match="simulated"):
        export(_FailingCanvas(_image_like(300, 1000)), target,
               **({"band_rows": 16} if name.endswith("png") else {"tile": 64}))
    assert target.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary left behind


def test_outputs_do_not_depend_on_the_memory_budget(canvas, tmp_path, monkeypatch):
    c, pixels = canvas
    export_preview(c, tmp_path / "big_budget.png", max_width=300)
    monkeypatch.setattr(writers, "BAND_BYTES", 1)  # one row per PNG band, one tile per TIFF read
    export_png(c, tmp_path / "a.png")
    export_tiff(c, tmp_path / "a.tif", tile=64)
    export_preview(c, tmp_path / "small_budget.png", max_width=300)  # 4-row blocks built from 1-row bands
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "a.png")), pixels)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "a.tif"), pixels)
    np.testing.assert_array_equal(
        np.asarray(Image.open(tmp_path / "small_budget.png")), np.asarray(Image.open(tmp_path / "big_budget.png"))
    )
