"""Plain-PyTorch patch attention: the obviously-correct reference every backend is tested against.

Shapes (batch folded into the patch dimension):
    q       (Nq, H, Lq, D)   k_self/v_self (Nq, H, Ls, D)   k_ctx/v_ctx (Nc, H, P, D)
    layout.ctx_index/ctx_offset (Nq, M)                      ctx_bias (Nq, H, Lq, n_offsets)

Query i of patch n attends to
  * every key of every non-empty context slot m (block ctx_index[n, m]), with
    ctx_bias[n, :, i, ctx_offset[n, m]] added to those logits, and
  * its own keys j <= i + Ls - Lq (causal, bottom-right aligned),
all in one softmax. A block listed in two slots of a row enters the softmax twice.

`dense_masked_reference` computes the same thing a second, independent way (float64, one
dense additive mask over all keys, built with Python loops) to check `reference_attention`.
It is the only place besides the benchmark baseline where a dense mask is built.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .layout import PatchLayout


def causal_self_mask(lq: int, ls: int, device: torch.device | None = None) -> Tensor:
    """(Lq, Ls) bool: query i sees own key j iff j <= i + Ls - Lq (bottom-right aligned)."""
    i = torch.arange(lq, device=device)[:, None]
    j = torch.arange(ls, device=device)[None, :]
    return j <= i + (ls - lq)


def gather_slot_bias(ctx_bias: Tensor, ctx_offset: Tensor) -> Tensor:
    """ctx_bias (N, H, Lq, n_offsets), ctx_offset (N, M) -> per-slot bias (N, H, Lq, M)."""
    n, h, lq, _ = ctx_bias.shape
    index = ctx_offset[:, None, None, :].expand(n, h, lq, ctx_offset.shape[1])
    return torch.gather(ctx_bias, 3, index)


def reference_attention(q: Tensor, k_self: Tensor, v_self: Tensor, k_ctx: Tensor, v_ctx: Tensor,
                        layout: PatchLayout, ctx_bias: Tensor | None = None,
                        scale: float | None = None) -> Tensor:
    """Gather every context block, build the logits explicitly, softmax (fp32 or wider)."""
    nq, h, lq, d = q.shape
    ls = k_self.shape[2]
    p = k_ctx.shape[2]
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    index, offset = layout.index_on(q.device)
    m = index.shape[1]
    acc = torch.promote_types(q.dtype, torch.float32)
    qf = q.to(acc)

    valid = index >= 0  # (Nq, M)
    safe = index.clamp(min=0)
    kc = k_ctx.to(acc)[safe]  # (Nq, M, H, P, D)
    vc = v_ctx.to(acc)[safe]
    s_ctx = torch.einsum("nhid,nmhpd->nhimp", qf, kc) * scale  # (Nq, H, Lq, M, P)
    if ctx_bias is not None:
        s_ctx = s_ctx + gather_slot_bias(ctx_bias.to(acc), offset)[..., None]
    s_ctx = s_ctx.masked_fill(~valid[:, None, None, :, None], float("-inf"))

    s_self = torch.einsum("nhid,nhjd->nhij", qf, k_self.to(acc)) * scale  # (Nq, H, Lq, Ls)
    s_self = s_self.masked_fill(~causal_self_mask(lq, ls, q.device), float("-inf"))

    logits = torch.cat([s_ctx.reshape(nq, h, lq, m * p), s_self], dim=-1)
    probs = torch.softmax(logits, dim=-1)
    p_ctx = probs[..., : m * p].reshape(nq, h, lq, m, p)
    p_self = probs[..., m * p:]
    out = torch.einsum("nhimp,nmhpd->nhid", p_ctx, vc) + torch.einsum("nhij,nhjd->nhid", p_self,
                                                                        v_self.to(acc))
    return out.to(q.dtype)


def dense_masked_reference(q: Tensor, k_self: Tensor, v_self: Tensor, k_ctx: Tensor, v_ctx: Tensor,
                           layout: PatchLayout, ctx_bias: Tensor | None = None,
                           scale: float | None = None) -> Tensor:
    """Independent check: all keys of all patches in one sequence, a dense additive mask, float64.

    Keys are [all context blocks' keys (Nc * P), all own keys (Nq * Ls)]; the additive mask
    of query (n, i) is log(sum of exp(bias) over the slots that list a block), -inf for
    blocks it does not list and for other patches' own keys. Built with Python loops.
    """
    nq, h, lq, d = q.shape
    nc, _, p, _ = k_ctx.shape
    ls = k_self.shape[2]
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    f64 = torch.float64
    index = layout.ctx_index.tolist()
    offset = layout.ctx_offset.tolist()

    # weight[h, n*Lq + i, key] = sum over ways query (n, i) reaches `key` of exp(bias)
    n_keys = nc * p + nq * ls
    weight = torch.zeros(h, nq * lq, n_keys, dtype=f64)
    bias = None if ctx_bias is None else ctx_bias.detach().to("cpu", f64)
    for n in range(nq):
        rows = slice(n * lq, (n + 1) * lq)
        for slot, block in enumerate(index[n]):
            if block < 0:
                continue
            w = torch.ones(h, lq, dtype=f64) if bias is None else torch.exp(bias[n, :, :, offset[n][slot]])
            weight[:, rows, block * p:(block + 1) * p] += w[:, :, None]
        for i in range(lq):
            for j in range(ls):
                if j <= i + ls - lq:
                    weight[:, n * lq + i, nc * p + n * ls + j] += 1.0
    additive = torch.log(weight)  # log(0) = -inf where a query does not see a key

    def flat(x: Tensor) -> Tensor:  # (N, H, L, D) -> (H, N * L, D)
        return x.detach().to("cpu", f64).transpose(0, 1).reshape(h, -1, d)

    keys = torch.cat([flat(k_ctx), flat(k_self)], dim=1)
    values = torch.cat([flat(v_ctx), flat(v_self)], dim=1)
    logits = flat(q) @ keys.transpose(1, 2) * scale + additive
    out = torch.softmax(logits, dim=-1) @ values  # (H, Nq * Lq, D)
    return out.reshape(h, nq, lq, d).transpose(0, 1).to(q.dtype)
