"""Patch attention: every CPU backend agrees with the reference, the reference with a dense mask.

The Triton kernels are checked in test_kernels_triton.py (a subprocess under TRITON_INTERPRET=1).
"""
from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nuwa_inf.kernels import (
    PatchLayout,
    available_backends,
    dense_masked_reference,
    patch_attention,
    reference_attention,
    resolve_backend,
)
from nuwa_inf.kernels.bench import count_pairs, crop_layout, earlier_neighbours
from nuwa_inf.kernels.sdpa import sdpa_attention

F64 = torch.float64


def make_inputs(nq, h, lq, ls, d, layout, nc=None, p=None, dtype=F64, seed=0, bias=True):
    """q, k_self, v_self, k_ctx, v_ctx, ctx_bias.

    Without nc: training style, the context blocks are the patches' own token positions
    (k_ctx = k_self[:, :, 1:], a non-contiguous view, Nc = Nq, P = Ls - 1).
    With nc: a separate pool of nc blocks of p keys, also a strided view.
    """
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=gen, dtype=dtype)

    q = randn(nq, h, lq, d)
    k_self, v_self = randn(nq, h, ls, d), randn(nq, h, ls, d)
    if nc is None:
        k_ctx, v_ctx = k_self[:, :, 1:], v_self[:, :, 1:]
    else:
        k_ctx, v_ctx = randn(nc, h, p + 2, d)[:, :, 2:], randn(nc, h, p + 2, d)[:, :, 1:-1]
    ctx_bias = randn(nq, h, lq, layout.n_offsets) if bias else None
    return q, k_self, v_self, k_ctx, v_ctx, ctx_bias


# A hand-written layout with every awkward case: a patch with no context, an empty slot in
# the middle of a list, a block listed twice in one row, blocks shared between rows.
RAGGED_INDEX = [[-1, -1, -1], [0, -1, -1], [0, -1, 1], [2, 1, 0], [3, 3, -1], [4, 2, 1]]
RAGGED_OFFSET = [[0, 0, 0], [1, 0, 0], [2, 0, 4], [3, 1, 2], [0, 4, 0], [1, 2, 3]]


def ragged_layout() -> PatchLayout:
    return PatchLayout(torch.tensor(RAGGED_INDEX), torch.tensor(RAGGED_OFFSET), 5)


CASES = {
    # name: (layout factory, nq, h, lq, ls, d, nc, p)
    "train_crop_2x3": (lambda: crop_layout(2, 3, 2, 1), 12, 2, 5, 5, 8, None, None),
    "train_ragged": (ragged_layout, 6, 2, 5, 5, 8, None, None),
    "train_p16": (lambda: crop_layout(2, 2, 1, 1), 4, 2, 17, 17, 8, None, None),
    "decode_lq1": (ragged_layout, 6, 2, 1, 3, 8, 5, 4),
    "decode_lq1_full": (lambda: PatchLayout(torch.tensor([[0, 1], [1, 2], [2, 0]]),
                                            torch.tensor([[0, 1], [1, 0], [0, 1]]), 2), 3, 2, 1, 5, 8, 3, 4),
    "prefix_lq3": (ragged_layout, 6, 2, 3, 5, 8, 5, 4),
}

SDPA_VARIANTS = {
    "sdpa": lambda *a: patch_attention(*a, backend="sdpa"),
    "sdpa-split": lambda *a: sdpa_attention(*a, strategy="split"),
    "sdpa-gathered": lambda *a: sdpa_attention(*a, strategy="gathered"),
}


def _case_inputs(name, dtype=F64, bias=True):
    factory, nq, h, lq, ls, d, nc, p = CASES[name]
    layout = factory()
    return layout, make_inputs(nq, h, lq, ls, d, layout, nc, p, dtype=dtype, bias=bias)


