"""Export a trained model directory into the package's bundled layout, fp16 weights.

    python -m nuwa_inf.assets.export RUN/model nuwa_inf/assets/default
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from ..model.transformer import LocalTransformer
from ..tokenizer.vqgan import VQGAN


def export(model_dir: Path, target: Path) -> None:
    tokenizer = VQGAN.load(model_dir / "tokenizer")
    transformer = LocalTransformer.load(model_dir / "transformer" if (model_dir / "transformer").is_dir() else model_dir)
    tokenizer.save(target / "tokenizer", dtype=torch.float16)
    transformer.save(target / "transformer", dtype=torch.float16)
    print(f"exported {model_dir} → {target}")


if __name__ == "__main__":
    export(Path(sys.argv[1]), Path(sys.argv[2]))
