"""Keeping a clip moving: a patch is sampled hotter where the frames before it stopped changing.

An animation sampled at the clip temperature (0.3, with persistence) freezes as it goes: on the
video benchmark's held-out stills the share of token places that change from one frame to the
next falls from 0.17–0.31 at the first step to 0.01–0.03 by frame 15, where the real clips keep
changing 0.18–0.21 of them every frame (the video model reads one frame back, so it cannot see
that the scene was moving; each still frame makes the next copy more likely).

With a target rate R (`--keep-motion R`, `ClipSpec.keep_motion`), a patch of frame t ≥ 2 looks at
the frames t−2 → t−1 over its own place and its neighbours (all of them done before it: they are
its context, and theirs) and, if fewer than R of those tokens changed, is sampled at

    temperature = clip(T · (R / change) ** MOTION_GAIN, T, MAX_TEMPERATURE)

A patch whose neighbourhood still moves keeps T. The rule reads only finished tokens, so it is
exact under resume and does not depend on how patches are batched.
"""
from __future__ import annotations

import numpy as np

MOTION_GAIN = 0.5        # how hard a frozen neighbourhood pushes the temperature up
# never hotter. 0.6 for the first video model (stage 7: at 0.5 everywhere its sunset clip flickered past
# 1.5× its real clip). Stage 7b copies frame to frame more surely: at 0.6 the night still moved 0.36×
# its real clip; at 0.9 (with R 0.25) 0.51× / 0.67× on two seeds, flicker ≤ 0.7× everywhere
MAX_TEMPERATURE = 0.9
CHANGE_FLOOR = 1e-3      # a neighbourhood that did not change at all counts as this


def recent_change(tokens: np.ndarray, pos: tuple[int, int, int], patch: tuple[int, int]) -> float | None:
    """Share of token places that changed from frame t−2 to t−1 over patch `pos` = (t, row, col)
    and its 8 neighbours in `tokens` (T, h, w); None for t < 2 or where nothing is known."""
    t, r, c = pos
    if t < 2:
        return None
    ph, pw = patch
    rows = slice(max(0, r - 1) * ph, (r + 2) * ph)
    cols = slice(max(0, c - 1) * pw, (c + 2) * pw)
    last, before = tokens[t - 1, rows, cols], tokens[t - 2, rows, cols]
    known = (last >= 0) & (before >= 0)
    if not known.any():
        return None
    return float((last != before)[known].mean())


def motion_temperature(base: float, target: float, change: float | None) -> float:
    """The temperature of a patch whose neighbourhood changed `change` (None: unknown) for a
    target rate `target` (0: off), rounded to 0.01 so that patches group into few sampling calls."""
    if target <= 0 or change is None or change >= target:
        return base
    raised = base * (target / max(change, CHANGE_FLOOR)) ** MOTION_GAIN
    return round(min(MAX_TEMPERATURE, max(base, raised)), 2)
