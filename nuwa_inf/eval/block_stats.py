"""Block statistics: do generated 256×256 blocks look like real ones, and does that hold along the canvas?

A hand-built stand-in for FID (no downloaded network). Each patch-grid block becomes a
36-number feature vector:

    colour_histogram  24  8-bin histograms of Y, Cb, Cr (BT.601; chroma bins span ±0.125
                          around grey, outside values fall into the end bins), square-rooted
                          (Hellinger) so the numbers are closer to Gaussian
    power_spectrum     6  log mean power of the Hann-windowed, mean-removed luma in six
                          log-spaced radial bands from 1.5/patch to Nyquist (cycles/px)
    moments            6  mean and std of R, G, B in [0, 1]

Distance between two sets of blocks (`block_distance`): the Fréchet distance between
Gaussians fitted to the sets, reported *squared* as FID is:

    d² = |μa − μb|² + tr(Σa + Σb − 2 (Σa^½ Σb Σa^½)^½)

before fitting, features are standardised by the reference set (`FeatureScale`): each
feature divided by its reference std (floored at 10 % of its group's mean std, so a
histogram bin that is always empty in the reference does not blow up), and each group
divided by √(its size), so the three groups weigh the same. Block counts are modest
(a 2048×8192 reference has 256 blocks) against 36 dimensions, so the covariances use
Ledoit–Wolf shrinkage towards a scaled identity, with the shrinkage estimated from the data.

Noise floor (`compare_blocks`): the reference is split into two random halves A, B; the
real-vs-real floor is d²(A, B) and the generated figure is d²(G', B) with G' a random
subset of the generated blocks as large as A, so both figures carry the same finite-sample
bias. Averaged over `repeats` splits; `ratio` = generated / floor, ≲ 1 for real-like blocks.

Scene floor (`compare_blocks` with `ref_groups`, i.e. two or more reference images): the
halves above mix blocks of every reference, so the floor says how far two *samples of the
same scenes* are apart. A generated canvas is a new scene. With several references each one
is held out in turn and measured like a generated canvas, d²(Rᵢ', B₋ᵢ) with Rᵢ' at most
|A| of its blocks and B₋ᵢ as many of the other references' blocks as B has; `scene_floor` is
their mean and `scene_ratio` = generated / scene floor: ≲ 1 means "as close to the
references as another real scroll of this kind is".
The floor is a generous yardstick: two halves of one canvas are anti-correlated (a sky block
in A is one missing from B), while a whole canvas's mix of sky, ridges and water is steadier
than independent blocks would be. Two procedural scrolls of the same kind (2048×8192, seeds
1 and 2) score 0.73 against each other; a different texture scores in the hundreds.

Drift (`drift`): blocks of the first and last third of the canvas along x (block columns
split in three), subsampled to the same count.
  * with a reference: ratio = d²(last third, ref) / d²(first third, ref);
  * without one: ratio = d²(last third, first third) / d²(middle third, first third) —
    "is the end further from the start than the middle is?". A stationary canvas gives ≈ 1,
    a gradual drift grows quadratically (≈ 4 for a linear trend), a change in the last third
    gives ≫ 1. Adjacent thirds (rather than random halves of one third) keep the baseline
    honest for textures whose structures are large.
≤ 1.5 reads as no drift.

Memory: blocks are cut in column strips of ~2048 px, so features of a 38912×2048 canvas are
built from a few tens of MB at a time.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..colour import channel_planes
from .seams import Box, check_image

HIST_BINS = 8
CHROMA_SPAN = 0.125  # Cb, Cr histogram range: [-span, span] around grey
SPECTRUM_BANDS = 6
FEATURE_GROUPS = {
    "colour_histogram": slice(0, 3 * HIST_BINS),
    "power_spectrum": slice(3 * HIST_BINS, 3 * HIST_BINS + SPECTRUM_BANDS),
    "moments": slice(3 * HIST_BINS + SPECTRUM_BANDS, 3 * HIST_BINS + SPECTRUM_BANDS + 6),
}
N_FEATURES = 3 * HIST_BINS + SPECTRUM_BANDS + 6
DRIFT_THRESHOLD = 1.5
MIN_BLOCKS = 2  # per set, for a covariance


@dataclass
class BlockSet:
    """Features of the patch-grid blocks of one image: features[i] is the block at (x[i], y[i])."""

    features: np.ndarray  # (n, N_FEATURES) float64
    x: np.ndarray  # (n,) left edge, px
    y: np.ndarray  # (n,) top edge, px
    patch: int

    def __len__(self) -> int:
        return len(self.features)


# ---------------------------------------------------------------- features


def _spectrum_bands(patch: int) -> tuple[np.ndarray, np.ndarray]:
    """(patch·(patch//2+1), SPECTRUM_BANDS) one-hot band membership of rfft2 bins, and band sizes."""
    fy = np.fft.fftfreq(patch)[:, None]
    fx = np.fft.rfftfreq(patch)[None, :]
    radius = np.sqrt(fy**2 + fx**2).ravel()  # cycles/px, up to 0.707 in the corners
    edges = np.geomspace(1.5 / patch, 0.5, SPECTRUM_BANDS + 1)
    band = np.searchsorted(edges, radius, side="right") - 1  # -1 below the first edge
    band[radius >= 0.5] = SPECTRUM_BANDS - 1  # corners beyond Nyquist join the top band
    onehot = np.zeros((radius.size, SPECTRUM_BANDS), dtype=np.float32)
    inside = band >= 0
    onehot[np.nonzero(inside)[0], band[inside]] = 1.0
    counts = onehot.sum(axis=0)
    if np.any(counts == 0):
        raise ValueError(f"patch {patch} too small for {SPECTRUM_BANDS} spectrum bands")
    return onehot, counts


def _hist(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """values (n, m) -> (n, HIST_BINS) square-rooted proportions."""
    n, m = values.shape
    bins = np.clip(((values - lo) * (HIST_BINS / (hi - lo))).astype(np.int64), 0, HIST_BINS - 1)
    bins += (np.arange(n, dtype=np.int64) * HIST_BINS)[:, None]
    counts = np.bincount(bins.ravel(), minlength=n * HIST_BINS).reshape(n, HIST_BINS)
    return np.sqrt(counts / m)


def _features_of_blocks(blocks: np.ndarray) -> np.ndarray:
    """blocks (n, P, P, 3) uint8 -> (n, N_FEATURES) float64."""
    n, patch = blocks.shape[0], blocks.shape[1]
    r = blocks[..., 0].reshape(n, -1).astype(np.float32) / 255  # (n, P²)
    g = blocks[..., 1].reshape(n, -1).astype(np.float32) / 255
    b = blocks[..., 2].reshape(n, -1).astype(np.float32) / 255
    lum, cb, cr = channel_planes(r, g, b)  # each (n, P²)
    hist = np.concatenate([_hist(lum, 0.0, 1.0), _hist(cb, -CHROMA_SPAN, CHROMA_SPAN),
                           _hist(cr, -CHROMA_SPAN, CHROMA_SPAN)], axis=1)
    del cb, cr
    moments = np.stack([r.mean(1), g.mean(1), b.mean(1), r.std(1), g.std(1), b.std(1)], axis=1)
    del r, g, b

    window = np.hanning(patch).astype(np.float32)
    window2d = np.outer(window, window)  # (P, P)
    centred = (lum - lum.mean(axis=1, keepdims=True)).reshape(n, patch, patch) * window2d
    power = np.abs(np.fft.rfft2(centred)) ** 2 / float((window2d**2).sum())  # (n, P, P//2+1)
    onehot, counts = _spectrum_bands(patch)
    band_power = power.reshape(n, -1) @ onehot / counts  # (n, SPECTRUM_BANDS)
    spectrum = np.log(band_power.astype(np.float64) + 1e-10)
    return np.concatenate([hist, spectrum, moments], axis=1).astype(np.float64)


def block_features(image: np.ndarray, patch: int = 256, exclude: Box | None = None,
                   strip: int = 2048) -> BlockSet:
    """Features of every whole block on the patch grid (partial edge blocks are dropped).

    Blocks that overlap `exclude` (x0, y0, x1, y1) — the input region — are left out.
    """
    h, w = check_image(image)
    rows, cols = h // patch, w // patch
    strip_cols = max(1, strip // patch)
    feats, xs, ys = [], [], []
    for c0 in range(0, cols, strip_cols):
        c1 = min(c0 + strip_cols, cols)
        k = c1 - c0
        bx = np.tile(np.arange(c0, c1) * patch, rows)  # row-major order of the blocks below
        by = np.repeat(np.arange(rows) * patch, k)
        keep = np.ones(rows * k, dtype=bool)
        if exclude is not None:
            x0, y0, x1, y1 = exclude
            keep = ~((bx < x1) & (bx + patch > x0) & (by < y1) & (by + patch > y0))
        if not keep.any():
            continue
        strip_px = image[: rows * patch, c0 * patch: c1 * patch]  # (rows·P, k·P, 3) view
        blocks = strip_px.reshape(rows, patch, k, patch, 3).transpose(0, 2, 1, 3, 4)
        blocks = blocks.reshape(rows * k, patch, patch, 3)[keep]  # (n, P, P, 3) copy of this strip only
        feats.append(_features_of_blocks(blocks))
        xs.append(bx[keep])
        ys.append(by[keep])
    if not feats:
        return BlockSet(np.zeros((0, N_FEATURES)), np.zeros(0, np.int64), np.zeros(0, np.int64), patch)
    return BlockSet(np.concatenate(feats), np.concatenate(xs), np.concatenate(ys), patch)


# ---------------------------------------------------------------- distance


@dataclass(frozen=True)
class FeatureScale:
    """Standardisation fitted on a reference set; see the module docstring."""

    center: np.ndarray  # (N_FEATURES,)
    scale: np.ndarray  # (N_FEATURES,)

    @classmethod
    def fit(cls, ref: np.ndarray) -> "FeatureScale":
        std = ref.std(axis=0)
        scale = np.ones_like(std)
        for group in FEATURE_GROUPS.values():
            s = std[group]
            typical = s.mean()
            floor = 0.1 * typical if typical > 0 else 1.0
            scale[group] = np.maximum(s, floor) * np.sqrt(s.size)
        return cls(ref.mean(axis=0), scale)

    def apply(self, features: np.ndarray) -> np.ndarray:
        return (features - self.center) / self.scale


def shrunk_covariance(x: np.ndarray) -> tuple[np.ndarray, float]:
    """Ledoit–Wolf covariance of rows x (n, d): (1-λ)·S + λ·(tr S / d)·I, λ estimated; returns (Σ, λ)."""
    n, d = x.shape
    xc = x - x.mean(axis=0)
    s = xc.T @ xc / n  # (d, d) maximum-likelihood covariance
    mu = np.trace(s) / d
    off_target = s - mu * np.eye(d)
    d2 = float((off_target**2).sum())  # how far S is from the target
    # b̄² = 1/n² Σ_k ‖x_k x_kᵀ − S‖²_F = (Σ_k ‖x_k‖⁴ − n‖S‖²_F) / n²: the noise in S
    b_bar2 = (float(((xc**2).sum(axis=1) ** 2).sum()) - n * float((s**2).sum())) / n**2
    lam = 1.0 if d2 == 0 else min(max(b_bar2, 0.0), d2) / d2
    return (1 - lam) * s + lam * mu * np.eye(d), lam


def _sqrtm_psd(m: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh((m + m.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Squared Fréchet distance between Gaussians (shrunk covariances) fitted to rows of a and b."""
    if len(a) < MIN_BLOCKS or len(b) < MIN_BLOCKS:
        return float("nan")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, _ = shrunk_covariance(a)
    cov_b, _ = shrunk_covariance(b)
    root_a = _sqrtm_psd(cov_a)
    cross = np.linalg.eigvalsh(root_a @ cov_b @ root_a)  # eigenvalues of Σa^½ Σb Σa^½ (symmetric PSD)
    trace_cross = np.sqrt(np.clip(cross, 0, None)).sum()
    d2 = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_cross)
    return max(d2, 0.0)


def block_distance(gen_blocks: np.ndarray, ref_blocks: np.ndarray, scale: FeatureScale | None = None) -> float:
    """Squared Fréchet distance between two sets of block features (n, N_FEATURES), standardised by
    `scale` (default: fitted on ref_blocks). Raw distance: compare it with `noise_floor`."""
    scale = scale or FeatureScale.fit(ref_blocks)
    return frechet_distance(scale.apply(gen_blocks), scale.apply(ref_blocks))


def _splits(n: int, repeats: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """`repeats` random splits of range(n) into two halves of n // 2."""
    rng = np.random.default_rng(seed)
    half = n // 2
    perms = [rng.permutation(n) for _ in range(repeats)]
    return [(perm[:half], perm[half:2 * half]) for perm in perms]


def noise_floor(ref_blocks: np.ndarray, repeats: int = 8, seed: int = 0) -> float:
    """Mean real-vs-real distance between random halves of the reference blocks."""
    if len(ref_blocks) < 2 * MIN_BLOCKS:
        return float("nan")
    ref = FeatureScale.fit(ref_blocks).apply(ref_blocks)
    return float(np.mean([frechet_distance(ref[a], ref[b]) for a, b in _splits(len(ref), repeats, seed)]))


def compare_blocks(gen_blocks: np.ndarray, ref_blocks: np.ndarray, repeats: int = 8, seed: int = 0,
                   ref_groups: np.ndarray | None = None) -> dict:
    """Generated-vs-real distance against the real-vs-real noise floor, at matched sample sizes.

    Each repeat splits the reference into halves A, B (the same splits as `noise_floor`):
    floor = d²(A, B), distance = d²(G', B) with G' a random subset of |A| generated blocks
    (all of them if fewer). Also reports `distance_all` = d²(all generated, all reference).
    `ref_groups` (n_ref,) says which reference image each block came from; with two or more
    images the scene floor is measured too (module docstring).
    """
    out = {"distance": float("nan"), "noise_floor": float("nan"), "ratio": float("nan"),
           "distance_all": float("nan"), "n_gen": len(gen_blocks), "n_ref": len(ref_blocks),
           "repeats": repeats, "scene_floor": float("nan"), "scene_ratio": float("nan"), "scenes": 0}
    if len(gen_blocks) < MIN_BLOCKS or len(ref_blocks) < 2 * MIN_BLOCKS:
        return out
    scale = FeatureScale.fit(ref_blocks)
    gen, ref = scale.apply(gen_blocks), scale.apply(ref_blocks)
    rng = np.random.default_rng([seed, 1])  # generated subsets: a stream apart from the splits
    floors, dists = [], []
    for a, b in _splits(len(ref), repeats, seed):
        floors.append(frechet_distance(ref[a], ref[b]))
        g = rng.choice(len(gen), size=min(len(a), len(gen)), replace=False)
        dists.append(frechet_distance(gen[g], ref[b]))
    out["distance"] = float(np.mean(dists))
    out["noise_floor"] = float(np.mean(floors))
    out["ratio"] = _ratio(out["distance"], out["noise_floor"])
    out["distance_all"] = frechet_distance(gen, ref)
    if ref_groups is not None and len(np.unique(ref_groups)) >= 2:
        half = len(ref) // 2
        out["scene_floor"] = scene_floor(ref, np.asarray(ref_groups), half, half, seed)
        out["scene_ratio"] = _ratio(out["distance"], out["scene_floor"])
        out["scenes"] = int(len(np.unique(ref_groups)))
    return out


def scene_floor(ref: np.ndarray, groups: np.ndarray, held_size: int, rest_size: int, seed: int = 0) -> float:
    """Mean over reference images i of d²(≤ held_size blocks of i, ≤ rest_size blocks of the others),
    on standardised features `ref` (n, N_FEATURES) with `groups` (n,) naming each block's image."""
    rng = np.random.default_rng([seed, 2])
    distances = []
    for group in np.unique(groups):
        held, rest = np.flatnonzero(groups == group), np.flatnonzero(groups != group)
        held = rng.choice(held, size=min(held_size, len(held)), replace=False)
        rest = rng.choice(rest, size=min(rest_size, len(rest)), replace=False)
        distances.append(frechet_distance(ref[held], ref[rest]))
    return float(np.nanmean(distances)) if not np.all(np.isnan(distances)) else float("nan")


def _ratio(num: float, den: float) -> float:
    if np.isnan(num) or np.isnan(den):
        return float("nan")
    if den == 0:
        return 1.0 if num == 0 else float("inf")
    return num / den


def drift(gen: BlockSet, ref_blocks: np.ndarray | None = None, repeats: int = 8, seed: int = 0) -> dict:
    """First third vs last third of the canvas along x; see the module docstring for both modes."""
    mode = "reference" if ref_blocks is not None else "first-third"
    what = ("d2(last third, ref) / d2(first third, ref)" if mode == "reference"
            else "d2(last third, first third) / d2(middle third, first third)")
    out = {"mode": mode, "what": what, "early": float("nan"), "late": float("nan"), "ratio": float("nan"),
           "threshold": DRIFT_THRESHOLD, "n_per_third": 0}
    columns = np.unique(gen.x)
    if columns.size < 3:
        return out
    thirds = [gen.features[np.isin(gen.x, part)] for part in np.array_split(columns, 3)]
    first, middle, last = thirds
    if mode == "reference":
        if len(ref_blocks) < MIN_BLOCKS:
            return out
        scale = FeatureScale.fit(ref_blocks)
        anchor, early_set, late_set = scale.apply(ref_blocks), scale.apply(first), scale.apply(last)
    else:
        scale = FeatureScale.fit(first)
        anchor, early_set, late_set = scale.apply(first), scale.apply(middle), scale.apply(last)
    n = min(len(early_set), len(late_set))
    if n < MIN_BLOCKS:
        return out
    rng = np.random.default_rng(seed)
    early, late = [], []
    for _ in range(repeats if len(early_set) != len(late_set) else 1):
        e = early_set[rng.choice(len(early_set), size=n, replace=False)]
        l_ = late_set[rng.choice(len(late_set), size=n, replace=False)]
        early.append(frechet_distance(e, anchor))
        late.append(frechet_distance(l_, anchor))
    out.update(early=float(np.mean(early)), late=float(np.mean(late)), n_per_third=n)
    out["ratio"] = _ratio(out["late"], out["early"])
    return out
