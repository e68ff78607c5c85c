"""Noise and geometry for the procedural scroll landscapes (used by `procedural.py`).

Everything here is a pure function of absolute coordinates (column x, row y, in
pixels) and integer salts. Noise values come from hashing integer lattice points,
never from a sequential RNG, so any column range of the infinite landscape renders
the same pixels however it is chunked.

Conventions: 1-D per-column quantities are float64 arrays of shape (B,) (B columns of a
block); per-pixel fields are float32 arrays of shape (rows, B). Lengths given "in
heights" are fractions of the image height H, so a 256-high and a 2048-high render show
the same landscape at different resolutions.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

F32 = np.float32


# ----------------------------------------------------------------------------- hashing / noise

def _mix_salt(salt: int) -> int:
    return (int(salt) * 0x9E3779B1 + 0x632BE5AB) & 0xFFFFFFFF


def hash01(ix: np.ndarray | int, iy: np.ndarray | int, salt: int) -> np.ndarray:
    """Uniform float32 in [0, 1) from integer lattice coordinates (broadcast) and a salt."""
    h = (np.asarray(ix, np.int64) * 0x27D4EB2F + np.asarray(iy, np.int64) * 0x165667B1
         + _mix_salt(salt)) & 0xFFFFFFFF
    h = np.asarray(h).astype(np.uint32)
    # lowbias32 finaliser (avalanche every input bit into every output bit)
    h ^= h >> np.uint32(16)
    h *= np.uint32(0x7FEB352D)
    h ^= h >> np.uint32(15)
    h *= np.uint32(0x846CA68B)
    h ^= h >> np.uint32(16)
    return (h >> np.uint32(8)).astype(F32) * F32(1.0 / 16777216.0)


def _smooth(f: np.ndarray) -> np.ndarray:
    return f * f * (F32(3.0) - F32(2.0) * f)


def noise1(u: np.ndarray, salt: int, channel: np.ndarray | int = 0) -> np.ndarray:
    """1-D value noise in [0, 1] at float64 positions `u` (lattice spacing 1), float32 out.

    `channel` (broadcast against u) selects independent noise functions in one call.
    """
    i = np.floor(u)
    w = _smooth((u - i).astype(F32))
    i = i.astype(np.int64)
    both = hash01(np.stack([i, i + 1]), channel, salt)   # (2, *u.shape): lattice values left and right
    return both[0] + (both[1] - both[0]) * w


def fbm1(u: np.ndarray, salt: int, octaves: int, gain: float = 0.5, ridged: bool = False) -> np.ndarray:
    """Multi-octave 1-D value noise normalised to [0, 1]; `ridged` folds each octave (1-|2n-1|).

    All octaves are evaluated in one (octaves, n) batch: 1-D work is dominated by call overhead.
    """
    octave = np.arange(octaves)
    scaled = u[None, :] * (2.0 ** octave)[:, None] + (17.31 * octave)[:, None]   # (octaves, n)
    n = noise1(scaled, salt * 131, octave[:, None])
    if ridged:
        n = F32(1.0) - np.abs(F32(2.0) * n - F32(1.0))
    total = n[0].copy()
    for o in range(1, octaves):      # explicit sum, same order for every element (no BLAS)
        total += F32(gain ** o) * n[o]
    return total * F32(1.0 / sum(gain ** o for o in range(octaves)))


def noise2(xs: np.ndarray, ys: np.ndarray, cell_x: float, cell_y: float, salt: int) -> np.ndarray:
    """2-D value noise on the grid xs (columns, pixels, float64) x ys (rows): (len(ys), len(xs)).

    Separable evaluation: hash the few lattice points the block touches, interpolate them
    along x (cheap: lattice rows only), then along y at full resolution.
    """
    xc = xs / cell_x
    yc = ys / cell_y
    fx = np.floor(xc)
    fy = np.floor(yc)
    ix0, iy0 = int(fx.min()), int(fy.min())
    ix1, iy1 = int(fx.max()) + 1, int(fy.max()) + 1
    grid = hash01(np.arange(ix0, ix1 + 1)[None, :], np.arange(iy0, iy1 + 1)[:, None], salt)  # (ny, nx)
    jx = (fx - ix0).astype(np.intp)
    wx = _smooth((xc - fx).astype(F32))
    left = grid[:, jx]
    along_x = left + (grid[:, jx + 1] - left) * wx  # (ny, B)
    jy = (fy - iy0).astype(np.intp)
    wy = _smooth((yc - fy).astype(F32))[:, None]
    top = along_x[jy]
    return top + (along_x[jy + 1] - top) * wy


def fbm2(xs: np.ndarray, ys: np.ndarray, cell_x: float, cell_y: float, octaves: int, salt: int,
         gain: float = 0.5, min_cell: float = 1.0) -> np.ndarray:
    """Multi-octave 2-D value noise in [0, 1]; octaves finer than `min_cell` pixels are skipped."""
    total = None
    norm = 0.0
    amp = 1.0
    for octave in range(octaves):
        cx, cy = cell_x / 2.0 ** octave, cell_y / 2.0 ** octave
        if octave > 0 and min(cx, cy) < min_cell:
            break
        n = noise2(xs + 57.7 * octave * cx, ys + 31.3 * octave * cy, cx, cy, salt * 977 + octave)
        total = F32(amp) * n if total is None else total + F32(amp) * n
        norm += amp
        amp *= gain
    return total * F32(1.0 / norm)


def smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - F32(edge0)) * F32(1.0 / (edge1 - edge0)), F32(0.0), F32(1.0))
    return t * t * (F32(3.0) - F32(2.0) * t)


# ----------------------------------------------------------------------------- mountain ridges

@dataclass
class Ridge:
    """One layer's ridgeline: tall brush-painted peaks plus fractal detail, as a function of x.

    Lengths are in heights; `base` is the row (fraction of height) of the layer's foot.
    """

    base: float       # foot of the layer (0 = top of the image, 1 = bottom)
    amp: float        # height of the tallest peaks
    spacing: float    # mean distance between peaks
    width: float      # peak width as a fraction of the spacing
    rough: float      # amplitude of the fractal ridge detail (fraction of amp)
    salt: int
    sharp: float = 1.6    # peak shape exponent (2 = gaussian, lower = pointier)
    macro: float = 0.0    # how strongly the scene-wide "drama" field scales this layer
    macro_salt: int = 0   # same for all layers of a scene: they rise and fall together
    giant: float = 0.0    # height (in heights) of the rare towering massifs; 0 = none

    def envelope(self, u: np.ndarray) -> np.ndarray:
        """Slow variation along the scroll: stretches of towering peaks and of low hills."""
        local = fbm1(u / (3.5 * self.spacing) + 0.37, self.salt + 1, 3).astype(np.float64)
        env = np.clip((0.35 + 0.65 * local - 0.2) * 1.4, 0.15, 1.0)
        if self.macro:
            drama = fbm1(u / 2.7 + 0.11, self.macro_salt, 3).astype(np.float64)
            drama = np.clip((drama - 0.3) * 2.5, 0.0, 1.0)
            env = env * (1.0 - 0.5 * self.macro + 0.8 * self.macro * drama)
        return env

    def _peaks(self, u: np.ndarray) -> np.ndarray:
        """Big shapes only (peaks over rolling foothills, scaled by the slow envelope), in units of amp."""
        s = self.spacing
        cell = np.floor(u / s).astype(np.int64)
        peaks = 0.18 * fbm1(u / (0.8 * s), self.salt + 2, 3).astype(np.float64)  # foothills
        ci = cell[None, :] + np.arange(-2, 3)[:, None]                         # (5, n) nearby peak cells
        jitter, tall, width = hash01(ci[None], np.array([1, 2, 3])[:, None, None], self.salt).astype(np.float64)
        centre = (ci + 0.5 + 0.8 * (jitter - 0.5)) * s
        tall = 0.3 + 0.7 * tall ** 1.5
        half = s * self.width * (0.6 + 0.8 * width)
        t = np.abs(u[None, :] - centre) / half
        np.maximum(peaks, (tall * np.exp(-t ** self.sharp)).max(axis=0), out=peaks)
        peaks *= self.envelope(u)
        if self.giant:
            # a towering massif in about half of the 2.3-height-wide cells
            g = 2.3
            gcell = np.floor(u / g).astype(np.int64)
            ci = gcell[None, :] + np.arange(-1, 2)[:, None]                    # (3, n)
            channels = np.arange(21, 25)[:, None, None]
            jitter, width, chance, tall = hash01(ci[None], channels, self.salt).astype(np.float64)
            centre = (ci + 0.5 + 0.5 * (jitter - 0.5)) * g
            half = g * (0.08 + 0.06 * width)
            tall = (chance < 0.55) * (0.75 + 0.25 * tall)
            t = np.abs(u[None, :] - centre) / half
            np.maximum(peaks, (self.giant / self.amp) * (tall * np.exp(-t ** 1.7)).max(axis=0), out=peaks)
        return peaks

    def smooth_height_at(self, u: np.ndarray) -> np.ndarray:
        """Height without the fractal detail (in heights): used for shading and strata strokes."""
        return self.amp * self._peaks(u)

    def slope_at(self, u: np.ndarray) -> np.ndarray:
        """d(smooth height)/du, both in heights."""
        eps = 0.04 * self.spacing  # a wide difference: soft shading where two peaks meet
        both = self.smooth_height_at(np.concatenate([u + eps, u - eps]))
        return (both[:len(u)] - both[len(u):]) / (2 * eps)

    def height_at(self, u: np.ndarray) -> np.ndarray:
        """Mountain height above the foot (in heights) at positions u (in heights, float64)."""
        big = self._peaks(u)
        # fractal ridge detail, stronger on the peaks than in the valleys
        detail = fbm1(u / (0.22 * self.spacing), self.salt + 3, 7, gain=0.55, ridged=True).astype(np.float64)
        return self.amp * (big + self.rough * (0.3 + big) * (detail - 0.5))

    def rows(self, u: np.ndarray, height: int) -> np.ndarray:
        """Ridgeline row (pixels, float64) for each position u."""
        return (self.base - self.height_at(u)) * height


# ----------------------------------------------------------------------------- trees

@dataclass
class TreeRow:
    """Small tree silhouettes standing on a ridge: pines (tiered), leafy trees or moss dots.

    Trees sit on a lattice of spacing `spacing` (heights): at most one tree per cell and a
    tree never leaves its cell, so each column meets at most one tree of the row and is
    painted in a short window of rows above its foot.
    """

    spacing: float    # lattice spacing (heights)
    size: float       # tree height (heights)
    density: float    # 0..1 probability scale
    pine_share: float  # fraction of pines among trees
    salt: int
    dots: bool = False  # moss dots (dian): flat ink dabs centred on the ridge, no trunk

    def per_column(self, u: np.ndarray, ridge: Ridge, height: int):
        """Per-column tree parameters: centre column, foot row, height and half-width (pixels), presence, pine."""
        s = self.spacing
        cell = np.floor(u / s).astype(np.int64)
        jitter, size, width, chance, kind = hash01(cell[None], np.arange(11, 16)[:, None], self.salt)
        centre = (cell + 0.5 + 0.3 * (jitter - 0.5)) * s
        h = self.size * (0.6 + 0.8 * size.astype(np.float64))
        half = np.minimum(0.3 * s, (2.0 if self.dots else 1.0) * h * (0.28 + 0.12 * width))
        clusters = fbm1(centre / (6.0 * s), self.salt + 5, 3)
        present = chance < self.density * smoothstep(0.4, 0.65, clusters)
        pine = kind < self.pine_share
        cells, first, where = np.unique(cell, return_index=True, return_inverse=True)
        ridge_row = ridge.rows(centre[first], height)[where]     # one ridge evaluation per tree
        foot = ridge_row + (0.5 if self.dots else 0.25) * h * height
        present &= ridge_row < height - 0.3 * h * height      # no trees on a ridge below the frame
        return centre * height, foot, h * height, half * height, present, pine


def tree_alpha(xs: np.ndarray, ys: np.ndarray, centre: np.ndarray, foot: np.ndarray, h: np.ndarray,
               half: np.ndarray, pine: np.ndarray, aa: float, dots: bool = False) -> np.ndarray:
    """Coverage of the trees at pixel rows `ys` (L, B) and columns `xs` (B,), trees given per column.

    Pines are stacks of four shrinking tiers on a thin trunk; leafy trees two overlapping
    round blobs with a scalloped edge; moss dots flat ellipses.
    """
    h32 = h.astype(F32)
    rel = (foot.astype(F32) - ys) / h32                            # 0 at the foot, 1 at the top (L, B)
    dx = np.abs(xs - centre).astype(F32)
    half32 = half.astype(F32)
    if dots:
        z = F32(2.0) * rel - F32(1.0)
        dot_w = half32 * np.sqrt(np.maximum(F32(0.0), F32(1.0) - z * z))
        dot = np.clip((dot_w - dx) * F32(1.0 / aa) + F32(0.5), F32(0.0), F32(1.0))
        return dot * ((rel > F32(0.0)) & (rel < F32(1.0)))
    # pine: four tiers, each widest at its bottom edge
    tier = np.clip((rel - F32(0.12)) * F32(4.0 / 0.88), F32(0.0), F32(4.0))
    frac = tier - np.floor(tier)
    pine_w = half32 * (F32(1.05) - rel) * (F32(1.0) - F32(0.55) * frac)
    # leafy: a lower wide blob and an upper smaller one, edge scalloped like brush dabs
    z1 = (rel - F32(0.5)) * F32(1.0 / 0.32)
    z2 = (rel - F32(0.78)) * F32(1.0 / 0.22)
    blob = np.maximum(np.sqrt(np.maximum(F32(0.0), F32(1.0) - z1 * z1)),
                      F32(0.7) * np.sqrt(np.maximum(F32(0.0), F32(1.0) - z2 * z2)))
    leafy_w = half32 * F32(1.3) * blob * (F32(0.85) + F32(0.15) * np.abs(np.sin(rel * F32(17.0) + centre.astype(F32))))
    crown_w = np.where(pine, pine_w, leafy_w)
    crown = np.clip((crown_w - dx) * F32(1.0 / aa) + F32(0.5), F32(0.0), F32(1.0))
    crown *= (rel > F32(0.1)) & (rel < F32(1.0))
    trunk_w = np.maximum(F32(0.6 * aa), F32(0.08) * half32)
    trunk = np.clip((trunk_w - dx) * F32(1.0 / aa) + F32(0.5), F32(0.0), F32(1.0))
    trunk = trunk * ((rel > F32(0.0)) & (rel < F32(0.5)))
    return np.maximum(crown, trunk)
