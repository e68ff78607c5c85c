"""The input's colour prior (infer/colour_prior.py): codes' colours, the palette per height, its effect."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from model_fixtures import make_model_dir
from nuwa_inf.cli import main
from nuwa_inf.config import from_preset
from nuwa_inf.infer.bundle import load_bundle
from nuwa_inf.infer.colour_prior import FLOOR, code_colours, row_prior
from nuwa_inf.kernels import PatchLayout
from nuwa_inf.model.config import MODEL_PRESETS, ModelConfig
from nuwa_inf.model.context_pool import ContextPool
from nuwa_inf.model.sampler import WaveSampler, sample_guided
from nuwa_inf.model.transformer import LocalTransformer
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
    colours = code_colours(tiny_tokenizer)
    assert colours.shape == (codes, 3) and colours.min() >= 0 and colours.max() <= 1
    assert len(list((tmp_path / "nuwa-inf").glob("code-colours-*.npy"))) == 1
    assert np.array_equal(code_colours(tiny_tokenizer), colours)
    f = tiny_tokenizer.downsample
    for code in (0, codes // 2, codes - 1):  # a wide field of one code decodes to about its colour
        pixels = decode_tiled(tiny_tokenizer, np.full((5, 5), code, dtype=np.int32))
        centre = pixels[2 * f: 3 * f, 2 * f: 3 * f].reshape(-1, 3).mean(0) / 255
        assert np.abs(centre - colours[code]).max() < 0.06, code


def test_a_row_bias_steers_each_token_row_of_a_patch():
    """`sample_guided(row_bias=...)` adds row r's bias to the logits of the patch's token row r:
    a large bonus for code r on row r makes every row of the sampled patch that code."""
    torch.manual_seed(0)
    model = LocalTransformer(from_preset(ModelConfig, MODEL_PRESETS, "tiny")).eval()
    cfg = model.cfg
    pool = ContextPool(cfg.layers, cfg.heads, cfg.patch_tokens, cfg.head_dim, capacity=2)
    sampler = WaveSampler(model, pool)
    alone = PatchLayout(torch.full((1, 1), -1), None, cfg.n_offsets)
    bias = torch.zeros((1, cfg.patch_h, cfg.vocab_size))
    bias[0, torch.arange(cfg.patch_h), torch.arange(cfg.patch_h) % cfg.vocab_size] = 100.0
    uniforms = torch.rand((1, cfg.patch_tokens), dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    canvas_rows = torch.tensor([[0, cfg.patch_h]])
    tokens, _ = sample_guided([sampler], 1.0, alone, torch.tensor([[0, 0]]), uniforms, canvas_rows=canvas_rows,
                              row_bias=bias)
    rows = tokens.reshape(cfg.patch_h, cfg.patch_w)
    expected = (torch.arange(cfg.patch_h) % cfg.vocab_size)[:, None].expand(-1, cfg.patch_w)
    assert torch.equal(rows, expected)
    free, _ = sample_guided([sampler], 1.0, alone, torch.tensor([[0, 0]]), uniforms, canvas_rows=canvas_rows)
    assert not torch.equal(free.reshape(cfg.patch_h, cfg.patch_w), expected)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_model_dir(tmp_path_factory.mktemp("prior_model"))


def test_the_prior_changes_the_extension_and_keeps_it_exact(model_dir, tmp_path, monkeypatch):
    """With the prior the image changes; it still does not depend on the batch, and a strength
    of 0 is the plain job. (What the prior favours is `row_prior`'s test above; the tiny untrained
    decoder draws all its codes within 0.02 of one grey-green, too close for a colour test here,
    so the input is two bands in the colours of the two codes farthest apart.)"""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    bundle = load_bundle(model_dir)
    colours = code_colours(bundle.tokenizer)
    apart = np.linalg.norm(colours[:, None] - colours[None], axis=-1)
    top, bottom = np.unravel_index(apart.argmax(), apart.shape)
    image = np.zeros((192, 128, 3), dtype=np.uint8)
    image[:96], image[96:] = np.round(colours[top] * 255), np.round(colours[bottom] * 255)
    source = tmp_path / "input.png"
    Image.fromarray(image).save(source)

    def extend(name, *extra):
        assert main(["extend", str(source), "-o", str(tmp_path / f"{name}.png"), "--width", "640", "--height",
                     "192", "--model", str(model_dir), "--quiet", "--threads", "1",
                     "--neighbour-match", "0", *extra]) == 0   # the input's votes off: the prior alone
        return np.asarray(Image.open(tmp_path / f"{name}.png"))

    plain, off = extend("plain"), extend("off", "--colour-prior", "0")
    with_prior, with_prior_b1 = extend("prior", "--colour-prior", "10"), extend("prior1", "--colour-prior", "10",
                                                                                  "--batch", "1")
    assert np.array_equal(plain, off)
    assert np.array_equal(with_prior, with_prior_b1)
    assert not np.array_equal(plain, with_prior)
