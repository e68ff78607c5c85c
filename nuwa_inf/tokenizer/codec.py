"""Conv encoder (pixels → latents, f = 2^(levels-1)) and decoder (latents → pixels).

No attention and no spatial normalisation: both have a finite receptive field,
reported by `encoder_radius_px` / `decoder_radius_latents` for exact tiling.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import TokenizerConfig
from .layers import ChannelRMSNorm, Downsample, ResBlock, Upsample, add_channels, match_channels


class Encoder(nn.Module):
    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        widths = [cfg.ch * m for m in cfg.ch_mult]
        self.conv_in = nn.Conv2d(3, widths[0], 3, padding=1)
        self.levels = nn.ModuleList()
        for i, width in enumerate(widths):
            blocks = [ResBlock(width) for _ in range(cfg.num_res_blocks)]
            if i < len(widths) - 1:
                blocks.append(Downsample(width, widths[i + 1], cfg.shortcuts))
            self.levels.append(nn.Sequential(*blocks))
        self.norm_out = ChannelRMSNorm(widths[-1])
        self.conv_out = nn.Conv2d(widths[-1], cfg.z_channels, 3, padding=1)
        self.z_channels, self.shortcut = cfg.z_channels, cfg.shortcuts

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] → (B, z_channels, H/f, W/f)."""
        h = self.conv_in(pixels)
        for level in self.levels:
            h = level(h)
        z = self.conv_out(F.silu(self.norm_out(h)))
        return z + match_channels(h, self.z_channels) if self.shortcut else z


class Decoder(nn.Module):
    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        widths = [cfg.ch * m for m in cfg.ch_mult][::-1]  # coarsest first
        self.conv_in = nn.Conv2d(cfg.z_channels, widths[0], 3, padding=1)
        self.levels = nn.ModuleList()
        for i, width in enumerate(widths):
            blocks = [ResBlock(width) for _ in range(cfg.num_res_blocks)]
            if i < len(widths) - 1:
                blocks.append(Upsample(width, widths[i + 1], cfg.shortcuts))
            self.levels.append(nn.Sequential(*blocks))
        self.norm_out = ChannelRMSNorm(widths[-1])
        self.conv_out = nn.Conv2d(widths[-1], 3, 3, padding=1)
        self.width_in, self.shortcut = widths[0], cfg.shortcuts

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, z_channels, h, w) → (B, 3, h·f, w·f), unbounded (clamp to [-1, 1] for display)."""
        h = self.conv_in(latents)
        if self.shortcut:
            h = add_channels(h, latents)
        for level in self.levels:
            h = level(h)
        return self.conv_out(F.silu(self.norm_out(h)))


def encoder_radius_px(cfg: TokenizerConfig) -> int:
    """How far (in input pixels) an encoder output can see, on each side."""
    radius = 1  # conv_in
    for level in range(len(cfg.ch_mult)):
        stride = 2 ** level
        radius += 2 * cfg.num_res_blocks * stride
        if level < len(cfg.ch_mult) - 1:
            radius += stride  # the stride-2 conv reads ±1 px of its input level
    radius += cfg.downsample  # conv_out at the latent level
    return radius


def decoder_radius_latents(cfg: TokenizerConfig) -> int:
    """How far (in latents) a decoded pixel can see, on each side."""
    radius = 1.0  # conv_in at the latent level
    for level in range(len(cfg.ch_mult)):
        scale = 1.0 / 2 ** level  # size of one px of this level, in latents
        radius += 2 * cfg.num_res_blocks * scale
        if level < len(cfg.ch_mult) - 1:
            radius += scale  # the sub-pixel conv runs at this level
    radius += 1.0 / cfg.downsample  # conv_out at full resolution
    return math.ceil(radius)
