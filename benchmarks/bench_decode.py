"""Decoding speed: the bundled tokenizer's decoder in float32 and in bfloat16 (tokenizer/precision.py),
and its channel RMS norm against torch's fused `F.rms_norm`, all measured in one run.

    .venv/bin/python benchmarks/bench_decode.py                  # a 2048x2048 scroll, 1 thread
    .venv/bin/python benchmarks/bench_decode.py --size 1024 --threads 2 --json FILE

The decode is the engine's (`decode_tiled` with its tile), of the tokens of a held-out procedural
scroll; the two precisions alternate `--repeats` times and the fastest of each is reported, with
the pixels' difference between them (PSNR, largest step in 8-bit levels). bfloat16 is what
extend uses on CPUs with AMX tiles (`NUWA_INF_BF16=auto`); elsewhere it has no hardware path and
this benchmark says so.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from common import machine_info, print_table, write_json  # (adds the repo to sys.path)
from nuwa_inf.data.procedural import render_scroll
from nuwa_inf.infer.bundle import load_bundle
from nuwa_inf.infer.engine import DECODE_TILE
from nuwa_inf.tokenizer.layers import ChannelRMSNorm
from nuwa_inf.tokenizer.precision import use_bfloat16
from nuwa_inf.tokenizer.tiled import decode_tiled, encode_tiled


def timed_decode(tokenizer, tokens: np.ndarray, bf16: bool) -> tuple[float, np.ndarray]:
    os.environ["NUWA_INF_BF16"] = "1" if bf16 else "0"
    started = time.perf_counter()
    with torch.inference_mode():
        pixels = decode_tiled(tokenizer, tokens, tile=DECODE_TILE)
    return time.perf_counter() - started, pixels


def norm_times(channels: int, side: int, dtype: torch.dtype, repeats: int) -> tuple[float, float]:
    """(seconds of ChannelRMSNorm, of F.rms_norm) on a channels-last (1, C, side, side) tensor."""
    x = torch.randn(1, channels, side, side).to(dtype).contiguous(memory_format=torch.channels_last)
    norm = ChannelRMSNorm(channels).to(dtype)
    gain = norm.gain.view(-1)

    def fused():
        return F.rms_norm(x.permute(0, 2, 3, 1), (channels,), gain, norm.eps).permute(0, 3, 1, 2)

    best = {}
    with torch.inference_mode():
        for name, run in (("ours", lambda: norm(x)), ("fused", fused)):
            run()
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                run()
                times.append(time.perf_counter() - started)
            best[name] = min(times)
    return best["ours"], best["fused"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model directory (default: the bundled one)")
    parser.add_argument("--size", type=int, default=2048, help="side of the decoded square, px")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tokenizer = load_bundle(args.model, "cpu").tokenizer
    os.environ["NUWA_INF_BF16"] = "auto"
    with torch.inference_mode():
        hardware = use_bfloat16(torch.device("cpu"))
    image = render_scroll(args.size, args.size, 95001)
    with torch.inference_mode():
        tokens = encode_tiled(tokenizer, image)
    times = {False: [], True: []}
    pixels = {}
    for _ in range(args.repeats):
        for bf16 in (False, True):
            seconds, pixels[bf16] = timed_decode(tokenizer, tokens, bf16)
            times[bf16].append(seconds)
    os.environ["NUWA_INF_BF16"] = "auto"
    diff = pixels[True].astype(np.float64) - pixels[False]
    psnr = 10 * np.log10(255 ** 2 / max(float(np.mean(diff ** 2)), 1e-12))
    fp32, bf16 = min(times[False]), min(times[True])
    rows = [["float32", f"{fp32:.2f}", "1.00", "", ""],
            ["bfloat16", f"{bf16:.2f}", f"{fp32 / bf16:.2f}", f"{psnr:.1f}", f"{int(np.abs(diff).max())}"]]
    print(f"decode {args.size}x{args.size} ({tokens.shape[1]}x{tokens.shape[0]} tokens), tile {DECODE_TILE}, "
          f"{args.threads} thread(s); AMX bfloat16 here: {'yes' if hardware else 'no (bfloat16 is emulated)'}")
    print_table(["decoder", "s", "speed-up", "PSNR vs float32", "max step"], rows)
    norms = []
    for dtype in (torch.float32, torch.bfloat16):
        ours, fused = norm_times(128, 512, dtype, args.repeats + 2)
        norms.append({"dtype": str(dtype).removeprefix("torch."), "ours_s": ours, "fused_s": fused})
    print("\nchannel RMS norm, (1, 128, 512, 512) channels-last")
    print_table(["dtype", "ours ms", "F.rms_norm ms", "speed-up"],
                [[n["dtype"], f"{1e3 * n['ours_s']:.1f}", f"{1e3 * n['fused_s']:.1f}",
                  f"{n['fused_s'] / n['ours_s']:.2f}"] for n in norms])
    write_json(args.json, {"settings": vars(args), "machine": machine_info(args.threads), "amx": hardware,
                           "decode_s": {"float32": times[False], "bfloat16": times[True]},
                           "speedup": fp32 / bf16, "psnr": psnr, "max_step": int(np.abs(diff).max()), "norm": norms})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
