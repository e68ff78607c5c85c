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


def pick_tokens(logits: torch.Tensor, uniforms: torch.Tensor, temperature: float, top_k: int,
                top_p: float, min_p: float = 0.0, mix: torch.Tensor | None = None,
                mix_weight: float | torch.Tensor = 0.0) -> torch.Tensor:
    """Inverse-CDF sampling of (n, V) logits with one uniform per row → (n,) int64.

    Truncations, after the temperature: `top_k` keeps the k likeliest codes, `top_p` the
    likeliest ones that cover p of the mass, `min_p` the codes at least min_p × as likely as
    the likeliest (a cut that follows the model's confidence: where one code dominates, its
    rare tail goes; where many codes are about as likely, they all stay)."""
    if temperature <= 0:
        return logits.argmax(-1)
    logits = logits.double() / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if min_p > 0:
        probs = probs.masked_fill(probs < min_p * probs.amax(-1, keepdim=True), 0.0)
    if top_p < 1.0:
        sorted_probs, order = torch.sort(probs, dim=-1, descending=True)
        drop = sorted_probs.cumsum(-1) - sorted_probs > top_p
        probs = probs.scatter(-1, order, sorted_probs.masked_fill(drop, 0.0))
    if mix is not None:
        weight = mix_weight * (mix.sum(-1, keepdim=True) > 0)                       # (n, 1)
        probs = (1 - weight) * probs / probs.sum(-1, keepdim=True) + weight * mix.to(probs.dtype)
    cdf = probs.cumsum(-1)
    target = uniforms.unsqueeze(-1).to(cdf.dtype) * cdf[:, -1:]
    return torch.searchsorted(cdf, target).squeeze(-1).clamp_max(logits.shape[-1] - 1)


