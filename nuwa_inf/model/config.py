"""Configuration of the local autoregressive transformer (NUWA-Infinity's local AR with NCP).

`small` is sized by the main job's budget (SPEC): sampling on 2 CPU cores is bound by
per-step overhead and context reads, so the bundled model is narrow and shallow with
extent 1 (≤ 4 context patches in a sweep order). `base` is paper-scale for GPUs.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import require_positive
from ..errors import UserError


@dataclass
class ModelConfig:
    preset: str = "custom"
    vocab_size: int = 4096           # must equal the tokenizer's codebook size
    dim: int = 256
    layers: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    patch_h: int = 16                # tokens per patch side (16 tokens = 256 px at f=16)
    patch_w: int = 16
    extent_h: int = 1                # Nearby Context Pool extent, in patches
    extent_w: int = 1
    extent_t: int = 0                # frames back (video); 0 for images
    text_dim: int = 0                # unused (older configs name it); text is `text_len` below
    dropout: float = 0.0
    rope_dims: int = 0               # channels per head rotated by 2-D canvas RoPE (0 = off; see rope.py)
    rope_theta: float = 100.0        # slowest rotary frequency is ~1/rope_theta per token
    rope_time_dims: int = 0          # channels per head (after rope_dims) rotated by the frame index (video)
    row_bins: int = 0                # bands of canvas height with a learned embedding (0 = off; see vertical.py)
    scale_bins: int = 0              # octaves of canvas height (from 2 patch rows) with a learned embedding (0 = off)
    # condition memory (memory.py): the known image pooled to ≤ memory_rows × memory_cols cells of
    # about memory_cell_h × memory_cell_w tokens; 0 rows = no memory
    memory_rows: int = 0
    memory_cols: int = 8
    memory_cell_h: int = 8
    memory_cell_w: int = 16
    memory_row_bins: int = 16
    memory_drop: float = 0.15        # share of training crops whose memory is dropped (null entry only)
    context_drop: float = 0.0        # share of training crops without any context patch (the memory alone)
    memory_min_w: int = 64           # width range, in tokens, of the crop a training memory is pooled from
    memory_max_w: int = 128
    # text in the condition memory (text.py): captions of up to text_len words; 0 = no text
    text_len: int = 0
    text_layers: int = 2
    text_vocab_size: int = 0         # rows of the word table: the vocabulary + padding + unknown
    text_drop: float = 0.15          # share of training crops whose caption is dropped (guidance's uncond)
    # text in a softmax group of its own in the memory attention, with its own zero-initialised
    # output projection: text added to a trained model starts as an exact no-op, and a job
    # without a prompt runs exactly the model it was (memory.py)
    text_gate: bool = False
    # "none" | "base": train only what a fine-tune gains (memory, text, bands) | "text": only the
    # text encoder and its output projections (with text_gate: the model without a prompt stays exact)
    freeze: str = "none"
    # training crops, in patches
    crop_rows: int = 3
    crop_cols: int = 4
    crop_frames: int = 1
    batch_size: int = 4
    lr: float = 6e-4
    weight_decay: float = 0.05
    known_region_prob: float = 0.5   # share of crops trained as "outpaint around a known block"

    @property
    def patch_tokens(self) -> int:
        return self.patch_h * self.patch_w

    @property
    def seq_len(self) -> int:
        """Self-attention length of a patch: BOS + its tokens (the last token's K/V feed the pool)."""
        return self.patch_tokens + 1

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads

    @property
    def offsets_per_frame(self) -> int:
        """Number of distinct spatial offsets (Δrow, Δcol) a context patch can have in one frame."""
        return (2 * self.extent_h + 1) * (2 * self.extent_w + 1)

    @property
    def n_offsets(self) -> int:
        """Number of distinct relative offsets (Δt, Δrow, Δcol) a context patch can have."""
        return (self.extent_t + 1) * self.offsets_per_frame

    def offset_id(self, dt: int, dr: int, dc: int) -> int:
        """Index of relative offset (Δt ≤ 0, Δrow, Δcol) of a context patch, in [0, n_offsets)."""
        rows, cols = 2 * self.extent_h + 1, 2 * self.extent_w + 1
        return ((-dt) * rows + (dr + self.extent_h)) * cols + (dc + self.extent_w)

    def validate(self) -> None:
        require_positive("model", dim=self.dim, heads=self.heads, lr=self.lr, batch_size=self.batch_size,
                         mlp_ratio=self.mlp_ratio)
        if self.dim % self.heads:
            raise UserError(f"dim {self.dim} is not divisible by heads {self.heads}")
        if min(self.patch_h, self.patch_w, self.layers, self.vocab_size) <= 0:
            raise UserError("patch size, layers and vocab_size must be positive")
        if min(self.extent_h, self.extent_w, self.extent_t) < 0:
            raise UserError("extents must be >= 0")
        if min(self.crop_rows, self.crop_cols, self.crop_frames) <= 0:
            raise UserError("crop sizes must be positive")
        if self.rope_dims < 0 or self.rope_dims % 4 or self.rope_dims > self.dim // self.heads:
            raise UserError(f"rope_dims must be a multiple of 4 between 0 and the head size "
                            f"{self.dim // self.heads}, got {self.rope_dims}")
        if self.rope_time_dims < 0 or self.rope_time_dims % 2 or self.rope_dims + self.rope_time_dims > self.head_dim:
            raise UserError(f"rope_time_dims must be even and fit beside rope_dims in the head size "
                            f"{self.head_dim}, got {self.rope_time_dims}")
        if self.row_bins < 0:
            raise UserError(f"row_bins must be >= 0, got {self.row_bins}")
        if self.scale_bins < 0:
            raise UserError(f"scale_bins must be >= 0, got {self.scale_bins}")
        if self.memory_rows < 0 or (self.memory_rows and min(self.memory_cols, self.memory_cell_h, self.memory_cell_w,
                                                             self.memory_row_bins, self.memory_min_w) <= 0):
            raise UserError("memory_rows must be >= 0, and with a memory its cols, cell sizes, row bins and "
                            "widths positive")
        if not 0 <= self.context_drop <= 1:
            raise UserError(f"context_drop must lie in [0, 1], got {self.context_drop}")
        if not 0 <= self.memory_drop <= 1 or self.memory_min_w > self.memory_max_w:
            raise UserError(f"memory_drop must lie in [0, 1] and memory_min_w <= memory_max_w, got "
                            f"{self.memory_drop}, {self.memory_min_w} > {self.memory_max_w}")
        if self.text_len < 0 or (self.text_len and (not self.memory_rows or self.text_layers <= 0)):
            raise UserError("text needs the condition memory (memory_rows > 0) and text_layers > 0")
        if self.freeze not in ("none", "base", "text"):
            raise UserError(f"freeze must be 'none', 'base' or 'text', got {self.freeze!r}")
        if (self.text_gate or self.freeze == "text") and not self.text_len:
            raise UserError("text_gate and freeze=text need text (text_len > 0)")
        if not 0 <= self.text_drop <= 1:
            raise UserError(f"text_drop must lie in [0, 1], got {self.text_drop}")
        if self.rope_theta <= 1:
            raise UserError(f"rope_theta must be > 1, got {self.rope_theta}")


MODEL_PRESETS = {
    "tiny": dict(dim=32, layers=2, heads=2, patch_h=4, patch_w=4, vocab_size=16,
                 crop_rows=2, crop_cols=3, batch_size=2, lr=3e-3, rope_dims=8, row_bins=4,
                 memory_rows=4, memory_cols=4, memory_cell_h=2, memory_cell_w=4, memory_row_bins=4,
                 memory_min_w=4, memory_max_w=8),
    "small": dict(dim=256, layers=4, heads=4, crop_rows=3, crop_cols=4, batch_size=2, rope_dims=32, row_bins=16,
                  memory_rows=16),
    "base": dict(dim=1280, layers=24, heads=20, extent_h=2, extent_w=2, crop_rows=4, crop_cols=4,
                 batch_size=8, lr=3e-4, rope_dims=32, row_bins=16, memory_rows=16),
}
