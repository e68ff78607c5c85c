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
Video: the next `rope_time_dims` channels rotate by the frame index (positions (N, 3) =
(frame, row, col)), so q·k also depends on Δt. Within one frame the time rotation cancels
(query and key turn by the same angle): an image model given time channels is unchanged on
images, and only its attention across frames sees them.
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
    time_cos: Tensor | None = None  # (N, 1, 1, 1, Rt/2): one frame angle per patch, or None
    time_sin: Tensor | None = None

    def at(self, position: int) -> "RopeTables":
        """The tables of one sequence position (decode steps): (N, 1, 2, 1, R/2)."""
        return RopeTables(self.cos[:, position:position + 1], self.sin[:, position:position + 1],
                          self.time_cos, self.time_sin)


def _token_locations(cfg: ModelConfig) -> tuple[Tensor, Tensor]:
    """In-patch (row, col) of each sequence position, for queries and for keys: 2 × (L, 2)."""
    flat = torch.arange(cfg.seq_len)
    query = torch.stack([flat // cfg.patch_w, flat % cfg.patch_w], dim=1)      # token i's cell
    key = torch.cat([torch.tensor([[0, -1]]), query[:-1]])                     # token j-1's cell
    return query, key


def crop_grid_positions(rows: int, cols: int, frames: int, n_patches: int) -> Tensor:
    """Positions of n_patches patches that are whole rows×cols(×frames) crops, each in raster
    order (frame-major) → (n_patches, 2) int64 (row, col), or with frames > 1 (n_patches, 3)
    (frame, row, col)."""
    per_crop = frames * rows * cols
    if n_patches % per_crop:
        raise ValueError(f"{n_patches} patches are not whole crops of {rows}x{cols}x{frames}; pass positions")
    index = torch.arange(per_crop)
    cell = index % (rows * cols)
    grid = torch.stack([cell // cols, cell % cols], dim=1)
    if frames > 1:
        grid = torch.cat([(index // (rows * cols))[:, None], grid], dim=1)
    return grid.repeat(n_patches // per_crop, 1)


def spatial(positions: Tensor) -> Tensor:
    """(N, 2) (row, col) of positions given as (N, 2) or (N, 3) (frame, row, col)."""
    return positions[:, -2:]


def canvas_rope(cfg: ModelConfig, positions: Tensor, dtype: torch.dtype = torch.float32) -> RopeTables | None:
    """Rotation tables for patches at patch coordinates `positions` (N, 2) = (row, col), or
    (N, 3) = (frame, row, col) for a model with time channels (a frame index of 0 otherwise).

    None when the model has no rotary channels (rope_dims = 0).
    """
    if cfg.rope_dims == 0:
        return None
    time_cos = time_sin = None
    if cfg.rope_time_dims:
        frames = positions[:, 0] if positions.shape[1] == 3 else torch.zeros(positions.shape[0])
        half_t = cfg.rope_time_dims // 2
        time_freqs = cfg.rope_theta ** (-torch.arange(half_t, dtype=torch.float64) / max(1, half_t))
        time_angles = (frames.to(torch.float64).cpu()[:, None] * time_freqs)[:, None, None, None, :]
        time_cos = torch.cos(time_angles).to(positions.device, dtype)           # (N, 1, 1, 1, Rt/2)
        time_sin = torch.sin(time_angles).to(positions.device, dtype)
    positions = spatial(positions)
    quarter = cfg.rope_dims // 4
    freqs = cfg.rope_theta ** (-torch.arange(quarter, dtype=torch.float64) / quarter)   # (R/4,)
    origin = positions.to(torch.float64).cpu() * torch.tensor([cfg.patch_h, cfg.patch_w], dtype=torch.float64)
    query, key = _token_locations(cfg)
    cells = torch.stack([query, key], dim=1).to(torch.float64)                          # (L, 2, 2)
    coords = origin[:, None, None, :] + cells[None]                                     # (N, L, 2, 2)
    angles = torch.cat([coords[..., 0:1] * freqs, coords[..., 1:2] * freqs], dim=-1)    # (N, L, 2, R/2)
    angles = angles.unsqueeze(3)                                                        # (N, L, 2, 1, R/2)
    device = positions.device
    return RopeTables(torch.cos(angles).to(device, dtype), torch.sin(angles).to(device, dtype), time_cos, time_sin)


def rotate_query_key(qk: Tensor, tables: RopeTables) -> Tensor:
    """Rotate the first rope_dims channels of queries and keys.

    qk: (N, L, 2, H, Dh) — [query, key] of each head; returns the same shape.
    """
    half = tables.cos.shape[-1]
    x1, x2, rest = qk[..., :half], qk[..., half:2 * half], qk[..., 2 * half:]
    cos, sin = tables.cos.to(qk.dtype), tables.sin.to(qk.dtype)   # bf16 under autocast: keep q, k, v alike
    if tables.time_cos is not None:  # the time channels follow the canvas ones
        half_t = tables.time_cos.shape[-1]
        t1, t2, rest = rest[..., :half_t], rest[..., half_t:2 * half_t], rest[..., 2 * half_t:]
        time_cos, time_sin = tables.time_cos.to(qk.dtype), tables.time_sin.to(qk.dtype)
        rest = torch.cat([t1 * time_cos - t2 * time_sin, t1 * time_sin + t2 * time_cos, rest], dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos, rest], dim=-1)
