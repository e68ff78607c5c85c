"""Inference precision of the tokenizer's decoder: bfloat16 where the CPU multiplies it in
hardware (AMX tiles), float32 elsewhere and whenever a gradient is wanted.

On a CPU with AMX a bfloat16 3×3 convolution runs ≈ 6× faster than a float32 one; the decoder's
elementwise work does not gain, so a whole decode runs ≈ 1.5× faster (benchmarks/bench_decode.py),
and decoding is a third of a canvas job's time. Decoded pixels move by at most one 8-bit level
(PSNR ≈ 56 dB against float32). The encoder stays in float32: in bfloat16 6 % of its tokens
change (FSQ rounds near-ties the other way), and the transformer reads them. `NUWA_INF_BF16=0`
turns it off (=1 forces it on), for A/B timings.
"""
from __future__ import annotations

import contextlib
import os

import torch


def use_bfloat16(device: torch.device) -> bool:
    """Whether the tokenizer's decoder runs in bfloat16 on `device` now."""
    setting = os.environ.get("NUWA_INF_BF16", "auto")
    if setting == "0" or device.type != "cpu" or torch.is_grad_enabled():
        return False
    if setting == "1":
        return True
    supported = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(supported is not None and supported())


def inference_precision(like: torch.Tensor):
    """A context that runs the convolutions inside it in bfloat16 where `use_bfloat16` says so."""
    if not use_bfloat16(like.device):
        return contextlib.nullcontext()
    return torch.autocast("cpu", dtype=torch.bfloat16)
