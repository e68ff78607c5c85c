"""Triton kernels for patch attention: FlashAttention-2 forward/backward and a split-K decode.

Every kernel walks the patch structure directly: a query block of patch n visits the context
blocks k_ctx[ctx_index[n, m]] through the index (never a concatenated copy), adds the slot's
bias column ctx_bias[n, h, i, ctx_offset[n, m]] in-kernel, then its own keys under the
bottom-right causal rule j <= i + Ls - Lq. Lengths need not be powers of two (Ls = P + 1):
tiles are masked. Softmax runs in the log2 domain (exp2) with fp32 statistics; fp16/bf16
inputs go through tl.dot with fp32 accumulation.

    _fwd_kernel           grid (Lq tiles, Nq*H)  -> out, lse
    _bwd_dq_kernel        grid (Lq tiles, Nq*H)  -> dq, per-slot d(bias) = row sums of dS
    _bwd_dkdv_self_kernel grid (Ls tiles, Nq*H)  -> dk_self, dv_self (causal query range only)
    _bwd_dkdv_ctx_kernel  grid (P tiles, Nc*H)   -> dk_ctx, dv_ctx: block c iterates the slots
                                                    that read it (PatchLayout.csr), no atomics
    _decode_kernel        grid (Nq*H, M + own chunks) -> partial (max, sum, acc) per split
    _decode_combine_kernel grid (Nq*H,)          -> out

On a GPU the block sizes are autotuned; under TRITON_INTERPRET=1 (CPU tests, fp32 only) one
small config is pinned, since autotuning needs a GPU.
"""
from __future__ import annotations

import os

import torch
import triton
import triton.language as tl
from torch import Tensor

from .layout import PatchLayout

INTERPRET = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
LOG2E = 1.4426950408889634
# finite "minus infinity" for running maxima: keeps exp2(m_old - m_new) NaN-free
NEG_BIG: tl.constexpr = tl.constexpr(-1.0e30)
DECODE_MAX_LQ = 16  # Lq up to this (and no grad) takes the split-K decode kernel


# ---------------------------------------------------------------------------- helpers
@triton.jit
def _attend_tile(acc, m_i, l_i, q, k_t, v, s_add, valid, qk_scale, PRECISION: tl.constexpr):
    """One online-softmax step: q (BM, BD) against k_t (BD, BN), v (BN, BD).

    s_add is a log2-domain addend broadcastable to (BM, BN) (the slot bias or 0); `valid`
    masks padded keys and causality.
    """
    s = tl.dot(q, k_t, input_precision=PRECISION) * qk_scale + s_add
    s = tl.where(valid, s, float("-inf"))
    m_new = tl.maximum(m_i, tl.max(s, 1))
    alpha = tl.math.exp2(m_i - m_new)
    p = tl.math.exp2(s - m_new[:, None])
    l_i = l_i * alpha + tl.sum(p, 1)
    acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PRECISION)
    return acc, m_new, l_i


@triton.jit
def _grad_tile(q, do, k, v, lse, delta, s_add, valid, qk_scale, PRECISION: tl.constexpr):
    """Recompute P for one (query tile, key tile) and return (P, dS), both (BM, BN) fp32.

    dS is the gradient wrt the natural-log logits scale*q.k + bias: P * (dO.v - delta).
    """
    s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * qk_scale + s_add
    p = tl.math.exp2(s - lse[:, None])
    p = tl.where(valid, p, 0.0)
    dp = tl.dot(do, tl.trans(v), input_precision=PRECISION)
    ds = p * (dp - delta[:, None])
    return p, ds


