"""Benchmark of patch attention: every available backend plus a dense-masked SDPA baseline.

Shapes are the presets' real ones:
  small  4 heads x 64, 16x16 patches (P = 256, Lq = Ls = 257 in training), extent 1
         (M <= 4 earlier neighbours), training crop 2x4 patches x batch 4 (Nq = 32);
         decode: 16 patches per wave, Lq = 1, Ls = 128 (mid-patch), pool of 64 blocks, M = 4.
  base   20 heads x 64, extent 2 (M <= 12), crop 4x4 x batch 2; decode 16 patches, M = 12,
         pool of 96 blocks.

FLOPs count only attended (query, key) pairs: 4 * D per pair for the forward (q.k and p.v,
2 FLOPs per multiply-add), x 3.5 for forward + backward (backward = 2.5 x forward), and
the own block counted by its causal pairs (j <= i + Ls - Lq, about half of it). The
dense-masked baseline is credited with the same useful FLOPs, so its TFLOP/s shows what
the mask wastes. "% peak" is relative to a large matmul measured in the same run
(fp32 on CPU, bf16 on GPU).
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F

from . import PatchLayout, available_backends, patch_attention

PRESETS = {
    "small": dict(heads=4, head_dim=64, patch=16, extent=1, crop=(2, 4), batch=4,
                  decode_patches=16, decode_len=128, pool=64),
    "base": dict(heads=20, head_dim=64, patch=16, extent=2, crop=(4, 4), batch=2,
                 decode_patches=16, decode_len=128, pool=96),
}


@dataclass
class Case:
    """One benchmark shape: inputs, layout and the attended-pair count."""

    name: str
    op: str  # "fwd", "fwd+bwd" or "decode"
    q: torch.Tensor
    k_self: torch.Tensor
    v_self: torch.Tensor
    k_ctx: torch.Tensor
    v_ctx: torch.Tensor
    layout: PatchLayout
    ctx_bias: torch.Tensor
    pairs: int  # attended (query, key) pairs, summed over patches and heads
    crop: tuple[int, int, int] | None = None  # (batch, rows, cols) for the dense baseline


def earlier_neighbours(extent: int) -> list[tuple[int, int]]:
    """Offsets (drow, dcol) of the neighbours before a patch in raster order, within `extent`."""
    return [(dr, dc) for dr in range(-extent, 1) for dc in range(-extent, extent + 1)
            if dr < 0 or dc < 0]


def crop_layout(rows: int, cols: int, batch: int, extent: int) -> PatchLayout:
    """Training layout of `batch` crops of rows x cols patches in raster order (Nc = Nq)."""
    offsets = earlier_neighbours(extent)
    side = 2 * extent + 1
    index, offset = [], []
    for b in range(batch):
        for r in range(rows):
            for c in range(cols):
                row_index, row_offset = [], []
                for dr, dc in offsets:
                    rr, cc = r + dr, c + dc
                    row_index.append(b * rows * cols + rr * cols + cc if 0 <= rr < rows and 0 <= cc < cols else -1)
                    row_offset.append((dr + extent) * side + (dc + extent))
                index.append(row_index)
                offset.append(row_offset)
    return PatchLayout(torch.tensor(index), torch.tensor(offset), side * side)


def decode_layout(n_patches: int, n_slots: int, pool: int, extent: int) -> PatchLayout:
    """A wave's layout: patch n reads blocks (n*stride + j) mod pool; neighbours share blocks."""
    stride = max(1, pool // n_patches)
    index = torch.stack([(torch.arange(n_slots) + n * stride) % pool for n in range(n_patches)])
    offset = torch.arange(n_slots).expand(n_patches, n_slots)
    return PatchLayout(index, offset, (2 * extent + 1) ** 2)


def count_pairs(layout: PatchLayout, heads: int, lq: int, ls: int, p: int) -> int:
    """Attended (query, key) pairs: every context key of a non-empty slot + causal own keys."""
    context_blocks = int((layout.ctx_index >= 0).sum())
    own = sum(min(ls, i + ls - lq + 1) for i in range(lq))
    return heads * (context_blocks * lq * p + layout.n_query * own)


def make_cases(preset: str, device: torch.device, dtype: torch.dtype, quick: bool,
               seed: int = 0) -> list[Case]:
    cfg = PRESETS[preset]
    h, d, p = cfg["heads"], cfg["head_dim"], cfg["patch"] ** 2
    batch = 1 if quick else cfg["batch"]
    rows, cols = cfg["crop"]
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=gen).to(device=device, dtype=dtype)

    cases = []
    layout = crop_layout(rows, cols, batch, cfg["extent"])
    nq, length = layout.n_query, p + 1
    q, k, v = randn(nq, h, length, d), randn(nq, h, length, d), randn(nq, h, length, d)
    bias = randn(nq, h, length, layout.n_offsets) * 0.5
    shape = f"{preset} train {batch}x{rows}x{cols} Nq={nq} H={h} L={length} M={layout.max_slots}"
    pairs = count_pairs(layout, h, length, length, p)
    for op in ("fwd", "fwd+bwd"):
        cases.append(Case(shape, op, q, k, v, k[:, :, 1:], v[:, :, 1:], layout, bias, pairs,
                          crop=(batch, rows, cols)))

    n_dec, ls, m = cfg["decode_patches"], cfg["decode_len"], len(earlier_neighbours(cfg["extent"]))
    pool = cfg["pool"]
    layout = decode_layout(n_dec, m, pool, cfg["extent"])
    k_pool = randn(pool, h, length, d)[:, :, 1:]  # pooled blocks, a strided view like the model's
    v_pool = randn(pool, h, length, d)[:, :, 1:]
    shape = f"{preset} decode Nq={n_dec} H={h} Lq=1 Ls={ls} M={m} pool={pool}"
    cases.append(Case(shape, "decode", randn(n_dec, h, 1, d), randn(n_dec, h, ls, d), randn(n_dec, h, ls, d),
                      k_pool, v_pool, layout, randn(n_dec, h, 1, layout.n_offsets) * 0.5,
                      count_pairs(layout, h, 1, ls, p)))
    return cases


