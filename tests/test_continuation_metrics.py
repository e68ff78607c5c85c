"""Continuation figures against the true scroll: each one is 0 (or 1) for the truth and fails when it should."""
from __future__ import annotations

import numpy as np
import pytest

from nuwa_inf.data.procedural import render_scroll
from nuwa_inf.eval.continuation import (
    FLAT_STD,
    WindowIndex,
    carry_distances,
    carry_features,
    continuation_figures,
    copy_blocks,
    copy_share,
    truth_reference,
)

W, H, PIECE_W = 2048, 512, 512
X0 = (W - PIECE_W) // 2 // 256 * 256
PIECE = (X0, X0 + PIECE_W)
STYLE = {"palette": "blue-green", "time": "day", "snow": False, "water": "river", "mist": True, "trees": "pines"}


@pytest.fixture(scope="module")
def scrolls() -> dict[str, np.ndarray]:
    return {
        "truth": render_scroll(W, H, seed=95001, attrs=STYLE),
        "same_style": render_scroll(W, H, seed=95002, attrs=STYLE),
        "unrelated": [render_scroll(W, H, seed=96001 + i, attrs=attrs) for i, attrs in enumerate([
            {"palette": "ink", "time": "sunset"}, {"palette": "blue-green", "time": "night"},
            {"palette": "ink", "time": "day", "snow": True}])],
    }


@pytest.fixture(scope="module")
def ref(scrolls):
    return truth_reference(scrolls["truth"], PIECE, scrolls["unrelated"])