# ---------------------------------------------------------------------------- forward
@triton.jit
def _fwd_kernel(Q, KS, VS, KC, VC, IDX, OFF, BIAS, O, LSE,  # noqa: E741  (O: the output, beside Q, K, V)
                sq_n, sq_h, sq_l, sq_d,
                sks_n, sks_h, sks_l, sks_d,
                svs_n, svs_h, svs_l, svs_d,
                skc_n, skc_h, skc_l, skc_d,
                svc_n, svc_h, svc_l, svc_d,
                sb_n, sb_h, sb_l, sb_o,
                so_n, so_h, so_l, so_d,
                H, LQ, LS, P, M, D, qk_scale,
                HAS_BIAS: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                BLOCK_D: tl.constexpr, PRECISION: tl.constexpr):
    pid_m = tl.program_id(0)
    pid_nh = tl.program_id(1)
    n = pid_nh // H
    h = pid_nh % H
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    row_ok = offs_m < LQ
    d_ok = offs_d < D

    q = tl.load(Q + n * sq_n + h * sq_h + offs_m[:, None] * sq_l + offs_d[None, :] * sq_d,
                mask=row_ok[:, None] & d_ok[None, :], other=0.0)
    m_i = tl.full([BLOCK_M], NEG_BIG, dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)

    # context blocks, through the index
    for slot in range(0, M):
        c = tl.load(IDX + n * M + slot)
        n_keys = tl.where(c >= 0, P, 0)  # empty slot: no tiles
        c = tl.maximum(c, 0)
        s_add = tl.zeros([BLOCK_M], dtype=tl.float32)
        if HAS_BIAS:
            o = tl.load(OFF + n * M + slot)
            s_add = tl.load(BIAS + n * sb_n + h * sb_h + offs_m * sb_l + o * sb_o,
                            mask=row_ok, other=0.0).to(tl.float32) * 1.4426950408889634
        k_base = KC + c * skc_n + h * skc_h
        v_base = VC + c * svc_n + h * svc_h
        for start_n in range(0, n_keys, BLOCK_N):
            kn = start_n + offs_n
            key_ok = kn < P
            k_t = tl.load(k_base + kn[None, :] * skc_l + offs_d[:, None] * skc_d,
                          mask=key_ok[None, :] & d_ok[:, None], other=0.0)
            v = tl.load(v_base + kn[:, None] * svc_l + offs_d[None, :] * svc_d,
                        mask=key_ok[:, None] & d_ok[None, :], other=0.0)
            acc, m_i, l_i = _attend_tile(acc, m_i, l_i, q, k_t, v, s_add[:, None], key_ok[None, :],
                                         qk_scale, PRECISION)

    # own keys, causal: row i sees j <= i + LS - LQ; this tile's last row bounds the loop
    shift = LS - LQ
    hi = tl.minimum(LS, (pid_m + 1) * BLOCK_M + shift)
    for start_n in range(0, hi, BLOCK_N):
        kn = start_n + offs_n
        key_ok = kn < LS
        k_t = tl.load(KS + n * sks_n + h * sks_h + kn[None, :] * sks_l + offs_d[:, None] * sks_d,
                      mask=key_ok[None, :] & d_ok[:, None], other=0.0)
        v = tl.load(VS + n * svs_n + h * svs_h + kn[:, None] * svs_l + offs_d[None, :] * svs_d,
                    mask=key_ok[:, None] & d_ok[None, :], other=0.0)
        valid = key_ok[None, :] & (kn[None, :] <= offs_m[:, None] + shift)
        acc, m_i, l_i = _attend_tile(acc, m_i, l_i, q, k_t, v, 0.0, valid, qk_scale, PRECISION)

    acc = acc / l_i[:, None]
    tl.store(O + n * so_n + h * so_h + offs_m[:, None] * so_l + offs_d[None, :] * so_d,
             acc.to(O.dtype.element_ty), mask=row_ok[:, None] & d_ok[None, :])
    tl.store(LSE + pid_nh * LQ + offs_m, m_i + tl.math.log2(l_i), mask=row_ok)


