"""Continuation figures: how close is a generated region to the *true* continuation of its input?

A procedural scroll is known everywhere, so cutting a piece out of it and extending the piece
back to full width gives an answer key: the scroll itself. Every figure here compares the
generated region (all columns outside the piece, full height) with the true scroll at the same
place. The piece spans the whole height: `piece = (x0, x1)`, its columns.

    carry   Does the continuation keep the input's style: its light, palette and brushwork?
            Each 256×256 block of the generated region (at a 128-px stride, from the piece's
            edges outward) becomes 40 numbers, 8 for the block and for each of its four
            128×128 quadrants (which say how things are laid out inside a block: sky over
            ridge, a lit and a shaded face): mean and std of Y, Cb, Cr (BT.601, 8-bit levels)
            and the texture, log(1 + mean |∇Y|) at full resolution and on 4×4-px cell means.
            They form three groups, *light* (Y mean and std: 10), *palette* (Cb, Cr: 20) and
            *texture* (10). Per group, features are standardised by the truth's blocks (each
            divided by its std over them, floored so a feature the truth holds constant, such
            as an ink scroll's chroma, does not blow up: 2 levels, 0.05 for the log textures),
            Gaussians are fitted (Ledoit–Wolf shrunk covariances,
            `block_stats.frechet_distance`) and, with d the Fréchet distance (the square root
            of FID's d²),

                part_g = d_g(generated, truth) / mean over unrelated scrolls u of d_g(u, truth)
                carry  = mean of the three parts

            0 = the truth's block statistics, 1 = no closer than a scroll of another style.
            Position-free: a continuation with the right blocks in the wrong places scores
            well here and badly on `layout`. Blocks with the right statistics in a broken
            shape (jagged ridges, water turned to smudges) score well too: the texture part is
            the one that sees them, and only as far as they change gradient energy.
            Why three parts, texture, and d rather than d²: with colour moments alone and d²,
            a blurred, washed-out continuation of a blue-green scroll scored 0.07 (floor
            0.02): the unrelated scrolls' palette shifts are so large that anything in the
            right colours looked close. With the groups pooled into one distance, the palette
            (where the yardstick differs most) still set the figure (0.33 for that image at
            8192×2048, floor 0.15, PatchMatch 0.21; its texture part alone: 0.81, 0.34, 0.31).
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
            std ≥ `FLAT_STD` = 6 levels: flat sky and paper match anything) on the 16-px grid,
            `COPY_SAMPLE` = 1024 of them drawn at random, are looked up among *all* 16×16
            windows of the source images (the piece; for a tokenizer-based method also the
            piece's round trip, where a model that copies tokens would land), at any pixel
            offset. A block is a copy when its best window's mean |Δ| over the 16×16×3 values
            is below `COPY_RELATIVE` = 0.15 of the block's own texture, its mean |∇Y| (the mean
            |Δ| of horizontally plus of vertically neighbouring pixels' luma); copy = the share
            of such blocks. PatchMatch, which pastes source patches, scores high; the true
            scroll, whose paper grain and brushwork never repeat exactly, ~0.
            Why relative: a fixed threshold cannot serve day and night. At 1.5 levels the
            truth scored 0 % on day scrolls but 52 % on a blue-green night scroll (8192×2048):
            the dark scene's grain is faint, so its blocks find windows of the piece within
            1.5 levels that are not copies (mean |∇Y| 2.3 for those blocks). Measured against
            each block's own texture, the truth's best windows sit at a ratio of ≥ 0.19 (1st
            percentile; median 0.6–0.8) in the four full-size cases, PatchMatch's at 0 (median):
            at 0.15 the truth scores ≤ 0.2 %, a same-style scroll ≤ 0.5 %, PatchMatch 78–95 %.

            Search (`WindowIndex`): every window, at every pixel offset, gets a 48-number
            descriptor, the mean RGB of its 4×4 cells of 4×4 px (from a box-filtered source),
            projected on its 16 principal components (> 99 % of the variance). Each block takes
            the window with the nearest projected descriptor (one matrix product per band of
            window rows, in torch), and that window and its 8 neighbours (±1 px) are compared
            exactly. An exact copy is at distance 0 in any projection, so it is always found;
            near-exact ones (PatchMatch blends overlapping votes) nearly always: on 60
            PatchMatch blocks of a 3072×512 ink scroll this search and the brute force over
            every window (`exhaustive=True`) made the same copy call for every block, and 400
            blocks pasted from random offsets were all found (a cheaper top-8 search over a
            4-px grid of windows found 82 %). ~14 s per 1024 blocks against a 2048² piece on
            one core.

Memory: blocks and bands are cut from column strips; the copy search holds the box-filtered
source (12 bytes a pixel) and one (blocks × 65536 windows) distance band at a time.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..colour import channel_planes, luma
from .block_stats import frechet_distance
from .seams import check_image

Piece = tuple[int, int]  # (x0, x1): the input's columns, half-open; it spans the full height

CARRY_BLOCK = 256     # px; blocks at a stride of half that, quadrants of half that
FEATURE_FLOOR = 2.0   # levels: the smallest std a carry colour feature is divided by
TEXTURE_FLOOR = 0.05  # the same for the log texture features
TEXTURE_CELL = 4      # px: the coarse texture is the gradient of 4×4-px cell means
LAYOUT_STRETCH = 256  # px wide
LAYOUT_BAND = 32      # px high
BORDER_REACH = 2      # pair columns on each side of the edge's own pair
BORDER_CONTROLS = tuple(range(192, 321, 16))  # px from the edge into the generated region
COPY_BLOCK = 16       # px
COPY_RELATIVE = 0.15  # a block is a copy when its best window is nearer than this × its own mean |∇Y|
FLAT_STD = 6.0        # levels of luma std: blocks below are flat and left out of `copy`
COPY_CELL = 4         # px: a block's descriptor is the mean RGB of its 4×4 cells of this size
COPY_DIMS = 16        # principal components of the descriptor that the search compares
COPY_SAMPLE = 1024    # generated blocks checked per image (standard error ≤ 1.6 points)


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
    """(n, 40) float64: per block of the generated region, for the block and its quadrants TL, TR, BL,
    BR: mean Y, Cb, Cr, std Y, Cb, Cr, log(1 + mean |∇Y|) fine and coarse (module docstring)."""
    height, width = check_image(image)
    cell = block // 2
    rows = height // cell - 1  # block origins at y = k·cell while y + block ≤ height
    c = TEXTURE_CELL
    feats = []
    for span in generated_spans(width, piece):
        for x in _starts(span, block, cell):
            planes = _ycbcr_planes(image[: (rows + 1) * cell, x:x + block])  # (3, (rows+1)·cell, block)
            cells = planes.reshape(3, rows + 1, cell, 2, cell)               # (channel, cell row, y, cell col, x)
            s1 = cells.sum(axis=(2, 4), dtype=np.float64)                    # (3, rows+1, 2)
            s2 = (cells.astype(np.float64) ** 2).sum(axis=(2, 4))
            lum = cells[0]                                                   # (rows+1, cell, 2, cell)
            coarse = lum.reshape(rows + 1, cell // c, c, 2, cell // c, c).mean(axis=(2, 5))
            # per cell: Σ|Δx| + Σ|Δy| over pairs inside it, and the number of pairs of each axis
            grads = [(np.abs(np.diff(g, axis=3)).sum(axis=(1, 3)) + np.abs(np.diff(g, axis=1)).sum(axis=(1, 3)),
                      g.shape[1] * (g.shape[3] - 1)) for g in (lum, coarse)]  # (rows+1, 2), pairs per axis
            for r in range(rows):
                regions = [(slice(r, r + 2), slice(0, 2), 4)] + [(r + i, j, 1) for i in (0, 1) for j in (0, 1)]
                row = []
                for ys, xs, n_cells in regions:
                    count = n_cells * cell * cell
                    mean = s1[:, ys, xs].reshape(3, -1).sum(axis=1) / count
                    var = s2[:, ys, xs].reshape(3, -1).sum(axis=1) / count - mean**2
                    texture = [np.log1p(g[ys, xs].sum() / (n_cells * pairs)) for g, pairs in grads]
                    row += [*mean, *np.sqrt(np.maximum(var, 0.0)), *texture]
                feats.append(row)
    return np.asarray(feats, dtype=np.float64).reshape(-1, 5 * 8)


CARRY_PARTS = ("light", "palette", "texture")
_CARRY_GROUP = np.tile(np.array([0, 1, 1, 0, 1, 1, 2, 2]), 5)  # feature → part, per region (see carry_features)


def carry_distances(features: np.ndarray, truth_features: np.ndarray) -> np.ndarray:
    """(3,) Fréchet distances d (not d²) of the light, palette and texture features (module docstring)."""
    floor = np.where(_CARRY_GROUP == 2, TEXTURE_FLOOR, FEATURE_FLOOR)
    scale = np.maximum(truth_features.std(axis=0), floor)
    centre = truth_features.mean(axis=0)
    a, b = (features - centre) / scale, (truth_features - centre) / scale
    return np.array([np.sqrt(frechet_distance(a[:, _CARRY_GROUP == g], b[:, _CARRY_GROUP == g]))
                     for g in range(len(CARRY_PARTS))])


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

    def window(at: int) -> float | None:
        """Mean |ΔY| over the pairs (p−1, p) for p within BORDER_REACH of `at`, full height."""
        lo, hi = at - BORDER_REACH - 1, at + BORDER_REACH + 1
        if lo < 0 or hi > width:
            return None
        lum = luma(image[:, lo:hi])
        return float(np.abs(np.diff(lum, axis=1)).mean())  # 2·reach+1 pairs, full height

    out: dict = {"pairs": 2 * BORDER_REACH + 1}
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


def _block_cells(blocks: np.ndarray) -> np.ndarray:
    """(n, 16, 16, 3) uint8 → (n, 48) float32: mean RGB of each 4×4-px cell, (cell row, cell col, channel) order."""
    n, k = len(blocks), COPY_BLOCK // COPY_CELL
    cells = blocks.reshape(n, k, COPY_CELL, k, COPY_CELL, 3).mean(axis=(2, 4), dtype=np.float32)  # (n, k, k, 3)
    return cells.reshape(n, k * k * 3)


class WindowIndex:
    """Every 16×16 window of one source image, found by its cell-mean descriptor (module docstring)."""

    def __init__(self, source: np.ndarray, seed: int = 0):
        check_image(source)
        if source.shape[0] < COPY_BLOCK or source.shape[1] < COPY_BLOCK:
            raise ValueError(f"a copy source must be at least {COPY_BLOCK} px both ways, got {source.shape}")
        self.source = np.ascontiguousarray(source)
        c = COPY_CELL
        total = np.pad(self.source.astype(np.float64).cumsum(0).cumsum(1), ((1, 0), (1, 0), (0, 0)))
        # box[y, x] = mean of source[y:y+4, x:x+4]: (H−3, W−3, 3)
        self.box = ((total[c:, c:] - total[:-c, c:] - total[c:, :-c] + total[:-c, :-c]) / (c * c)).astype(np.float32)
        self.ny, self.nx = self.source.shape[0] - COPY_BLOCK + 1, self.source.shape[1] - COPY_BLOCK + 1
        rng = np.random.default_rng(seed)
        sample = np.concatenate([self._descriptors(y, y + 1) for y in rng.choice(self.ny, min(64, self.ny), False)])
        self.mean = sample.mean(axis=0)
        values, vectors = np.linalg.eigh(np.cov((sample - self.mean).T))  # ascending
        self.basis = np.ascontiguousarray(vectors[:, ::-1][:, :COPY_DIMS]).astype(np.float32)  # (48, COPY_DIMS)

    def _descriptors(self, y0: int, y1: int) -> np.ndarray:
        """(rows·nx, 48) descriptors of the windows with top row y0 ≤ y < y1, every x."""
        k, c = COPY_BLOCK // COPY_CELL, COPY_CELL
        cells = [self.box[y0 + c * i:y1 + c * i, c * j:c * j + self.nx] for i in range(k) for j in range(k)]
        return np.stack(cells, axis=2).reshape(-1, k * k * 3)  # (rows, nx, 16 cells, 3) → rows·nx windows

    def nearest(self, blocks: np.ndarray, band: int = 65536) -> np.ndarray:
        """(n, 2) y, x of the window whose projected descriptor is nearest each block's (16, 16, 3)."""
        import torch

        queries = torch.from_numpy((_block_cells(blocks) - self.mean) @ self.basis)  # (n, d)
        best = torch.full((len(blocks),), float("inf"))
        where = torch.zeros(len(blocks), dtype=torch.long)
        rows = max(1, band // self.nx)
        for y0 in range(0, self.ny, rows):
            y1 = min(self.ny, y0 + rows)
            windows = torch.from_numpy((self._descriptors(y0, y1) - self.mean) @ self.basis)  # (w, d)
            # |q − w|² less the constant |q|²: (n, w)
            dist = torch.addmm((windows * windows).sum(1)[None, :], queries, windows.T, alpha=-2)
            value, index = dist.min(dim=1)
            better = value < best
            best = torch.where(better, value, best)
            where = torch.where(better, index + y0 * self.nx, where)
        where = where.numpy()
        return np.stack([where // self.nx, where % self.nx], axis=1)

    def best_mad(self, blocks: np.ndarray, reach: int = 1) -> np.ndarray:
        """(n,) smallest mean |Δ| (levels) of each block against the nearest window and its ±reach px neighbours."""
        windows = sliding_window_view(self.source, (COPY_BLOCK, COPY_BLOCK, 3))  # (ny, nx, 1, 16, 16, 3) view
        steps = np.arange(-reach, reach + 1)
        out = np.empty(len(blocks))
        for i, (y, x) in enumerate(self.nearest(blocks)):
            ys, xs = np.meshgrid(np.clip(y + steps, 0, self.ny - 1), np.clip(x + steps, 0, self.nx - 1), indexing="ij")
            found = windows[ys.ravel(), xs.ravel(), 0].astype(np.int16)  # ((2r+1)², 16, 16, 3)
            out[i] = np.abs(found - blocks[i].astype(np.int16)).mean(axis=(1, 2, 3)).min()
        return out

    def exhaustive_best_mad(self, blocks: np.ndarray) -> np.ndarray:
        """(n,) smallest mean |Δ| of each block against every window: slow, for checking `best_mad`."""
        windows = sliding_window_view(self.source, (COPY_BLOCK, COPY_BLOCK, 3))
        out = np.full(len(blocks), np.inf)
        for y in range(self.ny):
            row = windows[y, :, 0].astype(np.int16)  # (nx, 16, 16, 3)
            for i, block in enumerate(blocks):
                out[i] = min(out[i], float(np.abs(row - block.astype(np.int16)).mean(axis=(1, 2, 3)).min()))
        return out


def _block_texture(lum: np.ndarray) -> np.ndarray:
    """(n, 16, 16) luma → (n,) mean |Δ| of horizontal plus of vertical neighbours (levels)."""
    return np.abs(np.diff(lum, axis=2)).mean(axis=(1, 2)) + np.abs(np.diff(lum, axis=1)).mean(axis=(1, 2))


def copy_blocks(image: np.ndarray, piece: Piece) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The generated region's 16×16 blocks on the grid laid from the piece's edges:
    ((n, 16, 16, 3) uint8, (n,) luma std, (n,) mean |∇Y|)."""
    height, width = check_image(image)
    rows = height // COPY_BLOCK
    blocks, stds, textures = [], [], []
    for span in generated_spans(width, piece):
        for x in _starts(span, COPY_BLOCK, COPY_BLOCK):
            strip = image[: rows * COPY_BLOCK, x:x + COPY_BLOCK]  # (rows·16, 16, 3)
            blocks.append(strip.reshape(rows, COPY_BLOCK, COPY_BLOCK, 3))
            lum = luma(strip).reshape(rows, COPY_BLOCK, COPY_BLOCK)
            stds.append(lum.reshape(rows, -1).std(axis=1))
            textures.append(_block_texture(lum))
    if not blocks:
        return np.zeros((0, COPY_BLOCK, COPY_BLOCK, 3), np.uint8), np.zeros(0), np.zeros(0)
    return np.concatenate(blocks), np.concatenate(stds), np.concatenate(textures)


def copy_share(image: np.ndarray, piece: Piece, sources: Sequence[np.ndarray | WindowIndex],
               max_blocks: int = COPY_SAMPLE, seed: int = 0, exhaustive: bool = False) -> dict:
    """Share of non-flat generated 16×16 blocks with a near-exact window in `sources` (module docstring).

    `sources` are images or prebuilt `WindowIndex`es (reuse one for several images). Returns share
    (nan without non-flat blocks), counts, the flat share, the median over the checked blocks of
    their best window's mean |Δ| (levels) and of that ÷ their mean |∇Y|, and the thresholds.
    """
    blocks, stds, textures = copy_blocks(image, piece)
    textured = np.flatnonzero(stds >= FLAT_STD)
    out = {"share": float("nan"), "blocks": int(len(blocks)), "flat_share": float("nan"), "checked": 0,
           "copies": 0, "median_best_mad": float("nan"), "median_relative": float("nan"),
           "relative_threshold": COPY_RELATIVE, "flat_std": FLAT_STD}
    if len(blocks):
        out["flat_share"] = float(1 - len(textured) / len(blocks))
    if not len(textured) or not sources:
        return out
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(textured, size=min(max_blocks, len(textured)), replace=False))
    best = np.full(len(chosen), np.inf)
    for source in sources:
        index = source if isinstance(source, WindowIndex) else WindowIndex(source, seed)
        mad = index.exhaustive_best_mad(blocks[chosen]) if exhaustive else index.best_mad(blocks[chosen])
        best = np.minimum(best, mad)
    relative = best / np.maximum(textures[chosen], 1e-6)
    copies = int((relative < COPY_RELATIVE).sum())
    out.update(share=copies / len(chosen), checked=int(len(chosen)), copies=copies,
               median_best_mad=float(np.median(best)), median_relative=float(np.median(relative)))
    return out


# ---------------------------------------------------------------- all figures


@dataclass
class TruthReference:
    """What every candidate continuation of one case is measured against, computed once."""

    truth: np.ndarray
    piece: Piece
    features: np.ndarray            # carry features of the truth's generated region
    layout: LayoutProfile
    unrelated_carry: np.ndarray     # (3,) mean carry distances of the unrelated scrolls (the yardstick)
    unrelated_layout: float         # their mean layout error (the layout yardstick)
    border: dict                    # the truth's own border figures
    piece_index: WindowIndex        # the piece's windows, where `copy` looks first


def truth_reference(truth: np.ndarray, piece: Piece, unrelated: Sequence[np.ndarray]) -> TruthReference:
    """Measure the truth and the unrelated scrolls (all the same size) once."""
    if not unrelated:
        raise ValueError("at least one unrelated scroll is needed as the yardstick")
    for other in unrelated:
        if other.shape != truth.shape:
            raise ValueError(f"an unrelated scroll is {other.shape}, the truth {truth.shape}")
    features = carry_features(truth, piece)
    layout = layout_profile(truth, piece)
    carry_u = [carry_distances(carry_features(u, piece), features) for u in unrelated]
    layout_u = [layout_error(layout_profile(u, piece), layout) for u in unrelated]
    return TruthReference(truth, piece, features, layout, np.mean(carry_u, axis=0), float(np.mean(layout_u)),
                          border_stats(truth, piece), WindowIndex(truth[:, piece[0]:piece[1]]))


def continuation_figures(image: np.ndarray, ref: TruthReference, extra_sources: Sequence[np.ndarray] = (),
                         copy_sample: int = COPY_SAMPLE, seed: int = 0) -> dict:
    """carry, layout, border and copy of one continuation (same size as the truth); see the module docstring.

    `copy` looks in the piece and in `extra_sources` (e.g. the piece's tokenizer round trip);
    `copy_sample` 0 skips it (share nan: a quick A/B that needs carry and layout only).
    """
    if image.shape != ref.truth.shape:
        raise ValueError(f"the continuation is {image.shape}, the truth {ref.truth.shape}")
    carry_d = carry_distances(carry_features(image, ref.piece), ref.features)
    parts = {name: _ratio(d, u) for name, d, u in zip(CARRY_PARTS, carry_d, ref.unrelated_carry, strict=True)}
    profile = layout_profile(image, ref.piece)
    layout_abs = layout_error(profile, ref.layout)
    border = border_stats(image, ref.piece)
    return {
        "carry": float(np.mean(list(parts.values()))),
        "carry_parts": parts,
        "carry_distance": dict(zip(CARRY_PARTS, carry_d.tolist(), strict=True)),
        "carry_unrelated_distance": dict(zip(CARRY_PARTS, ref.unrelated_carry.tolist(), strict=True)),
        "layout": _ratio(layout_abs, ref.unrelated_layout),
        "layout_levels": layout_abs,
        "layout_unrelated_levels": ref.unrelated_layout,
        "layout_by_distance": layout_by_distance(profile, ref.layout),
        "border": border["ratio"],
        "border_truth": ref.border["ratio"],
        "border_vs_truth": _ratio(border["ratio"], ref.border["ratio"]),
        "border_detail": border,
        "copy": copy_share(image, ref.piece, [ref.piece_index, *extra_sources] if copy_sample > 0 else [],
                           copy_sample, seed),
    }


def _ratio(num: float, den: float) -> float:
    if np.isnan(num) or np.isnan(den):
        return float("nan")
    if den == 0:
        return 0.0 if num == 0 else float("inf")
    return float(num / den)
