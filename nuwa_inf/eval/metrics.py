"""All no-network quality figures of one generated canvas, as one plain dict (JSON-ready apart from nan).

    seam   : seam ratio and its x / y parts (`seams.py`)
    seam_control : the same with the lines moved half a patch (content-only baseline)
    blocks : block-statistics distance vs the reference, its real-vs-real noise floor and
             their ratio, and with two or more references the scene floor and its ratio
             (`block_stats.py`); None without a reference
    drift  : first vs last third of the canvas along x (`block_stats.drift`)
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Iterable, Sequence

import numpy as np

from .block_stats import block_features, compare_blocks, drift
from .seams import Box, check_image, seam_stats


def evaluate(image: np.ndarray, references: Iterable[np.ndarray] = (), patch: int = 256,
             exclude: Box | None = None, repeats: int = 8, seed: int = 0,
             reference_features: Sequence[np.ndarray] = ()) -> dict:
    """Seam ratio, block distance (if references are given) and drift of `image` (H, W, 3) uint8.

    `references` may be a lazy iterable (e.g. a generator that loads one file at a time):
    only their block features are kept; `reference_features` adds images measured beforehand
    with `block_features`, one (n_i, N_FEATURES) array per image. `exclude` (x0, y0, x1, y1) is
    the input region; its blocks are left out of the block figures (see `seam_stats` for the
    seam figure).
    """
    height, width = check_image(image)
    ref_parts = [block_features(ref, patch).features for ref in references] + list(reference_features)
    ref = np.concatenate(ref_parts) if ref_parts else None
    ref_groups = np.concatenate([np.full(len(part), index) for index, part in enumerate(ref_parts)]) \
        if ref_parts else None  # (n_ref,) which image each reference block came from

    seams = seam_stats(image, patch, exclude)
    gen = block_features(image, patch, exclude)
    return {
        "width": width,
        "height": height,
        "patch": patch,
        "exclude": list(exclude) if exclude is not None else None,
        "generated_blocks": len(gen),
        "reference_blocks": 0 if ref is None else len(ref),
        "seam": asdict(seams),
        "seam_control": asdict(seam_stats(image, patch, exclude, offset=patch // 2)),
        "blocks": None if ref is None else compare_blocks(gen.features, ref, repeats, seed, ref_groups),
        "drift": drift(gen, ref, repeats, seed),
    }
