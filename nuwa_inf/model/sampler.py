"""Sampling a wave of patches token by token with KV caches.

Each patch of the wave has its own causal K/V cache (preallocated, P+1 positions per
layer) and reads its context from the Nearby Context Pool through slot indices; with a
condition memory (memory.py) every patch of the job also reads the same memory, whose
per-layer keys/values are computed once. Random
numbers come from a per-patch generator seeded by (seed, patch position), drawn all at
once per patch, and turned into tokens by inverse-CDF sampling: a patch's tokens do not
depend on which other patches share its batch.
"""
from __future__ import annotations

import hashlib

import torch

from ..kernels import PatchLayout
from .context_pool import ContextPool, Pos
from .memory import StyleSource
from .transformer import LocalTransformer


def patch_uniforms(seed: int, positions: list[Pos], count: int) -> torch.Tensor:
    """(n, count) uniforms in [0, 1), one stream per patch position."""
    rows = []
    for pos in positions:
        digest = hashlib.blake2b(f"{seed}:{pos[0]}:{pos[1]}:{pos[2]}".encode(), digest_size=8).digest()
        generator = torch.Generator().manual_seed(int.from_bytes(digest, "little") & ((1 << 63) - 1))
        rows.append(torch.rand(count, generator=generator, dtype=torch.float64))
    return torch.stack(rows)


def patch_rows_cols(positions: list[Pos]) -> torch.Tensor:
    """Patch positions (t, row, col) → (n, 2) int64 (row, col): what the rotary embedding needs."""
    return torch.tensor([[row, col] for _, row, col in positions], dtype=torch.int64).reshape(-1, 2)


def patch_canvas_rows(positions: list[Pos], canvas_token_rows: int, patch_h: int) -> torch.Tensor:
    """Patch positions (t, row, col) on a canvas `canvas_token_rows` tokens high → (n, 2) int64
    (first token row, canvas token rows): what the band embedding needs (vertical.py)."""
    return torch.tensor([[row * patch_h, canvas_token_rows] for _, row, _ in positions],
                        dtype=torch.int64).reshape(-1, 2)


def pick_tokens(logits: torch.Tensor, uniforms: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """Inverse-CDF sampling of (n, V) logits with one uniform per row → (n,) int64."""
    if temperature <= 0:
        return logits.argmax(-1)
    logits = logits.double() / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = torch.sort(probs, dim=-1, descending=True)
        drop = sorted_probs.cumsum(-1) - sorted_probs > top_p
        probs = probs.scatter(-1, order, sorted_probs.masked_fill(drop, 0.0))
    cdf = probs.cumsum(-1)
    target = uniforms.unsqueeze(-1).to(cdf.dtype) * cdf[:, -1:]
    return torch.searchsorted(cdf, target).squeeze(-1).clamp_max(logits.shape[-1] - 1)


class WaveSampler:
    """Generates patches of a wave: 256 tokens each (+1 step to fill the last token's K/V)."""

    def __init__(self, model: LocalTransformer, pool: ContextPool, backend: str = "auto",
                 style: StyleSource | None = None):
        self.model = model
        self.pool = pool
        self.backend = backend
        self.cfg = model.cfg
        with torch.inference_mode():  # the job's memory and its per-layer K/V, once
            self.memory = model.style_memory([style])
            self.memory_kv = model.memory_kv(self.memory)

    @torch.inference_mode()
    def prefill(self, tokens: torch.Tensor, layout: PatchLayout, positions: torch.Tensor,
                canvas_rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """K/V of known patches (n, P) at (row, col) `positions` (n, 2) and `canvas_rows` (n, 2),
        given their context in the pool → (layers, n, H, P, Dh) ×2."""
        _, (k, v) = self.model.forward_patches(tokens, layout, self.backend, pool=self.pool, collect_kv=True,
                                               positions=positions, canvas_rows=canvas_rows, memory=self.memory)
        return k, v

    @torch.inference_mode()
    def sample(self, layout: PatchLayout, positions: torch.Tensor, uniforms: torch.Tensor, temperature: float = 1.0,
               top_k: int = 0, top_p: float = 1.0, forced: torch.Tensor | None = None,
               canvas_rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample n patches at (row, col) `positions` (n, 2) and `canvas_rows` (n, 2)
        → (tokens (n, P), K (layers, n, H, P, Dh), V).

        `forced` (n, P) int64 with -1 where free: known tokens of partially given patches.
        """
        model, cfg = self.model, self.cfg
        n, length = layout.ctx_index.shape[0], cfg.seq_len
        device = self.pool.k.device
        dtype = self.pool.k.dtype
        cache_shape = (cfg.layers, n, cfg.heads, length, cfg.head_dim)
        k_cache = torch.empty(cache_shape, dtype=dtype, device=device)
        v_cache = torch.empty(cache_shape, dtype=dtype, device=device)
        tokens = torch.empty((n, cfg.patch_tokens), dtype=torch.int64, device=device)
        ids = torch.full((n, 1), model.bos, dtype=torch.int64, device=device)
        rope = model.rope(positions, n, device)
        bands = model.band_embedding(canvas_rows, n, device)               # (n, L, dim) or None
        for t in range(length):
            x = model.embed(ids, start=t)                                  # (n, 1, dim)
            if bands is not None:
                x = x + bands[:, t: t + 1]
            rope_t = None if rope is None else rope.at(t)
            for index, block in enumerate(model.blocks):
                q, k, v = block.attn.project(block.norm1(x), rope_t)       # (n, H, 1, Dh)
                k_cache[index, :, :, t: t + 1] = k
                v_cache[index, :, :, t: t + 1] = v
                x = x + block.attn.attend(q, k_cache[index, :, :, : t + 1], v_cache[index, :, :, : t + 1],
                                          self.pool.k[index], self.pool.v[index], layout, self.backend)
                if block.cross is not None:
                    x = x + block.cross(x, self.memory_kv[index], self.memory)
                if t < length - 1 or index < len(model.blocks) - 1:
                    x = x + block.mlp(block.norm2(x))
            if t == length - 1:
                break  # the last step only fills the K/V of the last token
            logits = model.head(model.norm(x[:, 0]))                       # (n, V)
            next_ids = pick_tokens(logits, uniforms[:, t], temperature, top_k, top_p)
            if forced is not None:
                next_ids = torch.where(forced[:, t] >= 0, forced[:, t], next_ids)
            tokens[:, t] = next_ids
            ids = next_ids.unsqueeze(1)
        return tokens, k_cache[:, :, :, 1:], v_cache[:, :, :, 1:]
