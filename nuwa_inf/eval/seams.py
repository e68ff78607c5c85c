"""Seam ratio: are the 256×256 patch boundaries visible in a generated canvas?

Take every pair of neighbouring pixels. A pair *straddles* a boundary when it crosses a
line x = k·patch (horizontal neighbours) or y = k·patch (vertical neighbours), k ≥ 1.
Per axis,

    ratio_x = mean |ΔL| over horizontal pairs straddling x = k·patch
              ÷ mean |ΔL| over the other horizontal pairs          (ratio_y likewise)

with L the BT.601 luma in [0, 255]; the seam ratio is their mean weighted by the number of
straddling pairs. For a stationary image without seams it is 1.0 (a real image's content
moves it by a few per cent: compare with the control at `offset = patch // 2`); patches
pasted side by side with visible edges give > 1.

Memory: the image is read in column strips (`strip` px wide, one extra column of overlap),
so a 38912×2048 canvas needs a few float32 strips, never a float copy of the whole image.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..colour import luma

Box = tuple[int, int, int, int]  # (x0, y0, x1, y1), half-open, in pixels



@dataclass(frozen=True)
class SeamStats:
    ratio: float  # ratio_x and ratio_y, weighted by their numbers of straddling pairs
    ratio_x: float  # horizontal neighbours across the vertical lines x = k·patch
    ratio_y: float  # vertical neighbours across the horizontal lines y = k·patch
    boundary_mean: float  # mean |ΔL| of straddling pairs
    interior_mean: float  # mean |ΔL| of inside pairs
    boundary_pairs: int


def check_image(image: np.ndarray) -> tuple[int, int]:
    """Return (height, width) of an (H, W, 3) uint8 image, or raise ValueError."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    return image.shape[0], image.shape[1]


def _safe_ratio(num: float, den: float) -> float:
    if den == 0:
        return 1.0 if num == 0 else float("inf")  # a flat image is seamless
    return num / den


def _mean(total: float, count: int) -> float:
    return float(total / count) if count > 0 else float("nan")


def seam_stats(image: np.ndarray, patch: int = 256, exclude: Box | None = None, strip: int = 2048,
               offset: int = 0) -> SeamStats:
    """Seam ratio with its parts; see the module docstring.

    `offset` moves the lines to x, y = k·patch + offset. With offset = patch // 2 the lines
    fall mid-patch, where a patch-wise generator leaves no seams: a control that shows how far
    the image's own content (a horizon, a ridge) moves the ratio away from 1. (Real seams then
    count as inside pairs, so an image with seams has a control a little below 1.)

    `exclude` (x0, y0, x1, y1): pairs with *both* pixels inside this box (the user's input
    region) are left out, so the seam between input and generated pixels still counts.
    Ratios are nan when the image has no boundary (smaller than two patches both ways).
    """
    h, w = check_image(image)
    if patch < 1:
        raise ValueError("patch must be positive")
    # col_sum[x] = Σ_y |L[y, x+1] - L[y, x]| for pair columns x in [0, w-1); row_sum[y] likewise for rows.
    col_sum = np.zeros(max(w - 1, 0), dtype=np.float64)
    row_sum = np.zeros(max(h - 1, 0), dtype=np.float64)
    col_cnt = np.full(max(w - 1, 0), h, dtype=np.int64)
    row_cnt = np.full(max(h - 1, 0), w, dtype=np.int64)
    if exclude is not None:
        ex0, ey0, ex1, ey1 = (max(0, exclude[0]), max(0, exclude[1]), min(w, exclude[2]), min(h, exclude[3]))
        if ex1 <= ex0 or ey1 <= ey0:
            exclude = None
    for x0 in range(0, w, strip):
        x1 = min(x0 + strip, w)
        lum = luma(image[:, x0:min(x1 + 1, w)])  # (h, x1-x0[+1]): one column of overlap
        dx = np.abs(np.diff(lum, axis=1))  # (h, n): pairs (x, x+1) for x in [x0, x0+n)
        dy = np.abs(np.diff(lum[:, : x1 - x0], axis=0))  # (h-1, x1-x0)
        del lum
        if exclude is not None:
            # horizontal pairs with both ends inside: x in [ex0, ex1-1), rows [ey0, ey1)
            a, b = max(ex0, x0) - x0, min(ex1 - 1, x0 + dx.shape[1]) - x0
            if a < b:
                dx[ey0:ey1, a:b] = 0
            # vertical pairs with both ends inside: y in [ey0, ey1-1), columns [ex0, ex1)
            a, b = max(ex0, x0) - x0, min(ex1, x1) - x0
            if a < b:
                dy[ey0:ey1 - 1, a:b] = 0
        col_sum[x0:x0 + dx.shape[1]] = dx.sum(axis=0, dtype=np.float64)
        row_sum += dy.sum(axis=1, dtype=np.float64)
    if exclude is not None:
        col_cnt[ex0:ex1 - 1] -= ey1 - ey0
        row_cnt[ey0:ey1 - 1] -= ex1 - ex0

    on_x = (np.arange(col_sum.size) + 1 - offset) % patch == 0  # pair (x, x+1) with x+1 = k·patch + offset
    on_y = (np.arange(row_sum.size) + 1 - offset) % patch == 0
    bx, ix = col_sum[on_x].sum(), col_sum[~on_x].sum()
    by, iy = row_sum[on_y].sum(), row_sum[~on_y].sum()
    nbx, nix = int(col_cnt[on_x].sum()), int(col_cnt[~on_x].sum())
    nby, niy = int(row_cnt[on_y].sum()), int(row_cnt[~on_y].sum())

    def ratio(b: float, nb: int, i: float, ni: int) -> float:
        if nb == 0 or ni == 0:
            return float("nan")
        return float(_safe_ratio(b / nb, i / ni))

    ratio_x, ratio_y = ratio(bx, nbx, ix, nix), ratio(by, nby, iy, niy)
    # overall: per-axis ratios weighted by their boundary pairs. Pooling the raw sums instead
    # would mix axes in different proportions on and off the lines, and landscapes have far
    # stronger vertical than horizontal gradients (a pooled ratio fell below both parts).
    if nbx and nby:
        overall = (nbx * ratio_x + nby * ratio_y) / (nbx + nby)
    else:
        overall = ratio_x if nbx else ratio_y
    return SeamStats(
        ratio=float(overall),
        ratio_x=ratio_x,
        ratio_y=ratio_y,
        boundary_mean=_mean(bx + by, nbx + nby),
        interior_mean=_mean(ix + iy, nix + niy),
        boundary_pairs=nbx + nby,
    )


def seam_ratio(image: np.ndarray, patch: int = 256, exclude: Box | None = None) -> float:
    """Mean |Δluma| across patch boundaries ÷ inside patches (1.0 = seamless). See `seam_stats`."""
    return seam_stats(image, patch, exclude).ratio
