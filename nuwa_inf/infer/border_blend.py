"""Multi-band blending of the input into the canvas around it, as panorama stitchers do.

Inside its region the output shows the input's own pixels A; around it, the decoded tokens B.
B differs from A (the tokenizer's round trip shifts colour by a few levels and softens
detail), so a narrow feather from A to B leaves a line along the input's edge, and a wide
one blurs the input. Split the difference d = A − B into bands of spatial frequency
(differences of Gaussian blurs) and fade each band in over a ramp of its own width: fine
detail over a few pixels, the colour shift over `blend` pixels. At the edge the output is B
(continuous with the generated side, decoded from the same token canvas); `blend` pixels
inside it is A exactly:

    out = B + Σ_l w_l · d_l,   d_0 = d − G_σ0 d, d_1 = G_σ0 d − G_σ1 d, …, d_last = G_σlast d,
    w_l = min over open sides of clip((distance to the edge + ½) / ramp_l, 0, 1)

Only a band of the input along each side that faces generated content is touched. It is
computed once B is final there, from a fresh decode of its token columns (the tiled decode is
exact, so that is the same B that was written), which makes the step a pure function of the
tokens and the input: it is streaming-friendly and gives the same pixels when redone after a
resume.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Band:
    """A strip of the input along one open side, in canvas pixels: the pixels it rewrites
    (y0, x0, y1, x1) and the larger rectangle its blurs read (`context`, inside the input)."""

    side: str
    rect: tuple[int, int, int, int]
    context: tuple[int, int, int, int]


def blend_width(blend: int, in_w: int, in_h: int) -> int:
    """The widest ramp for an input of in_w × in_h: `blend`, at most a quarter of its shorter side."""
    return max(0, min(blend, min(in_w, in_h) // 4))


def levels(blend: int) -> tuple[list[float], list[float]]:
    """Blur sigmas and per-band ramp widths (finest first) for a widest ramp of `blend` px."""
    sigmas = [blend / 128, blend / 32, blend / 8]
    ramps = [blend / 32, blend / 8, 3 * blend / 8, blend]
    return sigmas, ramps


def bands(x0: int, y0: int, in_w: int, in_h: int, open_sides: tuple[bool, bool, bool, bool],
          blend: int) -> list[Band]:
    """The bands of an input at (x0, y0) of in_w × in_h px; open_sides = (top, left, bottom, right)."""
    reach = blend + int(3 * levels(blend)[0][-1]) + 1          # the ramp plus the widest blur's support
    x1, y1 = x0 + in_w, y0 + in_h
    top, left, bottom, right = open_sides
    out = []
    for is_open, side, rect, context in (
            (top, "top", (y0, x0, min(y1, y0 + blend), x1), (y0, x0, min(y1, y0 + reach), x1)),
            (left, "left", (y0, x0, y1, min(x1, x0 + blend)), (y0, x0, y1, min(x1, x0 + reach))),
            (bottom, "bottom", (max(y0, y1 - blend), x0, y1, x1), (max(y0, y1 - reach), x0, y1, x1)),
            (right, "right", (y0, max(x0, x1 - blend), y1, x1), (y0, max(x0, x1 - reach), y1, x1))):
        if is_open and blend > 0:
            out.append(Band(side, rect, context))
    return out


def in_any_band(band_list: list[Band], y0: int, x0: int, h: int, w: int) -> np.ndarray:
    """(h, w) bool: which pixels of the canvas window at (y0, x0) some band rewrites."""
    mask = np.zeros((h, w), dtype=bool)
    for band in band_list:
        by0, bx0, by1, bx1 = band.rect
        ys, ye = max(by0, y0) - y0, min(by1, y0 + h) - y0
        xs, xe = max(bx0, x0) - x0, min(bx1, x0 + w) - x0
        if ye > ys and xe > xs:
            mask[ys:ye, xs:xe] = True
    return mask


def _gaussian(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (C, H, W), normalised at the borders (no darkening)."""
    radius = max(1, int(3 * sigma))
    taps = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = image.shape[0]

    def along(x: torch.Tensor, horizontal: bool) -> torch.Tensor:
        weight = kernel.view(1, 1, 1, -1) if horizontal else kernel.view(1, 1, -1, 1)
        padding = (0, radius) if horizontal else (radius, 0)
        return F.conv2d(x, weight.expand(x.shape[1], 1, *weight.shape[2:]), padding=padding, groups=x.shape[1])

    stacked = torch.cat([image, torch.ones_like(image[:1])])[None]        # (1, C+1, H, W): values and coverage
    blurred = along(along(stacked, True), False)[0]
    return blurred[:channels] / blurred[channels:].clamp_min(1e-6)


def blend_band(band: Band, own: np.ndarray, decoded: np.ndarray, input_rect: tuple[int, int, int, int],
               open_sides: tuple[bool, bool, bool, bool], blend: int) -> np.ndarray:
    """The band's output pixels (uint8, the shape of band.rect) from the input's pixels `own`
    and the decoded pixels `decoded` over band.context (both (h, w, 3) uint8)."""
    sigmas, ramps = levels(blend)
    a = torch.from_numpy(own.astype(np.float32)).permute(2, 0, 1)           # (3, h, w)
    b = torch.from_numpy(decoded.astype(np.float32)).permute(2, 0, 1)
    diff = a - b
    blurs = [diff] + [_gaussian(diff, s) for s in sigmas]
    parts = [blurs[i] - blurs[i + 1] for i in range(len(sigmas))] + [blurs[-1]]   # fine → coarse, Σ = diff
    cy0, cx0, cy1, cx1 = band.context
    iy0, ix0, iy1, ix1 = input_rect
    ys = torch.arange(cy0, cy1, dtype=torch.float32)[:, None]
    xs = torch.arange(cx0, cx1, dtype=torch.float32)[None, :]
    top, left, bottom, right = open_sides
    distances = [d for is_open, d in ((top, ys - iy0), (left, xs - ix0), (bottom, iy1 - 1 - ys),
                                      (right, ix1 - 1 - xs)) if is_open]
    out = b.clone()
    for part, ramp in zip(parts, ramps, strict=True):
        weight = torch.ones(cy1 - cy0, cx1 - cx0)
        for dist in distances:
            weight = torch.minimum(weight, ((dist + 0.5) / ramp).clamp(0, 1))
        out += weight * part
    ry0, rx0, ry1, rx1 = band.rect
    out = out[:, ry0 - cy0: ry1 - cy0, rx0 - cx0: rx1 - cx0]
    return out.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
