"""Condition memory: a short sequence that every layer cross-attends to, shared by all patches
of a job.

The Nearby Context Pool shows a patch only its neighbours, so a patch a few columns away
from the input no longer knows the input's palette, where its horizon lies or that it has a
lake. The *style memory* carries that: the known image's tokens pooled to a coarse grid of
cells (at most `memory_rows` × `memory_cols`, each about `memory_cell_h` × `memory_cell_w`
tokens), each cell the mean of its tokens' embeddings plus a learned embedding of the cell's
band of canvas height and of its column within the memory. Training takes the memory from
another crop of the same image than the patches it trains (style and layout, not copying).

The sequence is [null, cells …] (and later text tokens, with their own type embedding): the
null entry is always there, so a job without memory (`generate`, or a crop whose memory was
dropped in training) attends to it alone — the unconditional branch of classifier-free
guidance. Every block's cross-attention output projection starts at zero, so a model given a
memory when fine-tuned from one without starts out unchanged.

With `text_gate` the text entries form a softmax group of their own, read through their own
zero-initialised output projection and only by patches whose memory holds text: text added to
a trained model changes nothing until it learns something, and a job without a prompt runs
exactly the model it was. (Joined in one softmax, unit-scale text vectors took attention away
from the style cells from the first step: validation bits rose from 4.189 to 4.233.)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import ModelConfig


@dataclass
class Memory:
    """Memory vectors of B jobs or crops and which of them each patch reads."""

    states: Tensor              # (B, M, dim), entry 0 the null entry
    valid: Tensor               # (B, M) bool
    owner: Tensor | None = None  # (N,) int64 row of `states` per patch; None: one memory (B = 1), read by all
    text: Tensor | None = None   # (B, M) bool: the entries that are text; None: no entry is
    # how much of the style cells' read a patch takes (sampling): 1 as trained, 0 the null entry's
    # read alone (as if there were no style memory); a prompt that edits the style needs less of it
    style_weight: float = 1.0

    def select(self, owner: Tensor | None) -> "Memory":
        return Memory(self.states, self.valid, owner, self.text, self.style_weight)


@dataclass
class StyleSource:
    """Known tokens a style memory is pooled from: a token grid (h, w), -1 where unknown, whose
    first row is canvas token row `top` of a canvas `canvas_rows` token rows high."""

    tokens: Tensor
    top: int
    canvas_rows: int


def cell_edges(length: int, cell: int, most: int) -> list[int]:
    """Edges of ⌈length / cell⌉ (at most `most`) near-equal cells over `length` tokens."""
    count = max(1, min(most, -(-length // cell)))
    return [round(i * length / count) for i in range(count + 1)]


class StyleMemory(nn.Module):
    """Pools known tokens into memory cells: (cells, dim) vectors with their positions."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.null = nn.Parameter(torch.zeros(cfg.dim))
        self.row_emb = nn.Parameter(torch.zeros(cfg.memory_row_bins, cfg.dim))
        self.col_emb = nn.Parameter(torch.zeros(cfg.memory_cols, cfg.dim))
        self.norm = nn.RMSNorm(cfg.dim, eps=1e-6)

    def cells(self, source: StyleSource, tok_emb: nn.Embedding) -> Tensor:
        """(h, w) token grid → (cells, dim) memory vectors (cells with no known token left out)."""
        cfg, grid = self.cfg, source.tokens
        h, w = grid.shape
        rows = cell_edges(h, cfg.memory_cell_h, cfg.memory_rows)
        cols = cell_edges(w, cfg.memory_cell_w, cfg.memory_cols)
        n_rows, n_cols = len(rows) - 1, len(cols) - 1
        row_of = torch.bucketize(torch.arange(h, device=grid.device), torch.tensor(rows[1:-1], device=grid.device),
                                 right=True)                                        # (h,) cell row of token row
        col_of = torch.bucketize(torch.arange(w, device=grid.device), torch.tensor(cols[1:-1], device=grid.device),
                                 right=True)
        cell_of = (row_of[:, None] * n_cols + col_of[None, :]).reshape(-1)          # (h·w,)
        known = (grid >= 0).reshape(-1)
        emb = tok_emb(grid.clamp_min(0).reshape(-1)) * known[:, None]               # (h·w, dim)
        sums = emb.new_zeros(n_rows * n_cols, emb.shape[1]).index_add_(0, cell_of, emb)
        counts = known.float().new_zeros(n_rows * n_cols).index_add_(0, cell_of, known.float())
        centre = torch.tensor([(rows[r] + rows[r + 1]) / 2 for r in range(n_rows)], device=grid.device)
        band = ((source.top + centre) / max(1, source.canvas_rows) * cfg.memory_row_bins).long()
        band = band.clamp(0, cfg.memory_row_bins - 1)
        col = (torch.arange(n_cols, device=grid.device) * cfg.memory_cols) // n_cols  # column within the memory
        vectors = self.norm(sums / counts.clamp_min(1)[:, None])                     # (rows·cols, dim)
        vectors = vectors + (self.row_emb[band][:, None] + self.col_emb[col][None, :]).reshape(-1, emb.shape[1])
        return vectors[counts > 0]

    def forward(self, sources: list[StyleSource | None], tok_emb: nn.Embedding,
                text: tuple[Tensor, Tensor] | None = None) -> Memory:
        """One memory per source (None: no style), padded to the longest: [null, style cells,
        text]; `text` is the text encoder's (B, T, dim) vectors and (B, T) validity."""
        per_source, text_counts = [], []
        for b, source in enumerate(sources):
            parts = [self.null[None]]
            if source is not None:
                parts.append(self.cells(source, tok_emb))
            if text is not None:
                parts.append(text[0][b][text[1][b]])
            text_counts.append(0 if text is None else len(parts[-1]))
            per_source.append(torch.cat(parts))
        longest = max(len(m) for m in per_source)
        states = self.null.new_zeros(len(sources), longest, self.cfg.dim)
        valid = torch.zeros(len(sources), longest, dtype=torch.bool, device=self.null.device)
        is_text = torch.zeros_like(valid)
        for b, m in enumerate(per_source):
            states[b, : len(m)] = m
            valid[b, : len(m)] = True
            is_text[b, len(m) - text_counts[b]: len(m)] = True
        return Memory(states, valid, text=is_text if any(text_counts) else None)


