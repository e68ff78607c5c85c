"""Tokenizer quality on held-out images: round-trip PSNR, code usage, and whether colour survives.

PSNR is the tiled round trip decode(encode(image)) of each image's centre crop (the mean over
images is the figure the SPEC's ≥ 28 dB target reads); usage is the share of the codebook
that occurs in those crops, with the codes' perplexity (the SPEC asks ≥ 80 %).

A code stands for a 16×16-pixel block. If the same code is used for a blue sky in one image
and an orange one in another, the transformer cannot carry a palette across the canvas
however well it is trained. For every image block this measures luma Y and chroma (Cb, Cr)
(BT.601, 0–255), then:

* round trip: mean |ΔY|, |ΔCb|, |ΔCr| of decode(encode(image)) per pixel;
* explained by the code: 1 − (variance of a block's mean value among blocks with the same
  code) / (variance among all blocks), for Y and for chroma. 1: the code fixes it; 0: the
  code says nothing about it.

Fine texture: the mean log power of each 256-px block's luma in the six radial bands of
`nuwa-inf eval`'s power spectrum (coarse → fine), for the originals and the round trips. A
tokenizer that blurs edges and paper grain away leaves the finest bands several units (e-fold)
below the originals', and the block-statistics distance of everything it decodes follows.

    .venv/bin/python benchmarks/tokenizer_quality.py --data VAL_IMAGES [--model DIR] [--json OUT]
"""
from __future__ import annotations

import argparse

import numpy as np  # noqa: E402
import torch  # noqa: E402

from common import write_json  # noqa: E402  (adds the repo to sys.path)
from nuwa_inf.api import psnr  # noqa: E402
from nuwa_inf.colour import ycbcr  # noqa: E402
from nuwa_inf.data.datasets import list_images  # noqa: E402
from nuwa_inf.eval.block_stats import FEATURE_GROUPS, block_features  # noqa: E402
from nuwa_inf.images import load_rgb  # noqa: E402
from nuwa_inf.tokenizer.cli import find_tokenizer_dir  # noqa: E402
from nuwa_inf.tokenizer.quantizer import code_usage  # noqa: E402
from nuwa_inf.tokenizer.tiled import decode_tiled, encode_tiled  # noqa: E402
from nuwa_inf.tokenizer.vqgan import VQGAN  # noqa: E402

SPECTRUM_PATCH = 256  # px, the block size of `nuwa-inf eval`

def explained(values: np.ndarray, codes: np.ndarray) -> float:
    """Share of the variance of `values` (N, C) that the code identity (N,) accounts for."""
    total = ((values - values.mean(0)) ** 2).sum()
    within = 0.0
    for code in np.unique(codes):
        group = values[codes == code]
        within += ((group - group.mean(0)) ** 2).sum()
    return float(1 - within / total) if total > 0 else 1.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="images (a folder or one image)")
    parser.add_argument("--model", default="default",
                        help="model, tokenizer or tokenizer-run directory (default: bundled)")
    parser.add_argument("--max-side", type=int, default=2048, help="centre crop of each image, at most this size")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)

    tokenizer = VQGAN.load(find_tokenizer_dir(args.model))
    f = tokenizer.downsample
    errors, blocks, codes, psnrs, spectra = [], [], [], [], []
    for path in list_images(args.data):
        image = load_rgb(path)
        h = min(image.shape[0], args.max_side) // f * f
        w = min(image.shape[1], args.max_side) // f * f
        y0, x0 = (image.shape[0] - h) // 2, (image.shape[1] - w) // 2
        image = image[y0:y0 + h, x0:x0 + w]
        grid = encode_tiled(tokenizer, image)                                  # (h/f, w/f)
        recon = decode_tiled(tokenizer, grid)
        psnrs.append(psnr(recon, image))
        errors.append(np.abs(ycbcr(recon) - ycbcr(image)).reshape(-1, 3).mean(0))
        block_means = image.reshape(h // f, f, w // f, f, 3).mean((1, 3))     # (h/f, w/f, 3)
        blocks.append(ycbcr(block_means).reshape(-1, 3))
        codes.append(grid.reshape(-1))
        if h >= SPECTRUM_PATCH and w >= SPECTRUM_PATCH:
            bands = FEATURE_GROUPS["power_spectrum"]
            spectra.append([block_features(x, SPECTRUM_PATCH).features[:, bands].mean(0) for x in (image, recon)])
    blocks_all, codes_all = np.concatenate(blocks), np.concatenate(codes)
    error = np.mean(errors, axis=0)
    usage, perplexity = code_usage(torch.from_numpy(codes_all.astype(np.int64)), tokenizer.codebook_size)
    result = {
        "images": len(errors),
        "psnr_db": float(np.mean(psnrs)),
        "psnr_db_per_image": psnrs,
        "usage": usage,
        "perplexity": perplexity,
        "round_trip_abs_error": {"Y": float(error[0]), "Cb": float(error[1]), "Cr": float(error[2])},
        "explained_by_code": {"luma": explained(blocks_all[:, :1], codes_all),
                              "chroma": explained(blocks_all[:, 1:], codes_all)},
        "codes_used": int(np.unique(codes_all).size),
    }
    if spectra:
        original, round_trip = np.mean(spectra, axis=0)  # (6,) each: log power per band, coarse → fine
        result["log_power_bands"] = {"original": original.tolist(), "round_trip": round_trip.tolist()}
    print(f"{result['images']} images, {blocks_all.shape[0]} blocks, {result['codes_used']} distinct codes")
    print(f"round trip PSNR {result['psnr_db']:.2f} dB (per image: {', '.join(f'{p:.1f}' for p in psnrs)})")
    print(f"code usage {100 * result['usage']:.1f} % of {tokenizer.codebook_size}, "
          f"perplexity {result['perplexity']:.0f}")
    print(f"round trip mean |error| per pixel (0-255): Y {error[0]:.2f}  Cb {error[1]:.2f}  Cr {error[2]:.2f}")
    print(f"share of block variance the code explains: luma {result['explained_by_code']['luma']:.3f}  "
          f"chroma {result['explained_by_code']['chroma']:.3f}")
    if spectra:
        print("log power per band, coarse → fine: original " + " ".join(f"{v:6.2f}" for v in original)
              + "\n                                round trip " + " ".join(f"{v:6.2f}" for v in round_trip))
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
