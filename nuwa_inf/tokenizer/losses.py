"""Reconstruction losses that need no pretrained network: L1, L2, L1 on image gradients, and an
extra L1 on chroma (RGB losses are dominated by luminance; this makes hue errors cost more).
The texture losses are in spectral.py; objective.py weighs them all as a config says."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..colour import BT601


def image_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Finite differences along x and y of (B, C, H, W)."""
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


# BT.601 rows that turn RGB into luma Y and into the two colour-difference channels Cb, Cr
LUMA_FROM_RGB = torch.tensor(BT601[0], dtype=torch.float32)
CHROMA_FROM_RGB = torch.tensor(BT601[1:], dtype=torch.float32)


def luma(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB → (B, H, W) luma Y."""
    return torch.einsum("c,bchw->bhw", LUMA_FROM_RGB.to(x), x)


def chroma(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB → (B, 2, H, W) Cb, Cr (no offset: only differences are compared)."""
    return torch.einsum("kc,bchw->bkhw", CHROMA_FROM_RGB.to(x), x)


def reconstruction_loss(recon: torch.Tensor, target: torch.Tensor, l1: float, l2: float, grad: float,
                        chroma_l1: float = 0.0) -> torch.Tensor:
    loss = l1 * (recon - target).abs().mean() + l2 * F.mse_loss(recon, target)
    if chroma_l1:
        loss = loss + chroma_l1 * (chroma(recon) - chroma(target)).abs().mean()
    if grad:
        (rx, ry), (tx, ty) = image_gradients(recon), image_gradients(target)
        loss = loss + grad * 0.5 * ((rx - tx).abs().mean() + (ry - ty).abs().mean())
    return loss


def psnr(recon: torch.Tensor, target: torch.Tensor) -> float:
    """PSNR in dB of images in [-1, 1] (peak-to-peak 2)."""
    mse = F.mse_loss(recon.clamp(-1, 1), target).item()
    return float(10 * torch.log10(torch.tensor(4.0 / max(mse, 1e-12))))
