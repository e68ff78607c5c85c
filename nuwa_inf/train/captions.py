"""Captions for training the text part of the condition memory: the vocabulary of the
training captions (appended to a fine-tuned model's own), each token grid's caption as word
ids, and a fine-tuned model's word table grown to the new vocabulary."""
from __future__ import annotations

from pathlib import Path

import torch

from ..data.datasets import list_images, read_captions
from ..model.text import PAD, build_vocab, encode_caption, words


def training_captions(data: str | Path) -> dict[Path, str]:
    """Caption of each image under `data` that has one (sidecar .txt or captions.jsonl)."""
    root = Path(data)
    return read_captions(list_images(root), root if root.is_dir() else root.parent)


def caption_vocab(captions: dict[Path, str], known: list[str]) -> list[str]:
    """`known` words plus the new ones of `captions` (sorted by path: the same order every run)."""
    return build_vocab([captions[path] for path in sorted(captions)], known)


def grid_caption_ids(sources: list[Path], captions: dict[Path, str], vocab: list[str], length: int) -> torch.Tensor:
    """(G, length) word ids of each grid's image caption; all padding where it has none."""
    rows = []
    for source in sources:
        caption = captions.get(Path(source).resolve())
        if caption is None:
            rows.append([PAD] * length)
        else:  # a training caption longer than the model reads is cut, not refused
            ids, _ = encode_caption(" ".join(words(caption)[:length]), vocab, length)
            rows.append(ids)
    return torch.tensor(rows, dtype=torch.int64).reshape(len(sources), length)


def grow_word_table(tensors: dict[str, torch.Tensor], rows: int) -> dict[str, torch.Tensor]:
    """A checkpoint's tensors with its word table padded to `rows` (new words start small and
    random; old words keep their ids and vectors)."""
    name = "text.emb.weight"
    table = tensors.get(name)
    if table is None or table.shape[0] >= rows:
        return tensors
    extra = torch.randn(rows - table.shape[0], table.shape[1], dtype=table.dtype) * 0.02
    return {**tensors, name: torch.cat([table, extra])}
