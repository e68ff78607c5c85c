"""Reconstruction losses that need no pretrained network: L1, L2, and L1 on image gradients."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def image_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Finite differences along x and y of (B, C, H, W)."""
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def reconstruction_loss(recon: torch.Tensor, target: torch.Tensor, l1: float, l2: float, grad: float) -> torch.Tensor:
    loss = l1 * (recon - target).abs().mean() + l2 * F.mse_loss(recon, target)
    if grad:
        (rx, ry), (tx, ty) = image_gradients(recon), image_gradients(target)
        loss = loss + grad * 0.5 * ((rx - tx).abs().mean() + (ry - ty).abs().mean())
    return loss


def psnr(recon: torch.Tensor, target: torch.Tensor) -> float:
    """PSNR in dB of images in [-1, 1] (peak-to-peak 2)."""
    mse = F.mse_loss(recon.clamp(-1, 1), target).item()
    return float(10 * torch.log10(torch.tensor(4.0 / max(mse, 1e-12))))
