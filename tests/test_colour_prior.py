"""The input's colour prior (infer/colour_prior.py): codes' colours, the palette per height, its effect."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from model_fixtures import make_model_dir
from nuwa_inf.cli import main
from nuwa_inf.infer.bundle import load_bundle
from nuwa_inf.infer.colour_prior import FLOOR, code_colours, row_prior
from nuwa_inf.tokenizer.tiled import decode_tiled

BLUE, ORANGE, GREEN = (0.1, 0.2, 0.8), (0.9, 0.5, 0.1), (0.1, 0.7, 0.2)


def two_band_image(height: int = 64, width: int = 96) -> np.ndarray:
    """Top half blue, bottom half orange, uint8."""
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[: height // 2] = np.round(np.array(BLUE) * 255)
    image[height // 2:] = np.round(np.array(ORANGE) * 255)
    return image


def test_each_height_favours_the_colours_the_input_holds_there():
    colours = np.array([BLUE, ORANGE, GREEN], dtype=np.float32)
    prior = row_prior(two_band_image(), y0=32, canvas_token_rows=8, colours=colours, f=16)  # input rows 2..5
    assert prior.shape == (8, 3) and float(prior.max()) <= 0.0
    for row in (0, 1, 2):      # above the input and its top: its top row's palette
        assert prior[row, 0] > -0.01 and prior[row, 1] == FLOOR
    for row in (5, 6, 7):      # its bottom and below
        assert prior[row, 1] > -0.01 and prior[row, 0] == FLOOR
    assert torch.all(prior[:, 2] == FLOOR)  # a colour the input never holds
    assert prior[3, 1] > FLOOR and prior[4, 0] > FLOOR  # rows next to the boundary see both bands


def test_code_colours_are_the_decoded_codes_and_are_cached(tiny_tokenizer, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    codes = tiny_tokenizer.codebook_size
    colours = code_colours(tiny_tokenizer, codes)
    assert colours.shape == (codes, 3) and colours.min() >= 0 and colours.max() <= 1
    assert len(list((tmp_path / "nuwa-inf").glob("code-colours-*.npy"))) == 1
    assert np.array_equal(code_colours(tiny_tokenizer, codes), colours)
    f = tiny_tokenizer.downsample
    for code in (0, codes // 2, codes - 1):  # a wide field of one code decodes to about its colour
        pixels = decode_tiled(tiny_tokenizer, np.full((5, 5), code, dtype=np.int32))
        centre = pixels[2 * f: 3 * f, 2 * f: 3 * f].reshape(-1, 3).mean(0) / 255
        assert np.abs(centre - colours[code]).max() < 0.06, code


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_model_dir(tmp_path_factory.mktemp("prior_model"))


def test_the_prior_pulls_the_extension_to_the_inputs_palette_per_height(model_dir, tmp_path, monkeypatch):
    """With the prior, the generated codes' colours fit the colours the input holds at their height
    far better than without it (read in code colours: the tiny tokenizer is untrained, its codes
    all near grey); the image still does not depend on the batch."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    source = tmp_path / "input.png"
    image = two_band_image(192, 128)
    Image.fromarray(image).save(source)

    def extend(name, *extra):
        run_dir = tmp_path / f"run_{name}"
        assert main(["extend", str(source), "-o", str(tmp_path / f"{name}.png"), "--width", "640", "--height",
                     "192", "--model", str(model_dir), "--quiet", "--threads", "1", "--run-dir", str(run_dir),
                     *extra]) == 0
        state = json.loads((run_dir / "state.json").read_text())
        tokens = np.load(run_dir / state["files"]["tokens"])
        return np.asarray(Image.open(tmp_path / f"{name}.png")), tokens

    plain, plain_tokens = extend("plain")
    with_prior, prior_tokens = extend("prior", "--colour-prior", "10")
    with_prior_b1, _ = extend("prior1", "--colour-prior", "10", "--batch", "1")
    assert np.array_equal(with_prior, with_prior_b1)
    assert not np.array_equal(plain, with_prior)
    bundle = load_bundle(model_dir)
    colours = code_colours(bundle.tokenizer, bundle.transformer.cfg.vocab_size)
    prior = row_prior(image, 0, 12, colours, bundle.tokenizer.downsample).numpy()   # (token rows, V)
    generated = np.r_[0:12, 28:40]                                             # token columns away from the input

    def log_prior(tokens):  # how well the generated codes' colours fit the input's at their height
        return float(np.take_along_axis(prior, tokens[:, generated], axis=1).mean())

    assert log_prior(prior_tokens) > 0.5 * log_prior(plain_tokens), (log_prior(prior_tokens), log_prior(plain_tokens))
