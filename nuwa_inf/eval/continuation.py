"""Continuation figures: how close is a generated region to the *true* continuation of its input?

A procedural scroll is known everywhere, so cutting a piece out of it and extending the piece
back to full width gives an answer key: the scroll itself. Every figure here compares the
generated region (all columns outside the piece, full height) with the true scroll at the same
place. The piece spans the whole height: `piece = (x0, x1)`, its columns.

    carry   Does the continuation keep the input's style (palette, time of day, texture)?
            Each 256×256 block of the generated region (at a 128-px stride, from the piece's
            edges outward) becomes 30 numbers: mean and std of Y, Cb, Cr (BT.601, 8-bit
            levels) over the block and over each of its four 128×128 quadrants (the quadrants
            say how colour is laid out inside a block: sky over ridge, a lit and a shaded face).
            Features are standardised by the truth's blocks (each divided by its std over the
            truth's blocks, floored at 2 levels so a feature the truth holds constant, such as
            an ink scroll's chroma, does not blow up), Gaussians are fitted (Ledoit–Wolf
            shrunk covariances, `block_stats.frechet_distance`) and

                carry = d²(generated, truth) / mean over unrelated scrolls u of d²(u, truth)

            0 = the truth's block statistics, 1 = no closer than a scroll of another, random
            style. Position-free: a continuation with the right blocks in the wrong places
            scores well here and badly on `layout`.
    layout  Are things where they should be (sky on top, water low, the ridge line's height)?
            Each 256-px-wide stretch of the generated region (from the piece's edges outward)
            is reduced to the mean Y, Cb, Cr of each 32-px row band; layout = mean |Δ| of these
            against the truth's ÷ the same for the unrelated scrolls. `layout_by_distance`
            gives the unnormalised error per 1024 px of distance from the piece.
    border  Is the piece's edge visible? Mean |horizontal luma gradient| over the pairs of
            neighbouring columns at and within two columns of each edge (x−3|x−2 … x+1|x+2 for
            an edge at x: the pair x−1|x straddles it), ÷ the same five-pair window at nine
            control positions 192, 208, …, 320 px into the generated region. The controls
            sit at whole multiples of 16 px from the edge, the tokenizer's grid, so token
            seams weigh the same in both (a decoded image has faint ones every 16 px). 1.0 =
            the edge looks like any other column; report it beside the truth's own value at
            the same columns (the scene's content moves it a little), and their ratio.
    copy    Did the method paste the input? Non-flat 16×16 blocks of the generated region (luma
            std ≥ `FLAT_STD`: flat sky and paper match anything) on the 16-px grid, up to
            `max_blocks` of them drawn at random, are looked up among *all* 16×16 windows of
            the source images (the piece, and optionally its tokenizer round trip, where a
            model that copies tokens would land), at any pixel offset. A block is a copy when
            its best window's mean |Δ| over the 16×16×3 values is below `COPY_MAD` (1.5 levels).
            copy = the share of such blocks. PatchMatch, which pastes source patches, scores
            high; the true scroll, whose paper grain and brushwork never repeat exactly, ~0.
            Why 1.5: on a 3072×512 ink scroll the truth's blocks find windows of the piece at
            a mean |Δ| of ≥ 1.7 (1st percentile; median 3–9 by texture): its grain alone keeps
            them apart by ~2 levels, so a 3-level threshold called 10 % of the truth a copy.
            PatchMatch's blocks sit at 0 (median), 90 % of them below 1.5.

            Search (exact check, approximate candidates): every source window at a 4-px grid
            position gets a 48-number descriptor (its 4×4 cells' mean RGB, i.e. a 4×4 window of
            the quarter-resolution source); a block's descriptor is its own 4×4 cell means. A
            matrix product gives each block its `CANDIDATES` nearest grid windows; around each,
            every pixel offset within ±2 px (so any position is reached from its nearest grid
            point) is checked exactly at full resolution. The cell-mean descriptor of a
            near-exact copy is itself within 1.5 levels of its source's (a mean of differences
            is at most the mean |difference|), so a true copy ranks among the nearest unless
            the source repeats itself (then another near-exact window is found instead).
            A brute-force search over every window (`copy_share(..., exhaustive=True)`, slow)
            is kept to check this: on 30 truth and 30 PatchMatch blocks of that scroll both
            searches made the same copy / not-copy call for every block.

Memory: blocks and bands are cut from column strips; the copy search holds the source's
descriptors (48 floats per 16 px², ~12 MB for a 2048² piece) and one (blocks × 4096) distance
chunk at a time. Everything is numpy.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..colour import channel_planes
from .block_stats import frechet_distance
from .seams import check_image, luma

Piece = tuple[int, int]  # (x0, x1): the input's columns, half-open; it spans the full height

CARRY_BLOCK = 256     # px; blocks at a stride of half that, quadrants of half that
FEATURE_FLOOR = 2.0   # levels: the smallest std a carry feature is divided by
LAYOUT_STRETCH = 256  # px wide
LAYOUT_BAND = 32      # px high
BORDER_REACH = 2      # pair columns on each side of the edge's own pair
BORDER_CONTROLS = tuple(range(192, 321, 16))  # px from the edge into the generated region
COPY_BLOCK = 16       # px
COPY_MAD = 1.5        # levels: mean |Δ| below which a block is a copy
FLAT_STD = 6.0        # levels of luma std: blocks below are flat and left out of `copy`
CANDIDATES = 8        # nearest grid windows per block that are checked exactly
GRID = 4              # px between the descriptor's grid windows (= its cell size)


def generated_spans(width: int, piece: Piece) -> list[tuple[int, int, int]]:
    """The generated region's column spans as (start, stop, direction): direction −1 for the span
    left of the piece (its blocks are laid out leftwards from the piece's edge), +1 right of it."""
    x0, x1 = piece
    if not 0 <= x0 < x1 <= width:
        raise ValueError(f"piece columns {piece} do not fit in a width of {width}")
    spans = []
    if x0 > 0:
        spans.append((0, x0, -1))
    if x1 < width:
        spans.append((x1, width, 1))
    return spans


def _starts(span: tuple[int, int, int], size: int, step: int) -> list[int]:
    """Left edges of windows `size` wide at `step` inside a span, counted from the piece's edge outward."""
    start, stop, direction = span
    count = (stop - start - size) // step + 1
    if count <= 0:
        return []
    if direction > 0:
        return [start + k * step for k in range(count)]
    return [stop - size - k * step for k in range(count)]


def _ycbcr_planes(pixels: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8 → (3, h, w) float32 Y, Cb, Cr in 8-bit levels."""
    r, g, b = (pixels[..., c].astype(np.float32) for c in range(3))
    return np.stack(channel_planes(r, g, b))


# ---------------------------------------------------------------- carry


def carry_features(image: np.ndarray, piece: Piece, block: int = CARRY_BLOCK) -> np.ndarray:
    """(n, 30) float64: per block of the generated region, mean and std of Y, Cb, Cr over the block
    and its quadrants TL, TR, BL, BR (module docstring), block-major in that order."""
    height, width = check_image(image)
    cell = block // 2
    rows = height // cell - 1  # block origins at y = k·cell while y + block ≤ height
    feats = []
    for span in generated_spans(width, piece):
        for x in _starts(span, block, cell):
            planes = _ycbcr_planes(image[: (rows + 1) * cell, x:x + block])  # (3, (rows+1)·cell, block)
            cells = planes.reshape(3, rows + 1, cell, 2, cell)               # (c, cell row, y, cell col, x)
            s1 = cells.sum(axis=(2, 4), dtype=np.float64)                    # (3, rows+1, 2)
            s2 = (cells.astype(np.float64) ** 2).sum(axis=(2, 4))
            for r in range(rows):
                parts = [(s1[:, r:r + 2].sum(axis=(1, 2)), s2[:, r:r + 2].sum(axis=(1, 2)), 4 * cell * cell)]
                parts += [(s1[:, r + i, j], s2[:, r + i, j], cell * cell) for i in (0, 1) for j in (0, 1)]
                row = []
                for total, squares, count in parts:
                    mean = total / count
                    row += [*mean, *np.sqrt(np.maximum(squares / count - mean**2, 0.0))]
                feats.append(row)
    return np.asarray(feats, dtype=np.float64).reshape(-1, 30)


def carry_distance(features: np.ndarray, truth_features: np.ndarray) -> float:
    """d² between two sets of carry features, standardised by the truth's (module docstring)."""
    scale = np.maximum(truth_features.std(axis=0), FEATURE_FLOOR)
    centre = truth_features.mean(axis=0)
    return frechet_distance((features - centre) / scale, (truth_features - centre) / scale)


# ---------------------------------------------------------------- layout


@dataclass
class LayoutProfile:
    """Mean Y, Cb, Cr per (stretch, row band) of the generated region."""

    bands: np.ndarray     # (stretches, band rows, 3) float64, 8-bit levels
    distance: np.ndarray  # (stretches,) px from the piece's edge to the stretch's near side


def layout_profile(image: np.ndarray, piece: Piece, stretch: int = LAYOUT_STRETCH,
                   band: int = LAYOUT_BAND) -> LayoutProfile:
    height, width = check_image(image)
    band_rows = height // band
    out, distance = [], []
    for span in generated_spans(width, piece):
        for x in _starts(span, stretch, stretch):
            planes = _ycbcr_planes(image[: band_rows * band, x:x + stretch])  # (3, band_rows·band, stretch)
            out.append(planes.reshape(3, band_rows, band * stretch).mean(axis=2, dtype=np.float64).T)
            distance.append(piece[0] - (x + stretch) if span[2] < 0 else x - piece[1])
    return LayoutProfile(np.asarray(out).reshape(-1, band_rows, 3), np.asarray(distance, np.int64))


def layout_error(profile: LayoutProfile, truth: LayoutProfile) -> float:
    """Mean |Δ| (levels) between two profiles of the same region."""
    if profile.bands.shape != truth.bands.shape:
        raise ValueError(f"layout profiles differ in shape: {profile.bands.shape} vs {truth.bands.shape}")
    return float(np.abs(profile.bands - truth.bands).mean())


def layout_by_distance(profile: LayoutProfile, truth: LayoutProfile, bin_px: int = 1024) -> dict[str, float]:
    """Mean |Δ| per `bin_px` of distance from the piece: {'0-1024': 3.1, '1024-2048': 5.0, ...}."""
    err = np.abs(profile.bands - truth.bands).mean(axis=(1, 2))
    out = {}
    for b in np.unique(profile.distance // bin_px):
        out[f"{b * bin_px}-{(b + 1) * bin_px}"] = float(err[profile.distance // bin_px == b].mean())
    return out


# ---------------------------------------------------------------- border


def border_stats(image: np.ndarray, piece: Piece) -> dict:
    """Edge gradient ÷ control gradient at the piece's left and right edges (module docstring)."""
    height, width = check_image(image)
    offsets = np.arange(-BORDER_REACH, BORDER_REACH + 1)  # pair p is columns (p−1, p)

    def window(at: int) -> float | None:
        lo, hi = at - BORDER_REACH - 1, at + BORDER_REACH + 1
        if lo < 0 or hi > width:
            return None
        lum = luma(image[:, lo:hi])
        return float(np.abs(np.diff(lum, axis=1)).mean())  # 2·reach+1 pairs, full height

    out: dict = {"pairs": len(offsets)}
    edges, controls = [], []
    for name, edge, direction in (("left", piece[0], -1), ("right", piece[1], 1)):
        if not 0 < edge < width:
            continue
        edge_grad = window(edge)
        control = [window(edge + direction * d) for d in BORDER_CONTROLS]
        control = [c for c in control if c is not None]
        if edge_grad is None or not control:
            continue
        out[name] = {"edge": edge_grad, "control": float(np.mean(control)),
                     "ratio": _ratio(edge_grad, float(np.mean(control)))}
        edges.append(edge_grad)
        controls.append(float(np.mean(control)))
    out["ratio"] = _ratio(float(np.mean(edges)), float(np.mean(controls))) if edges else float("nan")
    return out


# ---------------------------------------------------------------- copy


def _cell_means(pixels: np.ndarray, cell: int = GRID) -> np.ndarray:
    """(h, w, 3) uint8 → (h // cell, w // cell, 3) float32 cell means."""
    h, w = pixels.shape[0] // cell * cell, pixels.shape[1] // cell * cell
    return pixels[:h, :w].reshape(h // cell, cell, w // cell, cell, 3).mean(axis=(1, 3), dtype=np.float32)


def _grid_descriptors(source: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Descriptors of the source's 16×16 windows at 4-px grid positions: ((n, 48) float32, (n, 2) y, x px)."""
    k = COPY_BLOCK // GRID
    quarter = _cell_means(source)                             # (hq, wq, 3)
    windows = sliding_window_view(quarter, (k, k), axis=(0, 1))  # (hq−k+1, wq−k+1, 3, k, k)
    ny, nx = windows.shape[:2]
    desc = np.ascontiguousarray(windows.transpose(0, 1, 3, 4, 2)).reshape(ny * nx, k * k * 3)
    yx = np.stack(np.meshgrid(np.arange(ny) * GRID, np.arange(nx) * GRID, indexing="ij"), -1).reshape(-1, 2)
    return desc, yx


def _nearest_grid_windows(queries: np.ndarray, desc: np.ndarray, count: int, chunk: int = 4096) -> np.ndarray:
    """(m, count) indices into desc of the nearest descriptors (L2) of each query."""
    q_norm = (queries.astype(np.float64) ** 2).sum(axis=1).astype(np.float32)[:, None]  # (m, 1)
    d_norm = (desc.astype(np.float64) ** 2).sum(axis=1).astype(np.float32)[None, :]     # (1, n)
    best_d = np.full((len(queries), 0), np.inf, np.float32)
    best_i = np.zeros((len(queries), 0), np.int64)
    for lo in range(0, len(desc), chunk):
        part = desc[lo:lo + chunk]
        d = q_norm + d_norm[:, lo:lo + chunk] - 2 * queries @ part.T  # (m, chunk) squared L2
        d = np.concatenate([best_d, d], axis=1)
        idx = np.concatenate([best_i, np.broadcast_to(np.arange(lo, lo + len(part)), (len(queries), len(part)))], 1)
        keep = np.argpartition(d, count - 1, axis=1)[:, :count] if d.shape[1] > count else \
            np.broadcast_to(np.arange(d.shape[1]), d.shape)
        best_d = np.take_along_axis(d, keep, axis=1)
        best_i = np.take_along_axis(idx, keep, axis=1)
    return best_i


def _best_mad_near(block: np.ndarray, windows: np.ndarray, yx: np.ndarray, reach: int) -> float:
    """Smallest mean |Δ| between `block` (16, 16, 3) and source windows at yx ± reach px (all offsets)."""
    ny, nx = windows.shape[:2]
    d = np.arange(-reach, reach + 1)
    ys = np.clip(yx[:, 0, None, None] + d[None, :, None], 0, ny - 1)  # (c, 2r+1, 1)
    xs = np.clip(yx[:, 1, None, None] + d[None, None, :], 0, nx - 1)  # (c, 1, 2r+1)
    ys, xs = np.broadcast_arrays(ys, xs)
    found = windows[ys.ravel(), xs.ravel(), 0]                      # (c·(2r+1)², 16, 16, 3)
    mad = np.abs(found.astype(np.int16) - block.astype(np.int16)).mean(axis=(1, 2, 3))
    return float(mad.min())


def _exhaustive_best_mad(block: np.ndarray, windows: np.ndarray) -> float:
    """Smallest mean |Δ| between `block` and every 16×16 window of the source (slow: tests only)."""
    best = np.inf
    for y in range(windows.shape[0]):
        row = windows[y, :, 0].astype(np.int16)                     # (nx, 16, 16, 3)
        best = min(best, float(np.abs(row - block.astype(np.int16)).mean(axis=(1, 2, 3)).min()))
    return best


def copy_share(image: np.ndarray, piece: Piece, sources: Sequence[np.ndarray], max_blocks: int = 2048,
               seed: int = 0, exhaustive: bool = False) -> dict:
    """Share of non-flat generated 16×16 blocks with a near-exact window in `sources` (module docstring).

    Returns share (nan without non-flat blocks), counts, the flat share, the median of the
    blocks' best mean |Δ| (levels) and the threshold.
    """
    height, width = check_image(image)
    rows = height // COPY_BLOCK
    blocks, stds = [], []
    for span in generated_spans(width, piece):
        for x in _starts(span, COPY_BLOCK, COPY_BLOCK):
            strip = image[: rows * COPY_BLOCK, x:x + COPY_BLOCK]         # (rows·16, 16, 3)
            blocks.append(strip.reshape(rows, COPY_BLOCK, COPY_BLOCK, 3))
            stds.append(luma(strip).reshape(rows, -1).std(axis=1))
    blocks = np.concatenate(blocks) if blocks else np.zeros((0, COPY_BLOCK, COPY_BLOCK, 3), np.uint8)
    stds = np.concatenate(stds) if stds else np.zeros(0)
    textured = np.flatnonzero(stds >= FLAT_STD)
    out = {"share": float("nan"), "blocks": int(len(blocks)), "flat_share": float("nan"), "checked": 0,
           "copies": 0, "median_best_mad": float("nan"), "threshold": COPY_MAD, "flat_std": FLAT_STD}
    if len(blocks):
        out["flat_share"] = float(1 - len(textured) / len(blocks))
    if not len(textured):
        return out
    rng = np.random.default_rng(seed)
    chosen = blocks[np.sort(rng.choice(textured, size=min(max_blocks, len(textured)), replace=False))]
    best = np.full(len(chosen), np.inf)
    queries = _cell_means_blocks(chosen)
    for source in sources:
        windows = sliding_window_view(source, (COPY_BLOCK, COPY_BLOCK, 3))  # (ny, nx, 1, 16, 16, 3) view
        if exhaustive:
            best = np.minimum(best, [_exhaustive_best_mad(b, windows) for b in chosen])
            continue
        desc, yx = _grid_descriptors(source)
        nearest = _nearest_grid_windows(queries, desc, min(CANDIDATES, len(desc)))
        for i, block in enumerate(chosen):
            best[i] = min(best[i], _best_mad_near(block, windows, yx[nearest[i]], GRID // 2))
    copies = int((best < COPY_MAD).sum())
    out.update(share=copies / len(chosen), checked=int(len(chosen)), copies=copies,
               median_best_mad=float(np.median(best)))
    return out


def _cell_means_blocks(blocks: np.ndarray) -> np.ndarray:
    """(n, 16, 16, 3) uint8 → (n, 48) float32: 4×4 cell means, in the order of `_grid_descriptors`."""
    n, k = len(blocks), COPY_BLOCK // GRID
    cells = blocks.reshape(n, k, GRID, k, GRID, 3).mean(axis=(2, 4), dtype=np.float32)  # (n, k, k, 3)
    return cells.reshape(n, k * k * 3)


# ---------------------------------------------------------------- all figures


@dataclass
class TruthReference:
    """What every candidate continuation of one case is measured against, computed once."""

    truth: np.ndarray
    piece: Piece
    features: np.ndarray            # carry features of the truth's generated region
    layout: LayoutProfile
    unrelated_carry: float          # mean d² of the unrelated scrolls (the carry yardstick)
    unrelated_layout: float         # their mean layout error (the layout yardstick)
    border: dict                    # the truth's own border figures
    sources: list[np.ndarray]       # where `copy` looks for the generated blocks


def truth_reference(truth: np.ndarray, piece: Piece, unrelated: Sequence[np.ndarray],
                    sources: Sequence[np.ndarray] | None = None) -> TruthReference:
    """Measure the truth and the unrelated scrolls (same size) once. `sources` default to the piece."""
    features = carry_features(truth, piece)
    layout = layout_profile(truth, piece)
    if not unrelated:
        raise ValueError("at least one unrelated scroll is needed as the yardstick")
    for other in unrelated:
        if other.shape != truth.shape:
            raise ValueError(f"an unrelated scroll is {other.shape}, the truth {truth.shape}")
    carry_u = [carry_distance(carry_features(u, piece), features) for u in unrelated]
    layout_u = [layout_error(layout_profile(u, piece), layout) for u in unrelated]
    sources = [np.ascontiguousarray(truth[:, piece[0]:piece[1]])] if sources is None else list(sources)
    return TruthReference(truth, piece, features, layout, float(np.mean(carry_u)), float(np.mean(layout_u)),
                          border_stats(truth, piece), sources)


def continuation_figures(image: np.ndarray, ref: TruthReference, copy_blocks: int = 2048, seed: int = 0) -> dict:
    """carry, layout, border and copy of one continuation (same size as the truth); see the module docstring."""
    if image.shape != ref.truth.shape:
        raise ValueError(f"the continuation is {image.shape}, the truth {ref.truth.shape}")
    carry_d2 = carry_distance(carry_features(image, ref.piece), ref.features)
    profile = layout_profile(image, ref.piece)
    layout_abs = layout_error(profile, ref.layout)
    border = border_stats(image, ref.piece)
    return {
        "carry": _ratio(carry_d2, ref.unrelated_carry),
        "carry_d2": carry_d2,
        "carry_unrelated_d2": ref.unrelated_carry,
        "layout": _ratio(layout_abs, ref.unrelated_layout),
        "layout_levels": layout_abs,
        "layout_unrelated_levels": ref.unrelated_layout,
        "layout_by_distance": layout_by_distance(profile, ref.layout),
        "border": border["ratio"],
        "border_truth": ref.border["ratio"],
        "border_vs_truth": _ratio(border["ratio"], ref.border["ratio"]),
        "border_detail": border,
        "copy": copy_share(image, ref.piece, ref.sources, copy_blocks, seed),
    }


def _ratio(num: float, den: float) -> float:
    if np.isnan(num) or np.isnan(den):
        return float("nan")
    if den == 0:
        return 0.0 if num == 0 else float("inf")
    return float(num / den)