# ---------------------------------------------------------------------------- dense baseline
def dense_crop_inputs(case: Case) -> tuple[torch.Tensor, ...]:
    """All tokens of each crop in one sequence with a dense additive mask (1, H, T, T).

    This is the naive way to run a crop: a boolean structure (context blocks fully, own
    block causally), bias added per (query, context block), everything else -inf.
    """
    batch, rows, cols = case.crop
    nq, h, length, d = case.q.shape
    per_crop = rows * cols
    total = per_crop * length
    index = case.layout.ctx_index[:per_crop].tolist()
    offset = case.layout.ctx_offset[:per_crop].tolist()
    mask = torch.full((h, total, total), float("-inf"), dtype=case.q.dtype, device=case.q.device)
    causal = torch.zeros(length, length, dtype=case.q.dtype, device=case.q.device)
    causal.masked_fill_(~torch.ones(length, length, dtype=torch.bool, device=case.q.device).tril(), float("-inf"))
    for n in range(per_crop):
        rows_n = slice(n * length, (n + 1) * length)
        mask[:, rows_n, rows_n] = causal
        for slot, block in enumerate(index[n]):
            if block >= 0:
                # context block's keys are its token positions 1..P; the crop's bias is shared
                # by every crop of the batch, so take it from crop 0
                cols_b = slice(block * length + 1, (block + 1) * length)
                mask[:, rows_n, cols_b] = case.ctx_bias[n, :, :, offset[n][slot]][:, :, None]

    def seq(x: torch.Tensor) -> torch.Tensor:  # (B*patches, H, L, D) -> (B, H, patches*L, D)
        return x.reshape(batch, per_crop, h, length, d).transpose(1, 2).reshape(batch, h, total, d)

    return seq(case.q), seq(case.k_self), seq(case.v_self), mask.unsqueeze(0)


def dense_crop_output(out: torch.Tensor, case: Case) -> torch.Tensor:
    batch, rows, cols = case.crop
    nq, h, length, d = case.q.shape
    return out.reshape(batch, h, rows * cols, length, d).transpose(1, 2).reshape(nq, h, length, d)


def _shared_bias(case: Case) -> torch.Tensor:
    """ctx_bias with every crop using crop 0's bias, so the dense baseline computes the same."""
    batch, rows, cols = case.crop
    per_crop = rows * cols
    return case.ctx_bias[:per_crop].repeat(batch, 1, 1, 1)


