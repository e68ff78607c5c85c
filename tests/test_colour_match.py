"""Colour matching (infer/colour_match.py): the fit finds a decoder's chroma cast and leaves luma
alone, the filter does not depend on the decode tiling, and extend applies it by default without a
prompt, kept for a resume."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import smooth_image
from model_fixtures import (
    check_filter_ignores_the_tiling,
    check_pixel_filter_by_default,
    make_model_dir,
)
from nuwa_inf.colour import luma
from nuwa_inf.infer.colour_match import COLOUR_FILE, MAX_SHIFT, fit_shift, shift_colours


def picture(seed: int) -> np.ndarray:
    """A smooth (256, 256, 3) picture kept away from 0 and 255 (no clipping in these checks)."""
    return (40 + smooth_image(256, 256, seed).astype(np.float32) * 0.6).astype(np.uint8)


def with_cast(pixels: np.ndarray, cast: np.ndarray) -> np.ndarray:
    return np.clip(pixels.astype(np.float32) + cast, 0, 255).round().astype(np.uint8)


GREENER = np.array([-4.0, 8.0, -12.0])  # a chroma cast: luma 0.299·(−4) + 0.587·8 + 0.114·(−12) ≈ 2.3


def test_the_fit_takes_a_decoders_chroma_cast_off_and_keeps_its_luma():
    original = picture(0)
    decoded = with_cast(original, GREENER)              # what a decoder with a greenish cast would draw
    matrix = fit_shift(original, decoded)
    matched = shift_colours(decoded, matrix)
    before = np.abs(decoded.astype(np.float32) - original).mean(axis=(0, 1))
    after = np.abs(matched.astype(np.float32) - original).mean(axis=(0, 1))
    assert before.max() > 10 and after.max() < 3        # the cast is gone but for its luma part
    assert np.abs(luma(matched) - luma(decoded)).max() <= 1.0   # the light stays as the decoder drew it


def test_a_pure_luma_difference_is_left_alone_and_no_cast_changes_nothing():
    original = picture(1)
    brighter = with_cast(original, np.array([12.0, 12.0, 12.0]))
    assert np.abs(shift_colours(brighter, fit_shift(original, brighter)).astype(int) - brighter).max() <= 1
    assert np.abs(shift_colours(original, fit_shift(original, original)).astype(int) - original).max() <= 1
    assert shift_colours(original, fit_shift(original, brighter), strength=0.0) is original


def test_the_shift_is_capped_and_scales_with_the_strength():
    pixels = picture(2)
    huge = np.zeros((4, 3))
    huge[0] = [200.0, -100.0, -100.0]                   # a constant shift far beyond the cap
    moved = shift_colours(pixels, huge).astype(np.float32) - pixels
    assert np.abs(moved).max() <= MAX_SHIFT + 1 and np.abs(moved).max() >= MAX_SHIFT - 1
    small = np.zeros((4, 3))
    small[0] = [6.0, -3.0, -3.0]
    half = shift_colours(pixels, small, strength=0.5).astype(np.float32) - pixels
    assert np.allclose(half.mean(axis=(0, 1)), [3.0, -1.5, -1.5], atol=0.5)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_model_dir(tmp_path_factory.mktemp("colour_match_model"))


def test_the_matched_decode_does_not_depend_on_the_tiling(model_dir):
    matrix = np.zeros((4, 3))
    matrix[0], matrix[2] = [5.0, -2.0, -3.0], [-20.0, 10.0, 10.0]
    check_filter_ignores_the_tiling(model_dir, lambda pixels, origin: shift_colours(pixels, matrix=matrix))


def test_extend_matches_colour_by_default_without_a_prompt_and_keeps_its_fit(tmp_path_factory, tmp_path):
    """Without a prompt extend's default is DEFAULT_COLOUR_MATCH, fitted once and kept in the run
    directory; with a prompt it is off unless asked for. Tokens never change: only pixels."""
    from nuwa_inf.infer.cli import DEFAULT_COLOUR_MATCH

    check_pixel_filter_by_default(tmp_path_factory, tmp_path, smooth_image(192, 128, seed=5), "--colour-match",
                                  DEFAULT_COLOUR_MATCH, COLOUR_FILE)
    kept = json.loads((tmp_path / "default" / COLOUR_FILE).read_text())["matrix"]
    assert np.asarray(kept).shape == (4, 3)

