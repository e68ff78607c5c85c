"""Detail matching: the decoder's finest detail scaled to the amount the input itself has.

The tokenizer's decoder draws the finest band of detail (paper grain, hairlines) from what it
learned on average, not from the picture: on a held-out night scroll its round trip has 1.6×
the input's mean |∇Y| (0.69 against 0.44 grey levels), a fine regular mesh over the dark sky,
while day scrolls come back with about their own amount (0.94–1.06×). The input shows how much
fine detail this picture has, so:

    decoded = base + fine,  base = G_σ * decoded (σ = FINE_SIGMA px),  fine = decoded − base
    out     = base + α · fine

with α fitted once per job so that the input's own round trip, treated so, has the input's mean
|∇Y| (`fit_alpha`, over the input, at most its centre FIT_SIDE px square), and applied to every
decoded window before its margins are cropped (`tokenizer.tiled.decode_tiled(post=...)`): the
window's margins are far wider than the blur, so the pixels do not depend on the tiling, and α is
kept in the run directory, so a resumed run draws the same pixels. α = 1 changes nothing.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..atomic import kept_json
from ..colour import luma

FINE_SIGMA = 1.0            # px: the finest band is what a blur of this size takes away
ALPHA_RANGE = (0.25, 1.5)   # never remove all grain, never sharpen more than half again
FIT_SIDE = 2048             # px: α is fitted on at most this square of the input, at its centre
FIT_INSET = 64              # px: less this much along each side (a lone window decodes its edges without context)
DETAIL_FILE = "detail.json"


def _kernel(sigma: float) -> torch.Tensor:
    radius = int(3 * sigma + 1)
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-t**2 / (2 * sigma * sigma))
    return k / k.sum()


def blur_planes(planes: torch.Tensor, sigma: float) -> torch.Tensor:
    """(C, 1, h, w) float → the same, Gaussian-blurred (separable, edges reflected): a weighted
    sum of shifted copies, several times faster on a CPU than a one-channel conv2d."""
    k = _kernel(sigma).tolist()
    r = len(k) // 2
    padded = F.pad(planes, (r, r, 0, 0), mode="reflect")
    width = planes.shape[-1]
    rows = sum(w * padded[..., i:i + width] for i, w in enumerate(k))
    padded = F.pad(rows, (0, 0, r, r), mode="reflect")
    height = planes.shape[-2]
    return sum(w * padded[..., i:i + height, :] for i, w in enumerate(k))


def pixel_planes(pixels: np.ndarray) -> torch.Tensor:
    """(h, w, 3) → (3, 1, h, w) float32."""
    return torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)[:, None].float()


def split_fine(pixels: np.ndarray, sigma: float = FINE_SIGMA) -> tuple[np.ndarray, np.ndarray]:
    """(h, w, 3) → (base, fine) float32, base a Gaussian blur (edges reflected), fine the rest."""
    base = blur_planes(pixel_planes(pixels), sigma)[:, 0].permute(1, 2, 0).numpy()
    return base, pixels.astype(np.float32) - base


def _mean_abs_diff(y: np.ndarray) -> float:
    return float((np.abs(np.diff(y, axis=1)).mean() + np.abs(np.diff(y, axis=0)).mean()) / 2)


def mean_gradient(pixels: np.ndarray) -> float:
    """Mean |∇Y| (BT.601 luma, horizontal and vertical neighbours) in grey levels."""
    return _mean_abs_diff(luma(pixels))


def scale_fine(pixels: np.ndarray, alpha: float) -> np.ndarray:
    """(h, w, 3) uint8 with its finest band × alpha (uint8 again); alpha 1 returns it as it is."""
    if alpha == 1.0:
        return pixels
    planes = pixel_planes(pixels)
    out = torch.lerp(blur_planes(planes, FINE_SIGMA), planes, alpha)                # base + α · (pixels − base)
    return out.round_().clamp_(0, 255).to(torch.uint8)[:, 0].permute(1, 2, 0).contiguous().numpy()


def fit_alpha(original: np.ndarray, decoded: np.ndarray) -> float:
    """α in ALPHA_RANGE (0.05 steps) for which `decoded`'s fine band × α gives `decoded` the mean
    |∇Y| of `original` (same shape, uint8). Luma is linear, so Y(base + α·fine) = Y(base) + α·Y(fine)
    (the final clipping to 0…255 left out: it moves the figure by less than the step)."""
    target = mean_gradient(original.astype(np.float32))
    base, fine = split_fine(decoded)
    luma_base, luma_fine = (luma(part) for part in (base, fine))
    alphas = np.round(np.arange(ALPHA_RANGE[0], ALPHA_RANGE[1] + 1e-9, 0.05), 2)
    errors = [abs(_mean_abs_diff(luma_base + a * luma_fine) - target) for a in alphas]
    return float(alphas[int(np.argmin(errors))])


def fit_window(rows: int, cols: int, f: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """For an input of rows × cols tokens of f px: the tokens α is fitted on (at most FIT_SIDE px at
    the centre) and, inside their decoded pixels, the part compared (FIT_INSET px in from each
    side, where the window is large enough to spare it)."""
    def span(n: int) -> tuple[slice, slice]:
        side = min(n, FIT_SIDE // f)
        start = (n - side) // 2
        inset = FIT_INSET if side * f > 4 * FIT_INSET else 0
        return slice(start, start + side), slice(inset, side * f - inset)
    (token_rows, pixel_rows), (token_cols, pixel_cols) = span(rows), span(cols)
    return (token_rows, token_cols), (pixel_rows, pixel_cols)


def job_alpha(run_dir: Path, fit) -> float:
    """α kept in the run directory, or `fit()` now (and kept) for a new run."""
    return float(kept_json(Path(run_dir) / DETAIL_FILE, lambda: {"alpha": fit()})["alpha"])
