"""The deep-zoom page in a real browser (headless Chromium driven by Playwright).

A 6000×700 image with four solid colour quadrants around (4550, 350) is cut into a zoom folder;
the page is opened from file:// (and once from a local static server) with a hash that puts
that place at the centre, and the screenshot's pixels must show the quadrants where they
belong. Also: the overview is there and follows the view, keys / wheel / drag move the view,
the hash follows, and the page logs no console error.

Needs /usr/bin/chromium (`apt-get install -y chromium`) and `pip install playwright`; Playwright
never downloads a browser here, it starts the system one.
"""
from __future__ import annotations

import functools
import http.server
import io
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--force-color-profile=srgb"]
if not Path(CHROMIUM).is_file() or not shutil.which(CHROMIUM):
    pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install -y chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
pytest.importorskip("pyvips", reason="pip install pyvips pyvips-binary")

from nuwa_inf.view import build_zoom  # noqa: E402

WIDTH, HEIGHT = 6000, 700
VIEWPORT = {"width": 1000, "height": 600}
CX, CY = 4550, 350  # the centre of the quadrants
QUADRANTS = {  # (dx, dy) sign of the quadrant from (CX, CY) -> colour; each quadrant 50×50 px
    (-1, -1): (210, 40, 40), (1, -1): (40, 190, 70), (-1, 1): (40, 70, 210), (1, 1): (230, 210, 50)}
STRIPES = [(90, 90, 90), (160, 120, 200)]  # the background: vertical stripes 100 px wide
TOLERANCE = 24  # per channel: JPEG tiles, browser scaling


def pattern() -> np.ndarray:
    img = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    for i, x0 in enumerate(range(0, WIDTH, 100)):
        img[:, x0:x0 + 100] = STRIPES[i % 2]
    for (sx, sy), colour in QUADRANTS.items():
        xs = slice(CX, CX + 50) if sx > 0 else slice(CX - 50, CX)
        ys = slice(CY, CY + 50) if sy > 0 else slice(CY - 50, CY)
        img[ys, xs] = colour
    return img