def outside_replaced(truth: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """The truth with every column outside the piece taken from `outside`."""
    image = outside.copy()
    image[:, PIECE[0]:PIECE[1]] = truth[:, PIECE[0]:PIECE[1]]
    return image


def test_the_truth_scores_perfect_against_itself(scrolls, ref):
    figures = continuation_figures(scrolls["truth"], ref)
    assert figures["carry"] < 1e-6 and figures["layout"] == 0  # carry: the square root of a rounding error
    assert figures["border_vs_truth"] == 1
    assert figures["copy"]["share"] < 0.02  # its grain never repeats the piece's exactly
    assert figures["copy"]["checked"] > 100


def test_an_unrelated_scroll_scores_carry_and_layout_near_one(scrolls, ref):
    # the yardstick's own scrolls average exactly 1; a further one of another style lands near it
    carries = [continuation_figures(u, ref, copy_sample=16)["carry"] for u in scrolls["unrelated"]]
    assert np.mean(carries) == pytest.approx(1.0)
    other = render_scroll(W, H, seed=96009, attrs={"palette": "ink", "time": "night"})
    figures = continuation_figures(other, ref, copy_sample=16)
    assert 0.5 < figures["carry"] < 3 and 0.5 < figures["layout"] < 3
    same = continuation_figures(scrolls["same_style"], ref, copy_sample=16)
    assert same["carry"] < 0.5 * figures["carry"] and same["layout"] < 0.7 * figures["layout"]


def test_carry_sees_blur_not_only_colour(scrolls, ref):
    # a washed-out continuation in the right colours: every 8×8 cell of the truth replaced by its mean
    truth = scrolls["truth"]
    cells = truth.reshape(H // 8, 8, W // 8, 8, 3).mean(axis=(1, 3), keepdims=True)
    blurred = np.broadcast_to(cells, (H // 8, 8, W // 8, 8, 3)).reshape(H, W, 3).astype(np.uint8)
    floor = continuation_figures(scrolls["same_style"], ref, copy_sample=16)
    figures = continuation_figures(outside_replaced(truth, blurred), ref, copy_sample=16)
    assert figures["carry"] > 2 * floor["carry"]
    assert figures["carry_parts"]["texture"] > 3 * floor["carry_parts"]["texture"]


def test_layout_sees_things_in_the_wrong_place(scrolls, ref):
    # the true scroll upside down: every colour present, none where it belongs
    flipped = outside_replaced(scrolls["truth"], scrolls["truth"][::-1])
    figures = continuation_figures(flipped, ref, copy_sample=16)
    assert np.all(carry_distances(carry_features(flipped, PIECE), ref.features) > 0)
    assert figures["layout"] > 2 * continuation_figures(scrolls["same_style"], ref, copy_sample=16)["layout"]


def test_a_hard_edge_at_the_piece_makes_border_large(scrolls, ref):
    truth = scrolls["truth"]
    brighter = np.clip(truth.astype(np.int16) + 60, 0, 255).astype(np.uint8)
    figures = continuation_figures(outside_replaced(truth, brighter), ref, copy_sample=16)
    assert figures["border"] > 3 * figures["border_truth"]
    assert figures["border_vs_truth"] > 3
    assert figures["border_detail"]["left"]["ratio"] > 3 and figures["border_detail"]["right"]["ratio"] > 3


def test_pasted_windows_of_the_piece_score_as_copies(scrolls, ref):
    # the generated region tiled with 48-px windows cut from the piece at random (not grid-aligned) offsets
    truth = scrolls["truth"]
    rng = np.random.default_rng(0)
    pasted = truth.copy()
    for x in [*range(0, PIECE[0], 48), *range(PIECE[1], W, 48)]:
        for y in range(0, H, 48):
            sy, sx = rng.integers(0, H - 48), rng.integers(PIECE[0], PIECE[1] - 48)
            h = min(48, H - y)  # the spans are 768 = 16 × 48 px wide; the height is not a multiple
            pasted[y:y + h, x:x + 48] = truth[sy:sy + h, sx:sx + 48]
    copy = continuation_figures(pasted, ref, copy_sample=256)["copy"]
    # 16-px grid blocks lie wholly inside one tile unless they straddle a tile edge (1 in 3 do)
    assert copy["share"] > 0.5
    assert copy_share(truth, PIECE, [truth[:, PIECE[0]:PIECE[1]]], max_blocks=256)["share"] < 0.02


def test_copy_sample_zero_skips_the_copy_figure_and_nothing_else(scrolls, ref):
    same = scrolls["same_style"]
    measured = continuation_figures(same, ref, copy_sample=16)
    skipped = continuation_figures(same, ref, copy_sample=0)
    assert np.isnan(skipped["copy"]["share"]) and skipped["copy"]["checked"] == 0
    assert measured["copy"]["checked"] == 16
    assert (skipped["carry"], skipped["layout"], skipped["border"]) == (
        measured["carry"], measured["layout"], measured["border"])


def test_a_dark_scroll_with_faint_grain_is_not_called_a_copy():
    # night scenes: blocks find windows of the piece within 1.5 levels that are no copies (a fixed
    # threshold called half of a true night scroll copied); the threshold follows each block's texture
    # at full height (the scene's features are large, so 16-px blocks are smooth); narrow to stay fast
    night = render_scroll(1536, 2048, seed=95005, attrs={"palette": "blue-green", "time": "night", "mist": False})
    piece = (512, 1024)
    copy = copy_share(night, piece, [night[:, 512:1024]], max_blocks=256)
    assert copy["checked"] == 256 and copy["share"] < 0.03
    blocks, stds, _ = copy_blocks(night, piece)
    chosen = blocks[np.flatnonzero(stds >= FLAT_STD)[:: 16]]
    assert np.mean(WindowIndex(night[:, 512:1024]).best_mad(chosen) < 1.5) > 0.2  # what a fixed threshold saw


def test_the_fast_copy_search_agrees_with_brute_force():
    source = render_scroll(160, 96, seed=95003, attrs=STYLE)
    rng = np.random.default_rng(1)
    copies = [source[y:y + 16, x:x + 16] for y, x in rng.integers(0, 80, (12, 2))]
    near = [np.clip(c.astype(np.int16) + rng.integers(-1, 2, c.shape), 0, 255).astype(np.uint8) for c in copies[:6]]
    others = [render_scroll(16, 16, seed=95004, x0=int(x)) for x in rng.integers(0, 4000, 6)]
    blocks = np.stack(copies + near + others)
    index = WindowIndex(source)
    fast, slow = index.best_mad(blocks), index.exhaustive_best_mad(blocks)
    assert np.all(fast[:12] == 0) and np.all(fast[12:18] < 1.5)
    assert np.all(fast >= slow - 1e-9)
    assert np.array_equal(fast < 1.5, slow < 1.5)
