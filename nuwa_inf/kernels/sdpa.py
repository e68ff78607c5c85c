"""The CPU path: patch attention on PyTorch's fused scaled-dot-product attention.

Shared by both strategies below:

* Query patches are grouped by their number c of non-empty context slots
  (`PatchLayout.buckets`), so empty slots cost nothing (a crop's edge patches have fewer
  neighbours than its interior ones) and no per-patch Python loop runs.
* The per-(query, offset) bias is folded into the dot product instead of a
  (Nq, H, Lq, keys) float mask: q gets c extra columns bias_slot / scale, a context key of
  slot s gets the one-hot e_s, own keys zeros, so scale * q'.k' = scale * q.k + bias_slot.

Strategies:

* `split` (CPU, default there): context keys and own keys are attended in separate fused
  calls that also return the log-sum-exp (`aten._scaled_dot_product_flash_attention_for_cpu`),
  merged exactly by their LSEs. The own keys are used where they lie (no concatenation, one
  call for all patches), the context part needs no mask at all. Backward calls the fused
  backward of each part with the *merged* output and LSE, which yields exactly the gradient
  of the joint softmax (the FlashAttention identity dS = P * (dP - rowsum(dO * O))).
  Gathered context K/V are rebuilt in backward rather than kept, and in decode (no grad,
  Lq small) they are gathered once per (layout, k_ctx) and reused for every step, since
  the pool does not change during a sampling wave.
* `gathered` (any device, public API only): per group one `F.scaled_dot_product_attention`
  over keys [context blocks | own keys] with a (Lq, keys) causal mask shared by every patch
  and head; autograd as usual. Used where the CPU fused op is missing (CUDA, other dtypes).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .layout import PatchLayout, SlotBucket
from .reference import causal_self_mask, gather_slot_bias

_FLASH_CPU = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
_FLASH_CPU_BWD = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu_backward", None)
SPLIT_DTYPES = (torch.float32, torch.float64, torch.bfloat16)
# Cache gathered context K/V on the layout for calls with at most this many query rows and
# no gradient (decode steps); at most this many (k_ctx, v_ctx) pairs (one per layer) per layout.
DECODE_CACHE_MAX_LQ = 16
DECODE_CACHE_ENTRIES = 64

_MASKS: dict[tuple, Tensor] = {}


def _causal_additive_mask(lq: int, n_ctx_keys: int, ls: int, dtype: torch.dtype,
                          device: torch.device) -> Tensor:
    """(Lq, n_ctx_keys + Ls) additive mask: 0 for context keys, causal 0/-inf for own keys."""
    key = (lq, n_ctx_keys, ls, dtype, str(device))
    mask = _MASKS.get(key)
    if mask is None:
        mask = torch.zeros(lq, n_ctx_keys + ls, dtype=dtype, device=device)
        mask[:, n_ctx_keys:].masked_fill_(~causal_self_mask(lq, ls, device), float("-inf"))
        if len(_MASKS) > 64:
            _MASKS.clear()
        _MASKS[key] = mask
    return mask


def split_available(q: Tensor) -> bool:
    """Whether the `split` strategy can run for tensors like q."""
    return (q.device.type == "cpu" and q.dtype in SPLIT_DTYPES
            and _FLASH_CPU is not None and _FLASH_CPU_BWD is not None)


def sdpa_attention(q: Tensor, k_self: Tensor, v_self: Tensor, k_ctx: Tensor, v_ctx: Tensor,
                   layout: PatchLayout, ctx_bias: Tensor | None = None,
                   scale: float | None = None, strategy: str = "auto") -> Tensor:
    """Patch attention through fused SDPA; `strategy` is "auto", "split" or "gathered"."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    if strategy == "auto":
        strategy = "split" if split_available(q) else "gathered"
    if strategy == "split":
        if not split_available(q):
            raise ValueError("the split strategy needs CPU tensors (float32/float64/bfloat16) and "
                             "torch's fused CPU attention op")
        return _SplitAttention.apply(q, k_self, v_self, k_ctx, v_ctx, ctx_bias, layout, scale)
    if strategy == "gathered":
        return gathered_attention(q, k_self, v_self, k_ctx, v_ctx, layout, ctx_bias, scale)
    raise ValueError(f"unknown sdpa strategy {strategy!r}")


