"""Does the transformer use its Nearby Context Pool? Held-out bits/token with the context
patches it was trained with vs the same crops with every context slot emptied.

A model that ignores its context scores the same both ways; the gap is what the neighbours
are worth. The gap is largest on a patch's edge tokens (its outer ring), which touch the
neighbours, so they are reported apart.

    .venv/bin/python benchmarks/context_use.py --data VAL_IMAGES                 # the bundled model
    .venv/bin/python benchmarks/context_use.py --data VAL_IMAGES --model RUN_DIR   # a `train model` run

Crops and orders are the trainer's fixed validation set (same seed), `--crops` of them.
"""
from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from common import write_json  # noqa: E402  (adds the repo to sys.path)
from nuwa_inf.infer.bundle import load_bundle  # noqa: E402
from nuwa_inf.kernels import PatchLayout  # noqa: E402
from nuwa_inf.model.transformer import LocalTransformer  # noqa: E402
from nuwa_inf.train.model_trainer import fixed_validation  # noqa: E402
from nuwa_inf.train.token_cache import TokenCropSampler, pretokenize  # noqa: E402


def token_bits(model: LocalTransformer, tokens: torch.Tensor, layout: PatchLayout,
               canvas_rows: torch.Tensor) -> torch.Tensor:
    """Bits of every token: (N, P)."""
    with torch.inference_mode():
        logits = model.forward_train(tokens, layout, canvas_rows=canvas_rows)  # (N, P, V)
        nats = F.cross_entropy(logits.transpose(1, 2), tokens, reduction="none")
    return nats / math.log(2)


def edge_ring(ph: int, pw: int) -> torch.Tensor:
    """(P,) bool: tokens on a patch's outer ring."""
    ring = torch.zeros(ph, pw, dtype=torch.bool)
    ring[0], ring[-1], ring[:, 0], ring[:, -1] = True, True, True, True
    return ring.flatten()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="held-out images (a folder)")
    parser.add_argument("--model", default="default", help="model directory (default: the bundled model)")
    parser.add_argument("--cache", default=None, help="token cache folder (default: a temp folder)")
    parser.add_argument("--crops", type=int, default=16)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    bundle = load_bundle(args.model, "cpu")
    model, tokenizer, cfg = bundle.transformer, bundle.tokenizer, bundle.transformer.cfg
    cache = Path(args.cache or tempfile.mkdtemp(prefix="context_use_"))
    grids = pretokenize(args.data, tokenizer, cache, (cfg.crop_rows * cfg.patch_h, cfg.crop_cols * cfg.patch_w),
                        flips=False)
    sampler = TokenCropSampler(grids, cfg.crop_rows, cfg.crop_cols, cfg.patch_h, cfg.patch_w)
    tokens, layout, canvas_rows, _ = fixed_validation(sampler, cfg, count=args.crops)  # no style memory
    empty = PatchLayout(torch.full_like(layout.ctx_index, -1), layout.ctx_offset, cfg.n_offsets)

    with_ctx, without = token_bits(model, tokens, layout, canvas_rows), token_bits(model, tokens, empty, canvas_rows)
    has_ctx = (layout.ctx_index >= 0).any(1)                                   # (N,)
    ring = edge_ring(cfg.patch_h, cfg.patch_w)
    rows = {
        "all patches": (with_ctx.mean(), without.mean()),
        "patches with context": (with_ctx[has_ctx].mean(), without[has_ctx].mean()),
        "  their edge tokens": (with_ctx[has_ctx][:, ring].mean(), without[has_ctx][:, ring].mean()),
        "  their inner tokens": (with_ctx[has_ctx][:, ~ring].mean(), without[has_ctx][:, ~ring].mean()),
    }
    print(f"{args.crops} held-out crops of {cfg.crop_rows}x{cfg.crop_cols} patches; bits/token")
    print(f"{'':24s} {'with ctx':>9s} {'no ctx':>9s} {'gain':>7s}")
    result = {}
    for name, (a, b) in rows.items():
        a, b = float(a), float(b)
        print(f"{name:24s} {a:9.3f} {b:9.3f} {100 * (b - a) / b:6.1f}%")
        result[name.strip()] = {"with_context": a, "without_context": b}
    if args.json:
        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
