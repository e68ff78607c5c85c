"""Quality figures per column window: where along a long canvas do seams, distance and drift grow?

The canvas is cut into windows of `window` px of columns, [x0, x0 + window), x0 = 0, window, ...
(`window` a multiple of the patch, so each window holds whole block columns). Per window:

    seam      seam ratio (`seams.seam_stats`) of the columns [x0, x0 + window + 1): the window's
              inner vertical patch lines, the one at its right edge and its horizontal lines
    distance  block distance (`block_stats`, squared Fréchet, features standardised by the
              reference) of the window's blocks to all reference blocks; None without a reference
    drift     block distance of the window's blocks to the blocks of the canvas's first third
              (standardised by that third), as `block_stats.drift` measures without a reference

A window has only a few blocks (8 on a 2048-px-high canvas with 256-px patches), so a distance
carries a large small-sample bias; `window_floor` is the same figure for random sets of as
many *reference* blocks against the other reference blocks, the level a real window would
reach. Windows with fewer than two measured blocks (e.g. inside --exclude) are nan.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .block_stats import MIN_BLOCKS, BlockSet, FeatureScale, block_features, frechet_distance
from .seams import Box, check_image, seam_stats

MIN_WINDOW_BLOCKS = 8  # the default window is wide enough for this many blocks


@dataclass
class ColumnProfile:
    x0: np.ndarray  # (n,) left edge of each window, px
    window: int  # px
    seam: np.ndarray  # (n,) seam ratio
    distance: np.ndarray | None  # (n,) d² to the reference blocks; None without a reference
    window_floor: float  # d² of a real window of as many blocks (nan without a reference)
    drift: np.ndarray  # (n,) d² to the canvas's first third
    blocks: np.ndarray  # (n,) blocks measured per window


def default_window(height: int, patch: int) -> int:
    """The narrowest multiple of `patch` whose windows hold at least MIN_WINDOW_BLOCKS whole blocks."""
    rows = max(1, height // patch)
    return patch * -(-MIN_WINDOW_BLOCKS // rows)


def column_profile(image: np.ndarray, patch: int = 256, window: int | None = None, exclude: Box | None = None,
                   reference_features: np.ndarray | None = None, seed: int = 0, repeats: int = 8,
                   blocks: BlockSet | None = None) -> ColumnProfile:
    """Per-window seam ratio, distance to the reference and drift of `image` (H, W, 3) uint8.

    `reference_features` (n_ref, N_FEATURES): the blocks of all references; `blocks`: the
    canvas's own block features if already measured (`block_features(image, patch, exclude)`).
    """
    height, width = check_image(image)
    window = window or default_window(height, patch)
    if window <= 0 or window % patch:
        raise ValueError(f"window {window} must be a positive multiple of the patch {patch}")
    x0s = np.arange(0, width, window)
    gen = blocks if blocks is not None else block_features(image, patch, exclude)
    members = [(gen.x >= x0) & (gen.x < x0 + window) for x0 in x0s]  # which blocks lie in each window

    seam = np.array([seam_stats(image[:, x0:min(x0 + window + 1, width)], patch,
                                _shift(exclude, x0)).ratio for x0 in x0s])

    distance, floor = None, float("nan")
    if reference_features is not None and len(reference_features) >= 2 * MIN_BLOCKS:
        scale = FeatureScale.fit(reference_features)
        ref = scale.apply(reference_features)
        distance = np.array([_distance(scale.apply(gen.features[m]), ref) for m in members])
        typical = int(np.median([m.sum() for m in members])) if members else 0
        floor = _window_floor(ref, typical, repeats, seed)

    drift = np.full(len(x0s), np.nan)
    columns = np.unique(gen.x)
    if columns.size >= 3:
        first = gen.features[np.isin(gen.x, np.array_split(columns, 3)[0])]
        if len(first) >= MIN_BLOCKS:
            scale = FeatureScale.fit(first)
            anchor = scale.apply(first)
            drift = np.array([_distance(scale.apply(gen.features[m]), anchor) for m in members])
    return ColumnProfile(x0=x0s, window=window, seam=seam, distance=distance, window_floor=floor, drift=drift,
                         blocks=np.array([int(m.sum()) for m in members]))


def _distance(window_blocks: np.ndarray, anchor: np.ndarray) -> float:
    return frechet_distance(window_blocks, anchor) if len(window_blocks) >= MIN_BLOCKS else float("nan")


def _window_floor(ref: np.ndarray, size: int, repeats: int, seed: int) -> float:
    """Mean d²(`size` random reference blocks, the other reference blocks) over `repeats` draws."""
    if size < MIN_BLOCKS or len(ref) - size < MIN_BLOCKS:
        return float("nan")
    rng = np.random.default_rng([seed, 3])
    distances = []
    for _ in range(repeats):
        held = np.zeros(len(ref), dtype=bool)
        held[rng.choice(len(ref), size=size, replace=False)] = True
        distances.append(frechet_distance(ref[held], ref[~held]))
    return float(np.mean(distances))


def _shift(exclude: Box | None, x0: int) -> Box | None:
    """`exclude` in the coordinates of a crop that starts at column x0."""
    if exclude is None:
        return None
    return exclude[0] - x0, exclude[1], exclude[2] - x0, exclude[3]
