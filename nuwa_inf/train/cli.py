"""`nuwa-inf train tokenizer|model|...`: one command per training stage.

Under `torchrun --nproc_per_node=N -m nuwa_inf train ...` the same commands train with
DistributedDataParallel (see distributed.py); `--batch-size` is then per process.
"""
from __future__ import annotations

import argparse
import os


def _common(parser: argparse.ArgumentParser, default_config: str) -> None:
    parser.add_argument("--data", required=True, help="folder of images (nested ok) or one huge image")
    parser.add_argument("--out", required=True, help="output model directory (checkpoints inside)")
    parser.add_argument("--config", default=None,
                        help=f"preset: tiny | small | base (default {default_config}, or the --init model's own)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field (repeatable), e.g. --set lr=1e-4")
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--save-every", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="continue from OUT's last checkpoint")
    parser.add_argument("--init", default=None, help="start from weights: 'default' or a model directory")
    parser.add_argument("--time-budget", type=str, default=None, help="stop after this long, e.g. 20m, 1h, 90s")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--grad-accum", type=int, default=1, metavar="K",
                        help="accumulate K micro-batches per optimizer step")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda (torchrun: one GPU per process)")


def parse_duration(text: str | None) -> float | None:
    from ..errors import UserError

    if text is None:
        return None
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        value = float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)
    except (ValueError, IndexError):
        raise UserError(f"--time-budget {text!r} is not a duration like 90s, 20m or 1h") from None
    if value <= 0:
        raise UserError(f"--time-budget must be positive, got {text!r}")
    return value


def _check_positive(args: argparse.Namespace) -> None:
    from ..errors import UserError

    if args.steps <= 0:
        raise UserError(f"--steps must be positive, got {args.steps}")
    if args.batch_size is not None and args.batch_size <= 0:
        raise UserError(f"--batch-size must be positive, got {args.batch_size}")
    if args.save_every <= 0:
        raise UserError(f"--save-every must be positive, got {args.save_every}")
    if args.grad_accum <= 0:
        raise UserError(f"--grad-accum must be positive, got {args.grad_accum}")
    if args.threads is not None and args.threads <= 0:
        raise UserError(f"--threads must be positive, got {args.threads}")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UserError(f"--out {args.out}: is a file, expected a folder")


def run_tokenizer(args: argparse.Namespace) -> int:
    from .distributed import is_main
    from .tokenizer_trainer import TokenizerRun, train_tokenizer

    _check_positive(args)
    out = train_tokenizer(TokenizerRun(
        data=args.data, out=args.out, config=args.config, overrides=args.overrides, steps=args.steps,
        batch_size=args.batch_size, save_every=args.save_every, seed=args.seed, resume=args.resume,
        init=args.init, time_budget=parse_duration(args.time_budget), threads=args.threads,
        grad_accum=args.grad_accum, device=args.device))
    if is_main():
        print(f"tokenizer written to {out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    tokenizer = subparsers.add_parser("tokenizer", help="train the VQGAN tokenizer")
    _common(tokenizer, "small")
    tokenizer.set_defaults(func=run_tokenizer)
    try:
        from .model_cli import register_model
    except ModuleNotFoundError:
        return
    register_model(subparsers, _common, _check_positive, parse_duration)
