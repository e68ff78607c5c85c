"""The canvas's own colour prior for jobs without an input (infer/canvas_prior.py)."""
from __future__ import annotations

import json
from functools import partial

import numpy as np
import pytest
import torch

import nuwa_inf
from model_fixtures import make_model_dir, stopped_then_resumed
from nuwa_inf.infer import code_prior, engine
from nuwa_inf.infer.canvas_prior import canvas_colour_prior
from nuwa_inf.infer.colour_prior import code_colours
from nuwa_inf.model.orders import build_schedule, make_order

WHITE, NEAR_WHITE, BLACK = 0, 1, 2
COLOURS = np.array([[1.0, 1.0, 1.0], [0.97, 0.97, 0.97], [0.0, 0.0, 0.0]], dtype=np.float32)


def test_far_colours_pay_near_what_is_drawn_and_nothing_where_nothing_is():
    tokens = np.full((6, 4), -1)
    tokens[0, :2] = WHITE                                       # one row drawn, white, half-way across
    prior = canvas_colour_prior(tokens, COLOURS, reach=2)
    assert prior.shape == (6, 3)
    assert torch.all(prior[:3, WHITE] == 0) and torch.all(prior[:3, NEAR_WHITE] == 0)  # near shades are free
    assert torch.all(prior[:3, BLACK] == -1)                    # far from all that is drawn within reach
    assert torch.all(prior[3:] == 0)                            # nothing drawn within reach: no palette yet
    assert torch.all(canvas_colour_prior(np.full((6, 4), -1), COLOURS) == 0)


def test_a_colour_the_canvas_holds_is_free_even_if_far_from_the_rest():
    tokens = np.array([[WHITE, BLACK]])
    assert torch.all(canvas_colour_prior(tokens, COLOURS) == 0)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return nuwa_inf.load(make_model_dir(tmp_path_factory.mktemp("canvas_prior_model")), device="cpu")


@pytest.fixture
def tiny_scale(model, monkeypatch, tmp_path):
    """NEAR and FAR scaled to the tiny untrained decoder, whose codes all decode within a few
    hundredths of one grey-green: 5 % and 30 % of its codes' spread about their median."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    colours = code_colours(model.bundle.tokenizer)
    spread = float(np.linalg.norm(colours - np.median(colours, axis=0), axis=1).max())
    monkeypatch.setattr(code_prior, "NEAR", 0.05 * spread)
    monkeypatch.setattr(code_prior, "FAR", 0.3 * spread)
    return colours


def drawn_tokens(model, run_dir, **settings) -> tuple[np.ndarray, np.ndarray]:
    """(image, tokens) of a 384×128 generation kept in `run_dir`."""
    image = np.asarray(model.generate(384, 128, seed=3, run_dir=run_dir, **settings))
    state = json.loads((run_dir / "state.json").read_text())
    return image, np.load(run_dir / state["files"]["tokens"])


def far_share(tokens: np.ndarray, colours: np.ndarray, patch: int) -> float:
    """Share of the tokens, past the first wave, whose colour was far (farness > 1/2) from all
    that the patches of earlier waves held at their height: the job's waves replayed."""
    rows, cols = tokens.shape[0] // patch, tokens.shape[1] // patch
    waves = build_schedule(make_order("raster", rows, cols, None), [], (0, 1, 1), (1, rows, cols)).waves
    far, total = 0, 0
    for w in range(1, len(waves)):
        earlier = np.full_like(tokens, -1)
        for _, r, c in (p for wave in waves[:w] for p in wave):
            earlier[r * patch:(r + 1) * patch, c * patch:(c + 1) * patch] = \
                tokens[r * patch:(r + 1) * patch, c * patch:(c + 1) * patch]
        farness = -canvas_colour_prior(earlier, colours).numpy()            # (token rows, V)
        for _, r, c in waves[w]:
            drawn = tokens[r * patch:(r + 1) * patch, c * patch:(c + 1) * patch]   # (patch, patch)
            far += int((farness[r * patch:(r + 1) * patch][np.arange(patch)[:, None], drawn] > 0.5).sum())
            total += drawn.size
    return far / total


def test_the_prior_evens_each_height_and_stays_exact(model, tiny_scale, tmp_path):
    plain, plain_tokens = drawn_tokens(model, tmp_path / "plain", canvas_prior=0)
    strong, strong_tokens = drawn_tokens(model, tmp_path / "strong", canvas_prior=10)
    assert np.array_equal(strong, np.asarray(model.generate(384, 128, seed=3, canvas_prior=10, batch=1)))
    assert not np.array_equal(plain, strong)
    patch = model.bundle.transformer.cfg.patch_h
    assert far_share(plain_tokens, tiny_scale, patch) > 0.01          # the untrained model strays ...
    assert far_share(strong_tokens, tiny_scale, patch) < 0.3 * far_share(plain_tokens, tiny_scale, patch)  # ... less


def test_an_interrupted_job_resumes_to_the_same_image(model, tiny_scale, tmp_path, monkeypatch):
    """The prior is read from the tokens of earlier waves: a run stopped mid-way and resumed
    from its last saved wave draws the same image."""
    monkeypatch.setattr(engine, "CHECKPOINT_SECONDS", 0.0)
    straight = model.generate(384, 128, seed=3, canvas_prior=10)
    resumed = stopped_then_resumed(partial(model.generate, 384, 128, seed=3, canvas_prior=10), tmp_path / "run")
    assert np.array_equal(np.asarray(straight), np.asarray(resumed))
