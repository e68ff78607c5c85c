"""`nuwa-inf bench kernels [--device cpu|cuda] [--quick] [--json FILE]`: time patch attention.

Every backend that can run on the device, plus a dense-masked SDPA baseline, on the presets'
real shapes (see `bench.py`); prints a table and the gathered-vs-dense ratio, and writes
JSON records {op, backend, shape, ms, tflops, max_abs_err} with --json.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ..atomic import write_json
from ..errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("kernels", help="time the patch-attention backends",
                              description="Time every available patch-attention backend and a "
                                          "dense-masked SDPA baseline on the presets' shapes.")
    p.add_argument("--device", choices=["cpu", "cuda"], default=None,
                   help="where to run (default: cuda if available, else cpu)")
    p.add_argument("--quick", action="store_true", help="fewer repeats and a smaller batch (< 1 min on CPU)")
    p.add_argument("--presets", default=None,
                   help="comma-separated presets to time: small, base (default: small on CPU, both on GPU)")
    p.add_argument("--backends", default=None, help="comma-separated subset of backends (default: all available)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--json", metavar="FILE", help="also write the records to this JSON file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .bench import PRESETS, ratio_summary, run_benchmark

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available here")
    if args.presets:
        presets = [name.strip() for name in args.presets.split(",") if name.strip()]
        unknown = [name for name in presets if name not in PRESETS]
        if unknown or not presets:
            raise UserError(f"--presets: unknown preset(s) {', '.join(unknown) or '(none)'}; "
                            f"choose from {', '.join(PRESETS)}")
    else:
        presets = ["small"] if device.type == "cpu" or args.quick else list(PRESETS)
    backends = None
    if args.backends:
        backends = [name.strip() for name in args.backends.split(",") if name.strip()]
        known = {"triton", "xformers", "sdpa"}
        if not backends or any(name not in known for name in backends):
            raise UserError(f"--backends: choose from {', '.join(sorted(known))}")
    if args.threads is not None:
        if args.threads < 1:
            raise UserError("--threads must be >= 1")
        torch.set_num_threads(args.threads)
    if args.json:
        parent = Path(args.json).expanduser().resolve().parent
        if not parent.is_dir():
            raise UserError(f"--json: directory {parent} does not exist")

    records = run_benchmark(device, presets, args.quick, backends)
    for line in ratio_summary(records):
        print(line)
    if args.json:
        write_json(args.json, records)
        print(f"wrote {args.json}")
    return 0
