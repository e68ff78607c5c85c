"""Patch-structured attention: one op, several backends, picked automatically.

    out = patch_attention(q, k_self, v_self, k_ctx, v_ctx, layout, ctx_bias=None, scale=None,
                          backend="auto")

Tensors are patch-major with the batch folded into the patch dimension:
    q (Nq, H, Lq, D), k_self/v_self (Nq, H, Ls, D), k_ctx/v_ctx (Nc, H, P, D),
    layout = PatchLayout(ctx_index (Nq, M), ctx_offset (Nq, M), n_offsets),
    ctx_bias (Nq, H, Lq, n_offsets) or None  ->  out (Nq, H, Lq, D).
Each query attends, in one softmax, to the P keys of every non-empty context slot (plus the
slot's bias column) and causally to its own keys (j <= i + Ls - Lq). See `reference.py`.

Backends: "triton" (GPU kernels; on CPU only under TRITON_INTERPRET=1, for tests),
"xformers" (GPU), "sdpa" (PyTorch SDPA on gathered blocks: the CPU path), "reference".
"auto" picks triton on CUDA, else xformers on CUDA, else sdpa; the environment variable
NUWA_ATTN_BACKEND, when set, replaces what "auto" picks (an explicit backend= wins).

Build one `PatchLayout` per training step or sampling wave and pass it to every layer and
every decode step: derived index structures are cached on it, and in decode (no grad,
Lq <= 16) the sdpa backend also keeps each layer's gathered context blocks there, valid as
long as k_ctx/v_ctx are the same unmodified tensors (checked through their version
counters; inference-mode tensors have none and are gathered afresh every call).
"""
from __future__ import annotations

import functools
import importlib.util
import math
import os

import torch
from torch import Tensor

from .layout import PatchLayout
from .reference import dense_masked_reference, reference_attention
from .sdpa import sdpa_attention

__all__ = ["PatchLayout", "patch_attention", "available_backends", "resolve_backend",
           "reference_attention", "dense_masked_reference", "BACKENDS"]

BACKENDS = ("triton", "xformers", "sdpa", "reference")
ENV_VAR = "NUWA_ATTN_BACKEND"


def _triton_interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


@functools.lru_cache(maxsize=None)
def _has_module(name: str) -> bool:  # cached: patch_attention runs per layer and decode step
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def available_backends(device: torch.device | str | None = None) -> list[str]:
    """Backends that can run on `device` (default: CUDA if available, else CPU), best first."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    names = []
    if _has_module("triton"):
        if device.type == "cuda" and torch.cuda.is_available() and not _triton_interpreting():
            names.append("triton")
        elif device.type == "cpu" and _triton_interpreting():
            names.append("triton")  # interpreter: correct but slow, tests only
    if device.type == "cuda" and torch.cuda.is_available() and _has_module("xformers"):
        names.append("xformers")
    names += ["sdpa", "reference"]
    return names


def resolve_backend(backend: str, device: torch.device | str) -> str:
    """The backend name that `patch_attention(..., backend=backend)` would run on `device`."""
    device = torch.device(device)
    if backend == "auto":
        override = os.environ.get(ENV_VAR, "").strip()
        if override and override != "auto":
            backend = override
        else:
            for name in available_backends(device):
                if name == "triton" and _triton_interpreting():
                    continue  # never pick the interpreter by default
                return name
    if backend not in BACKENDS:
        raise ValueError(f"unknown attention backend {backend!r}; choose from auto, {', '.join(BACKENDS)}")
    if backend not in available_backends(device):
        raise ValueError(f"attention backend {backend!r} cannot run on {device.type} here "
                         f"(available: {', '.join(available_backends(device))})")
    return backend


def _check_inputs(q: Tensor, k_self: Tensor, v_self: Tensor, k_ctx: Tensor, v_ctx: Tensor,
                  layout: PatchLayout, ctx_bias: Tensor | None) -> None:
    if q.dim() != 4:
        raise ValueError(f"q must be (Nq, H, Lq, D), got shape {tuple(q.shape)}")
    nq, h, lq, d = q.shape
    if k_self.shape != v_self.shape or k_self.dim() != 4 or k_self.shape[:2] != (nq, h) \
            or k_self.shape[3] != d:
        raise ValueError(f"k_self/v_self must be (Nq={nq}, H={h}, Ls, D={d}), got "
                         f"{tuple(k_self.shape)} / {tuple(v_self.shape)}")
    ls = k_self.shape[2]
    if not 1 <= lq <= ls:
        raise ValueError(f"need 1 <= Lq <= Ls (every query sees at least its own first key), "
                         f"got Lq={lq}, Ls={ls}")
    if k_ctx.shape != v_ctx.shape or k_ctx.dim() != 4 or k_ctx.shape[1] != h or k_ctx.shape[3] != d:
        raise ValueError(f"k_ctx/v_ctx must be (Nc, H={h}, P, D={d}), got "
                         f"{tuple(k_ctx.shape)} / {tuple(v_ctx.shape)}")
    if layout.n_query != nq:
        raise ValueError(f"layout has {layout.n_query} query patches, q has {nq}")
    for name, t in (("k_self", k_self), ("v_self", v_self), ("k_ctx", k_ctx), ("v_ctx", v_ctx)):
        if t.dtype != q.dtype or t.device != q.device:
            raise ValueError(f"{name} is {t.dtype} on {t.device}, q is {q.dtype} on {q.device}")
    if ctx_bias is not None:
        want = (nq, h, lq, layout.n_offsets)
        if tuple(ctx_bias.shape) != want:
            raise ValueError(f"ctx_bias must be {want} (Nq, H, Lq, n_offsets), got {tuple(ctx_bias.shape)}")
        if ctx_bias.device != q.device:
            raise ValueError(f"ctx_bias is on {ctx_bias.device}, q on {q.device}")
    layout.check_n_ctx(k_ctx.shape[0])


def patch_attention(q: Tensor, k_self: Tensor, v_self: Tensor, k_ctx: Tensor, v_ctx: Tensor,
                    layout: PatchLayout, ctx_bias: Tensor | None = None, scale: float | None = None,
                    backend: str = "auto") -> Tensor:
    """Patch attention (see module doc); returns (Nq, H, Lq, D) in q's dtype."""
    _check_inputs(q, k_self, v_self, k_ctx, v_ctx, layout, ctx_bias)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    name = resolve_backend(backend, q.device)
    if name == "sdpa":
        return sdpa_attention(q, k_self, v_self, k_ctx, v_ctx, layout, ctx_bias, scale)
    if name == "reference":
        return reference_attention(q, k_self, v_self, k_ctx, v_ctx, layout, ctx_bias, scale)
    if name == "triton":
        from .triton_attention import triton_attention  # imports triton only when used

        return triton_attention(q, k_self, v_self, k_ctx, v_ctx, layout, ctx_bias, scale)
    from .xformers_attention import xformers_attention

    return xformers_attention(q, k_self, v_self, k_ctx, v_ctx, layout, ctx_bias, scale)
