"""`nuwa-inf train model`: the transformer stage's flags."""
from __future__ import annotations

import argparse


def register_model(subparsers, add_common, check_positive, parse_duration) -> None:
    parser = subparsers.add_parser("model", help="train the local AR transformer on pre-tokenised data")
    add_common(parser, "small")
    parser.add_argument("--tokenizer", default=None, help="tokenizer (or model) directory; default: bundled")
    parser.add_argument("--val-data", default=None, help="held-out images for validation bits/token")
    parser.add_argument("--val-every", type=int, default=250)
    parser.add_argument("--keep-best", action="store_true",
                        help="end with the weights that scored best on validation (also before step 1)")
    parser.add_argument("--patience", type=int, default=None, metavar="N",
                        help="with --keep-best: stop after N validations in a row without a new best")
    parser.add_argument("--no-flips", action="store_true", help="do not add mirrored images to the token cache")
    parser.add_argument("--recompute", action="store_true",
                        help="hold less in memory: each block's insides and the loss's logits are computed again "
                             "in backward (same gradients; about a third less memory for about an eighth more time)")
    parser.add_argument("--attn-backend", default="auto", help="auto | sdpa | triton | xformers | reference")
    parser.add_argument("--video", action="store_true",
                        help="train on clips (frame folders or MP4/WebM/GIF files) for animate / generate --frames")
    parser.add_argument("--frames", type=int, default=None, metavar="T",
                        help="with --video: frames per training crop (default 3; sets crop_frames), and the "
                             "model reads 1 frame back unless --set extent_t=... says otherwise")

    def run(args: argparse.Namespace) -> int:
        from ..errors import UserError
        from .distributed import is_main
        from .model_trainer import ModelRun, train_model

        check_positive(args)
        overrides = list(args.overrides or [])
        if args.frames is not None and not args.video:
            raise UserError("--frames needs --video")
        if args.video:
            frames = 3 if args.frames is None else args.frames
            if not 2 <= frames <= 64:
                raise UserError(f"--frames must be in 2..64 for training crops, got {frames}")
            overrides.append(f"crop_frames={frames}")
            if not any(str(o).startswith("extent_t=") for o in overrides) and not args.resume:
                overrides.append("extent_t=1")
        if args.val_every <= 0:
            raise UserError(f"--val-every must be positive, got {args.val_every}")
        if args.patience is not None and (args.patience <= 0 or not args.keep_best):
            raise UserError(f"--patience needs --keep-best and a positive count, got {args.patience}")
        out = train_model(ModelRun(
            data=args.data, out=args.out, tokenizer=args.tokenizer, val_data=args.val_data, config=args.config,
            overrides=overrides or None, steps=args.steps, batch_size=args.batch_size, save_every=args.save_every,
            val_every=args.val_every, seed=args.seed, resume=args.resume, init=args.init,
            time_budget=parse_duration(args.time_budget), threads=args.threads, backend=args.attn_backend,
            flips=not args.no_flips, grad_accum=args.grad_accum, device=args.device,
            keep_best=args.keep_best, patience=args.patience, video=args.video, recompute=args.recompute))
        if is_main():
            print(f"model written to {out}")
        return 0

    parser.set_defaults(func=run)
