"""The still's detail added back to its animation's frames (video/still_detail.py)."""
from __future__ import annotations

import numpy as np
import pytest

from nuwa_inf.video.still_detail import add_still_detail


def test_frame_0_becomes_the_still_and_each_step_keeps_its_change():
    rng = np.random.default_rng(0)
    still = rng.integers(0, 256, (8, 12, 3), dtype=np.uint8)
    decoded0 = np.full((8, 12, 3), 128, dtype=np.uint8)                 # what the tokenizer drew of it
    moved = decoded0.copy()
    moved[:4] += 10                                                       # the top half brightened by 10
    out = list(add_still_detail(iter([decoded0, decoded0, moved]), still))
    assert np.array_equal(out[0], still) and np.array_equal(out[1], still)   # nothing moved: the still
    expected = np.clip(still[:4].astype(int) + 10, 0, 255)
    assert np.array_equal(out[2][:4], expected) and np.array_equal(out[2][4:], still[4:])
    assert all(frame.dtype == np.uint8 for frame in out)


def test_a_still_of_another_size_is_refused():
    frames = iter([np.zeros((8, 12, 3), dtype=np.uint8)])
    with pytest.raises(ValueError, match="the still is"):
        next(add_still_detail(frames, np.zeros((8, 16, 3), dtype=np.uint8)))
