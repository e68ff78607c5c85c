"""Export a trained model directory into the package's bundled layout, fp16 weights.

    python -m nuwa_inf.assets.export RUN/model nuwa_inf/assets/default [TOKENIZER]
    python -m nuwa_inf.assets.export RUN/video_model nuwa_inf/assets/default --video
    python -m nuwa_inf.assets.export RUN/text_model nuwa_inf/assets/default --text

TOKENIZER replaces the model directory's own tokenizer: one whose decoder was fine-tuned
with the encoder frozen (`--set freeze=encoder`) gives the same codes, so the transformer
trained on the original still fits it. The exported config says `freeze: none`: the
bundle describes a network, and `train tokenizer --init default` should train all of it; the
same for a transformer fine-tuned with `--set freeze=base`. With `--video` only the transformer
is exported, into `video/` (a video model shares the bundle's tokenizer); with `--text` likewise
into `text/` (the text-to-image transformer, infer/bundle.py).
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import torch

from ..model.transformer import LocalTransformer
from ..tokenizer.vqgan import VQGAN


def export(model_dir: Path, target: Path, tokenizer_dir: Path | None = None, video: bool = False,
           text: bool = False) -> None:
    transformer_dir = model_dir / "transformer" if (model_dir / "transformer").is_dir() else model_dir
    transformer = LocalTransformer.load(transformer_dir)
    transformer.cfg = dataclasses.replace(transformer.cfg, freeze="none")  # `--init default` trains all of it
    if not (video or text):
        tokenizer = VQGAN.load(tokenizer_dir or model_dir / "tokenizer")
        tokenizer.cfg = dataclasses.replace(tokenizer.cfg, freeze="none")
        tokenizer.save(target / "tokenizer", dtype=torch.float16)
    transformer.save(target / ("video" if video else "text" if text else "transformer"), dtype=torch.float16)
    print(f"exported {model_dir} → {target}")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a not in ("--video", "--text")]
    export(Path(args[0]), Path(args[1]), Path(args[2]) if len(args) > 2 else None, video="--video" in sys.argv,
           text="--text" in sys.argv)
