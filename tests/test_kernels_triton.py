"""Triton kernels under the interpreter (TRITON_INTERPRET=1, CPU, fp32) agree with the reference.

The interpreter has to be switched on before triton is imported, and pytest may already
have imported it, so the checks run in a child process: this file run as a script. The
child prints one JSON line {case: {quantity: max abs error}}; the tests read it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.util import find_spec

import pytest

TOL = 2e-5  # fp32


def _child_cases():
    """(name, layout, nq, h, lq, ls, d, nc, p, with_bias, mode) for the child."""
    import torch

    from nuwa_inf.kernels import PatchLayout
    from nuwa_inf.kernels.bench import crop_layout

    ragged = PatchLayout(torch.tensor([[-1, -1, -1], [0, -1, -1], [0, -1, 1], [2, 1, 0], [3, 3, -1]]),
                         torch.tensor([[0, 0, 0], [1, 0, 0], [2, 0, 4], [3, 1, 2], [0, 4, 0]]), 5)
    return [
        # training: context = the crop's own token positions (k_self[:, :, 1:]), P = 16, Ls = 17
        ("train_crop", crop_layout(2, 2, 1, 1), 4, 2, 17, 17, 16, None, None, True, "flash"),
        ("train_ragged", ragged, 5, 2, 17, 17, 16, None, None, True, "flash"),
        ("train_ragged_nobias", ragged, 5, 1, 17, 17, 16, None, None, False, "flash"),
        ("train_d24", crop_layout(1, 3, 1, 1), 3, 1, 17, 17, 24, None, None, True, "flash"),
        # decode: a separate pool (strided view), Lq = 1 with Ls < P + 1, and Lq = 3
        ("decode_lq1", ragged, 5, 2, 1, 5, 16, 4, 16, True, "decode"),
        ("decode_lq1_long", ragged, 5, 1, 1, 40, 16, 4, 16, True, "decode"),
        ("decode_lq3", ragged, 5, 2, 3, 9, 16, 4, 16, True, "decode"),
        ("decode_lq3_nobias", ragged, 5, 2, 3, 9, 16, 4, 16, False, "decode"),
        ("flash_lq1", ragged, 5, 2, 1, 5, 16, 4, 16, True, "flash"),
    ]


def _child_case_errors(name, layout, nq, h, lq, ls, d, nc, p, with_bias, mode) -> dict[str, float]:
    """One case of `_child_cases`: max abs error of the triton kernel vs the reference, per quantity.
    (A function of its own, so that the closures below capture this case's values, not a loop's.)"""
    import torch

    from nuwa_inf.kernels import reference_attention
    from nuwa_inf.kernels.triton_attention import triton_attention

    gen = torch.Generator().manual_seed(len(name))

    def randn(*shape):
        return torch.randn(*shape, generator=gen)

    q = randn(nq, h, lq, d)
    k_self, v_self = randn(nq, h, ls, d), randn(nq, h, ls, d)
    pool = None if nc is None else (randn(nc, h, p + 1, d), randn(nc, h, p + 1, d))
    bias = randn(nq, h, lq, layout.n_offsets) if with_bias else None
    scale = d ** -0.5

    def run(fn, grad):
        leaves = [t.clone().requires_grad_(grad) for t in (q, k_self, v_self)]
        if pool is None:
            k_ctx, v_ctx = leaves[1][:, :, 1:], leaves[2][:, :, 1:]
        else:
            bases = [t.clone().requires_grad_(grad) for t in pool]
            leaves += bases
            k_ctx, v_ctx = bases[0][:, :, 1:], bases[1][:, :, 1:]
        b = None if bias is None else bias.clone().requires_grad_(grad)
        if b is not None:
            leaves.append(b)
        out = fn(leaves[0], leaves[1], leaves[2], k_ctx, v_ctx, layout, b)
        if not grad:
            return {"out": out.detach()}
        upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(3))
        (out * upstream).sum().backward()
        grads = {f"grad{i}": t.grad for i, t in enumerate(leaves)}
        return {"out": out.detach(), **grads}

    grad = mode == "flash"
    with torch.set_grad_enabled(grad):
        expected = run(lambda *a: reference_attention(*a, scale=scale), grad)
        got = run(lambda *a: triton_attention(*a, scale, mode=mode), grad)
    return {key: float((got[key] - expected[key]).abs().max()) for key in expected}


def child_main() -> None:
    assert os.environ.get("TRITON_INTERPRET") == "1", "run with TRITON_INTERPRET=1"
    import torch

    from nuwa_inf.kernels import available_backends, patch_attention, reference_attention, resolve_backend

    results = {"_backends": available_backends("cpu"), "_auto": resolve_backend("auto", "cpu")}
    for case in _child_cases():
        results[case[0]] = _child_case_errors(*case)
    # the public entry point reaches the kernels too
    with torch.no_grad():
        name, layout, nq, h, lq, ls, d, nc, p, _, _ = _child_cases()[4]
        q, k, v = torch.randn(nq, h, lq, d), torch.randn(nq, h, ls, d), torch.randn(nq, h, ls, d)
        pk, pv = torch.randn(nc, h, p, d), torch.randn(nc, h, p, d)
        out = patch_attention(q, k, v, pk, pv, layout, backend="triton")
        results["dispatch"] = {"out": float((out - reference_attention(q, k, v, pk, pv, layout)).abs().max())}
    print(json.dumps(results))


@pytest.fixture(scope="module")
def interpreter_results():
    if find_spec("triton") is None:
        pytest.skip("triton is not installed")
    env = dict(os.environ, TRITON_INTERPRET="1")
    env.pop("NUWA_ATTN_BACKEND", None)
    proc = subprocess.run([sys.executable, __file__], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


CASE_NAMES = ["train_crop", "train_ragged", "train_ragged_nobias", "train_d24", "decode_lq1",
              "decode_lq1_long", "decode_lq3", "decode_lq3_nobias", "flash_lq1", "dispatch"]


@pytest.mark.parametrize("case", CASE_NAMES)
def test_triton_kernels_match_reference_under_interpreter(interpreter_results, case):
    errors = interpreter_results[case]
    assert "out" in errors
    if case.startswith("train") or case.startswith("flash"):
        assert any(key.startswith("grad") for key in errors)  # gradients were compared too
    bad = {key: err for key, err in errors.items() if not err <= TOL}
    assert not bad, f"{case}: {bad}"


def test_interpreter_backend_listed_but_never_picked_automatically(interpreter_results):
    assert "triton" in interpreter_results["_backends"]
    assert interpreter_results["_auto"] == "sdpa"


if __name__ == "__main__":
    child_main()
