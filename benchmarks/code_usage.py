"""Codebook usage against sample size: how many of the codes held-out images use, as the sample grows.

Usage is the share of the codebook that occurs at least once, so it depends on how many
tokens are counted: a skewed code distribution needs many tokens before its rare codes show
up. This encodes whole held-out images (no decoding: fast) and prints usage and perplexity
after each image, so the figure can be read at a stated sample size and compared with the
training set's.

    .venv/bin/python benchmarks/code_usage.py --data HELD_OUT_IMAGES [--model DIR] [--json OUT]
"""
from __future__ import annotations

import argparse

import numpy as np  # noqa: E402
import torch  # noqa: E402

from common import write_json  # noqa: E402  (adds the repo to sys.path)
from nuwa_inf.data.datasets import list_images  # noqa: E402
from nuwa_inf.images import load_rgb  # noqa: E402
from nuwa_inf.tokenizer.cli import find_tokenizer_dir  # noqa: E402
from nuwa_inf.tokenizer.quantizer import code_usage  # noqa: E402
from nuwa_inf.tokenizer.tiled import encode_tiled  # noqa: E402
from nuwa_inf.tokenizer.vqgan import VQGAN  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="held-out images (a folder or one image)")
    parser.add_argument("--model", default="default",
                        help="model, tokenizer or tokenizer-run directory (default: bundled)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    tokenizer = VQGAN.load(find_tokenizer_dir(args.model))
    codes, rows = [], []
    print(f"{'images':>6} {'tokens':>9} {'usage %':>8} {'perplexity':>10}")
    for count, path in enumerate(list_images(args.data), 1):
        codes.append(torch.from_numpy(encode_tiled(tokenizer, load_rgb(path)).astype(np.int64).reshape(-1)))
        sample = torch.cat(codes)
        usage, perplexity = code_usage(sample, tokenizer.codebook_size)
        rows.append({"images": count, "tokens": int(sample.numel()), "usage": usage, "perplexity": perplexity})
        print(f"{count:6d} {sample.numel():9d} {100 * usage:8.1f} {perplexity:10.0f}", flush=True)
    write_json(args.json, {"codebook_size": tokenizer.codebook_size, "by_sample_size": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
