"""Patch attention on xformers' `memory_efficient_attention` (CUDA only).

Same preparation as the SDPA path (`sdpa.bucket_inputs`): query patches grouped by their
number of context blocks, K/V gathered as [context blocks | own keys], the slot bias folded
into extra q/k columns. What is left of the mask is structure xformers knows natively:
`LowerTriangularFromBottomRightMask` (query i sees keys <= i + Lk - Lq) is exactly "all
context keys, own keys causally", so no tensor mask is built at all.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .layout import PatchLayout
from .sdpa import bucket_inputs, bucket_inverse


def xformers_attention(q: Tensor, k_self: Tensor, v_self: Tensor, k_ctx: Tensor, v_ctx: Tensor,
                       layout: PatchLayout, ctx_bias: Tensor | None, scale: float) -> Tensor:
    import xformers.ops as xops
    from xformers.ops.fmha.attn_bias import LowerTriangularFromBottomRightMask

    if q.device.type != "cuda":
        raise ValueError("the xformers backend needs CUDA tensors")
    d = q.shape[-1]
    buckets = layout.buckets(q.device)
    outs = []
    for bucket in buckets:
        whole = len(buckets) == 1
        rows = bucket.rows
        qb = q if whole else q.index_select(0, rows)
        ksb = k_self if whole else k_self.index_select(0, rows)
        vsb = v_self if whole else v_self.index_select(0, rows)
        bias = ctx_bias if ctx_bias is None or whole else ctx_bias.index_select(0, rows)
        if bucket.count == 0:
            qa, keys, values = qb, ksb, vsb
        else:
            # head dims padded to a multiple of 8 for the fused kernels
            qa, keys, values = bucket_inputs(qb, ksb, vsb, k_ctx, v_ctx, bucket, bias, scale, pad_to=8)
        # xformers layout is (batch, seq, heads, dim)
        out = xops.memory_efficient_attention(qa.transpose(1, 2), keys.transpose(1, 2),
                                              values.transpose(1, 2),
                                              attn_bias=LowerTriangularFromBottomRightMask(), scale=scale)
        outs.append(out.transpose(1, 2)[..., :d])
    if len(buckets) == 1:
        return outs[0]
    return torch.cat(outs).index_select(0, bucket_inverse(layout, q.device))
