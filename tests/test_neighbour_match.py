"""The input's neighbour match (infer/neighbour_match.py): its votes, and its effect on a job."""
from __future__ import annotations

from dataclasses import replace
from functools import partial

import numpy as np
import pytest
import torch
from PIL import Image

from model_fixtures import check_on_by_default_without_a_prompt, extend_kept, make_model_dir, stopped_then_resumed
from nuwa_inf.infer.bundle import load_bundle
from nuwa_inf.infer.neighbour_match import InputNeighbours, PatchNeighbours, code_digits, neighbourhood
from nuwa_inf.infer.placement import place
from nuwa_inf.model.sampler import pick_tokens
from nuwa_inf.tokenizer.quantizer import FSQ

LEVELS = (8, 8, 8, 8)
VOCAB = 8 ** 4
SKY, DARK, PALE = 5, 100, 3000
OFFSETS = neighbourhood(1)  # the default radius's
QUANTIZER = FSQ(LEVELS, in_channels=4)


def striped_input() -> np.ndarray:
    """(8, 12) tokens: four rows of sky over four rows whose columns alternate a dark and a pale code."""
    known = np.full((8, 12), SKY)
    known[4:, ::2], known[4:, 1::2] = DARK, PALE
    return known


def neighbours(**known: int) -> torch.Tensor:
    """(1, 8) neighbour codes, −1 except those named by offset: n, s, w, e, nw, ne, sw, se."""
    names = {"nw": (-1, -1), "n": (-1, 0), "ne": (-1, 1), "w": (0, -1), "e": (0, 1), "sw": (1, -1),
             "s": (1, 0), "se": (1, 1)}
    row = [-1] * len(OFFSETS)
    for name, code in known.items():
        row[OFFSETS.index(names[name])] = code
    return torch.tensor([row])


def likeliest(votes: torch.Tensor) -> int:
    return int(votes[0].argmax())


def test_code_digits_span_minus_one_to_one_per_channel():
    digits = code_digits(QUANTIZER)
    assert digits.shape == (VOCAB, 4)
    assert torch.equal(digits[0], torch.full((4,), -1.0)) and torch.equal(digits[VOCAB - 1], torch.ones(4))
    assert torch.allclose(digits[1], torch.tensor([-1 + 2 / 7, -1.0, -1.0, -1.0]))


def test_votes_follow_what_the_input_puts_beside_a_neighbourhood_like_this():
    source = InputNeighbours(striped_input(), first_row=0, digits=code_digits(QUANTIZER))
    votes = source.votes(torch.cat([neighbours(e=DARK), neighbours(w=PALE), neighbours(n=SKY, nw=SKY, ne=SKY)]),
                         source.voters([5, 6, 1]), VOCAB)
    assert torch.allclose(votes.sum(-1), torch.ones(3, dtype=votes.dtype))
    assert likeliest(votes[0:1]) == PALE and votes[0, PALE] > 0.9   # left of a dark column: a pale one
    assert likeliest(votes[1:2]) == DARK and votes[1, DARK] > 0.9   # right of a pale one: a dark one
    assert likeliest(votes[2:3]) == SKY and votes[2, SKY] > 0.8     # under sky, near the top: sky


def test_votes_keep_to_the_height_nothing_known_gives_the_rows_codes():
    source = InputNeighbours(striped_input(), first_row=2, digits=code_digits(QUANTIZER))
    blind = torch.full((2, len(OFFSETS)), -1)
    votes = source.votes(blind, source.voters([2, 12]), VOCAB)  # canvas row 2 = input row 0; 12: below it
    assert votes[0, SKY] > 0.9                                      # input rows 0-4: sky, one far row of stripes
    assert votes[1, SKY] < 0.1                                      # its last rows: stripes, one far row of sky
    assert votes[1, DARK] == pytest.approx(votes[1, PALE].item()) and votes[1, DARK] > 0.45
    assert source.window(0) == (0, 5) and source.window(2 + 7) == (3, 8)  # shifted to stay inside