class WaveSampler:
    """Generates patches of a wave: 256 tokens each (+1 step to fill the last token's K/V).

    `style` and `text_ids` (1, T) make the job's condition memory (memory.py), its style cells
    read at `style_weight` (1: as trained). With
    classifier-free guidance two samplers run side by side (`sample_guided`): the conditional
    one and an unconditional one with its own pool, fed the same tokens.
    """

    def __init__(self, model: LocalTransformer, pool: ContextPool, backend: str = "auto",
                 style: StyleSource | None = None, text_ids: torch.Tensor | None = None, blind: bool = False,
                 style_weight: float = 1.0):
        self.model = model
        self.pool = pool
        self.backend = backend
        self.cfg = model.cfg
        self.blind = blind  # sees no context patch (the blind branch of guidance on the input)
        with torch.inference_mode():  # the job's memory and its per-layer K/V, once
            self.memory = model.style_memory([style], text_ids)
            if self.memory is not None:
                self.memory.style_weight = style_weight  # how much of the style cells' read (memory.py)
            self.memory_kv = model.memory_kv(self.memory)

    @torch.inference_mode()
    def prefill(self, tokens: torch.Tensor, layout: PatchLayout, positions: torch.Tensor,
                canvas_rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """K/V of known patches (n, P) at (row, col) `positions` (n, 2) and `canvas_rows` (n, 2),
        given their context in the pool → (layers, n, H, P, Dh) ×2."""
        layout = self._seen(layout)
        _, (k, v) = self.model.forward_patches(tokens, layout, self.backend, pool=self.pool, collect_kv=True,
                                               positions=positions, canvas_rows=canvas_rows, memory=self.memory)
        return k, v

    def _seen(self, layout: PatchLayout) -> PatchLayout:
        """The context this sampler reads: the layout's, or none when blind."""
        if not self.blind:
            return layout
        return PatchLayout(torch.full_like(layout.ctx_index, -1), layout.ctx_offset, layout.n_offsets)

    def begin(self, layout: PatchLayout, positions: torch.Tensor, canvas_rows: torch.Tensor | None) -> dict:
        """Per-wave state of n patches: preallocated K/V caches, rotary tables, band embeddings."""
        cfg, model = self.cfg, self.model
        layout = self._seen(layout)
        n = layout.ctx_index.shape[0]
        shape = (cfg.layers, n, cfg.heads, cfg.seq_len, cfg.head_dim)
        device, dtype = self.pool.k.device, self.pool.k.dtype
        return {"layout": layout, "k": torch.empty(shape, dtype=dtype, device=device),
                "v": torch.empty(shape, dtype=dtype, device=device), "rope": model.rope(positions, n, device),
                "bands": model.band_embedding(canvas_rows, n, device)}

    def step(self, state: dict, ids: torch.Tensor, t: int) -> torch.Tensor | None:
        """Feed ids (n, 1) at sequence position t → logits (n, V) for token t; None at the last
        position, which only fills the last token's K/V."""
        model = self.model
        last = t == self.cfg.seq_len - 1
        x = model.embed(ids, start=t)                                      # (n, 1, dim)
        if state["bands"] is not None:
            x = x + state["bands"][:, t: t + 1]
        rope_t = None if state["rope"] is None else state["rope"].at(t)
        k_cache, v_cache = state["k"], state["v"]
        for index, block in enumerate(model.blocks):
            q, k, v = block.attn.project(block.norm1(x), rope_t)           # (n, H, 1, Dh)
            k_cache[index, :, :, t: t + 1] = k
            v_cache[index, :, :, t: t + 1] = v
            x = x + block.attn.attend(q, k_cache[index, :, :, : t + 1], v_cache[index, :, :, : t + 1],
                                      self.pool.k[index], self.pool.v[index], state["layout"], self.backend)
            if block.cross is not None:
                x = x + block.cross(x, self.memory_kv[index], self.memory)
            if not last or index < len(model.blocks) - 1:
                x = x + block.mlp(block.norm2(x))
        return None if last else model.head(model.norm(x[:, 0]))

    @torch.inference_mode()
    def sample(self, layout: PatchLayout, positions: torch.Tensor, uniforms: torch.Tensor, temperature: float = 1.0,
               top_k: int = 0, top_p: float = 1.0, forced: torch.Tensor | None = None,
               canvas_rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample n patches at (row, col) `positions` (n, 2) and `canvas_rows` (n, 2)
        → (tokens (n, P), K (layers, n, H, P, Dh), V).

        `forced` (n, P) int64 with -1 where free: known tokens of partially given patches.
        """
        tokens, [(k, v)] = sample_guided([self], 1.0, layout, positions, uniforms, temperature, top_k, top_p,
                                         forced, canvas_rows)
        return tokens, k, v


@torch.inference_mode()
def sample_guided(samplers: list[WaveSampler], guidance: float, layout: PatchLayout, positions: torch.Tensor,
                  uniforms: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                  forced: torch.Tensor | None = None, canvas_rows: torch.Tensor | None = None,
                  first_row_temperature: float | None = None, prefer: torch.Tensor | None = None,
                  prefer_bias: float = 0.0, row_bias: torch.Tensor | None = None, min_p: float = 0.0,
                  match=None, match_weight: float = 0.0):
    """Sample n patches with one sampler, or with [conditional, unconditional] and classifier-free
    guidance: logits = uncond + guidance · (cond − uncond). Both branches read their own pool
    through the same `layout` (their pools take the same patches in the same order, so their
    slots agree) and are fed the tokens picked. `first_row_temperature` (None: `temperature`)
    samples a patch's first token row, which sets its palette, cooler or hotter. `prefer` (n, P),
    -1 where none, names a token per place that gets `prefer_bias` added to its logit (before the
    temperature): a clip's persistence, the token the same place held in the frame before.
    `row_bias` (n, patch_h, V) is added to the logits of every token of that patch row (before the
    temperature): the input's colour prior (infer/colour_prior.py). `min_p`: see `pick_tokens`.
    `match(t, tokens)` → (n, V) probabilities for token t given the tokens drawn so far, mixed in
    at `match.shares(votes, match_weight)` (infer/neighbour_match.py; `pick_tokens`'s `mix`).
    → (tokens (n, P), [(K, V) per sampler])."""
    cfg = samplers[0].cfg
    n = layout.ctx_index.shape[0]
    device = samplers[0].pool.k.device
    states = [s.begin(layout, positions, canvas_rows) for s in samplers]
    tokens = torch.empty((n, cfg.patch_tokens), dtype=torch.int64, device=device)
    ids = torch.full((n, 1), samplers[0].model.bos, dtype=torch.int64, device=device)
    for t in range(cfg.seq_len):
        logits = [s.step(state, ids, t) for s, state in zip(samplers, states, strict=True)]
        if t == cfg.seq_len - 1:
            break  # the last step only fills the K/V of the last token
        mixed = logits[0] if len(logits) == 1 else logits[1] + guidance * (logits[0] - logits[1])
        if prefer is not None and prefer_bias:
            held = prefer[:, t: t + 1]                                     # (n, 1), -1: nothing held
            bonus = torch.where(held >= 0, prefer_bias, 0.0).to(mixed.dtype)
            mixed = mixed.scatter_add(1, held.clamp_min(0), bonus)
        if row_bias is not None:
            mixed = mixed + row_bias[:, t // cfg.patch_w].to(mixed.dtype)
        first_row = first_row_temperature is not None and t < cfg.patch_w
        votes = match(t, tokens) if match is not None and match_weight > 0 else None
        share = match.shares(votes, match_weight) if votes is not None else 0.0
        next_ids = pick_tokens(mixed, uniforms[:, t], first_row_temperature if first_row else temperature, top_k, top_p,
                               min_p, votes, share)
        if forced is not None:
            next_ids = torch.where(forced[:, t] >= 0, forced[:, t], next_ids)
        tokens[:, t] = next_ids
        ids = next_ids.unsqueeze(1)
    return tokens, [(state["k"][:, :, :, 1:], state["v"][:, :, :, 1:]) for state in states]
