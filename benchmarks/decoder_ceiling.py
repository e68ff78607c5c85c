"""The ceiling a tokenizer sets on continuation: the true scroll's round trip, scored as one.

Everything nuwa-inf draws passes through the tokenizer's decoder. A perfect transformer — one
that drew the true continuation's own tokens — would still be scored on their decoded pixels,
so `bench_continuation.py`'s figures (carry and its light / palette / texture parts, layout)
for the truth's round trip are the best any transformer can reach with this tokenizer. This
measures them for a tokenizer alone, without sampling anything: minutes instead of the
continuation benchmark's tens of minutes, so a decoder fine-tune (`nuwa-inf train tokenizer
--init TOK --set freeze=encoder ...`, which keeps the codes and so the transformer) can be
judged by what it does to the figures that matter. Also per case: PSNR, and the mean |∇Y| of
the round trip ÷ the truth's at full resolution (fine) and on 4×4-px cell means (coarse, as in
the carry's texture part):
below 1 the decoder draws less detail than the truth has, above 1 more.

The cases, the piece and the yardstick (scrolls of unrelated style) are the continuation
benchmark's; the generated region is everything outside the centre piece.

    .venv/bin/python benchmarks/decoder_ceiling.py [--model DIR|TOKENIZER_DIR] [--cases 4] [--json OUT]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from bench_continuation import PATCH_PX, Scrolls, case_spec, piece_start, unrelated_specs
from common import machine_info, print_table, write_json  # (adds the repo to sys.path)
from nuwa_inf.api import psnr
from nuwa_inf.eval.continuation import CARRY_PARTS, TEXTURE_CELL, continuation_figures, truth_reference
from nuwa_inf.infer.detail import mean_gradient
from nuwa_inf.tokenizer.cli import find_tokenizer_dir
from nuwa_inf.tokenizer.tiled import decode_tiled, encode_tiled
from nuwa_inf.tokenizer.vqgan import VQGAN


def mean_gradients(image: np.ndarray) -> tuple[float, float]:
    """Mean |∇Y| of `image` (h, w, 3) at full resolution and of its TEXTURE_CELL-px cell means
    (luma is linear, so the cells' luma is the luma of their mean colour)."""
    c = TEXTURE_CELL
    h, w = image.shape[0] // c * c, image.shape[1] // c * c
    cells = image[:h, :w].reshape(h // c, c, w // c, c, 3).mean(axis=(1, 3), dtype=np.float32)  # (h/c, w/c, 3)
    return mean_gradient(image), mean_gradient(cells)


def case_ceiling(tokenizer: VQGAN, scrolls: Scrolls, index: int, piece: int) -> dict:
    """The round-trip figures of case `index` (bench_continuation.case_spec)."""
    case = case_spec(index)
    truth = scrolls.get(case["seed"], case["attrs"])
    x0 = piece_start(truth.shape[1], piece)
    unrelated = [scrolls.get(seed, attrs) for seed, attrs in unrelated_specs(case["attrs"], 3)]
    reference = truth_reference(truth, (x0, x0 + piece), unrelated)
    with torch.no_grad():
        round_trip = np.asarray(decode_tiled(tokenizer, encode_tiled(tokenizer, truth)))
    figures = continuation_figures(round_trip, reference, copy_sample=64, seed=index)
    ours, theirs = (mean_gradients(image) for image in (round_trip, truth))
    return {"name": case["name"], "carry": figures["carry"], "carry_parts": figures["carry_parts"],
            "layout": figures["layout"], "psnr": psnr(truth, round_trip),
            "detail_fine": ours[0] / theirs[0], "detail_coarse": ours[1] / theirs[1]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default", help="a model directory or a tokenizer's (default: bundled)")
    parser.add_argument("--cases", type=int, default=4, help="the continuation benchmark's first N cases")
    parser.add_argument("--width", type=int, default=8192)
    parser.add_argument("--height", type=int, default=2048)
    parser.add_argument("--piece", type=int, default=2048, help="width of the centre piece (not scored)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    if args.cases < 1 or not 0 < args.piece < args.width or args.width % PATCH_PX or args.height % PATCH_PX:
        parser.error(f"need --cases ≥ 1, 0 < --piece < --width, and --width, --height multiples of {PATCH_PX}")
    if args.threads:
        torch.set_num_threads(args.threads)
    directory = find_tokenizer_dir(args.model)
    tokenizer = VQGAN.load(directory, torch.device("cpu")).eval()
    scrolls, started, rows, results = Scrolls(args.width, args.height), time.monotonic(), [], []
    for index in range(args.cases):
        result = case_ceiling(tokenizer, scrolls, index, args.piece)
        results.append(result)
        rows.append([result["name"], f"{result['carry']:.3f}",
                     *(f"{result['carry_parts'][p]:.3f}" for p in CARRY_PARTS), f"{result['layout']:.3f}",
                     f"{result['psnr']:.2f}", f"{result['detail_fine']:.2f}", f"{result['detail_coarse']:.2f}"])
    mean = {key: float(np.mean([r[key] for r in results])) for key in ("carry", "layout", "psnr")}
    mean["texture"] = float(np.mean([r["carry_parts"]["texture"] for r in results]))
    rows.append(["mean", f"{mean['carry']:.3f}", "", "", f"{mean['texture']:.3f}", f"{mean['layout']:.3f}",
                 f"{mean['psnr']:.2f}", "", ""])
    print(f"tokenizer {directory}: the truth's round trip scored as a continuation "
          f"({args.width}x{args.height}, piece {args.piece})")
    print_table(["case", "carry", "(light)", "(palette)", "(texture)", "layout", "PSNR", "fine ÷ truth",
                 "coarse ÷ truth"], rows)
    write_json(args.json, {"tokenizer": str(directory), "settings": vars(args), "machine": machine_info(args.threads),
                           "cases": results, "mean": mean, "wall_s": time.monotonic() - started})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
