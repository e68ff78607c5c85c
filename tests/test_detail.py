"""Detail matching (infer/detail.py): α measures how much fine detail to keep, the filter does
not depend on the decode tiling, and extend applies it around the input, kept for a resume."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from conftest import smooth_image
from model_fixtures import check_filter_ignores_the_tiling, make_model_dir
from nuwa_inf.cli import main
from nuwa_inf.infer.detail import DETAIL_FILE, fit_alpha, mean_gradient, scale_fine, split_fine


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_model_dir(tmp_path_factory.mktemp("model"))


def grainy(seed: int, amount: float) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, amount, (256, 256, 1))
    return np.clip(smooth_image(256, 256, seed) + noise, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("decoded_amount, expected", [(12.0, 0.5), (6.0, 1.0), (4.0, 1.5)])
def test_alpha_scales_the_decoded_grain_to_the_originals(decoded_amount, expected):
    original = grainy(0, 6.0)
    decoded = grainy(1, decoded_amount)  # the same picture, drawn with another amount of grain
    alpha = fit_alpha(original, decoded)
    assert abs(alpha - expected) <= 0.1
    matched = scale_fine(decoded, alpha)
    assert abs(mean_gradient(matched.astype(np.float32)) / mean_gradient(original.astype(np.float32)) - 1) < 0.1


def test_alpha_one_changes_nothing_and_the_bands_add_up():
    picture = grainy(2, 8.0)
    assert scale_fine(picture, 1.0) is picture
    base, fine = split_fine(picture)
    assert np.allclose(base + fine, picture, atol=1e-3)


def test_the_filtered_decode_does_not_depend_on_the_tiling(model_dir):
    check_filter_ignores_the_tiling(model_dir, lambda pixels, origin: scale_fine(pixels, alpha=0.4))


def test_extend_matches_the_detail_around_the_input_and_keeps_alpha(model_dir, tmp_path):
    source = tmp_path / "input.png"
    Image.fromarray(smooth_image(192, 256, seed=4)).save(source)  # no grain: the random decoder draws plenty

    def extend(name, *extra):
        assert main(["extend", str(source), "-o", str(tmp_path / f"{name}.png"), "--width", "768", "--height", "192",
                     "--model", str(model_dir), "--quiet", "--threads", "1", "--run-dir", str(tmp_path / name),
                     *extra]) == 0
        return np.asarray(Image.open(tmp_path / f"{name}.png"))

    matched, plain = extend("matched"), extend("plain", "--no-detail-match")
    alpha = json.loads((tmp_path / "matched" / DETAIL_FILE).read_text())["alpha"]
    assert alpha < 1 and not (tmp_path / "plain" / DETAIL_FILE).exists()
    x0 = (768 - 256) // 2
    assert np.array_equal(matched[:, x0 + 64: x0 + 192], plain[:, x0 + 64: x0 + 192])  # the input's own pixels
    outside = np.concatenate([matched[:, :x0 - 16], matched[:, x0 + 272:]], axis=1).astype(np.float32)
    outside_plain = np.concatenate([plain[:, :x0 - 16], plain[:, x0 + 272:]], axis=1).astype(np.float32)
    assert mean_gradient(outside) < 0.9 * mean_gradient(outside_plain)
