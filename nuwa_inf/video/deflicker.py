"""Deflickering a generated clip: a temporal median of three frames, streamed.

A clip sampled token by token flickers: a place whose token changes often changes to a code that
draws nearly the old pixels back in the next frame, so fine detail shimmers back and forth, where
real motion (a cloud drifting, mist rising) goes one way. The median of frames t−1, t, t+1 at
every pixel removes a change that the next frame undoes and keeps one that goes on: for a pixel
that rises steadily it is frame t itself. Frame 0 (an animation's still) and the last frame pass
unchanged. Measured with benchmarks/bench_video.py (README, Video).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np


def temporal_median(frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """(H, W, 3) uint8 frames → the same number of frames, interior ones the per-pixel median of
    themselves and their two neighbours; holds three frames at a time."""
    window: list[np.ndarray] = []
    for frame in frames:
        window.append(frame)
        if len(window) == 1:
            yield frame                                       # frame 0 as it is
        elif len(window) == 3:
            yield np.median(np.stack(window), axis=0).astype(np.uint8)
            window.pop(0)
    if len(window) == 2:
        yield window[1]                                       # the last frame as it is