# ---------------------------------------------------------------------------- timing
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_ms(fn, device: torch.device, repeats: int, warmup: int = 1) -> float:
    """Best-of-`repeats` wall time in ms (the machine may be shared: the best is the least noisy)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def matmul_peak_tflops(device: torch.device, quick: bool) -> tuple[float, str]:
    """A large matmul: fp32 on CPU, bf16 on GPU."""
    if device.type == "cuda":
        n, dtype = 8192, torch.bfloat16
    else:
        n, dtype = (1024 if quick else 2048), torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    ms = time_ms(lambda: a @ b, device, repeats=3 if quick else 5)
    return 2 * n ** 3 / (ms * 1e-3) / 1e12, f"{n}x{n}x{n} {str(dtype).removeprefix('torch.')}"


def _run(case: Case, backend: str, bias: torch.Tensor, grad: bool):
    """Forward (+ backward with a fixed upstream gradient); returns output and grads."""
    if not grad:
        with torch.no_grad():
            return [patch_attention(case.q, case.k_self, case.v_self, case.k_ctx, case.v_ctx, case.layout,
                                    bias, backend=backend)]
    q, k, v, b = (t.detach().clone().requires_grad_() for t in (case.q, case.k_self, case.v_self, bias))
    # context blocks are the crop's own token positions: a view, as in training
    out = patch_attention(q, k, v, k[:, :, 1:], v[:, :, 1:], case.layout, b, backend=backend)
    out.backward(_upstream(out))
    return [out, q.grad, k.grad, v.grad, b.grad]


def _upstream(out: torch.Tensor) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(out.shape, generator=gen).to(out.device, out.dtype)


def _max_err(results, reference) -> float:
    return max(float((a.detach().float() - r.detach().float()).abs().max())
               for a, r in zip(results, reference, strict=True))


def run_benchmark(device: torch.device, presets: list[str], quick: bool, backends: list[str] | None = None,
                  log=print) -> list[dict]:
    """Time every (case, backend); returns records {op, backend, shape, ms, tflops, max_abs_err}."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    repeats = 2 if quick else 5
    usable = [b for b in available_backends(device) if b != "reference"]
    if device.type == "cpu" and "triton" in usable:
        usable.remove("triton")  # TRITON_INTERPRET is set: the interpreter is for tests, not timing
    if backends:
        usable = [b for b in backends if b in usable]
    missing = [b for b in ("triton", "xformers") if b not in available_backends(device)]
    if missing:
        log(f"note: {', '.join(missing)} need a GPU (or are not installed): not measured on {device.type}")

    peak, peak_shape = matmul_peak_tflops(device, quick)
    log(f"device: {describe_device(device)}; threads: {torch.get_num_threads()}; "
        f"matmul peak {peak:.3f} TFLOP/s ({peak_shape})")
    records = [{"op": "matmul_peak", "backend": "torch", "shape": peak_shape,
                "ms": None, "tflops": peak, "max_abs_err": None}]

    def record(case: Case, backend: str, ms: float, err: float | None) -> None:
        flops = 4 * case.q.shape[-1] * case.pairs * (3.5 if case.op == "fwd+bwd" else 1.0)
        tflops = flops / (ms * 1e-3) / 1e12
        records.append({"op": case.op, "backend": backend, "shape": case.name, "ms": ms,
                        "tflops": tflops, "max_abs_err": err})
        err_text = "-" if err is None else f"{err:.1e}"
        log(f"{backend:<14} {case.op:<8} {case.name:<58} {ms:>10.2f} {tflops:>9.4f} "
            f"{100 * tflops / peak:>7.1f}% {err_text:>9}")

    log("FLOPs = 4*D per attended (query, key) pair (context keys + causal own keys), x3.5 for "
        "fwd+bwd; ms = best of %d; max_err vs the reference backend" % repeats)
    log(f"{'backend':<14} {'op':<8} {'shape':<58} {'ms':>10} {'TFLOP/s':>9} {'%peak':>8} {'max_err':>9}")
    for preset in presets:
        for case in make_cases(preset, device, dtype, quick):
            grad = case.op == "fwd+bwd"
            bias = _shared_bias(case) if case.crop else case.ctx_bias
            case.ctx_bias = bias
            reference = _reference_results(case, grad)
            for backend in usable:
                results = _run(case, backend, bias, grad)
                err = _max_err(results, reference)
                ms = time_ms(partial(_run, case, backend, bias, grad), device, repeats)
                record(case, backend, ms, err)
            if case.crop is not None:
                ms, err = _time_dense(case, grad, reference, device, repeats)
                record(case, "dense-masked", ms, err)
    return records


def _reference_results(case: Case, grad: bool):
    """The reference backend's results (computed in fp32 or wider from the same inputs)."""
    return _run(case, "reference", case.ctx_bias, grad)


def _time_dense(case: Case, grad: bool, reference, device: torch.device, repeats: int):
    q, k, v, mask = dense_crop_inputs(case)

    def run():
        if not grad:
            with torch.no_grad():
                return [F.scaled_dot_product_attention(q, k, v, attn_mask=mask)]
        qq, kk, vv = (t.detach().clone().requires_grad_() for t in (q, k, v))
        out = F.scaled_dot_product_attention(qq, kk, vv, attn_mask=mask)
        out_patches = dense_crop_output(out, case)
        out_patches.backward(_upstream(out_patches))
        return [out_patches, dense_crop_output(qq.grad, case), dense_crop_output(kk.grad, case),
                dense_crop_output(vv.grad, case)]

    results = run()
    if not grad:
        results = [dense_crop_output(results[0], case)]
    err = _max_err(results, reference[:len(results)])  # the baseline has no bias gradient
    return time_ms(run, device, repeats), err


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = ""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"cpu ({name}, {os.cpu_count()} cores)" if name else "cpu"


def ratio_summary(records: list[dict]) -> list[str]:
    """Lines comparing gathered SDPA with the dense-masked baseline per training case."""
    lines = []
    by_key = {(r["op"], r["backend"], r["shape"]): r for r in records if r["ms"] is not None}
    for (op, backend, shape), rec in by_key.items():
        if backend != "dense-masked":
            continue
        sdpa = by_key.get((op, "sdpa", shape))
        if sdpa:
            lines.append(f"sdpa vs dense-masked, {op:<8} {shape}: {rec['ms'] / sdpa['ms']:.2f}x faster "
                         f"({sdpa['ms']:.1f} vs {rec['ms']:.1f} ms; max err {sdpa['max_abs_err']:.1e} "
                         f"vs {rec['max_abs_err']:.1e})")
    return lines
