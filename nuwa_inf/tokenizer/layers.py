"""Building blocks of the tokenizer's conv encoder/decoder.

Every normalisation here is per position (RMS over channels), never over space
(no GroupNorm/BatchNorm): a pixel's output depends only on a finite neighbourhood,
so a tile decoded with a margin ≥ the receptive field equals the whole-image decode.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ChannelRMSNorm(nn.Module):
    """RMS normalisation over the channel axis of (B, C, H, W), learned per-channel gain."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            # (B, H, W, C) view (inference runs channels-last): the per-pixel scale from a float32
            # vector norm, two multiplies; ≈ 2× faster than F.rms_norm on CPU, in float32 and bfloat16
            pixels = x.permute(0, 2, 3, 1)
            if torch.is_grad_enabled():
                return F.rms_norm(pixels, (x.shape[1],), self.gain.view(-1), self.eps).permute(0, 3, 1, 2)
            scale = torch.linalg.vector_norm(pixels, dim=-1, keepdim=True, dtype=torch.float32)  # (B, H, W, 1)
            scale = scale.square_().div_(x.shape[1]).add_(self.eps).rsqrt_().to(x.dtype)
            return torch.mul(pixels, scale).mul_(self.gain.view(-1).to(x.dtype)).permute(0, 3, 1, 2)
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps) * self.gain


class ResBlock(nn.Module):
    """norm → SiLU → conv3 → norm → SiLU → conv3, plus the input. Receptive radius: 2 px."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm1 = ChannelRMSNorm(channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm2 = ChannelRMSNorm(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inplace = not torch.is_grad_enabled()  # saves a full-resolution temporary when decoding
        h = self.conv1(F.silu(self.norm1(x), inplace=inplace))
        h = self.conv2(F.silu(self.norm2(h), inplace=inplace))
        return h.add_(x) if inplace else x + h


def match_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """Parameter-free channel change of (B, C, H, W): average groups of C/channels channels, or
    repeat each channel channels/C times (one must divide the other)."""
    c = x.shape[1]
    if c == channels:
        return x
    if c % channels == 0:
        b, _, h, w = x.shape
        return x.reshape(b, channels, c // channels, h, w).mean(2)
    if channels % c == 0:
        return x.repeat_interleave(channels // c, dim=1)
    raise ValueError(f"cannot match {c} channels to {channels}: neither divides the other")


def add_channels(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """`out` (B, C_out, H, W) plus `x` (B, C, H, W) with its channels matched to C_out as in
    `match_channels`. Repeats are a broadcast over a (B, C, C_out/C, H, W) view of `out`, never
    materialised (10× faster than repeat_interleave on channels-last tensors), and in place when
    no gradient is needed."""
    b, c, h, w = x.shape
    c_out = out.shape[1]
    if c_out % c or c_out == c:
        return out.add_(match_channels(x, c_out)) if not torch.is_grad_enabled() else out + match_channels(x, c_out)
    if not torch.is_grad_enabled():
        out.view(b, c, c_out // c, h, w).add_(x.unsqueeze(2))
        return out
    return (out.view(b, c, c_out // c, h, w) + x.unsqueeze(2)).reshape(b, c_out, h, w)


class Downsample(nn.Module):
    """Stride-2 3×3 conv: (B, C_in, H, W) → (B, C_out, H/2, W/2).

    With `shortcut` (DC-AE's residual autoencoding) the conv learns a residual over a
    parameter-free path: each 2×2 neighbourhood folded into channels, then averaged to C_out.
    Block means then reach the latents on a straight path instead of being relearned.
    """

    def __init__(self, c_in: int, c_out: int, shortcut: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, stride=2, padding=1)
        self.c_out, self.shortcut = c_out, shortcut
        if shortcut:
            match_channels(torch.zeros(1, 4 * c_in, 1, 1), c_out)  # fail at build time, not in forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        if self.shortcut:
            out = out + match_channels(F.pixel_unshuffle(x, 2), self.c_out)  # (B, 4·C_in, H/2, W/2) → C_out
        return out


class Upsample(nn.Module):
    """Sub-pixel conv: 3×3 conv at low resolution to 4·C_out channels, then pixel shuffle.

    (B, C_in, H, W) → (B, C_out, 2H, 2W). Costs the same as nearest-upsample + conv but
    never materialises C_in channels at the high resolution. With `shortcut`, the conv adds
    to the input's channels repeated to 4·C_out and shuffled the same way (nearest-neighbour
    upsampling of channel groups: what came in goes out unless the conv changes it).
    """

    def __init__(self, c_in: int, c_out: int, shortcut: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(c_in, 4 * c_out, 3, padding=1)
        self.c_out, self.shortcut = c_out, shortcut
        if shortcut:
            match_channels(torch.zeros(1, c_in, 1, 1), 4 * c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)                                                   # (B, 4·C_out, H, W)
        if self.shortcut:
            out = add_channels(out, x)
        return F.pixel_shuffle(out, 2)
