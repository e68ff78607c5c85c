"""The input's code prior (infer/code_prior.py): the codes it uses per height, and its effect on a job."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from model_fixtures import check_on_by_default_without_a_prompt, make_model_dir
from nuwa_inf.cli import main
from nuwa_inf.infer.bundle import load_bundle
from nuwa_inf.infer.code_prior import row_code_prior
from nuwa_inf.infer.placement import place


def test_each_row_allows_the_codes_the_input_uses_within_reach():
    known = np.zeros((6, 4), dtype=np.int64)
    known[:3], known[3:] = 1, 2           # input rows 0-2 use code 1, rows 3-5 code 2
    known[0, 0] = 3                        # and code 3 once, in its top row
    prior = row_code_prior(known, first_row=2, canvas_rows=10, vocab=5, reach=1)  # input = canvas rows 2..7
    assert prior.shape == (10, 5) and set(prior.unique().tolist()) == {-1.0, 0.0}
    allowed = {r: set(np.flatnonzero(prior[r].numpy() == 0).tolist()) for r in range(10)}
    assert allowed[0] == allowed[1] == allowed[2] == {1, 3}      # above the input: its top row's reach
    assert allowed[3] == {1, 3} and allowed[4] == {1, 2}          # within one row of the boundary: both
    assert allowed[5] == {1, 2} and allowed[6] == {2}
    assert allowed[7] == allowed[8] == allowed[9] == {2}          # below: its bottom row's
    assert all(0 not in codes and 4 not in codes for codes in allowed.values())  # never used: never allowed


def test_a_wide_reach_allows_every_code_the_input_uses_at_every_height():
    known = np.arange(12).reshape(4, 3)
    prior = row_code_prior(known, first_row=1, canvas_rows=6, vocab=16, reach=4)
    assert torch.all(prior[:, :12] == 0) and torch.all(prior[:, 12:] == -1)


def test_the_canvas_edge_rows_allow_only_the_input_codes_of_that_row():
    """The encoder pads at the canvas's top and bottom, so its codes there are edge codes of
    their own: where the input spans the canvas's height, row 0 keeps to the input's row 0 and
    the last row to its last, whatever the reach."""
    known = np.arange(12).reshape(4, 3)
    prior = row_code_prior(known, first_row=0, canvas_rows=4, vocab=16, reach=4)
    assert set(np.flatnonzero(prior[0].numpy() == 0)) == {0, 1, 2}
    assert set(np.flatnonzero(prior[3].numpy() == 0)) == {9, 10, 11}
    assert torch.all(prior[1:3, :12] == 0)
    inside = row_code_prior(known, first_row=1, canvas_rows=6, vocab=16, reach=4)   # not at an edge: all
    assert torch.all(inside[:, :12] == 0)


def test_graded_by_colour_a_far_code_pays_more_than_a_near_one():
    known = np.array([[0, 1], [1, 0]])                      # the input uses codes 0 and 1 in every row
    colours = np.array([[0.50, 0.50, 0.50], [0.55, 0.50, 0.50],    # 0, 1: the input's greys
                        [0.58, 0.52, 0.50],                          # 2: a near shade
                        [0.50, 0.50, 0.70],                          # 3: between NEAR and FAR
                        [0.00, 0.00, 0.00]], dtype=np.float32)       # 4: black, far from both
    flat = row_code_prior(known, 0, 3, vocab=5)
    graded = row_code_prior(known, 0, 3, vocab=5, colours=colours, far_extra=2.0)
    assert torch.equal(graded[:, :3], flat[:, :3])           # used codes 0; a near shade the plain −1
    assert torch.all(graded[:, 4] == -3.0)                   # the far one: −1 − far_extra
    assert torch.all((graded[:, 3] < -1.0) & (graded[:, 3] > -3.0))
    assert torch.equal(row_code_prior(known, 0, 3, vocab=5, colours=colours, far_extra=0.0), flat)


def test_graded_the_palette_is_each_rows_own():
    known = np.array([[0], [0], [0], [1], [1], [1]])       # rows 0-2 draw with code 0 (white), 3-5 with 1 (black)
    colours = np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.05, 0.05, 0.05]], dtype=np.float32)  # 2: near black
    graded = row_code_prior(known, 0, 6, vocab=3, reach=1, colours=colours, far_extra=2.0)
    assert graded[0, 2] == -3.0 and graded[5, 2] == -1.0     # near-black: far in the white rows, near in the black


def extend(model: Path, source: Path, out_dir: Path, name: str, *extra: str) -> np.ndarray:
    """`nuwa-inf extend` of `source` (128×192) to 640×192 with `model`: the output image."""
    assert main(["extend", str(source), "-o", str(out_dir / f"{name}.png"), "--width", "640", "--height", "192",
                 "--model", str(model), "--quiet", "--threads", "1", *extra]) == 0
    return np.asarray(Image.open(out_dir / f"{name}.png"))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_model_dir(tmp_path_factory.mktemp("code_prior_model"))


def test_a_strong_prior_keeps_the_extension_to_the_input_codes_and_stays_exact(model_dir, tmp_path):
    """With a large strength the generated tokens use the codes the input uses at their height
    (the untrained model alone draws many others); the image still does not depend on the
    batch."""
    bundle = load_bundle(model_dir)
    image = np.zeros((192, 128, 3), dtype=np.uint8)
    image[:, :, 1] = np.linspace(0, 255, 192, dtype=np.uint8)[:, None]  # a few codes, changing with height
    image[:, ::8, 0] = 200
    source = tmp_path / "input.png"
    Image.fromarray(image).save(source)

    def extend_keeping_tokens(name, *extra):  # the input's votes off: the model and the prior alone
        image = extend(model_dir, source, tmp_path, name, "--run-dir", str(tmp_path / name),
                       "--neighbour-match", "0", *extra)
        state = json.loads((tmp_path / name / "state.json").read_text())
        return image, np.load(tmp_path / name / state["files"]["tokens"])

    plain, plain_tokens = extend_keeping_tokens("plain", "--code-prior", "0")
    (strong, strong_tokens), (strong_b1, _) = (extend_keeping_tokens("strong", "--code-prior", "10"),
                                              extend_keeping_tokens("strong1", "--code-prior", "10", "--batch", "1"))
    assert np.array_equal(strong, strong_b1)
    assert not np.array_equal(plain, strong)

    tok, cfg = bundle.tokenizer, bundle.transformer.cfg
    f = tok.downsample
    pl = replace(place(640, 192, 128, 192, "center", f, cfg.patch_h, cfg.patch_w), edge=2)
    ty0, tx0, ty1, tx1 = pl.known_tokens()
    assert np.array_equal(plain_tokens[ty0:ty1, tx0:tx1], strong_tokens[ty0:ty1, tx0:tx1])
    prior = row_code_prior(strong_tokens[ty0:ty1, tx0:tx1], ty0, strong_tokens.shape[0], tok.codebook_size)
    assert (prior < 0).float().mean() > 0.3  # the input leaves out many codes at each height

    def foreign_share(tokens):
        outside = np.concatenate([tokens[:, :tx0 - 2], tokens[:, tx1 + 2:]], axis=1)
        return float(np.mean([(prior[r, outside[r]] < 0).numpy() for r in range(outside.shape[0])]))

    assert foreign_share(plain_tokens) > 0.2
    assert foreign_share(strong_tokens) < 0.05


def test_graded_a_job_draws_fewer_far_colours_and_stays_exact(model_dir, tmp_path, monkeypatch):
    """`--code-prior-far`: with NEAR and FAR scaled to the tiny untrained decoder (its codes all
    decode within a few hundredths of one grey-green), the extension draws fewer of the codes
    far in colour from the input's at their height than the flat prior does, and still does not
    depend on the batch."""
    from nuwa_inf.infer import code_prior
    from nuwa_inf.infer.colour_prior import code_colours

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    bundle = load_bundle(model_dir)
    colours = code_colours(bundle.tokenizer)
    spread = float(np.linalg.norm(colours - np.median(colours, axis=0), axis=1).max())
    monkeypatch.setattr(code_prior, "NEAR", 0.05 * spread)
    monkeypatch.setattr(code_prior, "FAR", 0.3 * spread)
    image = np.zeros((192, 128, 3), dtype=np.uint8)
    image[:, :, 1] = np.linspace(0, 255, 192, dtype=np.uint8)[:, None]
    source = tmp_path / "input.png"
    Image.fromarray(image).save(source)

    def tokens_of(name, *extra):  # the input's votes off: the prior alone
        image = extend(model_dir, source, tmp_path, name, "--run-dir", str(tmp_path / name), "--code-prior", "1",
                       "--neighbour-match", "0", *extra)
        state = json.loads((tmp_path / name / "state.json").read_text())
        return image, np.load(tmp_path / name / state["files"]["tokens"])

    (flat, flat_tokens), (graded, graded_tokens) = tokens_of("flat"), tokens_of("graded", "--code-prior-far", "10")
    assert np.array_equal(graded, tokens_of("graded1", "--code-prior-far", "10", "--batch", "1")[0])
    assert not np.array_equal(flat, graded)
    cfg = bundle.transformer.cfg
    pl = replace(place(640, 192, 128, 192, "center", bundle.tokenizer.downsample, cfg.patch_h, cfg.patch_w), edge=2)
    ty0, tx0, ty1, tx1 = pl.known_tokens()
    prior = row_code_prior(flat_tokens[ty0:ty1, tx0:tx1], ty0, flat_tokens.shape[0], bundle.tokenizer.codebook_size,
                           colours=colours, far_extra=1.0).numpy()

    def far_share(tokens):
        outside = np.concatenate([tokens[:, :tx0 - 2], tokens[:, tx1 + 2:]], axis=1)
        return float(np.mean(prior[np.arange(len(outside))[:, None], outside] < -1.5))

    assert far_share(flat_tokens) > 0.02
    assert far_share(graded_tokens) < 0.5 * far_share(flat_tokens)


def test_extend_applies_it_by_default_and_not_with_a_prompt(tmp_path_factory, tmp_path):
    """Without a prompt extend's default is DEFAULT_CODE_PRIOR; with one (which may ask for what
    the input lacks) it is off unless asked for."""
    from nuwa_inf.infer.cli import DEFAULT_CODE_PRIOR

    text_model = make_model_dir(tmp_path_factory.mktemp("code_prior_text_model"), text_vocab=["snow", "night"])
    image = np.full((192, 128, 3), 90, dtype=np.uint8)  # flat: a code or two, the others all penalised
    source = tmp_path / "input.png"
    Image.fromarray(image).save(source)

    def run(name, *extra):  # the input's votes off: they would keep the codes to the input's without the prior
        return extend(text_model, source, tmp_path, name, "--neighbour-match", "0", *extra)

    check_on_by_default_without_a_prompt(run, "--code-prior", DEFAULT_CODE_PRIOR, forced="2")
