"""The local autoregressive transformer: one patch of tokens at a time, attending to its
own earlier tokens (causal) and to the cached keys/values of nearby context patches.

Sequence of a patch: [BOS, t_0, …, t_{P-1}] (length P+1, in-patch raster order).
Position i predicts t_i; the keys/values at positions 1…P (one per token) are what the
Nearby Context Pool keeps for later patches. The Arbitrary Direction Controller is the
relative-offset term: for each layer, head and offset o = (Δt, Δrow, Δcol) a learned vector
E_o and scalar b_o; a query q adds q·E_o + b_o to its logits for every key of a context
patch at offset o — so one model serves every generation order. Token-level positions
across patches come from 2-D rotary embeddings in canvas coordinates (`rope.py`): every
entry point takes the patches' (row, col) positions. Where a token sits between the canvas's
top and bottom edge is a learned band embedding (`vertical.py`, `canvas_rows`). With a
condition memory (`memory.py`: the input's style pooled to a coarse grid, later text) every
block also cross-attends to the job's memory between its self-attention and its MLP.

Two entry points share the weights:
  forward_train(tokens, layout)      all patches of training crops in one teacher-forced pass
  forward_patches(...)               the same for arbitrary patches, K/V from a pool (prefill)
  WaveSampler in `sampler.py`        one token per patch of a wave, with KV caches
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..checkpoint import load_state_into, load_tensors, read_config, save_checkpoint
from ..config import from_dict, to_dict
from ..kernels import PatchLayout, patch_attention
from .config import ModelConfig
from .memory import Memory, MemoryAttention, StyleMemory, StyleSource
from .rope import RopeTables, canvas_rope, crop_grid_positions, rotate_query_key
from .text import TextEncoder
from .vertical import band_of_positions, bounding_canvas_rows, scale_weights

KIND = "transformer"
LOSS_CHUNK = 512  # tokens whose logits a recomputed loss holds at once (token_loss)
# Tensors a model may gain when fine-tuned (`--init`) from a checkpoint made without them:
# zero-initialised (or feeding a zero-initialised projection), so the fine-tune starts from
# exactly the old model: the band and scale embeddings and everything of the condition memory.
GAINABLE = re.compile(r"row_emb|scale_emb|memory\..+|blocks\.\d+\.cross\..+|text\..+")
# what `freeze=text` trains: the text encoder and the text group's output projections
TEXT_PARTS = re.compile(r"text\..+|blocks\.\d+\.cross\.text_proj\..+")


def gainable(model: nn.Module) -> tuple[str, ...]:
    """Names of `model`'s tensors that a checkpoint may lack (see GAINABLE)."""
    return tuple(name for name in model.state_dict() if GAINABLE.fullmatch(name))


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class PatchSelfAttention(nn.Module):
    """Attention of a patch's queries over [context patches' K/V + own causal K/V]."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.heads, self.head_dim = cfg.heads, cfg.head_dim
        self.qkv = nn.Linear(cfg.dim, 3 * cfg.dim, bias=False)
        self.proj = nn.Linear(cfg.dim, cfg.dim, bias=False)
        # Arbitrary Direction Controller: per (head, offset) a query-side vector and a scalar.
        self.offset_vec = nn.Parameter(torch.zeros(cfg.heads, cfg.n_offsets, cfg.head_dim))
        self.offset_bias = nn.Parameter(torch.zeros(cfg.heads, cfg.n_offsets))

    def project(self, x: torch.Tensor, rope: RopeTables | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, L, dim) → q, k, v each (N, H, L, Dh); q and k rotated by `rope` when given."""
        n, length, _ = x.shape
        qkv = self.qkv(x).view(n, length, 3, self.heads, self.head_dim)
        if rope is not None:
            qk = rotate_query_key(qkv[:, :, :2], rope)                   # (N, L, 2, H, Dh)
            q, k = qk.permute(2, 0, 3, 1, 4).unbind(0)
            return q, k, qkv[:, :, 2].transpose(1, 2)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        return q, k, v

    def context_bias(self, q: torch.Tensor) -> torch.Tensor:
        """(N, H, L, Dh) → (N, H, L, n_offsets): q·E_o + b_o."""
        return torch.einsum("nhld,hod->nhlo", q, self.offset_vec) + self.offset_bias[None, :, None, :]

    def attend(self, q, k_self, v_self, k_ctx, v_ctx, layout: PatchLayout, backend: str) -> torch.Tensor:
        """Attention output (N, H, Lq, Dh) → projected (N, Lq, dim)."""
        out = patch_attention(q, k_self, v_self, k_ctx, v_ctx, layout, self.context_bias(q), backend=backend)
        n, _, length, _ = out.shape
        return self.proj(out.transpose(1, 2).reshape(n, length, self.heads * self.head_dim))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        hidden = int(cfg.dim * cfg.mlp_ratio)
        self.fc = nn.Linear(cfg.dim, hidden, bias=False)
        self.out = nn.Linear(hidden, cfg.dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(F.gelu(self.fc(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.norm1 = RMSNorm(cfg.dim)
        self.attn = PatchSelfAttention(cfg)
        self.norm2 = RMSNorm(cfg.dim)
        self.mlp = MLP(cfg)
        self.dropout = nn.Dropout(cfg.dropout)
        self.cross = MemoryAttention(cfg) if cfg.memory_rows else None


class LocalTransformer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.bos = cfg.vocab_size  # the BOS id follows the codebook
        self.tok_emb = nn.Embedding(cfg.vocab_size + 1, cfg.dim)
        self.pos_emb = nn.Parameter(torch.zeros(cfg.seq_len, cfg.dim))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.norm = RMSNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        # zero-initialised: the band embedding starts as a no-op (see vertical.py)
        self.row_emb = nn.Parameter(torch.zeros(cfg.row_bins, cfg.dim)) if cfg.row_bins else None
        self.scale_emb = nn.Parameter(torch.zeros(cfg.scale_bins, cfg.dim)) if cfg.scale_bins else None
        self.memory = StyleMemory(cfg) if cfg.memory_rows else None
        self.text = TextEncoder(cfg) if cfg.text_len else None
        self.text_vocab: list[str] = []   # words of the text encoder's table (saved with the weights)
        # training passes keep only each block's input and compute its insides again in backward
        # (less memory, about a third more time: test-time adaptation, infer/adapt.py)
        self.recompute = False
        self.apply(_init_weights)
        nn.init.normal_(self.pos_emb, std=0.02)
        for block in self.blocks:  # scaled residual projections (GPT-2)
            nn.init.normal_(block.attn.proj.weight, std=0.02 / (2 * cfg.layers) ** 0.5)
            nn.init.normal_(block.mlp.out.weight, std=0.02 / (2 * cfg.layers) ** 0.5)
            if block.cross is not None:  # the memory path starts as a no-op
                nn.init.zeros_(block.cross.proj.weight)
                if block.cross.text_proj is not None:
                    nn.init.zeros_(block.cross.text_proj.weight)
        if self.text is not None:  # words must stand out from positions from the start (text.py)
            self.text.reset_embeddings()

    def embed(self, inputs: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Input ids (N, L) at positions start…start+L-1 → (N, L, dim)."""
        return self.tok_emb(inputs) + self.pos_emb[start: start + inputs.shape[1]]

    def patch_inputs(self, tokens: torch.Tensor) -> torch.Tensor:
        """Patch tokens (N, P) → inputs [BOS, t_0 … t_{P-1}] (N, P+1)."""
        bos = torch.full_like(tokens[:, :1], self.bos)
        return torch.cat([bos, tokens], dim=1)

    def rope(self, positions: torch.Tensor | None, n_patches: int, device: torch.device) -> RopeTables | None:
        """Rotation tables of N patches at `positions` (N, 2) or (N, 3) with frames; None if the
        model has no RoPE."""
        if self.cfg.rope_dims == 0:
            return None
        if positions is None or positions.dim() != 2 or tuple(positions.shape)[0] != n_patches \
                or positions.shape[1] not in (2, 3):
            raise ValueError(f"this model needs the (row, col) or (frame, row, col) positions of its {n_patches} "
                             f"patches, got {None if positions is None else tuple(positions.shape)}")
        return canvas_rope(self.cfg, positions.to(device), self.pos_emb.dtype)

    def band_embedding(self, canvas_rows: torch.Tensor | None, n_patches: int,
                       device: torch.device) -> torch.Tensor | None:
        """(N, L, dim) band embedding of N patches at `canvas_rows` (N, 2), plus their canvas
        height's scale embedding (N, 1, dim) where the model has one; None without either."""
        if self.row_emb is None and self.scale_emb is None:
            return None
        if canvas_rows is None or tuple(canvas_rows.shape) != (n_patches, 2):
            raise ValueError(f"this model needs the canvas rows of its {n_patches} patches, "
                             f"got {None if canvas_rows is None else tuple(canvas_rows.shape)}")
        canvas_rows = canvas_rows.to(device)
        bands = 0 if self.row_emb is None else self.row_emb[band_of_positions(self.cfg, canvas_rows)]
        if self.scale_emb is None:
            return bands
        scale = scale_weights(self.cfg, canvas_rows).to(self.scale_emb.dtype) @ self.scale_emb  # (N, dim)
        return bands + scale[:, None, :]

    def style_memory(self, sources: list[StyleSource | None], text_ids: torch.Tensor | None = None) -> Memory | None:
        """The memory of each source (None: no style) and caption (`text_ids` (B, T), all padding:
        none); None for a model without memory."""
        if self.memory is None:
            return None
        text = self.text(text_ids) if self.text is not None and text_ids is not None else None
        return self.memory(sources, self.tok_emb, text)

    def memory_kv(self, memory: Memory | None) -> list | None:
        """Per block the memory's (k, v), each (B, H, M, Dh); a model with memory and no memory
        given reads the null entry alone."""
        if self.memory is None:
            return None
        if memory is None:
            memory = self.style_memory([None])
        return [block.cross.keys_values(memory) for block in self.blocks]

    def forward_train(self, tokens: torch.Tensor, layout: PatchLayout, backend: str = "auto",
                      positions: torch.Tensor | None = None,
                      canvas_rows: torch.Tensor | None = None, memory: Memory | None = None,
                      targets: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced logits for every token of every patch (or, given the patches' own tokens
        as `targets`, their mean cross-entropy: `token_loss`).

        tokens: (N, P) int64, patches of whole crops of the config's crop size folded into N,
        each in raster order — or anything else with its `positions` (N, 2) given; layout
        indexes the same N patches as context. `canvas_rows` (N, 2) places the patches between
        the canvas's top and bottom (vertical.py); without it the patches' rows span the canvas.
        `memory` (with its `owner` per patch) is what each patch cross-attends to (memory.py).
        Returns logits (N, P, vocab).
        """
        cfg = self.cfg
        if positions is None:
            positions = crop_grid_positions(cfg.crop_rows, cfg.crop_cols, cfg.crop_frames, tokens.shape[0])
        if canvas_rows is None and (self.row_emb is not None or self.scale_emb is not None):
            canvas_rows = bounding_canvas_rows(cfg, positions)
        return self.forward_patches(tokens, layout, backend, positions=positions, canvas_rows=canvas_rows,
                                    memory=memory, targets=targets)[0]

    def forward_patches(self, tokens: torch.Tensor, layout: PatchLayout, backend: str = "auto",
                        pool=None, collect_kv: bool = False, positions: torch.Tensor | None = None,
                        canvas_rows: torch.Tensor | None = None, memory: Memory | None = None,
                        targets: torch.Tensor | None = None):
        """Teacher-forced pass over whole patches at patch coordinates `positions` (N, 2) and
        `canvas_rows` (N, 2) (needed by models with band embeddings, see vertical.py).

        Context K/V come from the same N patches (training: layout indexes them) or, with
        `pool`, from a ContextPool (layout indexes its slots: prefilling known patches).
        Returns (logits (N, P, vocab) or None, per-layer token K/V (layers, N, H, P, Dh) ×2 or None);
        with `targets` (N, P) the mean cross-entropy of them (`token_loss`) in place of the logits.
        """
        rope = self.rope(positions, tokens.shape[0], tokens.device)
        x = self.embed(self.patch_inputs(tokens))                    # (N, P+1, dim)
        bands = self.band_embedding(canvas_rows, tokens.shape[0], tokens.device)
        if bands is not None:
            x = x + bands
        memory_kv = self.memory_kv(memory)
        if memory is None and memory_kv is not None:
            memory = self.style_memory([None])
        keys, values = [], []
        for index, block in enumerate(self.blocks):
            k_ctx, v_ctx = (None, None) if pool is None else (pool.k[index], pool.v[index])
            kv_mem = None if memory_kv is None else memory_kv[index]
            if self.recompute and torch.is_grad_enabled() and not collect_kv:
                # keep only the block's input for backward; its insides are computed again there
                # (its arguments are bound now: backward runs after the loop has moved on)
                x = checkpoint(self._block, block, x, rope, k_ctx, v_ctx, layout, backend, kv_mem, memory,
                               use_reentrant=False)[0]
                continue
            x, k, v = self._block(block, x, rope, k_ctx, v_ctx, layout, backend, kv_mem, memory)
            if collect_kv:
                keys.append(k[:, :, 1:])
                values.append(v[:, :, 1:])
        kv = (torch.stack(keys), torch.stack(values)) if collect_kv else None
        if targets is not None:
            return self.token_loss(x, targets), kv
        logits = None if collect_kv and pool is not None else self.head(self.norm(x[:, :-1]))
        return logits, kv                                            # position P only feeds the pool

    @staticmethod
    def _block(block: Block, x: torch.Tensor, rope, k_ctx, v_ctx, layout: PatchLayout, backend: str,
               memory_kv, memory):
        """One block on x (N, P+1, dim) → (x, k, v), k and v (N, H, P+1, Dh). The context keys are
        the patches' own token positions 1…P (training) unless a pool's are given."""
        q, k, v = block.attn.project(block.norm1(x), rope)           # (N, H, P+1, Dh) each
        if k_ctx is None:
            k_ctx, v_ctx = k[:, :, 1:], v[:, :, 1:]
        x = x + block.dropout(block.attn.attend(q, k, v, k_ctx, v_ctx, layout, backend))
        if block.cross is not None:
            x = x + block.dropout(block.cross(x, memory_kv, memory))
        return x + block.dropout(block.mlp(block.norm2(x))), k, v

    def token_loss(self, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy (nats) of `targets` (N, P) given the last block's output x (N, P+1, dim).
        With `recompute`, in chunks of LOSS_CHUNK tokens whose logits are computed again in backward,
        so the (tokens × vocab) logits are never held whole."""
        hidden = x[:, :-1].reshape(-1, x.shape[-1])                  # (N·P, dim)
        targets = targets.reshape(-1)

        def summed(h: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(self.head(self.norm(h)).float(), t, reduction="sum")
        if not (self.recompute and torch.is_grad_enabled()):
            return summed(hidden, targets) / len(targets)
        chunks = zip(hidden.split(LOSS_CHUNK), targets.split(LOSS_CHUNK), strict=True)
        return sum(checkpoint(summed, h, t, use_reentrant=False) for h, t in chunks) / len(targets)

    def save(self, directory: str | os.PathLike, dtype: torch.dtype | None = None, extra: dict | None = None) -> Path:
        extra = {**({"text_vocab": self.text_vocab} if self.text is not None else {}), **(extra or {})}
        return save_checkpoint(directory, KIND, to_dict(self.cfg), self, dtype=dtype, extra=extra)

    @classmethod
    def load(cls, directory: str | os.PathLike, device: str | torch.device = "cpu") -> "LocalTransformer":
        meta = read_config(directory, KIND)
        model = cls(from_dict(ModelConfig, meta["config"]))
        model.text_vocab = list(meta.get("text_vocab", []))
        load_state_into(model, load_tensors(Path(directory) / "model.safetensors"), str(directory))
        return model.to(device).eval()


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