def _forward_and_grads(fn, layout, inputs):
    """Output and gradients wrt q, k_self, v_self, k_ctx's base, v_ctx's base, ctx_bias."""
    q, k_self, v_self, k_ctx, v_ctx, bias = inputs
    leaves = [t.detach().clone().requires_grad_() for t in (q, k_self, v_self)]
    ctx_base = [t._base if t._base is not None else t for t in (k_ctx, v_ctx)]
    shared = ctx_base[0] is k_self  # training style: context = views of the own keys
    if shared:
        k_ctx_leaf, v_ctx_leaf = leaves[1][:, :, 1:], leaves[2][:, :, 1:]
    else:
        bases = [b.detach().clone().requires_grad_() for b in ctx_base]
        leaves += bases
        k_ctx_leaf = bases[0].as_strided(k_ctx.shape, k_ctx.stride(), k_ctx.storage_offset())
        v_ctx_leaf = bases[1].as_strided(v_ctx.shape, v_ctx.stride(), v_ctx.storage_offset())
    bias_leaf = None if bias is None else bias.detach().clone().requires_grad_()
    if bias_leaf is not None:
        leaves.append(bias_leaf)
    out = fn(leaves[0], leaves[1], leaves[2], k_ctx_leaf, v_ctx_leaf, layout, bias_leaf)
    upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(7)).to(out.dtype)
    (out * upstream).sum().backward()
    return [out.detach()] + [t.grad for t in leaves]


@pytest.mark.parametrize("case", sorted(CASES))
def test_reference_matches_independent_dense_mask(case):
    for bias in (True, False):
        layout, inputs = _case_inputs(case, bias=bias)
        ref = reference_attention(*inputs[:5], layout, inputs[5])
        dense = dense_masked_reference(*inputs[:5], layout, inputs[5])
        torch.testing.assert_close(ref, dense, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("variant", sorted(SDPA_VARIANTS))
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_sdpa_matches_reference_forward_and_gradients(variant, case, bias):
    layout, inputs = _case_inputs(case, bias=bias)
    expected = _forward_and_grads(reference_attention, layout, inputs)
    got = _forward_and_grads(SDPA_VARIANTS[variant], layout, inputs)
    assert len(got) == len(expected)
    # fewer than seven results without a bias or with the context in the own keys (the names only label failures)
    for name, g, e in zip(["out", "dq", "dk", "dv", "dk_ctx", "dv_ctx", "dbias"], got, expected, strict=False):
        torch.testing.assert_close(g, e, rtol=1e-9, atol=1e-9, msg=f"{name} differs")


@pytest.mark.parametrize("variant", sorted(SDPA_VARIANTS))
def test_sdpa_float32_close_to_reference(variant):
    layout, inputs = _case_inputs("train_p16", dtype=torch.float32)
    expected = _forward_and_grads(reference_attention, layout, inputs)
    got = _forward_and_grads(SDPA_VARIANTS[variant], layout, inputs)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-5)


def test_sdpa_bfloat16_runs_forward_and_backward():
    layout, inputs = _case_inputs("train_crop_2x3", dtype=torch.float32)
    q, k, v, bias = (t.bfloat16() for t in (inputs[0], inputs[1], inputs[2], inputs[5]))
    low = (q, k, v, k[:, :, 1:], v[:, :, 1:], bias)
    q, k, v, bias = (t.float() for t in (q, k, v, bias))  # the same values, for the reference
    expected = _forward_and_grads(reference_attention, layout, (q, k, v, k[:, :, 1:], v[:, :, 1:], bias))
    got = _forward_and_grads(SDPA_VARIANTS["sdpa"], layout, low)
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == torch.bfloat16
        torch.testing.assert_close(g.float(), e, rtol=0.05, atol=0.05)


def test_patch_without_context_is_plain_causal_attention():
    layout = PatchLayout(torch.full((2, 3), -1), torch.zeros(2, 3, dtype=torch.int64), 1)
    q, k, v, k_ctx, v_ctx, bias = make_inputs(2, 2, 5, 5, 8, layout)
    out = patch_attention(q, k, v, k_ctx, v_ctx, layout, bias, backend="sdpa")
    plain = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(out, plain)