# ---------------------------------------------------------------------------- backward
@triton.jit
def _bwd_dq_kernel(Q, KS, VS, KC, VC, IDX, OFF, BIAS, DO, LSE, DELTA, DQ, DBIAS,
                   sq_n, sq_h, sq_l, sq_d,
                   sks_n, sks_h, sks_l, sks_d,
                   svs_n, svs_h, svs_l, svs_d,
                   skc_n, skc_h, skc_l, skc_d,
                   svc_n, svc_h, svc_l, svc_d,
                   sb_n, sb_h, sb_l, sb_o,
                   sdo_n, sdo_h, sdo_l, sdo_d,
                   H, LQ, LS, P, M, D, qk_scale, scale,
                   HAS_BIAS: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                   BLOCK_D: tl.constexpr, PRECISION: tl.constexpr):
    """dq (contiguous (Nq, H, LQ, D), fp32) and DBIAS (Nq, H, LQ, M) fp32 row sums of dS."""
    pid_m = tl.program_id(0)
    pid_nh = tl.program_id(1)
    n = pid_nh // H
    h = pid_nh % H
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    row_ok = offs_m < LQ
    d_ok = offs_d < D
    qd_mask = row_ok[:, None] & d_ok[None, :]

    q = tl.load(Q + n * sq_n + h * sq_h + offs_m[:, None] * sq_l + offs_d[None, :] * sq_d,
                mask=qd_mask, other=0.0)
    do = tl.load(DO + n * sdo_n + h * sdo_h + offs_m[:, None] * sdo_l + offs_d[None, :] * sdo_d,
                 mask=qd_mask, other=0.0)
    lse = tl.load(LSE + pid_nh * LQ + offs_m, mask=row_ok, other=0.0)
    delta = tl.load(DELTA + pid_nh * LQ + offs_m, mask=row_ok, other=0.0)
    dq = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)

    for slot in range(0, M):
        c = tl.load(IDX + n * M + slot)
        n_keys = tl.where(c >= 0, P, 0)
        c = tl.maximum(c, 0)
        s_add = tl.zeros([BLOCK_M], dtype=tl.float32)
        if HAS_BIAS:
            o = tl.load(OFF + n * M + slot)
            s_add = tl.load(BIAS + n * sb_n + h * sb_h + offs_m * sb_l + o * sb_o,
                            mask=row_ok, other=0.0).to(tl.float32) * 1.4426950408889634
        dbias = tl.zeros([BLOCK_M], dtype=tl.float32)
        for start_n in range(0, n_keys, BLOCK_N):
            kn = start_n + offs_n
            key_ok = kn < P
            kd_mask = key_ok[:, None] & d_ok[None, :]
            k = tl.load(KC + c * skc_n + h * skc_h + kn[:, None] * skc_l + offs_d[None, :] * skc_d,
                        mask=kd_mask, other=0.0)
            v = tl.load(VC + c * svc_n + h * svc_h + kn[:, None] * svc_l + offs_d[None, :] * svc_d,
                        mask=kd_mask, other=0.0)
            p, ds = _grad_tile(q, do, k, v, lse, delta, s_add[:, None],
                               row_ok[:, None] & key_ok[None, :], qk_scale, PRECISION)
            dq += tl.dot(ds.to(k.dtype), k, input_precision=PRECISION)
            dbias += tl.sum(ds, 1)
        if HAS_BIAS:
            tl.store(DBIAS + (pid_nh * LQ + offs_m) * M + slot, dbias, mask=row_ok)

    shift = LS - LQ
    hi = tl.minimum(LS, (pid_m + 1) * BLOCK_M + shift)
    for start_n in range(0, hi, BLOCK_N):
        kn = start_n + offs_n
        key_ok = kn < LS
        kd_mask = key_ok[:, None] & d_ok[None, :]
        k = tl.load(KS + n * sks_n + h * sks_h + kn[:, None] * sks_l + offs_d[None, :] * sks_d,
                    mask=kd_mask, other=0.0)
        v = tl.load(VS + n * svs_n + h * svs_h + kn[:, None] * svs_l + offs_d[None, :] * svs_d,
                    mask=kd_mask, other=0.0)
        valid = row_ok[:, None] & key_ok[None, :] & (kn[None, :] <= offs_m[:, None] + shift)
        p, ds = _grad_tile(q, do, k, v, lse, delta, 0.0, valid, qk_scale, PRECISION)
        dq += tl.dot(ds.to(k.dtype), k, input_precision=PRECISION)

    tl.store(DQ + (pid_nh * LQ + offs_m[:, None]) * D + offs_d[None, :], dq * scale, mask=qd_mask)


@triton.jit
def _dkdv_tile(dk, dv, k, v, q, do, lse, delta, s_add_t, valid_t, qk_scale, PRECISION: tl.constexpr):
    """Accumulate dk, dv (BN, BD) of one key tile from one query tile, transposed form."""
    s_t = tl.dot(k, tl.trans(q), input_precision=PRECISION) * qk_scale + s_add_t  # (BN, BM)
    p_t = tl.math.exp2(s_t - lse[None, :])
    p_t = tl.where(valid_t, p_t, 0.0)
    dv += tl.dot(p_t.to(do.dtype), do, input_precision=PRECISION)
    dp_t = tl.dot(v, tl.trans(do), input_precision=PRECISION)
    ds_t = p_t * (dp_t - delta[None, :])
    dk += tl.dot(ds_t.to(q.dtype), q, input_precision=PRECISION)
    return dk, dv