# ---------------------------------------------------------------------------- shared pieces
def gather_context(k_ctx: Tensor, v_ctx: Tensor, bucket: SlotBucket, with_bias: bool,
                   pad_to: int = 1) -> tuple[Tensor, Tensor]:
    """The bucket's context blocks as contiguous keys/values (Nb, H, c*P, E).

    E = D + c one-hot bias columns on the keys (zeros on the values) when `with_bias`,
    rounded up to a multiple of `pad_to`.
    """
    nc, h, p, d = k_ctx.shape
    nb, c = bucket.index.shape
    e = -(-(d + (c if with_bias else 0)) // pad_to) * pad_to

    def gathered(src: Tensor, extra_columns: Tensor | None) -> Tensor:
        # blocks (Nb, c, H, P, D) -> (Nb, H, c, P, D [+ extra]) in one strided copy (cat)
        blocks = src[bucket.index].transpose(1, 2)
        if extra_columns is None:
            return blocks.reshape(nb, h, c * p, d)
        return torch.cat([blocks, extra_columns], dim=-1).view(nb, h, c * p, e)

    if e == d:
        return gathered(k_ctx, None), gathered(v_ctx, None)
    # keys of slot s carry the one-hot e_s (bias columns); values carry zeros
    slot_columns = torch.zeros(c, e - d, dtype=k_ctx.dtype, device=k_ctx.device)
    if with_bias:
        slot_columns[:, :c] = torch.eye(c, dtype=k_ctx.dtype, device=k_ctx.device)
    slot_columns = slot_columns[None, None, :, None, :].expand(nb, h, c, p, e - d)
    zero_columns = k_ctx.new_zeros(()).expand(nb, h, c, p, e - d)
    return gathered(k_ctx, slot_columns), gathered(v_ctx, zero_columns)


def augment_query(q: Tensor, ctx_bias: Tensor | None, offset: Tensor, scale: float, e: int) -> Tensor:
    """q (Nb, H, Lq, D) -> (Nb, H, Lq, E): [q | bias of each slot / scale | zero padding]."""
    parts = [q]
    if ctx_bias is not None:
        parts.append(gather_slot_bias(ctx_bias, offset).to(q.dtype) / scale)  # (Nb, H, Lq, c)
    width = sum(t.shape[-1] for t in parts)
    if width < e:
        parts.append(q.new_zeros(*q.shape[:-1], e - width))
    return torch.cat(parts, dim=-1) if len(parts) > 1 else q


def _rows(t: Tensor | None, bucket: SlotBucket, whole: bool) -> Tensor | None:
    return t if t is None or whole else t.index_select(0, bucket.rows)


# ---------------------------------------------------------------------------- split (CPU)
def _own_part_args(lq: int, ls: int, dtype: torch.dtype, device: torch.device) -> tuple[bool, Tensor | None]:
    """(is_causal, attn_mask) for the own-keys call: bottom-right causal."""
    if lq == 1:
        return False, None  # the single query sees every own key
    if lq == ls:
        return True, None
    return False, _causal_additive_mask(lq, 0, ls, dtype, device)


def _cached_context(layout: PatchLayout, k_ctx: Tensor, v_ctx: Tensor, with_bias: bool):
    """Gathered context per bucket, reused while k_ctx/v_ctx are the same unmodified tensors.

    An entry holds references to k_ctx/v_ctx (so their memory cannot be reused) and their
    version counters (bumped by every in-place write). Inference-mode tensors have no
    version counter: they are gathered afresh on every call.
    """
    try:
        versions = (k_ctx._version, v_ctx._version)
    except RuntimeError:
        return None
    entries = layout._cache.setdefault("decode_context", [])

    def same(a: Tensor, b: Tensor) -> bool:
        return (a.data_ptr() == b.data_ptr() and a.shape == b.shape and a.stride() == b.stride()
                and a.dtype == b.dtype and a.device == b.device)

    for entry in entries:
        if (entry["with_bias"] == with_bias and same(entry["k"], k_ctx) and same(entry["v"], v_ctx)
                and entry["versions"] == versions):
            return entry["parts"]
    parts = [gather_context(k_ctx, v_ctx, b, with_bias) if b.count else None
             for b in layout.buckets(k_ctx.device)]
    if len(entries) >= DECODE_CACHE_ENTRIES:
        entries.pop(0)
    entries.append({"k": k_ctx, "v": v_ctx, "versions": versions, "with_bias": with_bias, "parts": parts})
    return parts


class _SplitAttention(torch.autograd.Function):
    """Own keys and context keys in separate fused CPU calls, merged by log-sum-exp."""

    @staticmethod
    def forward(ctx, q, k_self, v_self, k_ctx, v_ctx, ctx_bias, layout, scale):
        nq, h, lq, d = q.shape
        ls = k_self.shape[2]
        causal, mask = _own_part_args(lq, ls, q.dtype, q.device)
        out_self, lse_self = _FLASH_CPU(q, k_self, v_self, 0.0, causal, attn_mask=mask, scale=scale)
        buckets = layout.buckets(q.device)
        needs_grad = any(ctx.needs_input_grad[:6])
        context = None
        if not needs_grad and lq <= DECODE_CACHE_MAX_LQ:
            context = _cached_context(layout, k_ctx, v_ctx, ctx_bias is not None)

        whole = len(buckets) == 1
        out, lse = (out_self, lse_self) if whole else (out_self.clone(), lse_self.clone())
        for i, bucket in enumerate(buckets):
            if bucket.count == 0:
                continue  # own keys only: out_self already is the answer
            if context is not None:
                keys, values = context[i]
            else:
                keys, values = gather_context(k_ctx, v_ctx, bucket, ctx_bias is not None)
            q_aug = augment_query(_rows(q, bucket, whole), _rows(ctx_bias, bucket, whole), bucket.offset,
                                  scale, keys.shape[-1])
            out_ctx, lse_ctx = _FLASH_CPU(q_aug, keys, values, 0.0, False, scale=scale)
            o_self, l_self = _rows(out_self, bucket, whole), _rows(lse_self, bucket, whole)
            l_all = torch.logaddexp(lse_ctx, l_self)  # (Nb, H, Lq)
            merged = (torch.exp(lse_ctx - l_all).unsqueeze(-1) * out_ctx[..., :d]
                      + torch.exp(l_self - l_all).unsqueeze(-1) * o_self).to(q.dtype)
            if whole:
                out, lse = merged, l_all
            else:
                out.index_copy_(0, bucket.rows, merged)
                lse.index_copy_(0, bucket.rows, l_all)

        if needs_grad:
            ctx.save_for_backward(q, k_self, v_self, k_ctx, v_ctx, ctx_bias, out, lse)
            ctx.layout, ctx.scale, ctx.own_args = layout, scale, (causal, mask)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        q, k_self, v_self, k_ctx, v_ctx, ctx_bias, out, lse = ctx.saved_tensors
        layout, scale = ctx.layout, ctx.scale
        causal, mask = ctx.own_args
        nq, h, lq, d = q.shape
        grad_out = grad_out.contiguous()
        # own keys: the fused backward with the merged output and LSE
        dq, dk_self, dv_self = _FLASH_CPU_BWD(grad_out, q, k_self, v_self, out, lse, 0.0, causal,
                                              attn_mask=mask, scale=scale)
        dq = dq.contiguous()
        dk_ctx = torch.zeros(k_ctx.shape, dtype=k_ctx.dtype, device=k_ctx.device)
        dv_ctx = torch.zeros_like(dk_ctx)
        dbias = None if ctx_bias is None else torch.zeros_like(ctx_bias)
        p = k_ctx.shape[2]

        buckets = layout.buckets(q.device)
        whole = len(buckets) == 1
        for bucket in buckets:
            c = bucket.count
            if c == 0:
                continue
            nb = bucket.index.shape[0]
            keys, values = gather_context(k_ctx, v_ctx, bucket, ctx_bias is not None)  # rebuilt, not kept
            e = keys.shape[-1]
            bias_rows = _rows(ctx_bias, bucket, whole)
            q_aug = augment_query(_rows(q, bucket, whole), bias_rows, bucket.offset, scale, e)
            pad = (0, e - d)
            dq_aug, dkeys, dvalues = _FLASH_CPU_BWD(
                F.pad(_rows(grad_out, bucket, whole), pad), q_aug, keys, values,
                F.pad(_rows(out, bucket, whole), pad), _rows(lse, bucket, whole).contiguous(),
                0.0, False, scale=scale)
            if whole:
                dq += dq_aug[..., :d]
            else:
                dq.index_add_(0, bucket.rows, dq_aug[..., :d])
            if dbias is not None:
                # d(bias of slot s) = sum of dS over the slot's keys = dq_aug[..., d + s] / scale
                d_slot = (dq_aug[..., d:d + c] / scale).to(dbias.dtype)
                d_rows = torch.zeros(nb, h, lq, dbias.shape[-1], dtype=dbias.dtype, device=dbias.device)
                d_rows.scatter_add_(3, bucket.offset[:, None, None, :].expand(nb, h, lq, c), d_slot)
                if whole:
                    dbias += d_rows
                else:
                    dbias.index_add_(0, bucket.rows, d_rows)
            flat_index = bucket.index.reshape(-1)
            for grad, src in ((dk_ctx, dkeys), (dv_ctx, dvalues)):
                # (Nb, H, c*P, E) -> (Nb*c, H, P, D) blocks, summed into the blocks they came from
                blocks = src[..., :d].reshape(nb, h, c, p, d).transpose(1, 2).reshape(nb * c, h, p, d)
                grad.index_add_(0, flat_index, blocks)
        return dq, dk_self, dv_self, dk_ctx, dv_ctx, dbias, None, None


# ---------------------------------------------------------------------------- gathered
def gathered_attention(q: Tensor, k_self: Tensor, v_self: Tensor, k_ctx: Tensor, v_ctx: Tensor,
                       layout: PatchLayout, ctx_bias: Tensor | None, scale: float) -> Tensor:
    """One public SDPA call per bucket over [context blocks | own keys]; plain autograd."""
    buckets = layout.buckets(q.device)
    whole = len(buckets) == 1
    outs = []
    for bucket in buckets:
        qb, ksb, vsb = (_rows(t, bucket, whole) for t in (q, k_self, v_self))
        outs.append(_gathered_bucket(qb, ksb, vsb, k_ctx, v_ctx, bucket, _rows(ctx_bias, bucket, whole),
                                     scale))
    if whole:
        return outs[0]
    return torch.cat(outs).index_select(0, bucket_inverse(layout, q.device))


def bucket_inverse(layout: PatchLayout, device: torch.device) -> Tensor:
    """Permutation taking the concatenated bucket outputs back to query-patch order."""
    key = ("bucket_inverse", str(device))
    if key not in layout._cache:
        rows = torch.cat([b.rows for b in layout.buckets(device)])
        layout._cache[key] = torch.argsort(rows)
    return layout._cache[key]


def _gathered_bucket(q: Tensor, k_self: Tensor, v_self: Tensor, k_ctx: Tensor, v_ctx: Tensor,
                     bucket: SlotBucket, ctx_bias: Tensor | None, scale: float) -> Tensor:
    lq, d = q.shape[2], q.shape[3]
    ls = k_self.shape[2]
    if bucket.count == 0:
        if lq == ls:
            return F.scaled_dot_product_attention(q, k_self, v_self, is_causal=True, scale=scale)
        mask = _causal_additive_mask(lq, 0, ls, q.dtype, q.device)
        return F.scaled_dot_product_attention(q, k_self, v_self, attn_mask=mask, scale=scale)
    q_aug, keys, values = bucket_inputs(q, k_self, v_self, k_ctx, v_ctx, bucket, ctx_bias, scale)
    mask = _causal_additive_mask(lq, keys.shape[2] - ls, ls, q.dtype, q.device)
    out = F.scaled_dot_product_attention(q_aug, keys, values, attn_mask=mask, scale=scale)
    return out[..., :d] if out.shape[-1] != d else out


def bucket_inputs(q: Tensor, k_self: Tensor, v_self: Tensor, k_ctx: Tensor, v_ctx: Tensor,
                  bucket: SlotBucket, ctx_bias: Tensor | None, scale: float,
                  pad_to: int = 1) -> tuple[Tensor, Tensor, Tensor]:
    """Concatenated inputs for a bucket with c >= 1 slots: q' (Nb, H, Lq, E), keys/values
    (Nb, H, c*P + Ls, E) = [gathered context blocks | own keys, zero-padded to E].

    The output's first D columns are the attention result. Attending [context | own] with
    the bottom-right causal rule over the whole key sequence is exactly the patch rule.
    """
    d = q.shape[-1]
    ctx_keys, ctx_values = gather_context(k_ctx, v_ctx, bucket, ctx_bias is not None, pad_to)
    e = ctx_keys.shape[-1]
    pad = (0, e - d)
    keys = torch.cat([ctx_keys, F.pad(k_self, pad)], dim=2)
    values = torch.cat([ctx_values, F.pad(v_self, pad)], dim=2)
    return augment_query(q, ctx_bias, bucket.offset, scale, e), keys, values
