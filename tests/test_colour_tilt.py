"""The colour tilt (infer/colour_tilt.py): its logits against their definition, and its effect on a job."""
from __future__ import annotations

from dataclasses import replace
from functools import partial

import numpy as np
import pytest
from PIL import Image

from model_fixtures import check_on_by_default_without_a_prompt, extend_kept, make_model_dir, stopped_then_resumed
from nuwa_inf.cli import main
from nuwa_inf.infer import colour_tilt as colour_tilt_module
from nuwa_inf.infer.bundle import load_bundle
from nuwa_inf.infer.colour_prior import code_colours
from nuwa_inf.infer.colour_tilt import CAP, SCALE, SETTLE, colour_tilt
from nuwa_inf.infer.placement import place

BLACK, GREY, WHITE, RED = 0, 1, 2, 3
COLOURS = np.array([[0, 0, 0], [0.5, 0.5, 0.5], [1, 1, 1], [1, 0, 0]], dtype=np.float32)
KNOWN = (0, 4, 4, 8)  # the input's kept tokens: rows 0–3, columns 4–7 of an (8, 12) canvas


@pytest.fixture
def fixed_rule(monkeypatch):
    """NORMALISE = "fixed": the bias ÷ SCALE², the same in every row (the default whitens it)."""
    monkeypatch.setattr(colour_tilt_module, "NORMALISE", "fixed")


def canvas(generated: int) -> np.ndarray:
    """(8, 12): grey input tokens in KNOWN, `generated` in columns 0–3 of rows 0–3, the rest not drawn."""
    tokens = np.full((8, 12), -1)
    tokens[0:4, 4:8] = GREY
    tokens[0:4, 0:4] = generated
    return tokens


def test_rows_brighter_than_the_input_tilt_towards_darker_codes_by_the_definition(fixed_rule):
    logits = colour_tilt(canvas(WHITE), KNOWN, COLOURS, strength=0.2, reach=1).numpy()
    row = logits[1]  # rows 0–2 pooled: 12 input and 12 generated tokens
    bias, weight = np.array([0.5, 0.5, 0.5]), 12 / (12 + SETTLE)
    expected = [-0.2 / SCALE ** 2 * weight * bias @ (c - 0.5) for c in COLOURS]
    assert np.abs(expected).max() < CAP
    assert np.allclose(row, expected, atol=1e-4)
    assert abs(row[GREY]) < 1e-6                             # the input's own colour: untouched
    assert row[WHITE] < row[GREY] < row[RED] < row[BLACK]     # red's mean (1/3) is darker than grey's


def test_rows_that_keep_the_input_mean_or_that_it_does_not_reach_get_nothing():
    assert np.allclose(colour_tilt(canvas(GREY), KNOWN, COLOURS, strength=5.0, reach=1).numpy(), 0.0)
    logits = colour_tilt(canvas(WHITE), KNOWN, COLOURS, strength=5.0, reach=1).numpy()
    assert np.abs(logits[:5]).max() > 0          # rows 0–3 and the one below, within reach
    assert np.allclose(logits[5:], 0.0)          # nothing of the input within a row of them


def test_the_pull_grows_with_the_generated_tokens_behind_it(fixed_rule):
    few = canvas(-1)
    few[0:4, 3] = WHITE                          # one generated column
    one = colour_tilt(few, KNOWN, COLOURS, strength=0.1, reach=1).numpy()[1]
    four = colour_tilt(canvas(WHITE), KNOWN, COLOURS, strength=0.1, reach=1).numpy()[1]
    assert four[BLACK] / one[BLACK] == pytest.approx((12 / (12 + SETTLE)) / (3 / (3 + SETTLE)), rel=1e-4)


