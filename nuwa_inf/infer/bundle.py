"""A usable model: tokenizer + transformer loaded from a model directory.

A model directory holds `tokenizer/` and the transformer either in `transformer/` (the
bundled layout) or at its top level (what `nuwa-inf train model --out DIR` writes). A video
transformer (animate, generate --frames) sits in `video/` beside `transformer/` in the bundled
layout, or where an image model's transformer would be in a directory of a video model (what
`nuwa-inf train model --video --out DIR` writes). A text-to-image transformer (generate --text
without an input) may sit in `text/` likewise: the bundled one is the image transformer fine-tuned
whole on scenes of the size text-to-image draws, which the continuation job could not afford
(README, "Text control"); a directory without `text/` draws from its prompts with `transformer/`.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch

from ..assets import default_model_dir
from ..errors import UserError
from ..model.transformer import LocalTransformer
from ..tokenizer.vqgan import VQGAN


@dataclass
class ModelBundle:
    tokenizer: VQGAN
    transformer: LocalTransformer
    directory: Path
    weights_hash: str
    part: str = "transformer"   # the subdirectory the transformer came from ("" for the top level)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise UserError(f"--device must be auto, cpu or cuda, got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA device is available")
    return torch.device(device)


def load_bundle(model: str | Path | None = None, device: str = "auto", video: bool = False,
                text: bool = False) -> ModelBundle:
    """The model at `model` (None or 'default': the bundled one); with `video` its video
    transformer (an error names a model that has none); with `text` its text-to-image transformer
    where it has one (`text/`), else its image transformer."""
    directory = default_model_dir() if model in (None, "default") else Path(model)
    if not directory.is_dir():
        raise UserError(f"model directory not found: {directory}")
    parts = ("video", "transformer") if video else ("text", "transformer") if text else ("transformer",)
    transformer_dir = next((directory / p for p in parts if (directory / p).is_dir()), directory)
    if not (directory / "tokenizer").is_dir():
        raise UserError(f"model directory {directory} has no tokenizer/ subdirectory")
    torch_device = resolve_device(device)
    tokenizer = VQGAN.load(directory / "tokenizer", torch_device)
    transformer = LocalTransformer.load(transformer_dir, torch_device)
    if video and transformer.cfg.extent_t < 1:
        raise UserError(f"{transformer_dir} is an image model (it reads no earlier frames); animate and --frames "
                        f"need one trained with `nuwa-inf train model --video`")
    if transformer.cfg.vocab_size != tokenizer.codebook_size:
        raise UserError(f"{directory}: transformer vocab {transformer.cfg.vocab_size} does not match "
                        f"the tokenizer's {tokenizer.codebook_size} codes")
    digest = hashlib.sha1()
    for part in (directory / "tokenizer" / "model.safetensors", transformer_dir / "model.safetensors"):
        digest.update(part.read_bytes())
    part = transformer_dir.name if transformer_dir != directory else ""
    return ModelBundle(tokenizer, transformer, directory, digest.hexdigest()[:16], part)


def has_text_model(directory: Path) -> bool:
    """Whether the model directory holds a text-to-image transformer of its own (`text/`)."""
    return (directory / "text").is_dir()


# px: the tallest canvas on which a prompted extension draws with `text/` (the bundled one trained on
# scenes 512 and 1024 px high; the image transformer on scrolls 2048 px high). Text-guided
# outpainting of a 1024×512 piece to 3072×512 (bench_text.py, 2026-12-07): the edit read in 11 of
# 12 regions against 10 with transformer/, the piece's other attributes kept 0.78 against 0.58.
TEXT_MODEL_MAX_HEIGHT = 1024


def draws_with_text_model(text: str | None, has_input: bool, height: int) -> bool:
    """Whether a canvas job draws with the model's text-to-image transformer (where it has one): a
    prompt without an input at any size; a prompt with one (text-guided outpainting) on canvases up
    to TEXT_MODEL_MAX_HEIGHT high, the heights it trained at — taller ones, the main job's scale,
    are the image transformer's, which trained there."""
    return bool(text) and (not has_input or height <= TEXT_MODEL_MAX_HEIGHT)
