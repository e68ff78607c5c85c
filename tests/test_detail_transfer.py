"""Detail transfer (infer/detail_transfer.py): a block takes the lost detail of the bank block that
looks most alike near its height, neighbours joined along quilting cuts; the filter does not depend on
the decode tiling, and extend applies it by default without a prompt, its bank kept for a resume."""
from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from conftest import smooth_image
from model_fixtures import (
    check_filter_ignores_the_tiling,
    check_pixel_filter_by_default,
    make_model_dir,
    stopped_then_resumed,
)
from nuwa_inf.infer.detail import blur_planes, pixel_planes
from nuwa_inf.infer.detail_transfer import (
    BANK_FILE,
    OVERLAP,
    REACH,
    RING,
    SIGMA,
    DetailBank,
    build_bank,
    transfer_detail,
)

F = 16


def grainy_pair(seed: int, height: int = 128, width: int = 192) -> tuple[np.ndarray, np.ndarray]:
    """(original, decoded): a smooth picture with grain, and the same picture without it — what a
    decoder that cannot draw grain gives back."""
    smooth = (40 + smooth_image(height, width, seed).astype(np.float32) * 0.6)
    grain = np.random.default_rng(seed).normal(0, 6, (height, width, 1)).repeat(3, axis=2)
    return (np.clip(smooth + grain, 0, 255).round().astype(np.uint8),
            smooth.round().astype(np.uint8))


def high_pass(pixels: np.ndarray) -> np.ndarray:
    planes = pixel_planes(pixels)
    return (planes - blur_planes(planes, SIGMA))[:, 0].permute(1, 2, 0).numpy()


def test_the_input_itself_gets_its_own_detail_back():
    original, decoded = grainy_pair(0)
    bank = build_bank(original, decoded, first_row=3, block=F)
    # the bank: all but the outermost blocks of the 8 × 12, each with its surround in the detail
    assert bank.descriptors.shape == (6 * 10, 48) and bank.detail.shape == (8 * F, 12 * F, 3)
    assert list(bank.rows[:11]) == [4] * 10 + [5] and list(bank.corners[0]) == [F, F]
    restored = transfer_detail(decoded, (3 * F, 5 * F), bank)
    # each inner block finds itself (the smooth picture's blocks all differ), and neighbours taken
    # from neighbours agree on their overlaps: the grain comes back, seamless, two blocks in
    inner = (slice(2 * F, -2 * F), slice(2 * F, -2 * F))
    error_before = np.abs(high_pass(decoded) - high_pass(original))[inner].mean()
    error_after = np.abs(high_pass(restored) - high_pass(original))[inner].mean()
    assert error_before > 3 and error_after < 0.1 * error_before
    assert transfer_detail(decoded, (3 * F, 0), bank, strength=0.0) is decoded


def test_a_block_reads_only_bank_rows_near_its_height():
    original, decoded = grainy_pair(1)
    bank = build_bank(original, decoded, first_row=0, block=F)
    # a uniform grey window: every block's nearest bank block is the bank's most grey-like one among
    # the rows it may read; far below the bank, those are its last rows. The window's top-left block
    # has no neighbour above or to its left: its corner away from the cuts is its source's own
    grey = np.full((F, 4 * F, 3), 110, dtype=np.uint8)
    added = transfer_detail(grey, (40 * F, 0), bank).astype(np.float32) - grey
    clear = F - 2 * OVERLAP

    def corner(i):
        y, x = bank.corners[i]
        return tuple(bank.detail[y:y + clear, x:x + clear].reshape(-1))

    last_rows = {corner(i) for i in np.flatnonzero(bank.rows >= bank.rows[-1] - REACH)}
    assert tuple(np.round(added[:clear, :clear]).astype(np.int8).reshape(-1)) in last_rows
    # the same window at the bank's top rows reads other blocks
    assert not np.array_equal(added, transfer_detail(grey, (0, 0), bank).astype(np.float32) - grey)


def test_the_bank_survives_its_file(tmp_path):
    bank = build_bank(*grainy_pair(2), first_row=1, block=F)
    bank.save(tmp_path / BANK_FILE)
    back = DetailBank.load(tmp_path / BANK_FILE)
    for name in ("descriptors", "rows", "corners", "detail"):
        assert np.array_equal(getattr(bank, name), getattr(back, name))
    assert back.block == F


def test_a_bank_needs_whole_blocks_of_one_size_and_may_be_empty():
    original, decoded = grainy_pair(3)
    with pytest.raises(ValueError):
        build_bank(original[:100], decoded[:100], 0, F)
    with pytest.raises(ValueError):
        build_bank(original, decoded[:, :176], 0, F)
    small = build_bank(original[:2 * F], decoded[:2 * F], 0, F)   # no inner blocks: an empty bank adds nothing
    assert len(small.rows) == 0 and transfer_detail(decoded, (0, 0), small) is decoded


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_model_dir(tmp_path_factory.mktemp("detail_transfer_model"))


def test_the_transferred_decode_does_not_depend_on_the_tiling(model_dir):
    bank = build_bank(*grainy_pair(4, 96, 160), first_row=2, block=16)  # the tiny tokenizer's 16 px
    check_filter_ignores_the_tiling(model_dir, lambda pixels, origin: transfer_detail(pixels, origin, bank), ring=RING)


def test_extend_transfers_detail_by_default_without_a_prompt_and_keeps_its_bank(tmp_path_factory, tmp_path):
    """Without a prompt extend's default is DEFAULT_DETAIL_TRANSFER, its bank built once and kept in
    the run directory; with a prompt it is off unless asked for. Tokens never change: only pixels."""
    from nuwa_inf.infer.cli import DEFAULT_DETAIL_TRANSFER

    check_pixel_filter_by_default(tmp_path_factory, tmp_path, grainy_pair(5, 192, 128)[0], "--detail-transfer",
                                  DEFAULT_DETAIL_TRANSFER, BANK_FILE)


def test_an_interrupted_job_resumes_to_the_same_image(model_dir, tmp_path, monkeypatch):
    """A run stopped mid-way and resumed reads its kept bank: the same image as one run straight
    through (API)."""
    import nuwa_inf
    from nuwa_inf.infer import engine

    monkeypatch.setattr(engine, "CHECKPOINT_SECONDS", 0.0)
    model = nuwa_inf.load(model_dir, device="cpu")
    image = grainy_pair(6, 192, 128)[0]
    job = partial(model.extend, image, 512, 192, seed=4, detail_transfer=1.0)
    straight = job()
    resumed = stopped_then_resumed(job, tmp_path / "run")
    assert np.array_equal(np.asarray(straight), np.asarray(resumed))
    assert (tmp_path / "run" / BANK_FILE).is_file()