class MemoryAttention(nn.Module):
    """Cross-attention of a patch's tokens over its job's memory (output projections start at 0)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.heads, self.head_dim = cfg.heads, cfg.head_dim
        self.norm = nn.RMSNorm(cfg.dim, eps=1e-6)
        self.q = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.kv = nn.Linear(cfg.dim, 2 * cfg.dim, bias=False)
        self.proj = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.text_proj = nn.Linear(cfg.dim, cfg.dim, bias=False) if cfg.text_gate else None

    def keys_values(self, memory: Memory) -> tuple[Tensor, Tensor]:
        """(B, M, dim) memory → k, v each (B, H, M, Dh); computed once per job and layer."""
        b, m, _ = memory.states.shape
        kv = self.kv(memory.states).view(b, m, 2, self.heads, self.head_dim)
        k, v = kv.permute(2, 0, 3, 1, 4).unbind(0)
        return k, v

    def forward(self, x: Tensor, kv: tuple[Tensor, Tensor], memory: Memory) -> Tensor:
        """x (N, L, dim) → (N, L, dim), each patch attending to its owner's memory entries."""
        n, length, _ = x.shape
        q = self.q(self.norm(x)).view(n, length, self.heads, self.head_dim)          # (N, L, H, Dh)
        k, v = kv
        text, folded = memory.text, memory.owner is None
        if folded:  # one memory for all (sampling, B = 1, no padding): fold the patches into its queries
            q = q.reshape(1, n * length, self.heads, self.head_dim).transpose(1, 2)  # (1, H, N·L, Dh)
            valid = None
        else:
            k, v, valid = k[memory.owner], v[memory.owner], memory.valid[memory.owner]  # (N, H, M, Dh), (N, M)
            text = None if text is None else text[memory.owner]
            q = q.transpose(1, 2)                                                    # (N, H, L, Dh)
        gated = self.text_proj is not None and text is not None
        style = (~text if valid is None else valid & ~text) if gated else valid
        style_read = self._attend(q, k, v, style, n, length)                        # (N, L, dim)
        if memory.style_weight != 1.0:  # towards the null entry's read alone: its value, (B or N, 1, dim)
            null_read = v[:, :, 0].reshape(v.shape[0], 1, self.heads * self.head_dim)
            style_read = memory.style_weight * style_read + (1.0 - memory.style_weight) * null_read
        out = self.proj(style_read)
        if gated and folded:  # the one memory holds text (else `text` is None)
            out = out + self.text_proj(self._attend(q, k, v, text, n, length))
        elif gated:  # the text group; a patch whose memory has no text reads none (adds exactly 0)
            has_text = text.any(-1)                                                  # (N,)
            group = text.clone()
            group[:, 0] |= ~has_text                                                 # no empty softmax
            read = self.text_proj(self._attend(q, k, v, group, n, length))
            out = out + read * has_text.to(read.dtype)[:, None, None]
        return out

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, n: int, length: int) -> Tensor:
        """Attention over the entries of `mask` (B or N, M; None: all) → (N, L, dim)."""
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=None if mask is None else mask[:, None, None, :])
        return out.transpose(1, 2).reshape(n, length, self.heads * self.head_dim)
