"""The reconstruction part of the tokenizer's training loss: every term, weighted as a config says."""
from __future__ import annotations

import torch

from .config import TokenizerConfig
from .losses import reconstruction_loss
from .spectral import band_power_loss, grid_loss


def config_loss(recon: torch.Tensor, target: torch.Tensor, cfg: TokenizerConfig) -> torch.Tensor:
    """Pixel, gradient and chroma L1/L2 (losses.py), plus band power and grid (spectral.py) when on."""
    loss = reconstruction_loss(recon, target, cfg.l1_weight, cfg.l2_weight, cfg.grad_weight, cfg.chroma_weight)
    if cfg.spectral_weight:
        loss = loss + cfg.spectral_weight * band_power_loss(recon, target)
    if cfg.grid_weight:
        loss = loss + cfg.grid_weight * grid_loss(recon, target, cfg.downsample)
    return loss
