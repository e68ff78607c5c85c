"""The procedural scroll generator: one infinite landscape per (seed, attrs, height)."""
from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from PIL import Image

from nuwa_inf.cli import main
from nuwa_inf.data.cli import image_seed
from nuwa_inf.data.procedural import caption, render_clip, render_scroll, sample_attributes
from nuwa_inf.errors import UserError

FULL = dict(palette="ink", time="day", snow=True, water="river", mist=True, trees="mixed")


def luminance(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


@pytest.mark.parametrize("attrs", [FULL, dict(palette="blue-green", time="night", water="lake", trees="pines")])
def test_chunked_rendering_equals_whole(attrs):
    whole = render_scroll(1000, 64, seed=3, attrs=attrs)
    cuts = [0, 300, 517, 768, 1000]                  # chunk edges off the internal block grid
    parts = [render_scroll(b - a, 64, seed=3, x0=a, attrs=attrs) for a, b in pairwise(cuts)]
    assert np.array_equal(np.concatenate(parts, axis=1), whole)


def test_pixels_do_not_depend_on_the_internal_block_size(monkeypatch):
    from nuwa_inf.data import procedural
    reference = render_scroll(512, 64, seed=4, attrs=FULL)
    for block in (64, 512):
        monkeypatch.setattr(procedural, "BLOCK", block)
        assert np.array_equal(render_scroll(512, 64, seed=4, attrs=FULL), reference)


def test_negative_offsets_continue_the_same_landscape():
    left = render_scroll(200, 64, seed=9, x0=-100)
    assert np.array_equal(left[:, 100:], render_scroll(100, 64, seed=9, x0=0))


def test_same_seed_same_pixels_and_different_seeds_differ():
    a = render_scroll(256, 96, seed=1)
    assert a.shape == (96, 256, 3) and a.dtype == np.uint8
    assert np.array_equal(a, render_scroll(256, 96, seed=1))
    b = render_scroll(256, 96, seed=2, attrs=sample_attributes(1))
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 5


def test_attributes_are_deterministic_and_varied():
    assert sample_attributes(4) == sample_attributes(4)
    seen = {(a["palette"], a["time"]) for a in map(sample_attributes, range(60))}
    assert len(seen) == 6


def test_night_is_darker_than_day():
    day = render_scroll(256, 128, seed=5, attrs=dict(FULL, snow=False, time="day"))
    night = render_scroll(256, 128, seed=5, attrs=dict(FULL, snow=False, time="night"))
    assert luminance(night).mean() < 0.6 * luminance(day).mean()


def test_snow_brightens_the_mountains():
    plain = render_scroll(256, 128, seed=6, attrs=dict(FULL, snow=False, water=None))
    snowy = render_scroll(256, 128, seed=6, attrs=dict(FULL, snow=True, water=None))
    band = slice(50, 110)                            # rows where the mountain layers are
    assert luminance(snowy[band]).mean() > luminance(plain[band]).mean() + 10


def test_palettes_differ_in_colour():
    ink = render_scroll(256, 128, seed=7, attrs=dict(FULL, palette="ink")).astype(np.float32)
    green = render_scroll(256, 128, seed=7, attrs=dict(FULL, palette="blue-green")).astype(np.float32)
    saturation = lambda img: (img.max(axis=2) - img.min(axis=2)).mean()  # noqa: E731
    assert saturation(green) > saturation(ink) + 5


def test_caption_names_the_attributes():
    text = caption(dict(palette="ink", time="sunset", snow=True, water="river", mist=True, trees="pines"))
    for word in ("ink-wash", "sunset", "snow", "river", "mist", "pine"):
        assert word in text
    text = caption(dict(palette="blue-green", time="night", snow=False, water=None, mist=False, trees=None))
    assert "blue-green" in text and "night" in text
    assert not any(word in text for word in ("snow", "river", "lake", "mist", "tree"))


def test_image_has_texture_not_flat_bands():
    img = render_scroll(512, 256, seed=8, attrs=FULL)
    lum = luminance(img)
    assert np.abs(np.diff(lum, axis=1)).mean() > 1.0    # detail along x, not horizontal bands
    assert np.abs(np.diff(lum, axis=0)).mean() > 1.0
    assert len(np.unique(img.reshape(-1, 3) // 16, axis=0)) > 20
    assert lum[64:].std() > 15


def test_layout_scales_with_height():
    small = render_scroll(64, 64, seed=10, attrs=FULL).astype(np.float32)
    big = render_scroll(256, 256, seed=10, attrs=FULL)
    shrunk = np.asarray(Image.fromarray(big).resize((64, 64), Image.BILINEAR)).astype(np.float32)
    other = render_scroll(64, 64, seed=11, attrs=FULL).astype(np.float32)
    same = np.abs(shrunk - small).mean()
    assert same < 20 and same < 0.6 * np.abs(other - small).mean()


def test_bad_sizes_and_attributes_raise_user_error():
    with pytest.raises(UserError):
        render_scroll(0, 64, seed=1)
    with pytest.raises(UserError):
        render_scroll(64, 2_000_000, seed=1)
    with pytest.raises(UserError):
        render_scroll(64, 64, seed=1, attrs=dict(time="noon"))


def test_clip_moves_smoothly():
    clip = render_clip(128, 64, frames=6, seed=12, attrs=FULL).astype(np.float32)
    assert clip.shape == (6, 64, 128, 3)
    steps = [np.abs(clip[t + 1] - clip[t]).mean() for t in range(5)]
    assert min(steps) > 0.05                         # something moves every frame
    assert max(steps) < 4.0                          # but only a little
    assert np.abs(clip[5] - clip[0]).mean() > max(steps)


def test_cli_writes_images_and_captions(tmp_path):
    out = tmp_path / "scrolls"
    assert main(["data", "procedural", "--out", str(out), "--count", "2", "--width", "96", "--height", "64",
                 "--seed", "3"]) == 0
    img = np.asarray(Image.open(out / "scroll_00001.png"))
    assert img.shape == (64, 96, 3)
    assert np.array_equal(img, render_scroll(96, 64, image_seed(3, 1)))
    assert (out / "scroll_00000.txt").read_text().strip() == caption(sample_attributes(image_seed(3, 0)))


def test_cli_attrs_fix_attributes_for_every_item(tmp_path):
    out = tmp_path / "day"
    assert main(["data", "procedural", "--out", str(out), "--count", "3", "--width", "64", "--height", "32",
                 "--seed", "5", "--attrs", "palette=blue-green", "time=day", "trees=none"]) == 0
    for index in range(3):
        seed = image_seed(5, index)
        attrs = {**sample_attributes(seed), "palette": "blue-green", "time": "day", "trees": None}
        assert (out / f"scroll_{index:05d}.txt").read_text().strip() == caption(attrs)
        img = np.asarray(Image.open(out / f"scroll_{index:05d}.png"))
        assert np.array_equal(img, render_scroll(64, 32, seed, attrs=attrs))


def test_cli_writes_clips(tmp_path):
    out = tmp_path / "clips"
    assert main(["data", "procedural", "--out", str(out), "--count", "1", "--width", "64", "--height", "32",
                 "--video", "--frames", "3"]) == 0
    assert sorted(p.name for p in (out / "clip_00000").iterdir()) == [f"frame_{t:04d}.png" for t in range(3)]
    assert "scroll landscape" in (out / "clip_00000.txt").read_text()


@pytest.mark.parametrize("flags", [["--count", "0"], ["--width", "-5"], ["--height", "2000000"],
                                   ["--video", "--frames", "0"], ["--width", "wide"],
                                   ["--attrs", "palette=sepia"], ["--attrs", "colour=red"], ["--attrs", "palette"]])
def test_cli_bad_flags_exit_2_with_one_line(tmp_path, capsys, flags):
    try:
        code = main(["data", "procedural", "--out", str(tmp_path / "o"), *flags])
    except SystemExit as exit_:                      # argparse type errors exit from the parser
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_cli_unwritable_out_dir(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["data", "procedural", "--out", str(blocker / "sub")]) == 2
    assert "cannot create output directory" in capsys.readouterr().err