def test_decode_rows_equal_the_matching_rows_of_a_full_pass():
    """Lq=1 at position t (Ls = t+1) gives row t of the Lq = Ls pass."""
    layout = ragged_layout()
    q, k, v, k_ctx, v_ctx, _ = make_inputs(6, 2, 5, 5, 8, layout, nc=5, p=4)
    bias = torch.randn(6, 2, 5, 5, dtype=F64)
    full = patch_attention(q, k, v, k_ctx, v_ctx, layout, bias, backend="sdpa")
    for t in range(5):
        step = patch_attention(q[:, :, t:t + 1], k[:, :, :t + 1], v[:, :, :t + 1], k_ctx, v_ctx, layout,
                               bias[:, :, t:t + 1], backend="sdpa")
        torch.testing.assert_close(step, full[:, :, t:t + 1])


def test_decode_cache_reused_across_steps_and_invalidated_by_writes():
    layout = PatchLayout(torch.tensor([[0, 1], [1, 2], [2, 0]]), torch.tensor([[0, 1], [1, 0], [0, 1]]), 2)
    pool_k = torch.randn(3, 2, 5, 8, dtype=F64)
    pool_v = torch.randn(3, 2, 5, 8, dtype=F64)
    q, k_self, v_self = (torch.randn(3, 2, n, 8, dtype=F64) for n in (1, 4, 4))
    bias = torch.randn(3, 2, 1, 2, dtype=F64)

    def check(ls):
        with torch.no_grad():
            args = (q, k_self[:, :, :ls], v_self[:, :, :ls], pool_k[:, :, 1:], pool_v[:, :, 1:], layout, bias)
            torch.testing.assert_close(patch_attention(*args, backend="sdpa"), reference_attention(*args))

    for ls in (1, 2, 3):
        check(ls)
    assert len(layout._cache["decode_context"]) == 1  # one gather for all steps
    pool_k[1, 0, 2, 0] += 1.0  # a write into the pool: the cached gather is stale
    check(3)
    assert len(layout._cache["decode_context"]) == 2
    with torch.inference_mode():  # inference tensors have no version counter: never cached
        inf_pool = pool_k.clone()
        out = patch_attention(q, k_self, v_self, inf_pool[:, :, 1:], pool_v[:, :, 1:], layout, bias,
                              backend="sdpa")
    torch.testing.assert_close(out, reference_attention(q, k_self, v_self, inf_pool[:, :, 1:], pool_v[:, :, 1:],
                                                        layout, bias))
    assert len(layout._cache["decode_context"]) == 2


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_sdpa_matches_reference_on_random_layouts(data):
    nq = data.draw(st.integers(1, 5), label="nq")
    m = data.draw(st.integers(1, 4), label="m")
    nc = data.draw(st.integers(1, 5), label="nc")
    p = data.draw(st.integers(1, 5), label="p")
    ls = data.draw(st.integers(1, 6), label="ls")
    lq = data.draw(st.integers(1, ls), label="lq")
    n_offsets = data.draw(st.integers(1, 4), label="n_offsets")
    index = data.draw(st.lists(st.lists(st.integers(-1, nc - 1), min_size=m, max_size=m),
                               min_size=nq, max_size=nq), label="index")
    offset = data.draw(st.lists(st.lists(st.integers(0, n_offsets - 1), min_size=m, max_size=m),
                                min_size=nq, max_size=nq), label="offset")
    layout = PatchLayout(torch.tensor(index), torch.tensor(offset), n_offsets)
    inputs = make_inputs(nq, 2, lq, ls, 4, layout, nc=nc, p=p, seed=data.draw(st.integers(0, 99)))
    expected = reference_attention(*inputs[:5], layout, inputs[5])
    for strategy in ("split", "gathered"):
        got = sdpa_attention(*inputs[:5], layout, inputs[5], strategy=strategy)
        torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------------------- API behaviour
def test_layout_from_plain_tensors_and_lists():
    layout = PatchLayout(torch.tensor([[0, -1]], dtype=torch.int32), torch.tensor([[2, 0]]), 3)
    assert layout.ctx_index.dtype == torch.int64 and layout.n_offsets == 3
    assert layout.max_count == 1 and not layout.has_row_duplicates
    assert PatchLayout([[1, 1]], [[0, 1]]).has_row_duplicates
    assert PatchLayout([[0]]).n_offsets == 1  # offsets default to zeros


