"""Finite scalar quantisation (FSQ, Mentzer et al. 2023).

Each of a few latent dimensions is bounded and rounded to one of `L_i` levels; the
code index is the mixed-radix number of the digits. There is no codebook to collapse,
so usage stays high by construction and nothing needs syncing across DDP ranks.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .layers import ChannelRMSNorm


class FSQ(nn.Module):
    def __init__(self, levels: tuple[int, ...], in_channels: int):
        super().__init__()
        self.levels = tuple(int(level) for level in levels)
        self.codebook_size = math.prod(self.levels)
        dims = len(self.levels)
        # Per-position RMS norm, then a projection initialised so the pre-tanh values start
        # with std ≈ 0.6: spread over several levels yet inside tanh's linear range. Too
        # small a spread rounds everything to a handful of codes (we saw perplexity ≈ 2 of
        # 4096); too large saturates tanh and pins the dims at their extreme levels (≈ 7).
        self.norm_in = ChannelRMSNorm(in_channels)
        self.project_in = nn.Conv2d(in_channels, dims, 1)
        nn.init.normal_(self.project_in.weight, std=0.6 / in_channels ** 0.5)
        nn.init.zeros_(self.project_in.bias)
        self.project_out = nn.Conv2d(dims, in_channels, 1)
        levels_t = torch.tensor(self.levels, dtype=torch.float32)
        basis = torch.cumprod(torch.tensor((1,) + self.levels[:-1]), 0)
        self.register_buffer("levels_t", levels_t.view(1, dims, 1, 1), persistent=False)
        self.register_buffer("basis", basis.view(1, dims, 1, 1), persistent=False)

    def _bound(self, z: torch.Tensor) -> torch.Tensor:
        """Squash each dim into (-(L-1)/2, (L-1)/2), shifted by 1/2 for even L so rounding gives L values."""
        half = (self.levels_t - 1) * (1 + 1e-3) / 2
        offset = torch.where(self.levels_t % 2 == 0, 0.5, 0.0)
        shift = torch.atanh(offset / half)
        return torch.tanh(z + shift) * half - offset

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, h, w) → (quantised latents (B, C, h, w), code indices (B, h, w) int64)."""
        bounded = self._bound(self.project_in(self.norm_in(z.float())))
        # training only: the usage regulariser, read by the trainer (inside DDP's forward)
        self.aux_loss = self.entropy_loss(bounded) if self.training else None
        rounded = bounded + (torch.round(bounded) - bounded).detach()  # straight-through
        half_width = torch.div(self.levels_t, 2, rounding_mode="floor")
        digits = (torch.round(bounded) + half_width).long()
        indices = (digits * self.basis).sum(dim=1)
        return self.project_out(rounded / half_width), indices

    def entropy_loss(self, bounded: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
        """Per-dimension code-usage regulariser (as in LFQ/MAGVIT-v2, factorised over FSQ dims):
        mean per-position entropy (be confident) minus entropy of the batch-average level
        distribution (use every level). Soft assignment: softmax of -(distance to level)² / T."""
        loss = bounded.new_zeros(())
        for dim, levels in enumerate(self.levels):
            values = torch.arange(levels, device=bounded.device, dtype=bounded.dtype) - levels // 2
            logits = -(bounded[:, dim].unsqueeze(-1) - values) ** 2 / temperature  # (B, h, w, L)
            probs = logits.softmax(-1)
            per_position = -(probs * probs.clamp_min(1e-8).log()).sum(-1).mean()
            average = probs.reshape(-1, levels).mean(0)
            batch = -(average * average.clamp_min(1e-8).log()).sum()
            loss = loss + per_position - batch
        return loss / len(self.levels)

    def digits(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, h, w) int64 code indices → (B, dims, h, w) int64: each dim's level, 0 … L−1."""
        return torch.div(indices.unsqueeze(1), self.basis, rounding_mode="floor") % self.levels_t.long()

    def indices_to_latents(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, h, w) int64 → (B, C, h, w) latents for the decoder."""
        digits = self.digits(indices)
        half_width = torch.div(self.levels_t, 2, rounding_mode="floor")
        return self.project_out((digits.float() - half_width) / half_width)


class UsageMeter:
    """Code usage and perplexity over the last `window` batches (one batch sees too few tokens)."""

    def __init__(self, codebook_size: int, window: int = 50):
        self.codebook_size, self.window = codebook_size, window
        self.batches: list[torch.Tensor] = []

    def update(self, indices: torch.Tensor) -> tuple[float, float]:
        self.batches.append(torch.bincount(indices.flatten().cpu(), minlength=self.codebook_size))
        self.batches = self.batches[-self.window:]
        counts = torch.stack(self.batches).sum(0).float()
        probs = counts / counts.sum().clamp_min(1)
        nonzero = probs[probs > 0]
        return float((counts > 0).float().mean()), float((-(nonzero * nonzero.log()).sum()).exp())


def code_usage(indices: torch.Tensor, codebook_size: int) -> tuple[float, float]:
    """(fraction of codes used, perplexity) over a batch of indices."""
    counts = torch.bincount(indices.flatten(), minlength=codebook_size).float()
    probs = counts / counts.sum().clamp_min(1)
    entropy = -(probs[probs > 0] * probs[probs > 0].log()).sum()
    return float((counts > 0).float().mean()), float(entropy.exp())
