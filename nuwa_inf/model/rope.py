"""2-D rotary position embedding in canvas coordinates: the token-level positional signal
that lets a patch's queries find *which* tokens of a neighbouring patch lie next to them.

The Arbitrary Direction Controller gives each context block one bias per (head, offset);
it cannot tell the left neighbour's last column from its first. Rotating queries and keys
by their absolute token coordinates on the canvas makes q·k depend only on the displacement
between the two tokens (RoPE's relative property), for a patch's own keys and for context
keys alike: "attend to the token above" is the same pattern inside a patch and across the
top edge. Positions are canvas coordinates, so they are the same wherever a patch's K/V are
computed (training crop, prefill, sampling) up to a shift that RoPE cancels.

Which location a sequence position stands for:
  query at position i (predicts t_i)       → token i's location
  key   at position j (input t_{j-1})      → token j-1's location; BOS (j = 0) sits just
                                             left of token 0
The first `rope_dims` channels of each head rotate: half by the row coordinate, half by the
column coordinate (rope_dims / 4 frequencies each, from 1 down to ~1/rope_theta per token).
Time (video frames) is left to the per-offset ADC terms.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .config import ModelConfig


@dataclass
class RopeTables:
    """cos/sin of the rotation angles of every (patch, position), for queries and keys."""

    cos: Tensor  # (N, L, 2, 1, R/2): [query, key] × broadcast over heads × angle
    sin: Tensor

    def at(self, position: int) -> "RopeTables":
        """The tables of one sequence position (decode steps): (N, 1, 2, 1, R/2)."""
        return RopeTables(self.cos[:, position:position + 1], self.sin[:, position:position + 1])


def _token_locations(cfg: ModelConfig) -> tuple[Tensor, Tensor]:
    """In-patch (row, col) of each sequence position, for queries and for keys: 2 × (L, 2)."""
    flat = torch.arange(cfg.seq_len)
    query = torch.stack([flat // cfg.patch_w, flat % cfg.patch_w], dim=1)      # token i's cell
    key = torch.cat([torch.tensor([[0, -1]]), query[:-1]])                     # token j-1's cell
    return query, key


def crop_grid_positions(rows: int, cols: int, frames: int, n_patches: int) -> Tensor:
    """(row, col) of n_patches patches that are whole rows×cols(×frames) crops, each in raster
    order (frame-major; frames share positions) → (n_patches, 2) int64."""
    per_crop = frames * rows * cols
    if n_patches % per_crop:
        raise ValueError(f"{n_patches} patches are not whole crops of {rows}x{cols}x{frames}; pass positions")
    cell = torch.arange(per_crop) % (rows * cols)
    grid = torch.stack([cell // cols, cell % cols], dim=1)
    return grid.repeat(n_patches // per_crop, 1)


def canvas_rope(cfg: ModelConfig, positions: Tensor, dtype: torch.dtype = torch.float32) -> RopeTables | None:
    """Rotation tables for patches at patch coordinates `positions` (N, 2) = (row, col).

    None when the model has no rotary channels (rope_dims = 0).
    """
    if cfg.rope_dims == 0:
        return None
    quarter = cfg.rope_dims // 4
    freqs = cfg.rope_theta ** (-torch.arange(quarter, dtype=torch.float64) / quarter)   # (R/4,)
    origin = positions.to(torch.float64).cpu() * torch.tensor([cfg.patch_h, cfg.patch_w], dtype=torch.float64)
    query, key = _token_locations(cfg)
    cells = torch.stack([query, key], dim=1).to(torch.float64)                          # (L, 2, 2)
    coords = origin[:, None, None, :] + cells[None]                                     # (N, L, 2, 2)
    angles = torch.cat([coords[..., 0:1] * freqs, coords[..., 1:2] * freqs], dim=-1)    # (N, L, 2, R/2)
    angles = angles.unsqueeze(3)                                                        # (N, L, 2, 1, R/2)
    device = positions.device
    return RopeTables(torch.cos(angles).to(device, dtype), torch.sin(angles).to(device, dtype))


def rotate_query_key(qk: Tensor, tables: RopeTables) -> Tensor:
    """Rotate the first rope_dims channels of queries and keys.

    qk: (N, L, 2, H, Dh) — [query, key] of each head; returns the same shape.
    """
    half = tables.cos.shape[-1]
    x1, x2, rest = qk[..., :half], qk[..., half:2 * half], qk[..., 2 * half:]
    cos, sin = tables.cos.to(qk.dtype), tables.sin.to(qk.dtype)   # bf16 under autocast: keep q, k, v alike
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos, rest], dim=-1)