def test_patch_neighbours_read_the_canvas_frame_and_the_patch_own_earlier_tokens():
    source = InputNeighbours(striped_input(), first_row=0, digits=code_digits(QUANTIZER))
    canvas = np.full((8, 12), -1)
    canvas[:, 8:] = 7                                              # the patch to the right is finished
    patches = PatchNeighbours(source, canvas, [(0, 0, 1)], patch_h=4, patch_w=4, vocab=VOCAB)  # columns 4-7
    drawn = torch.tensor([[11, 12, 13, 14] + [-1] * 12])
    first = dict(zip(OFFSETS, patches.neighbours(3, drawn)[0].tolist(), strict=True))   # token (0, 3)
    assert first == {(-1, -1): -1, (-1, 0): -1, (-1, 1): -1, (0, -1): 13, (0, 1): 7, (1, -1): -1, (1, 0): -1,
                     (1, 1): 7}                                    # west drawn, east on the canvas
    drawn[0, 4] = 21
    second = dict(zip(OFFSETS, patches.neighbours(5, drawn)[0].tolist(), strict=True))  # token (1, 1)
    assert second[(-1, -1)] == 11 and second[(-1, 0)] == 12 and second[(0, -1)] == 21 and second[(0, 1)] == -1
    assert torch.allclose(patches(5, drawn), source.votes(patches.neighbours(5, drawn), source.voters([1]), VOCAB))


def test_votes_weigh_the_mean_squared_digit_distance_as_defined():
    """The batched products give the votes of the definition: weights ∝ exp(−d/τ), d the mean over
    the seen neighbours of |mine − theirs|² (MISSING where the voter lacks one) plus ROW_COST per row."""
    from nuwa_inf.infer import neighbour_match as nm

    rng = np.random.default_rng(3)
    known = rng.integers(0, 40, size=(7, 9))
    digits = code_digits(QUANTIZER)
    source = InputNeighbours(known, first_row=1, digits=digits)
    around = torch.from_numpy(rng.integers(-1, 40, size=(3, len(OFFSETS))))
    rows = [1, 4, 9]
    votes = source.votes(around, source.voters(rows), VOCAB)
    padded = np.pad(known, 1, constant_values=-1)
    for i, row in enumerate(rows):
        first, last = source.window(row)
        centre = min(max(row - 1, 0), 6)
        expected = torch.zeros(VOCAB, dtype=torch.float64)
        logits, codes = [], []
        for y in range(first, last):
            for x in range(9):
                apart = []
                for k, (dy, dx) in enumerate(OFFSETS):
                    if around[i, k] < 0:
                        continue
                    theirs = padded[1 + y + dy, 1 + x + dx]
                    mine = digits[around[i, k]]
                    apart.append(nm.MISSING if theirs < 0 else float((mine - digits[theirs]).square().sum()))
                logits.append(-(np.mean(apart) + nm.ROW_COST * abs(y - centre)) / nm.TAU)
                codes.append(known[y, x])
        weights = torch.softmax(torch.tensor(logits, dtype=torch.float64), 0)
        expected.scatter_add_(0, torch.tensor(codes), weights)
        assert torch.allclose(votes[i], expected, atol=1e-5)


