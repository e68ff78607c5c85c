"""Colour matching: the decoder's colour cast, measured on the input, taken off every decoded window.

The tokenizer's decoder draws some colours with a cast of its own, the same wherever its codes
land: the held-out ink sunset's lavender sky (146, 128, 141 in its top 128 rows) comes back from the
input's own tokens as a grey-green (144, 142, 135), and everything the transformer draws beside the
input inherits the cast, because it draws with the same codes. The input shows the cast: its
pixels beside its own decoded tokens. So, once per job, a shift of chroma, affine in the colour,
is fitted by least squares over the input (both sides blurred at SIGMA px for the fit, so that it
sees colour, not detail the decoder misplaces):

    shift(c) = [1, c/255] · A · (I − y·1ᵀ)    c: a colour, A: (4, 3), y: the BT.601 luma weights —
                                              the shift leaves luma as it is
    out      = decoded + W · clip(shift(decoded), ±MAX_SHIFT)        (pixel by pixel)

and applied to every decoded window (`decode_tiled(post=...)`). Pixel by pixel, the pixels do not
depend on the tiling, and A is kept in the run directory, so a resumed run draws the same pixels.
(Being affine, the shift of a pixel is the shift of its blurred colour plus A's linear part times
its fine detail, which the entries of A, a few grey levels per unit of colour, leave within a few
per cent.) Luma is left alone: the colour tilt and the detail match see to the light, and a luma
shift fitted the same way made the held-out day scroll's light worse (README, "Continuation against
the truth").
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..atomic import kept_json
from ..colour import BT601
from .detail import blur_planes, pixel_planes

SIGMA = 2.0          # px: the blur of both sides of the fit
STRIDE = 4           # px: the fit reads every STRIDE-th pixel along each axis
RIDGE = 1e-3         # per sample: keeps A small along colour directions the input barely spans
MAX_SHIFT = 32.0     # grey levels: a colour far outside the input's gamut is never moved further
COLOUR_FILE = "colour.json"


def fit_shift(original: np.ndarray, decoded: np.ndarray) -> np.ndarray:
    """(4, 3) float64 A of the chroma shift that takes `decoded` towards `original` (same shape,
    (h, w, 3) uint8), luma removed from its output (see the module docstring)."""
    if original.shape != decoded.shape:
        raise ValueError(f"original {original.shape} and decoded {decoded.shape} differ")
    blurred = [blur_planes(pixel_planes(p), SIGMA)[:, 0, ::STRIDE, ::STRIDE] for p in (original, decoded)]
    target, source = (b.reshape(3, -1).T.double().numpy() for b in blurred)  # (n, 3) each, grey levels
    features = np.concatenate([np.ones((len(source), 1)), source / 255.0], axis=1)   # (n, 4)
    ridge = RIDGE * len(source) * np.diag([0.0, 1.0, 1.0, 1.0])
    matrix = np.linalg.solve(features.T @ features + ridge, features.T @ (target - source))  # (4, 3)
    keep_luma = np.eye(3) - np.outer(BT601[0], np.ones(3))   # (3, 3): d ↦ d − Y(d)·(1, 1, 1)
    return matrix @ keep_luma


def shift_colours(pixels: np.ndarray, matrix: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """(h, w, 3) uint8 with the chroma shift of `matrix` (from `fit_shift`) × `strength` added (uint8)."""
    if strength == 0.0:
        return pixels
    colour = torch.from_numpy(np.ascontiguousarray(pixels)).float()            # (h, w, 3) grey levels
    a = torch.from_numpy(np.asarray(matrix, dtype=np.float32))                # (4, 3)
    shift = torch.addmm(a[0], colour.view(-1, 3), a[1:] / 255.0)              # (h·w, 3) grey levels
    out = colour.view(-1, 3).add_(shift.clamp_(-MAX_SHIFT, MAX_SHIFT).mul_(strength))
    return out.round_().clamp_(0, 255).to(torch.uint8).view(pixels.shape).numpy()


def job_shift(run_dir: Path, fit) -> np.ndarray:
    """A kept in the run directory, or `fit()` now (and kept) for a new run."""
    kept = kept_json(Path(run_dir) / COLOUR_FILE, lambda: {"matrix": np.asarray(fit()).tolist()})
    return np.asarray(kept["matrix"], dtype=np.float64)