def test_normalised_by_the_input_spread_a_busy_row_gets_a_gentler_pull_than_a_uniform_one():
    """NORMALISE = "input": the logits are −W · w · (g − μ)ᵀ (Σ + RIDGE·I)⁻¹ (c_k − μ), Σ the
    covariance of the input's token colours at that height; a black-and-white input row (same mean
    grey as a uniform grey one) pulls a white extension back far less."""
    assert colour_tilt_module.NORMALISE == "input"   # the default
    busy = canvas(WHITE)
    busy[0:4, 4:8:2] = BLACK
    busy[0:4, 5:8:2] = WHITE
    row = colour_tilt(busy, KNOWN, COLOURS, strength=0.2, reach=1).numpy()[1]
    input_colours = COLOURS[busy[0:3, 4:8].ravel()].astype(np.float64)       # rows 0–2 pooled
    mean = input_colours.mean(axis=0)
    spread = np.cov(input_colours.T, bias=True) + np.eye(3) * colour_tilt_module.RIDGE
    bias = (np.array([1.0, 1.0, 1.0]) - mean) * 12 / (12 + SETTLE)
    expected = [-0.2 * bias @ np.linalg.solve(spread, c - mean) for c in COLOURS]
    assert np.abs(expected).max() < CAP
    assert np.allclose(row, expected, atol=1e-4)
    uniform = colour_tilt(canvas(WHITE), KNOWN, COLOURS, strength=0.2, reach=1).numpy()[1]
    assert uniform[BLACK] == pytest.approx(CAP) and row[BLACK] < 0.1 * CAP


WIDTH = 1280


def test_no_code_moves_further_than_the_cap():
    row = colour_tilt(canvas(WHITE), KNOWN, COLOURS, strength=100.0, reach=1).numpy()[1]
    assert row[BLACK] == pytest.approx(CAP) and row[WHITE] == pytest.approx(-CAP)
    assert abs(row[GREY]) < 1e-6


def extend(model_dir, source, out_dir, name, *flags) -> tuple[np.ndarray, np.ndarray]:
    """The input's votes off: the tilt alone."""
    return extend_kept(model_dir, source, out_dir, name, WIDTH, 192, "--seed", "3", "--neighbour-match", "0", *flags)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_model_dir(tmp_path_factory.mktemp("colour_tilt_model"))