@triton.jit
def _bwd_dkdv_self_kernel(Q, KS, VS, DO, LSE, DELTA, DK, DV,
                          sq_n, sq_h, sq_l, sq_d,
                          sks_n, sks_h, sks_l, sks_d,
                          svs_n, svs_h, svs_l, svs_d,
                          sdo_n, sdo_h, sdo_l, sdo_d,
                          H, LQ, LS, D, qk_scale, scale,
                          BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
                          PRECISION: tl.constexpr):
    """dk_self, dv_self (contiguous (Nq, H, LS, D), fp32) for one own-key tile."""
    pid_n = tl.program_id(0)
    pid_nh = tl.program_id(1)
    n = pid_nh // H
    h = pid_nh % H
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_m = tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    key_ok = offs_n < LS
    d_ok = offs_d < D
    kd_mask = key_ok[:, None] & d_ok[None, :]
    k = tl.load(KS + n * sks_n + h * sks_h + offs_n[:, None] * sks_l + offs_d[None, :] * sks_d,
                mask=kd_mask, other=0.0)
    v = tl.load(VS + n * svs_n + h * svs_h + offs_n[:, None] * svs_l + offs_d[None, :] * svs_d,
                mask=kd_mask, other=0.0)
    dk = tl.zeros([BLOCK_N, BLOCK_D], dtype=tl.float32)
    dv = tl.zeros([BLOCK_N, BLOCK_D], dtype=tl.float32)

    # query i sees key j iff i >= j - shift: start at the tile holding the first such row
    shift = LS - LQ
    lo = tl.maximum(pid_n * BLOCK_N - shift, 0)
    lo = (lo // BLOCK_M) * BLOCK_M
    for start_m in range(lo, LQ, BLOCK_M):
        rows = start_m + offs_m
        row_ok = rows < LQ
        qd_mask = row_ok[:, None] & d_ok[None, :]
        q = tl.load(Q + n * sq_n + h * sq_h + rows[:, None] * sq_l + offs_d[None, :] * sq_d,
                    mask=qd_mask, other=0.0)
        do = tl.load(DO + n * sdo_n + h * sdo_h + rows[:, None] * sdo_l + offs_d[None, :] * sdo_d,
                     mask=qd_mask, other=0.0)
        lse = tl.load(LSE + pid_nh * LQ + rows, mask=row_ok, other=0.0)
        delta = tl.load(DELTA + pid_nh * LQ + rows, mask=row_ok, other=0.0)
        valid_t = key_ok[:, None] & row_ok[None, :] & (offs_n[:, None] <= rows[None, :] + shift)
        dk, dv = _dkdv_tile(dk, dv, k, v, q, do, lse, delta, 0.0, valid_t, qk_scale, PRECISION)

    out = (pid_nh * LS + offs_n[:, None]) * D + offs_d[None, :]
    tl.store(DK + out, dk * scale, mask=kd_mask)
    tl.store(DV + out, dv, mask=kd_mask)


@triton.jit
def _bwd_dkdv_ctx_kernel(Q, KC, VC, OFF, BIAS, DO, LSE, DELTA, CSR_PTR, CSR_SLOT, DK, DV,
                         sq_n, sq_h, sq_l, sq_d,
                         skc_n, skc_h, skc_l, skc_d,
                         svc_n, svc_h, svc_l, svc_d,
                         sb_n, sb_h, sb_l, sb_o,
                         sdo_n, sdo_h, sdo_l, sdo_d,
                         H, LQ, P, M, D, qk_scale, scale,
                         HAS_BIAS: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                         BLOCK_D: tl.constexpr, PRECISION: tl.constexpr):
    """dk_ctx, dv_ctx (contiguous (Nc, H, P, D), fp32): block c sums over every slot reading it."""
    pid_n = tl.program_id(0)
    pid_ch = tl.program_id(1)
    c = pid_ch // H
    h = pid_ch % H
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_m = tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    key_ok = offs_n < P
    d_ok = offs_d < D
    kd_mask = key_ok[:, None] & d_ok[None, :]
    k = tl.load(KC + c * skc_n + h * skc_h + offs_n[:, None] * skc_l + offs_d[None, :] * skc_d,
                mask=kd_mask, other=0.0)
    v = tl.load(VC + c * svc_n + h * svc_h + offs_n[:, None] * svc_l + offs_d[None, :] * svc_d,
                mask=kd_mask, other=0.0)
    dk = tl.zeros([BLOCK_N, BLOCK_D], dtype=tl.float32)
    dv = tl.zeros([BLOCK_N, BLOCK_D], dtype=tl.float32)

    first = tl.load(CSR_PTR + c)
    last = tl.load(CSR_PTR + c + 1)
    for u in range(first, last):
        slot_id = tl.load(CSR_SLOT + u)  # = n * M + m
        n = slot_id // M
        nh = n * H + h
        o = 0
        if HAS_BIAS:
            o = tl.load(OFF + slot_id)
        for start_m in range(0, LQ, BLOCK_M):
            rows = start_m + offs_m
            row_ok = rows < LQ
            qd_mask = row_ok[:, None] & d_ok[None, :]
            q = tl.load(Q + n * sq_n + h * sq_h + rows[:, None] * sq_l + offs_d[None, :] * sq_d,
                        mask=qd_mask, other=0.0)
            do = tl.load(DO + n * sdo_n + h * sdo_h + rows[:, None] * sdo_l + offs_d[None, :] * sdo_d,
                         mask=qd_mask, other=0.0)
            lse = tl.load(LSE + nh * LQ + rows, mask=row_ok, other=0.0)
            delta = tl.load(DELTA + nh * LQ + rows, mask=row_ok, other=0.0)
            s_add = tl.zeros([BLOCK_M], dtype=tl.float32)
            if HAS_BIAS:
                s_add = tl.load(BIAS + n * sb_n + h * sb_h + rows * sb_l + o * sb_o,
                                mask=row_ok, other=0.0).to(tl.float32) * 1.4426950408889634
            valid_t = key_ok[:, None] & row_ok[None, :]
            dk, dv = _dkdv_tile(dk, dv, k, v, q, do, lse, delta, s_add[None, :], valid_t, qk_scale,
                                PRECISION)

    out = (pid_ch * P + offs_n[:, None]) * D + offs_d[None, :]
    tl.store(DK + out, dk * scale, mask=kd_mask)
    tl.store(DV + out, dv, mask=kd_mask)


# ---------------------------------------------------------------------------- decode
@triton.jit
def _decode_kernel(Q, KS, VS, KC, VC, IDX, OFF, BIAS, PART_M, PART_L, PART_ACC,
                   sq_n, sq_h, sq_l, sq_d,
                   sks_n, sks_h, sks_l, sks_d,
                   svs_n, svs_h, svs_l, svs_d,
                   skc_n, skc_h, skc_l, skc_d,
                   svc_n, svc_h, svc_l, svc_d,
                   sb_n, sb_h, sb_l, sb_o,
                   H, LQ, LS, P, M, D, N_SPLITS, SELF_CHUNK, qk_scale,
                   HAS_BIAS: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                   BLOCK_D: tl.constexpr, PRECISION: tl.constexpr):
    """Split s < M: context slot s; split s >= M: own keys [(s-M)*SELF_CHUNK, +SELF_CHUNK).

    Writes the split's running max, sum and unnormalised output for all LQ (<= BLOCK_M) rows.
    """
    pid_nh = tl.program_id(0)
    split = tl.program_id(1)
    n = pid_nh // H
    h = pid_nh % H
    offs_m = tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    row_ok = offs_m < LQ
    d_ok = offs_d < D
    q = tl.load(Q + n * sq_n + h * sq_h + offs_m[:, None] * sq_l + offs_d[None, :] * sq_d,
                mask=row_ok[:, None] & d_ok[None, :], other=0.0)
    m_i = tl.full([BLOCK_M], NEG_BIG, dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)

    if split < M:
        c = tl.load(IDX + n * M + split)
        n_keys = tl.where(c >= 0, P, 0)
        c = tl.maximum(c, 0)
        s_add = tl.zeros([BLOCK_M], dtype=tl.float32)
        if HAS_BIAS:
            o = tl.load(OFF + n * M + split)
            s_add = tl.load(BIAS + n * sb_n + h * sb_h + offs_m * sb_l + o * sb_o,
                            mask=row_ok, other=0.0).to(tl.float32) * 1.4426950408889634
        for start_n in range(0, n_keys, BLOCK_N):
            kn = start_n + offs_n
            key_ok = kn < P
            k_t = tl.load(KC + c * skc_n + h * skc_h + kn[None, :] * skc_l + offs_d[:, None] * skc_d,
                          mask=key_ok[None, :] & d_ok[:, None], other=0.0)
            v = tl.load(VC + c * svc_n + h * svc_h + kn[:, None] * svc_l + offs_d[None, :] * svc_d,
                        mask=key_ok[:, None] & d_ok[None, :], other=0.0)
            acc, m_i, l_i = _attend_tile(acc, m_i, l_i, q, k_t, v, s_add[:, None], key_ok[None, :],
                                         qk_scale, PRECISION)
    else:
        shift = LS - LQ
        lo = (split - M) * SELF_CHUNK
        hi = tl.minimum(lo + SELF_CHUNK, LS)
        for start_n in range(lo, hi, BLOCK_N):
            kn = start_n + offs_n
            key_ok = kn < hi
            k_t = tl.load(KS + n * sks_n + h * sks_h + kn[None, :] * sks_l + offs_d[:, None] * sks_d,
                          mask=key_ok[None, :] & d_ok[:, None], other=0.0)
            v = tl.load(VS + n * svs_n + h * svs_h + kn[:, None] * svs_l + offs_d[None, :] * svs_d,
                        mask=key_ok[:, None] & d_ok[None, :], other=0.0)
            valid = key_ok[None, :] & (kn[None, :] <= offs_m[:, None] + shift)
            acc, m_i, l_i = _attend_tile(acc, m_i, l_i, q, k_t, v, 0.0, valid, qk_scale, PRECISION)

    part = pid_nh * N_SPLITS + split
    tl.store(PART_M + part * BLOCK_M + offs_m, m_i)
    tl.store(PART_L + part * BLOCK_M + offs_m, l_i)
    tl.store(PART_ACC + (part * BLOCK_M + offs_m[:, None]) * BLOCK_D + offs_d[None, :], acc)


@triton.jit
def _decode_combine_kernel(PART_M, PART_L, PART_ACC, O, so_n, so_h, so_l, so_d,  # noqa: E741  (O: the output)
                           H, LQ, D, N_SPLITS,
                           BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr):
    pid_nh = tl.program_id(0)
    n = pid_nh // H
    h = pid_nh % H
    offs_m = tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    m_all = tl.full([BLOCK_M], NEG_BIG, dtype=tl.float32)
    l_all = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
    for split in range(0, N_SPLITS):
        part = pid_nh * N_SPLITS + split
        m_s = tl.load(PART_M + part * BLOCK_M + offs_m)
        l_s = tl.load(PART_L + part * BLOCK_M + offs_m)
        a_s = tl.load(PART_ACC + (part * BLOCK_M + offs_m[:, None]) * BLOCK_D + offs_d[None, :])
        m_new = tl.maximum(m_all, m_s)
        alpha = tl.math.exp2(m_all - m_new)
        beta = tl.math.exp2(m_s - m_new)
        l_all = l_all * alpha + l_s * beta
        acc = acc * alpha[:, None] + a_s * beta[:, None]
        m_all = m_new
    out = acc / l_all[:, None]
    mask = (offs_m < LQ)[:, None] & (offs_d < D)[None, :]
    tl.store(O + n * so_n + h * so_h + offs_m[:, None] * so_l + offs_d[None, :] * so_d,
             out.to(O.dtype.element_ty), mask=mask)


# ---------------------------------------------------------------------------- launch configs
def _gpu_configs(block_ms, block_ns):
    return [triton.Config({"BLOCK_M": bm, "BLOCK_N": bn}, num_warps=w, num_stages=s)
            for bm in block_ms for bn in block_ns for w in (4, 8) for s in (2, 3)]


PINNED = {"BLOCK_M": 16, "BLOCK_N": 16}  # interpreter: one small config

if INTERPRET:
    _fwd = _fwd_kernel
    _bwd_dq = _bwd_dq_kernel
    _bwd_dkdv_self = _bwd_dkdv_self_kernel
    _bwd_dkdv_ctx = _bwd_dkdv_ctx_kernel
else:  # pragma: no cover - needs a GPU
    _fwd = triton.autotune(_gpu_configs((64, 128), (32, 64)), key=["LQ", "P", "M", "BLOCK_D", "HAS_BIAS"])(_fwd_kernel)
    _bwd_dq = triton.autotune(_gpu_configs((64, 128), (32, 64)), key=["LQ", "P", "M", "BLOCK_D", "HAS_BIAS"],
                              )(_bwd_dq_kernel)
    _bwd_dkdv_self = triton.autotune(_gpu_configs((32, 64), (64, 128)), key=["LQ", "LS", "BLOCK_D"],
                                     )(_bwd_dkdv_self_kernel)
    _bwd_dkdv_ctx = triton.autotune(_gpu_configs((32, 64), (64, 128)), key=["LQ", "P", "BLOCK_D", "HAS_BIAS"],
                                    )(_bwd_dkdv_ctx_kernel)


def _launch_meta() -> dict:
    return dict(PINNED) if INTERPRET else {}


def _precision(dtype: torch.dtype) -> str:
    if dtype == torch.float32 and not (torch.backends.cuda.matmul.allow_tf32 and not INTERPRET):
        return "ieee"
    return "tf32"


def _strides(t: Tensor | None) -> tuple[int, int, int, int]:
    return (0, 0, 0, 0) if t is None else tuple(t.stride())


def _block_d(d: int) -> int:
    return max(16, triton.next_power_of_2(d))


# ---------------------------------------------------------------------------- python side
def _forward(q, k_self, v_self, k_ctx, v_ctx, index, offset, ctx_bias, scale):
    nq, h, lq, d = q.shape
    ls, p, m = k_self.shape[2], k_ctx.shape[2], index.shape[1]
    out = torch.empty_like(q, memory_format=torch.contiguous_format)
    lse = torch.empty(nq, h, lq, device=q.device, dtype=torch.float32)
    bias = ctx_bias if ctx_bias is not None else q  # dummy pointer when HAS_BIAS is False
    meta = _launch_meta()

    def grid(META):
        return (triton.cdiv(lq, META["BLOCK_M"]), nq * h)

    _fwd[grid](q, k_self, v_self, k_ctx, v_ctx, index, offset, bias, out, lse,
               *q.stride(), *k_self.stride(), *v_self.stride(), *k_ctx.stride(), *v_ctx.stride(),
               *_strides(ctx_bias), *out.stride(),
               h, lq, ls, p, m, d, scale * LOG2E,
               HAS_BIAS=ctx_bias is not None, BLOCK_D=_block_d(d), PRECISION=_precision(q.dtype),
               **meta)
    return out, lse


def _backward(do, q, k_self, v_self, k_ctx, v_ctx, out, lse, index, offset, ctx_bias, layout, scale):
    nq, h, lq, d = q.shape
    nc, ls, p, m = k_ctx.shape[0], k_self.shape[2], k_ctx.shape[2], index.shape[1]
    has_bias = ctx_bias is not None
    bias = ctx_bias if has_bias else q
    qk_scale = scale * LOG2E
    block_d = _block_d(d)
    precision = _precision(q.dtype)
    meta = _launch_meta()
    delta = (do.float() * out.float()).sum(-1).contiguous()  # (Nq, H, Lq) = rowsum(dO * O)

    dq = torch.empty(nq, h, lq, d, device=q.device, dtype=torch.float32)
    dbias_slot = torch.zeros(nq, h, lq, m, device=q.device, dtype=torch.float32) if has_bias else dq
    _bwd_dq[lambda META: (triton.cdiv(lq, META["BLOCK_M"]), nq * h)](
        q, k_self, v_self, k_ctx, v_ctx, index, offset, bias, do, lse, delta, dq, dbias_slot,
        *q.stride(), *k_self.stride(), *v_self.stride(), *k_ctx.stride(), *v_ctx.stride(),
        *_strides(ctx_bias), *do.stride(),
        h, lq, ls, p, m, d, qk_scale, scale,
        HAS_BIAS=has_bias, BLOCK_D=block_d, PRECISION=precision, **meta)

    dk_self = torch.empty(nq, h, ls, d, device=q.device, dtype=torch.float32)
    dv_self = torch.empty_like(dk_self)
    _bwd_dkdv_self[lambda META: (triton.cdiv(ls, META["BLOCK_N"]), nq * h)](
        q, k_self, v_self, do, lse, delta, dk_self, dv_self,
        *q.stride(), *k_self.stride(), *v_self.stride(), *do.stride(),
        h, lq, ls, d, qk_scale, scale,
        BLOCK_D=block_d, PRECISION=precision, **meta)

    csr = layout.csr(nc, q.device)
    dk_ctx = torch.empty(nc, h, p, d, device=q.device, dtype=torch.float32)
    dv_ctx = torch.empty_like(dk_ctx)
    _bwd_dkdv_ctx[lambda META: (triton.cdiv(p, META["BLOCK_N"]), nc * h)](
        q, k_ctx, v_ctx, offset, bias, do, lse, delta, csr.ptr, csr.slot, dk_ctx, dv_ctx,
        *q.stride(), *k_ctx.stride(), *v_ctx.stride(), *_strides(ctx_bias), *do.stride(),
        h, lq, p, m, d, qk_scale, scale,
        HAS_BIAS=has_bias, BLOCK_D=block_d, PRECISION=precision, **meta)

    dbias = None
    if has_bias:
        dbias = torch.zeros(nq, h, lq, layout.n_offsets, device=q.device, dtype=torch.float32)
        dbias.scatter_add_(3, offset[:, None, None, :].expand(nq, h, lq, m), dbias_slot)
        dbias = dbias.to(ctx_bias.dtype)
    return (dq.to(q.dtype), dk_self.to(k_self.dtype), dv_self.to(v_self.dtype),
            dk_ctx.to(k_ctx.dtype), dv_ctx.to(v_ctx.dtype), dbias)


class _PatchAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k_self, v_self, k_ctx, v_ctx, ctx_bias, layout, scale):
        index, offset = layout.index_on(q.device)
        out, lse = _forward(q, k_self, v_self, k_ctx, v_ctx, index, offset, ctx_bias, scale)
        ctx.save_for_backward(q, k_self, v_self, k_ctx, v_ctx, ctx_bias, out, lse)
        ctx.layout = layout
        ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx, do):
        q, k_self, v_self, k_ctx, v_ctx, ctx_bias, out, lse = ctx.saved_tensors
        index, offset = ctx.layout.index_on(q.device)
        grads = _backward(do, q, k_self, v_self, k_ctx, v_ctx, out, lse, index, offset, ctx_bias,
                          ctx.layout, ctx.scale)
        return (*grads, None, None)


