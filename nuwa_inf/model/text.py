"""Text for the condition memory: a word vocabulary built from the training captions and a
small transformer encoder trained from scratch with the model (nothing downloaded).

A caption becomes lower-case words ("blue-green", "snowy", "peaks", …); ids 0 and 1 are
padding and unknown words, the rest index the vocabulary in the order words were first
seen, so a fine-tune on new captions appends words and keeps the old ids. The encoder's
outputs (one vector per word, plus a learned "this is text" embedding) join the memory
that every block cross-attends to (memory.py), after the style cells.
"""
from __future__ import annotations

import re

import torch
from torch import Tensor, nn

from ..errors import UserError
from .config import ModelConfig

PAD, UNK = 0, 1
WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


def words(caption: str) -> list[str]:
    return WORD.findall(caption.lower())


def build_vocab(captions, known: list[str] | None = None) -> list[str]:
    """`known` (kept in order) plus every new word of `captions`, in first-seen order."""
    vocab = list(known or [])
    seen = set(vocab)
    for caption in captions:
        for word in words(caption):
            if word not in seen:
                seen.add(word)
                vocab.append(word)
    return vocab


def encode_caption(caption: str, vocab: list[str], length: int) -> tuple[list[int], list[str]]:
    """Caption → (ids padded to `length`, the words not in the vocabulary)."""
    index = {word: i + 2 for i, word in enumerate(vocab)}
    found = words(caption)
    if len(found) > length:
        raise UserError(f"the prompt has {len(found)} words; this model reads at most {length}")
    ids = [index.get(word, UNK) for word in found]
    unknown = [word for word in found if word not in index]
    return ids + [PAD] * (length - len(ids)), unknown


def check_prompt(caption: str, vocab: list[str], length: int) -> tuple[list[int], list[str]]:
    """`encode_caption` for a user's prompt: a prompt with no word at all is an error."""
    if not words(caption):
        raise UserError(f"the prompt {caption!r} has no words")
    return encode_caption(caption, vocab, length)


class TextEncoder(nn.Module):
    """(B, T) word ids → (B, T, dim) memory vectors and (B, T) validity (padding is not valid)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.emb = nn.Embedding(cfg.text_vocab_size, cfg.dim)
        self.pos = nn.Parameter(torch.zeros(cfg.text_len, cfg.dim))
        layer = nn.TransformerEncoderLayer(cfg.dim, cfg.heads, int(cfg.dim * cfg.mlp_ratio), dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, cfg.text_layers, enable_nested_tensor=False)
        self.norm = nn.RMSNorm(cfg.dim, eps=1e-6)
        self.kind = nn.Parameter(torch.zeros(cfg.dim))           # "this memory entry is text"
        self.reset_embeddings()

    def reset_embeddings(self) -> None:
        """Unit-scale word vectors, small positions: with the usual 0.02 the encoder's output was
        the same vector for every word of every caption (cosine 0.9997 after 200 steps) and the
        model learnt nothing from the text."""
        nn.init.normal_(self.emb.weight, std=1.0)
        nn.init.normal_(self.pos, std=0.1)

    def forward(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        valid = ids != PAD                                        # (B, T)
        x = self.emb(ids) + self.pos[: ids.shape[1]]
        # a caption of no words would leave attention with no key: let its first slot through
        guard = valid.clone()
        guard[:, 0] = True
        x = self.layers(x, src_key_padding_mask=~guard)
        return self.norm(x) + self.kind, valid
