"""Shared helpers of the benchmarks: random-weight models, machine facts, JSON output.

Speed does not depend on the weights' values, so the benchmarks use random-weight models
of the real presets (`small` tokenizer + `small` transformer, the bundled model's shapes)
and need neither the bundled checkpoint nor any training.

    python benchmarks/common.py make-model DIR [--tokenizer small] [--model small] [--seed 0]
    python benchmarks/common.py crop IMAGE OUT.png --size S

writes such a model directory (`DIR/tokenizer`, `DIR/transformer`), the layout `nuwa-inf
extend --model DIR` reads; the memory benchmark calls it in a subprocess so that its own
process never imports torch (and so adds nothing to the RSS it measures).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def build_transformer(preset: str = "small", vocab_size: int | None = None, seed: int = 0):
    """A random-weight LocalTransformer of `preset` (eval mode, CPU)."""
    import torch

    from nuwa_inf.config import from_preset
    from nuwa_inf.model.config import MODEL_PRESETS, ModelConfig
    from nuwa_inf.model.transformer import LocalTransformer

    torch.manual_seed(seed)
    overrides = {} if vocab_size is None else {"vocab_size": vocab_size}
    return LocalTransformer(from_preset(ModelConfig, MODEL_PRESETS, preset, overrides)).eval()


def build_tokenizer(preset: str = "small", seed: int = 0):
    """A random-weight VQGAN of `preset` (eval mode, CPU)."""
    import torch

    from nuwa_inf.config import from_preset
    from nuwa_inf.tokenizer.config import TOKENIZER_PRESETS, TokenizerConfig
    from nuwa_inf.tokenizer.vqgan import VQGAN

    torch.manual_seed(seed)
    return VQGAN(from_preset(TokenizerConfig, TOKENIZER_PRESETS, preset)).eval()


def make_model_dir(path: str | os.PathLike, tokenizer: str = "small", model: str = "small", seed: int = 0) -> Path:
    """Write a random-weight model directory (`tokenizer/` + `transformer/`) and return it."""
    path = Path(path)
    vq = build_tokenizer(tokenizer, seed)
    transformer = build_transformer(model, vocab_size=vq.codebook_size, seed=seed + 1)
    vq.save(path / "tokenizer")
    transformer.save(path / "transformer")
    return path


def centre_crop(src: str | os.PathLike, dst: str | os.PathLike, size: int) -> Path:
    """Save the centred size×size crop of image `src` (clipped to the image) as PNG `dst`."""
    from PIL import Image

    with Image.open(src) as image:
        image = image.convert("RGB")
        w, h = image.size
        cw, ch = min(size, w), min(size, h)
        x0, y0 = (w - cw) // 2, (h - ch) // 2
        image.crop((x0, y0, x0 + cw, y0 + ch)).save(dst)
    return Path(dst)


def running_trainers() -> int:
    """How many `nuwa-inf train` processes run beside us (they share the cores: noisy timings)."""
    count = 0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "train" in cmd and ("nuwa-inf" in cmd or "nuwa_inf" in cmd) and proc.name != str(os.getpid()):
            count += 1
    return count


def machine_info(threads: int | None = None) -> dict:
    """Facts that decide how far timings can be compared."""
    info = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "loadavg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "nuwa_train_processes": running_trainers(),
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if "torch" in sys.modules or threads is not None:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    return info


def write_json(path: str | os.PathLike | None, payload: dict) -> None:
    if not path:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)


def print_table(headers: list[str], rows: list[list]) -> None:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    make = sub.add_parser("make-model", help="write a random-weight model directory")
    make.add_argument("out")
    make.add_argument("--tokenizer", default="small")
    make.add_argument("--model", default="small")
    make.add_argument("--seed", type=int, default=0)
    crop = sub.add_parser("crop", help="save a centred square crop of an image")
    crop.add_argument("image")
    crop.add_argument("out")
    crop.add_argument("--size", type=int, required=True)
    args = parser.parse_args(argv)
    if args.cmd == "make-model":
        print(make_model_dir(args.out, args.tokenizer, args.model, args.seed))
    elif args.cmd == "crop":
        print(centre_crop(args.image, args.out, args.size))
    return 0


if __name__ == "__main__":
    sys.exit(main())