@pytest.mark.parametrize("bad, message", [
    (dict(index=[[0, 5]]), "refers to context block 5"),
    (dict(index=[[0, -2]]), ">= -1"),
    (dict(offset=[[0, 3]]), "ctx_offset entries"),
    (dict(lq=6), "Lq <= Ls"),
    (dict(bias_offsets=2), "ctx_bias must be"),
])
def test_bad_inputs_are_rejected_with_a_clear_message(bad, message):
    index = torch.tensor(bad.get("index", [[0, 1]]))
    offset = torch.tensor(bad.get("offset", [[0, 1]]))
    layout = PatchLayout(index, offset, 3)
    lq = bad.get("lq", 2)
    q, k, v, k_ctx, v_ctx, _ = make_inputs(1, 2, lq, 5, 4, layout, nc=2, p=3)
    bias = torch.zeros(1, 2, lq, bad.get("bias_offsets", 3), dtype=F64)
    with pytest.raises(ValueError, match=message):
        patch_attention(q, k, v, k_ctx, v_ctx, layout, bias, backend="sdpa")


def test_backend_selection_and_env_override(monkeypatch):
    monkeypatch.delenv("NUWA_ATTN_BACKEND", raising=False)
    cpu_backends = available_backends("cpu")
    assert "sdpa" in cpu_backends and "reference" in cpu_backends and "xformers" not in cpu_backends
    assert resolve_backend("auto", "cpu") == "sdpa"
    monkeypatch.setenv("NUWA_ATTN_BACKEND", "reference")
    assert resolve_backend("auto", "cpu") == "reference"
    assert resolve_backend("sdpa", "cpu") == "sdpa"  # an explicit choice wins over the variable
    with pytest.raises(ValueError, match="unknown attention backend"):
        resolve_backend("flash9", "cpu")
    with pytest.raises(ValueError, match="cannot run on cpu"):
        resolve_backend("xformers", "cpu")


# ---------------------------------------------------------------------------- benchmark
def test_crop_layout_has_the_presets_context_counts():
    assert len(earlier_neighbours(1)) == 4 and len(earlier_neighbours(2)) == 12
    layout = crop_layout(2, 4, 1, 1)
    counts = (layout.ctx_index >= 0).sum(1).tolist()
    assert counts == [0, 1, 1, 1, 2, 4, 4, 3]
    # pairs: 16 context blocks x 257 queries x 256 keys + 8 patches x 257*258/2 causal, x heads
    assert count_pairs(layout, 1, 257, 257, 256) == 16 * 257 * 256 + 8 * 257 * 258 // 2


def test_bench_cli_writes_records(tmp_path, monkeypatch, capsys):
    from nuwa_inf.cli import main
    from nuwa_inf.kernels import bench

    monkeypatch.setitem(bench.PRESETS, "tiny", dict(heads=2, head_dim=8, patch=2, extent=1, crop=(2, 2),
                                                    batch=1, decode_patches=2, decode_len=3, pool=4))
    monkeypatch.setattr(bench, "matmul_peak_tflops", lambda device, quick: (1.0, "stub"))
    out = tmp_path / "kernels.json"
    assert main(["bench", "kernels", "--device", "cpu", "--quick", "--presets", "tiny", "--json", str(out)]) == 0
    records = json.loads(out.read_text())
    ops = {(r["op"], r["backend"]) for r in records}
    assert {("fwd", "sdpa"), ("fwd+bwd", "sdpa"), ("decode", "sdpa"), ("fwd", "dense-masked")} <= ops
    for r in records:
        assert set(r) == {"op", "backend", "shape", "ms", "tflops", "max_abs_err"}
        if r["max_abs_err"] is not None:
            assert r["max_abs_err"] < 1e-4
    assert "sdpa vs dense-masked" in capsys.readouterr().out


def test_bench_cli_bad_flags_are_user_errors(capsys):
    from nuwa_inf.cli import main

    assert main(["bench", "kernels", "--presets", "huge"]) == 2
    assert "unknown preset" in capsys.readouterr().err
