"""`nuwa-inf view` / `build_zoom` without a browser: the tile pyramid, the page's inline tile
source, which image a folder yields, the output-folder rules, and bad input (exit 2, one line).
The page in a real browser is tested in test_view_browser.py."""
from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pyvips = pytest.importorskip("pyvips", reason="pip install pyvips pyvips-binary")

from nuwa_inf.errors import UserError  # noqa: E402
from nuwa_inf.view import build_zoom  # noqa: E402
from nuwa_inf.view.pyramid import OVERLAP, TILE_SIZE, max_level  # noqa: E402

CLI = Path(sys.executable).with_name("nuwa-inf")  # the venv's console script


def tile_source(page: Path) -> dict:
    match = re.search(r'<script id="tile-source" type="application/json">(.*?)</script>', page.read_text(), re.S)
    assert match, "the page has no inline tile source"
    return json.loads(match.group(1))


def run_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([str(CLI), "view", *map(str, args)], capture_output=True, text=True, timeout=120)


def quadrants(width: int, height: int) -> np.ndarray:
    """Four solid colours, one per quadrant: a picture whose tiles are easy to check."""
    img = np.empty((height, width, 3), np.uint8)
    img[: height // 2, : width // 2] = (200, 40, 40)
    img[: height // 2, width // 2:] = (40, 180, 60)
    img[height // 2:, : width // 2] = (40, 60, 200)
    img[height // 2:, width // 2:] = (220, 200, 50)
    return img


@pytest.fixture
def image(tmp_path) -> Path:
    path = tmp_path / "canvas.png"
    Image.fromarray(quadrants(600, 300)).save(path)
    return path


def test_pyramid_has_every_level_with_deep_zoom_tile_sizes(image, tmp_path):
    page = build_zoom(image, tmp_path / "z")
    levels = page.parent / "tiles_files"
    top = max_level(600, 300)
    assert top == 10 and sorted(int(p.name) for p in levels.iterdir() if p.is_dir()) == list(range(top + 1))
    assert sorted(p.name for p in (levels / str(top)).iterdir()) == sorted(
        f"{c}_{r}.jpg" for c in range(math.ceil(600 / TILE_SIZE)) for r in range(math.ceil(300 / TILE_SIZE)))
    # overlap on inner edges only: the first tile is TILE_SIZE + OVERLAP wide, a middle one + 2·OVERLAP
    assert Image.open(levels / str(top) / "0_0.jpg").size == (TILE_SIZE + OVERLAP, TILE_SIZE + OVERLAP)
    assert Image.open(levels / str(top) / "1_0.jpg").size == (TILE_SIZE + 2 * OVERLAP, TILE_SIZE + OVERLAP)
    assert Image.open(levels / str(top) / "2_1.jpg").size == (600 - 2 * TILE_SIZE + OVERLAP, 300 - TILE_SIZE + OVERLAP)
    assert Image.open(levels / "0" / "0_0.jpg").size == (1, 1)
    assert (page.parent / "tiles.dzi").is_file()  # for other Deep Zoom viewers


def test_tiles_hold_the_image_colours(image, tmp_path):
    levels = build_zoom(image, tmp_path / "z").parent / "tiles_files"
    top = np.asarray(Image.open(levels / "10" / "0_0.jpg").convert("RGB"), np.int16)
    assert np.abs(top[50, 50] - (200, 40, 40)).max() <= 12
    bottom_right = np.asarray(Image.open(levels / "10" / "2_1.jpg").convert("RGB"), np.int16)
    assert np.abs(bottom_right[20, 60] - (220, 200, 50)).max() <= 12


def test_page_carries_its_tile_source_inline_and_fetches_nothing(image, tmp_path):
    page = build_zoom(image, tmp_path / "z")
    assert page == tmp_path / "z" / "index.html"
    source = tile_source(page)
    assert source == {"width": 600, "height": 300, "tileSize": TILE_SIZE, "overlap": OVERLAP, "maxLevel": 10,
                      "extension": "jpg", "url": "tiles_files/"}
    text = page.read_text()
    for forbidden in ("fetch(", "XMLHttpRequest", "import(", "http://", "https://", '<script src'):
        assert forbidden not in text, forbidden
    assert "<title>canvas.png (600×300)</title>" in text


def test_webp_tiles_on_request(image, tmp_path):
    page = build_zoom(image, tmp_path / "z", fmt="webp")
    assert tile_source(page)["extension"] == "webp"
    assert (page.parent / "tiles_files" / "10" / "0_0.webp").is_file()


def test_default_output_is_stem_zoom_next_to_the_image(image):
    assert build_zoom(image) == image.with_name("canvas_zoom") / "index.html"


def test_a_folder_shows_its_largest_image(tmp_path):
    Image.fromarray(quadrants(600, 300)).save(tmp_path / "scroll.png")
    Image.fromarray(quadrants(60, 30)).save(tmp_path / "scroll_preview.png")
    (tmp_path / "job.json").write_text("{}")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    page = build_zoom(tmp_path, tmp_path / "z")
    assert tile_source(page)["width"] == 600
    assert build_zoom(tmp_path / "scroll_preview.png", tmp_path / "p").is_file()


def test_an_existing_folder_is_kept_without_overwrite_and_replaced_with_it(image, tmp_path):
    out = tmp_path / "z"
    build_zoom(image, out)
    Image.fromarray(quadrants(300, 600)).save(image)
    with pytest.raises(UserError, match="not empty"):
        build_zoom(image, out)
    assert tile_source(out / "index.html")["width"] == 600
    build_zoom(image, out, overwrite=True)
    assert tile_source(out / "index.html")["width"] == 300
    assert sorted(p.name for p in tmp_path.iterdir()) == ["canvas.png", "z"]  # no staging folders left


def test_overwrite_never_deletes_a_folder_that_is_not_a_zoom_page(image, tmp_path):
    precious = tmp_path / "notes"
    precious.mkdir()
    (precious / "thesis.txt").write_text("keep me")
    with pytest.raises(UserError, match="not a zoom folder"):
        build_zoom(image, precious, overwrite=True)
    assert (precious / "thesis.txt").read_text() == "keep me"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert build_zoom(image, empty).is_file()  # an empty folder is fine


@pytest.mark.parametrize("mode", ["RGBA", "L", "I;16", "P", "LA"])
def test_any_mode_becomes_three_band_tiles(tmp_path, mode):
    rgb = Image.fromarray(quadrants(300, 200))
    if mode == "I;16":
        img = Image.fromarray((np.asarray(rgb.convert("L"), np.uint16) * 257))
    elif mode in ("RGBA", "LA"):
        img = rgb.convert(mode)
        img.putalpha(0)  # fully transparent: white, as images.load_rgb composites
    else:
        img = rgb.convert(mode)
    img.save(tmp_path / "m.png")
    tile = Image.open(build_zoom(tmp_path / "m.png").parent / "tiles_files" / "9" / "0_0.jpg")
    assert tile.mode == "RGB"
    if mode in ("RGBA", "LA"):
        assert np.asarray(tile).min() >= 245


def test_a_tiled_bigtiff_canvas_is_read(tmp_path):
    from nuwa_inf.infer.writers import export_tiff

    export_tiff(quadrants(600, 300), tmp_path / "scroll.tif")
    page = build_zoom(tmp_path / "scroll.tif")
    assert tile_source(page)["width"] == 600


def test_cli_writes_the_page_and_says_where(image):
    proc = run_cli(image)
    assert proc.returncode == 0, proc.stderr
    assert "canvas_zoom/index.html" in proc.stdout and "file://" in proc.stdout


@pytest.mark.parametrize("case", ["missing", "text", "empty", "empty_folder", "truncated", "not_empty_out",
                                  "bad_format", "bad_quality"])
def test_cli_bad_input_is_one_line_and_exit_code_2(tmp_path, image, case):
    args = {
        "missing": [tmp_path / "nope.png"],
        "text": [tmp_path / "notes.png"],
        "empty": [tmp_path / "empty.png"],
        "empty_folder": [tmp_path / "folder"],
        "truncated": [tmp_path / "cut.png"],
        "not_empty_out": [image, "-o", tmp_path / "folder_full"],
        "bad_format": [image, "--format", "gif"],
        "bad_quality": [image, "--quality", "0"],
    }[case]
    (tmp_path / "notes.png").write_text("hello")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder_full").mkdir()
    (tmp_path / "folder_full" / "x").write_text("x")
    big = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (600, 800, 3), dtype=np.uint8)).save(big)
    (tmp_path / "cut.png").write_bytes(big.read_bytes()[: big.stat().st_size // 2])
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = run_cli(*args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert err.startswith("nuwa-inf") and "error" in err and "\n" not in err, err
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, no staging folder left


def test_generate_zoom_flag_writes_the_page_after_the_image(tmp_path):
    from model_fixtures import make_model_dir
    from nuwa_inf.cli import main

    model = make_model_dir(tmp_path / "model")
    out = tmp_path / "g.png"
    assert main(["generate", "-o", str(out), "--width", "256", "--height", "128", "--model", str(model),
                 "--quiet", "--threads", "1", "--zoom", str(tmp_path / "g_zoom")]) == 0
    assert tile_source(tmp_path / "g_zoom" / "index.html")["width"] == 256


def test_open_hands_the_page_to_the_web_browser(image, tmp_path):
    import os

    env = {**os.environ, "BROWSER": f"{sys.executable} -c \"import sys; print('BROWSER GOT', sys.argv[1])\" %s"}
    proc = subprocess.run([str(CLI), "view", str(image), "--open"], capture_output=True, text=True, timeout=120,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"BROWSER GOT {(image.parent / 'canvas_zoom' / 'index.html').resolve().as_uri()}" in proc.stdout