def expected_colour(x: float, y: float) -> tuple[int, int, int]:
    if abs(x - CX) < 50 and abs(y - CY) < 50:
        return QUADRANTS[(1 if x >= CX else -1, 1 if y >= CY else -1)]
    return STRIPES[int(x // 100) % 2]


@pytest.fixture(scope="module")
def zoom_page(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("view")
    Image.fromarray(pattern()).save(folder / "pattern.png")
    return build_zoom(folder / "pattern.png")


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser):
    """open_page(url) -> a loaded page whose tiles have all arrived; console errors are checked at the end."""
    pages, errors = [], []

    def opener(url: str):
        page = browser.new_page(viewport=VIEWPORT, device_scale_factor=1)
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url)
        wait_ready(page)
        pages.append(page)
        return page

    yield opener
    for page in pages:
        page.close()
    assert errors == [], f"console errors: {errors}"


def wait_ready(page) -> None:
    page.wait_for_function("window.viewerReady === true", timeout=20_000)


def state(page) -> dict:
    return page.evaluate("window.viewer.state()")


def screenshot(page) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB"), np.int16)


def check_pixels(shot: np.ndarray, x: float, y: float, zoom: float, offsets) -> None:
    """The screen pixels at `offsets` (px from the centre) show the image colours there, ± TOLERANCE."""
    cy, cx = VIEWPORT["height"] // 2, VIEWPORT["width"] // 2
    for dx, dy in offsets:
        patch = shot[cy + dy - 2: cy + dy + 3, cx + dx - 2: cx + dx + 3].reshape(-1, 3).mean(0)
        want = expected_colour(x + dx / zoom, y + dy / zoom)
        assert np.abs(patch - want).max() <= TOLERANCE, f"at screen offset {(dx, dy)}: {patch} != {want}"


def test_file_url_at_one_to_one_shows_the_known_colours_at_the_centre(open_page, zoom_page):
    page = open_page(f"{zoom_page.as_uri()}#x={CX}&y={CY}&zoom=1")
    assert state(page)["zoom"] == 1 and state(page)["x"] == CX and state(page)["y"] == CY
    shot = screenshot(page)
    check_pixels(shot, CX, CY, 1, [(-25, -25), (25, -25), (-25, 25), (25, 25)])  # the four quadrants
    check_pixels(shot, CX, CY, 1, [(-300, 0), (-120, 0), (120, 0), (300, 200)])  # stripes around them


def test_zoomed_in_and_out_views_show_the_right_place(open_page, zoom_page):
    page = open_page(f"{zoom_page.as_uri()}#x={CX}&y={CY}&zoom=3")
    check_pixels(screenshot(page), CX, CY, 3, [(-100, -100), (100, -100), (-100, 100), (100, 100), (-200, 0)])
    page = open_page(f"{zoom_page.as_uri()}#x=2000&y=350&zoom=0.25")  # a coarser level of the pyramid
    assert state(page)["level"] < page.evaluate("window.viewer.source.maxLevel")
    check_pixels(screenshot(page), 2000, 350, 0.25, [(-12, 0), (12, 0), (37, 40)])


def test_a_static_web_server_serves_the_same_page(open_page, zoom_page):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(zoom_page.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        page = open_page(f"http://127.0.0.1:{server.server_port}/index.html#x={CX}&y={CY}&zoom=1")
        check_pixels(screenshot(page), CX, CY, 1, [(-25, -25), (25, 25)])
    finally:
        server.shutdown()
        server.server_close()


def test_the_overview_shows_the_whole_image_and_the_view_rectangle(open_page, zoom_page):
    page = open_page(f"{zoom_page.as_uri()}#x={CX}&y={CY}&zoom=1")
    box = page.locator("#minimap").bounding_box()
    assert box and box["width"] > 100 and abs(box["height"] / box["width"] - HEIGHT / WIDTH) < 0.02
    mini = screenshot(page)[int(box["y"]):int(box["y"] + box["height"]), int(box["x"]):int(box["x"] + box["width"])]
    red = (mini[..., 0] > 200) & (mini[..., 1] < 100) & (mini[..., 2] < 100)
    columns = np.flatnonzero(red.any(axis=0)) / box["width"] * WIDTH  # the view rectangle, in image px
    assert columns.size and abs(columns.min() - (CX - 500)) < 60 and abs(columns.max() - (CX + 500)) < 60
    page.mouse.click(box["x"] + box["width"] / 4, box["y"] + box["height"] / 2)  # jump a quarter along
    assert abs(state(page)["x"] - WIDTH / 4) < WIDTH / box["width"] * 2


def test_keys_zoom_fit_and_go_back_to_one_to_one(open_page, zoom_page):
    page = open_page(f"{zoom_page.as_uri()}#x={CX}&y={CY}&zoom=1")
    page.keyboard.press("+")
    assert state(page)["zoom"] == pytest.approx(2 ** 0.5)
    page.wait_for_function("location.hash.includes('zoom=1.414')")  # the link follows the view
    page.keyboard.press("-")
    page.keyboard.press("-")
    assert state(page)["zoom"] == pytest.approx(2 ** -0.5)
    page.keyboard.press("0")
    s = state(page)
    assert s["zoom"] == pytest.approx(s["fitZoom"]) and s["x"] == WIDTH / 2
    page.click("#one-to-one")
    assert state(page)["zoom"] == 1
    wait_ready(page)


def test_wheel_zooms_around_the_cursor_and_drag_pans(open_page, zoom_page):
    page = open_page(f"{zoom_page.as_uri()}#x={CX}&y={CY}&zoom=1")
    page.mouse.move(700, 200)
    before = page.evaluate("window.viewer.screenToImage(700, 200)")
    page.mouse.wheel(0, -200)
    page.wait_for_function("window.viewer.state().zoom > 1.2")
    after = page.evaluate("window.viewer.screenToImage(700, 200)")
    assert np.allclose(before, after, atol=0.5)  # the point under the cursor stays put
    zoom, x0 = state(page)["zoom"], state(page)["x"]
    page.mouse.move(500, 300)
    page.mouse.down()
    page.mouse.move(400, 300, steps=4)
    page.mouse.up()
    assert state(page)["x"] == pytest.approx(x0 + 100 / zoom, abs=0.5)
    wait_ready(page)