@pytest.fixture
def tiny_scale(model_dir, monkeypatch, tmp_path):
    """SCALE and √RIDGE set to a tenth of the tiny untrained decoder's colour spread (its codes all
    decode within a few hundredths of one grey-green; the bundled ones span the whole range) → the
    codes' colours."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    colours = code_colours(load_bundle(model_dir).tokenizer)
    spread = float(np.linalg.norm(colours - np.median(colours, axis=0), axis=1).max())
    monkeypatch.setattr(colour_tilt_module, "SCALE", 0.1 * spread)
    monkeypatch.setattr(colour_tilt_module, "RIDGE", (0.1 * spread) ** 2)
    return colours


@pytest.mark.parametrize("rule", ["fixed", "input"])
def test_a_job_with_the_tilt_keeps_the_input_mean_colour_and_stays_exact(model_dir, tiny_scale, tmp_path,
                                                                        monkeypatch, rule):
    """With the tilt the extension's rows come nearer the input's mean code colour at their height
    than the untrained model's alone, the input's own tokens stay, and the image does not depend on
    the batch."""
    image = np.zeros((192, 128, 3), dtype=np.uint8)
    image[:, :, 2] = np.linspace(0, 255, 192, dtype=np.uint8)[:, None]
    image[:, ::8, 0] = 180
    source = tmp_path / "input.png"
    Image.fromarray(image).save(source)
    monkeypatch.setattr(colour_tilt_module, "NORMALISE", rule)
    plain, plain_tokens = extend(model_dir, source, tmp_path, "plain", "--colour-tilt", "0")
    tilted, tilted_tokens = extend(model_dir, source, tmp_path, "tilted", "--colour-tilt", "1")
    one_by_one, _ = extend(model_dir, source, tmp_path, "tilted1", "--colour-tilt", "1", "--batch", "1")
    assert np.array_equal(tilted, one_by_one)
    assert not np.array_equal(plain, tilted)

    bundle = load_bundle(model_dir)
    cfg = bundle.transformer.cfg
    pl = replace(place(WIDTH, 192, 128, 192, "center", bundle.tokenizer.downsample, cfg.patch_h, cfg.patch_w),
                 edge=2)
    ty0, tx0, ty1, tx1 = pl.known_tokens()
    assert np.array_equal(plain_tokens[ty0:ty1, tx0:tx1], tilted_tokens[ty0:ty1, tx0:tx1])

    def mean_colour_gap(tokens):  # per row: |mean code colour outside the input − inside|, averaged
        inside = tiny_scale[tokens[ty0:ty1, tx0:tx1]].mean(axis=1)
        outside = np.concatenate([tokens[ty0:ty1, :tx0], tokens[ty0:ty1, tx1:]], axis=1)
        return float(np.abs(tiny_scale[outside].mean(axis=1) - inside).mean())

    assert mean_colour_gap(tilted_tokens) < 0.7 * mean_colour_gap(plain_tokens)


def test_an_interrupted_job_resumes_to_the_same_image(model_dir, tiny_scale, tmp_path, monkeypatch):
    """The tilt reads the canvas as it stood before each wave: a run stopped mid-way and resumed
    from its last saved wave draws the same image (API)."""
    import nuwa_inf
    from nuwa_inf.infer import engine

    monkeypatch.setattr(engine, "CHECKPOINT_SECONDS", 0.0)
    model = nuwa_inf.load(model_dir, device="cpu")
    image = np.zeros((192, 128, 3), dtype=np.uint8)
    image[:, :, 1] = np.linspace(255, 0, 192, dtype=np.uint8)[:, None]
    image[::16, :, 0] = 220
    straight = model.extend(image, 512, 192, seed=4, colour_tilt=1.0)
    resumed = stopped_then_resumed(partial(model.extend, image, 512, 192, seed=4, colour_tilt=1.0), tmp_path / "run")
    assert np.array_equal(np.asarray(straight), np.asarray(resumed))
    assert not np.array_equal(np.asarray(straight), np.asarray(model.extend(image, 512, 192, seed=4, colour_tilt=0)))


def test_a_tilt_out_of_range_is_a_one_line_error(tmp_path, capsys):
    source = tmp_path / "input.png"
    Image.fromarray(np.zeros((64, 64, 3), dtype=np.uint8)).save(source)
    code = main(["extend", str(source), "-o", str(tmp_path / "out.png"), "--width", "128", "--height", "64",
                 "--colour-tilt", "-1"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nuwa-inf: error:") and "--colour-tilt" in err and "\n" not in err


def test_the_chroma_space_leaves_the_light_alone(monkeypatch):
    monkeypatch.setattr(colour_tilt_module, "SPACE", "chroma")
    assert np.allclose(colour_tilt(canvas(WHITE), KNOWN, COLOURS, strength=1.0, reach=1).numpy(), 0.0)  # grey → white
    row = colour_tilt(canvas(RED), KNOWN, COLOURS, strength=1.0, reach=1).numpy()[1]
    assert row[RED] < 0 and abs(row[BLACK]) < 1e-6 and abs(row[WHITE]) < 1e-6   # only the reddish code pays


def test_extend_tilts_by_default_and_not_with_a_prompt(tmp_path_factory, tiny_scale, tmp_path):
    """Without a prompt extend's default is DEFAULT_COLOUR_TILT; with one (which may ask for another
    light) it is off unless asked for."""
    from nuwa_inf.infer.cli import DEFAULT_COLOUR_TILT

    text_model = make_model_dir(tmp_path_factory.mktemp("colour_tilt_text_model"), text_vocab=["snow", "night"])
    image = np.zeros((192, 128, 3), dtype=np.uint8)
    image[:, :, 2] = np.linspace(0, 255, 192, dtype=np.uint8)[:, None]
    source = tmp_path / "input.png"
    Image.fromarray(image).save(source)

    def run(name, *flags):
        return extend(text_model, source, tmp_path, name, *flags)[1]

    check_on_by_default_without_a_prompt(run, "--colour-tilt", DEFAULT_COLOUR_TILT, forced="2")


def test_a_canvas_shorter_than_the_pooling_window_keeps_its_row_count():
    """Three token rows with REACH 4: every row pools all three, and the logits have three rows (a
    convolution in "same" mode would return the window's nine)."""
    tokens = canvas(WHITE)[:3]
    logits = colour_tilt(tokens, (0, 4, 3, 8), COLOURS, strength=0.2).numpy()
    assert logits.shape == (3, len(COLOURS))
    assert np.abs(logits).max() > 0 and np.allclose(logits[0], logits[2])


def test_an_input_with_no_kept_token_columns_gets_no_tilt():
    """A one-pixel input keeps no whole token: nothing to pull towards, so the logits are zero."""
    logits = colour_tilt(canvas(WHITE), (0, 4, 4, 4), COLOURS, strength=0.5).numpy()
    assert logits.shape == (8, len(COLOURS)) and np.allclose(logits, 0.0)