def test_mixing_gives_the_votes_their_share_only_where_there_are_any():
    logits = torch.zeros(2, 4)
    mix = torch.tensor([[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    uniforms = torch.tensor([0.8, 0.8])
    plain = pick_tokens(logits, uniforms, 1.0, 0, 1.0)
    mixed = pick_tokens(logits, uniforms, 1.0, 0, 1.0, mix=mix, mix_weight=0.9)
    assert plain.tolist() == [3, 3]
    assert mixed.tolist()[1] == 3                                  # no votes: the model's own draw
    low = pick_tokens(logits, torch.tensor([0.1, 0.1]), 1.0, 0, 1.0, mix=mix, mix_weight=0.9)
    assert low.tolist() == [3, 0]               # code 3 holds 0.9 + 0.1/4 of the mass: u = 0.1 lands on it


def test_the_confidence_share_follows_how_much_the_votes_agree(monkeypatch):
    """Under SHARE = "confidence" votes all for one code take the whole weight, votes split
    evenly over four codes a quarter of it, no votes none; under "flat" every token the weight."""
    from nuwa_inf.infer import neighbour_match
    source = InputNeighbours(striped_input(), first_row=0, digits=code_digits(QUANTIZER))
    patches = PatchNeighbours(source, np.full((8, 12), -1), [(0, 0, 1)], patch_h=4, patch_w=4, vocab=VOCAB)
    votes = torch.zeros(3, VOCAB, dtype=torch.float64)
    votes[0, SKY], votes[1, [SKY, DARK, PALE, 7]] = 1.0, 0.25
    monkeypatch.setattr(neighbour_match, "SHARE", "confidence")
    assert patches.shares(votes, 0.8)[:, 0].tolist() == pytest.approx([0.8, 0.2, 0.0])
    monkeypatch.setattr(neighbour_match, "SHARE", "flat")
    assert patches.shares(votes, 0.8)[:, 0].tolist() == pytest.approx([0.8, 0.8, 0.8])


def extend(model, source, out_dir, name, *extra):
    return extend_kept(model, source, out_dir, name, 640, 192, "--threads", "1", *extra)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_model_dir(tmp_path_factory.mktemp("neighbour_match_model"))


def test_a_job_with_the_match_continues_the_input_codes_and_stays_exact(model_dir, tmp_path):
    """With the match at 0.9 the extension draws the codes the input uses at each height far
    more often than the untrained model alone (which paints most of it in one code), and the
    image still does not depend on the batch."""
    image = np.zeros((192, 128, 3), dtype=np.uint8)
    image[:, :, 1] = np.linspace(0, 255, 192, dtype=np.uint8)[:, None]
    image[:, ::16, 0] = 220
    source = tmp_path / "input.png"
    Image.fromarray(image).save(source)
    plain, plain_tokens = extend(model_dir, source, tmp_path, "plain", "--neighbour-match", "0")
    matched, matched_tokens = extend(model_dir, source, tmp_path, "matched", "--neighbour-match", "0.9")
    one_by_one, _ = extend(model_dir, source, tmp_path, "matched1", "--neighbour-match", "0.9", "--batch", "1")
    assert np.array_equal(matched, one_by_one)
    assert not np.array_equal(plain, matched)

    bundle = load_bundle(model_dir)
    cfg = bundle.transformer.cfg
    pl = replace(place(640, 192, 128, 192, "center", bundle.tokenizer.downsample, cfg.patch_h, cfg.patch_w), edge=2)
    ty0, tx0, ty1, tx1 = pl.known_tokens()
    assert np.array_equal(plain_tokens[ty0:ty1, tx0:tx1], matched_tokens[ty0:ty1, tx0:tx1])

    kept = plain_tokens[ty0:ty1, tx0:tx1]

    def share_of_input_codes(tokens):  # of the left extension's tokens, those the input uses in the same row
        outside = tokens[ty0:ty1, :tx0 - 2]
        return float(np.mean([np.isin(outside[r], kept[r]).mean() for r in range(len(kept))]))

    assert share_of_input_codes(plain_tokens) < 0.4
    assert share_of_input_codes(matched_tokens) > 0.6


def test_extend_votes_by_default_and_not_with_a_prompt(tmp_path_factory, tmp_path):
    """Without a prompt extend's default is DEFAULT_NEIGHBOUR_MATCH; with one (which may ask for
    what the input lacks) the votes are off unless asked for."""
    from nuwa_inf.infer.cli import DEFAULT_NEIGHBOUR_MATCH

    text_model = make_model_dir(tmp_path_factory.mktemp("neighbour_match_text_model"), text_vocab=["snow"])
    image = np.zeros((192, 128, 3), dtype=np.uint8)
    image[:, :, 1] = np.linspace(0, 255, 192, dtype=np.uint8)[:, None]
    image[:, ::16, 0] = 220
    source = tmp_path / "input.png"
    Image.fromarray(image).save(source)

    def run(name, *flags):
        return extend(text_model, source, tmp_path, name, *flags)[1]

    check_on_by_default_without_a_prompt(run, "--neighbour-match", DEFAULT_NEIGHBOUR_MATCH, forced="1")


def test_an_interrupted_job_resumes_to_the_same_image(model_dir, tmp_path, monkeypatch):
    """The votes read the canvas as it stood before each wave and the patch's own tokens: a run
    stopped mid-way and resumed from its last saved wave draws the same image (API)."""
    import nuwa_inf
    from nuwa_inf.infer import engine

    monkeypatch.setattr(engine, "CHECKPOINT_SECONDS", 0.0)
    model = nuwa_inf.load(model_dir, device="cpu")
    image = np.zeros((192, 128, 3), dtype=np.uint8)
    image[:, :, 2] = np.linspace(0, 255, 192, dtype=np.uint8)[:, None]
    image[::24, :, 0] = 200
    straight = model.extend(image, 512, 192, seed=2, neighbour_match=0.7)
    resumed = stopped_then_resumed(partial(model.extend, image, 512, 192, seed=2, neighbour_match=0.7),
                                   tmp_path / "run")
    assert np.array_equal(np.asarray(straight), np.asarray(resumed))
    assert not np.array_equal(np.asarray(straight), np.asarray(model.extend(image, 512, 192, seed=2)))