def decode_attention(q, k_self, v_self, k_ctx, v_ctx, layout, ctx_bias, scale, self_chunk=None):
    """Split-K decode for Lq <= DECODE_MAX_LQ: one program per (patch, head, split), then combine."""
    nq, h, lq, d = q.shape
    ls, p = k_self.shape[2], k_ctx.shape[2]
    index, offset = layout.index_on(q.device)
    m = index.shape[1]
    block_m = max(16, triton.next_power_of_2(lq))
    block_n = 16 if INTERPRET else 64
    block_d = _block_d(d)
    self_chunk = self_chunk or (32 if INTERPRET else 256)
    n_splits = m + triton.cdiv(ls, self_chunk)
    part_m = torch.empty(nq * h * n_splits * block_m, device=q.device, dtype=torch.float32)
    part_l = torch.empty_like(part_m)
    part_acc = torch.empty(nq * h * n_splits * block_m * block_d, device=q.device, dtype=torch.float32)
    bias = ctx_bias if ctx_bias is not None else q
    precision = _precision(q.dtype)
    _decode_kernel[(nq * h, n_splits)](
        q, k_self, v_self, k_ctx, v_ctx, index, offset, bias, part_m, part_l, part_acc,
        *q.stride(), *k_self.stride(), *v_self.stride(), *k_ctx.stride(), *v_ctx.stride(),
        *_strides(ctx_bias),
        h, lq, ls, p, m, d, n_splits, self_chunk, scale * LOG2E,
        HAS_BIAS=ctx_bias is not None, BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_D=block_d,
        PRECISION=precision, **({} if INTERPRET else {"num_warps": 4}))
    out = torch.empty_like(q, memory_format=torch.contiguous_format)
    _decode_combine_kernel[(nq * h,)](part_m, part_l, part_acc, out, *out.stride(), h, lq, d, n_splits,
                                      BLOCK_M=block_m, BLOCK_D=block_d)
    return out


def triton_attention(q: Tensor, k_self: Tensor, v_self: Tensor, k_ctx: Tensor, v_ctx: Tensor,
                     layout: PatchLayout, ctx_bias: Tensor | None, scale: float,
                     mode: str = "auto") -> Tensor:
    """Patch attention on the Triton kernels; `mode` "auto" | "flash" | "decode".

    "auto" takes the decode kernel for Lq <= DECODE_MAX_LQ when no gradient is needed.
    """
    needs_grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (q, k_self, v_self, k_ctx, v_ctx, ctx_bias))
    if mode == "auto":
        mode = "decode" if q.shape[2] <= DECODE_MAX_LQ and not needs_grad else "flash"
    if mode == "decode":
        return decode_attention(q, k_self, v_self, k_ctx, v_ctx, layout, ctx_bias, scale)
    if mode != "flash":
        raise ValueError(f"unknown triton mode {mode!r}")
    return _PatchAttention.apply(q, k_self, v_self, k_ctx, v_ctx, ctx_bias, layout, scale)
