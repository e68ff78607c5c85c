"""`nuwa-inf reconstruct IMAGE -o OUT [--model DIR]`: tiled encode + decode of any image, prints PSNR."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def find_tokenizer_dir(model: str | None) -> Path:
    """A tokenizer checkpoint: `DIR/tokenizer` of a model directory, or DIR itself; default: bundled."""
    from ..assets import default_model_dir
    from ..errors import UserError

    base = default_model_dir() if model in (None, "default") else Path(model)
    for candidate in (base / "tokenizer", base):
        if (candidate / "config.json").is_file():
            return candidate
    raise UserError(f"no tokenizer checkpoint in {base} (expected config.json there or in {base}/tokenizer)")


def pad_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
    """Edge-replicate (H, W, 3) up to multiples of `multiple` on the bottom/right."""
    pad_h = -image.shape[0] % multiple
    pad_w = -image.shape[1] % multiple
    if pad_h or pad_w:
        image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return image


def run_reconstruct(args: argparse.Namespace) -> int:
    import torch

    from ..errors import UserError
    from ..images import check_output_path, load_rgb, refuse_overwrite
    from ..infer.writers import export
    from .tiled import decode_tiled, encode_tiled
    from .vqgan import VQGAN

    if args.tile <= 0:
        raise UserError(f"--tile must be positive, got {args.tile}")
    if args.threads is not None and args.threads <= 0:
        raise UserError(f"--threads must be positive, got {args.threads}")
    out = check_output_path(args.output)
    refuse_overwrite(out, args.overwrite)
    image = load_rgb(args.image)
    model = VQGAN.load(find_tokenizer_dir(args.model))
    if args.threads:
        torch.set_num_threads(args.threads)
    height, width = image.shape[:2]
    tokens = encode_tiled(model, pad_to_multiple(image, model.downsample), tile=args.tile)
    recon = decode_tiled(model, tokens, tile=args.tile)[:height, :width]
    export(recon, out)
    mse = np.mean((recon.astype(np.float32) - image.astype(np.float32)) ** 2)
    psnr = 10 * np.log10(255.0 ** 2 / max(mse, 1e-10))
    print(f"{out}: {width}x{height}, {tokens.size} tokens, PSNR {psnr:.2f} dB")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("reconstruct", help="encode + decode an image through the tokenizer")
    parser.add_argument("image")
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--model", default=None, help="model or tokenizer directory (default: bundled)")
    parser.add_argument("--tile", type=int, default=64, help="tile size in tokens")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.set_defaults(func=run_reconstruct)
