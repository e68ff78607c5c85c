"""Where a token sits between the canvas's top and bottom edges: a learned embedding of that
height, added to the token inputs.

Scroll paintings (and most photographs) are not the same top to bottom: sky above, mountains
in the middle, water below. Rotary positions are relative and the context pool sees only the
neighbours, so without this a patch far from the input cannot tell a sky row from a water
row. The canvas height is split into `row_bins` equal bands; a token in band b adds
`row_emb[b]` to its input. The table starts at zero, so a model given it later (fine-tuned
from one without) starts out unchanged.

Bands are fractions of the height, so they do not say how tall the canvas is — and a scene
scales with it (a 512-px-high landscape holds in two patch rows what a 2048-px one holds in
eight: smaller peaks, the whole sky-to-water layout in one patch). With `scale_bins` > 0 every
token also adds the embedding of its canvas height, `scale_emb` interpolated on a log scale
between octaves of 2 patch rows (512, 1024, 2048, 4096… px for the small preset), so one model
can draw at several scales without mixing them. It too starts at zero.

`canvas_rows` (N, 2) int64 gives, for each of N patches, the canvas token row of the patch's
first token row and the canvas height in token rows (training crops sit at any token offset
of their image; generated patches at whole patch rows of the canvas).
"""
from __future__ import annotations

import torch
from torch import Tensor

from .config import ModelConfig


def bounding_canvas_rows(cfg: ModelConfig, positions: Tensor) -> Tensor:
    """`canvas_rows` when the patches at `positions` (N, 2), or (N, 3) with frames, span the
    whole canvas height (a training crop that is its own canvas): (N, 2)."""
    rows = positions[:, -2]
    top = (rows - rows.min()) * cfg.patch_h
    return torch.stack([top, torch.full_like(top, int(rows.max() - rows.min() + 1) * cfg.patch_h)], dim=1)


def band_of_positions(cfg: ModelConfig, canvas_rows: Tensor) -> Tensor:
    """(N, 2) canvas rows → (N, L) band of each sequence position.

    Position i predicts token i, so it takes token i's row; the last position (it only
    feeds the pool with token P-1's keys) takes the last token row.
    """
    token = torch.arange(cfg.seq_len, device=canvas_rows.device).clamp_max(cfg.patch_tokens - 1)
    row = canvas_rows[:, :1] + token[None] // cfg.patch_w                     # (N, L) canvas token row
    height = canvas_rows[:, 1:2].clamp_min(1)
    band = torch.div((2 * row + 1) * cfg.row_bins, 2 * height, rounding_mode="floor")  # ⌊(row+½)/height·bins⌋
    return band.clamp(0, cfg.row_bins - 1)


def scale_weights(cfg: ModelConfig, canvas_rows: Tensor) -> Tensor:
    """(N, 2) canvas rows → (N, scale_bins) weights of the height octaves: canvas height h token
    rows sits at f = log2(h / (2·patch_h)), clamped to the table, shared linearly between
    octaves ⌊f⌋ and ⌊f⌋+1 (a hat function around each octave)."""
    height = canvas_rows[:, 1].clamp_min(1).to(torch.float32)
    f = torch.log2(height / (2 * cfg.patch_h)).clamp(0, cfg.scale_bins - 1)      # (N,)
    octaves = torch.arange(cfg.scale_bins, device=canvas_rows.device)             # (bins,)
    return (1 - (f[:, None] - octaves).abs()).clamp_min(0)                         # (N, bins)
