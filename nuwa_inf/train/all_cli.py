"""`nuwa-inf train all`: the whole training path (data → tokenizer → transformer) in one command."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "all", help="fine-tune (or train) tokenizer and transformer on a folder of images, in one go",
        description="Set aside validation images, measure the starting model, fine-tune the tokenizer "
                    "(or keep it when its PSNR is already good), pre-tokenise, fine-tune the transformer, "
                    "write a model directory for --model, and print before/after figures.")
    parser.add_argument("--data", required=True, help="folder of images (nested, any formats/sizes) or one image")
    parser.add_argument("--out", required=True, help="output model directory (use it as --model OUT)")
    parser.add_argument("--init", default=None, help="start from 'default' (the bundled model) or a model directory")
    parser.add_argument("--config", default="small", help="preset when training from scratch: tiny | small | base")
    parser.add_argument("--steps", type=int, default=None, help="training steps per stage")
    parser.add_argument("--time-budget", default=None,
                        help="for the whole pipeline, e.g. 20m (default 20m when --steps is not given)")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="share of images held out (at least 1)")
    parser.add_argument("--tokenizer", default="auto", choices=["auto", "keep", "train"],
                        help="auto: keep the starting tokenizer when its held-out PSNR >= --keep-psnr")
    parser.add_argument("--keep-psnr", type=float, default=28.0, help="dB; see --tokenizer")
    parser.add_argument("--tokenizer-set", dest="tokenizer_overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="tokenizer config override, e.g. freeze=none")
    parser.add_argument("--model-set", dest="model_overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="transformer config override, e.g. lr=1e-4")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="continue the run in OUT where it stopped")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--attn-backend", default="auto")
    parser.set_defaults(func=run_all)


def run_all(args: argparse.Namespace) -> int:
    from .cli import parse_duration
    from .pipeline import PipelineRun, train_all

    train_all(PipelineRun(
        data=args.data, out=args.out, init=args.init, config=args.config, steps=args.steps,
        time_budget=parse_duration(args.time_budget), val_fraction=args.val_fraction, keep_psnr=args.keep_psnr,
        tokenizer=args.tokenizer, tokenizer_overrides=args.tokenizer_overrides,
        model_overrides=args.model_overrides, seed=args.seed, resume=args.resume, threads=args.threads,
        backend=args.attn_backend))
    return 0
