"""Training data: random crops from a folder of images (any sizes, nested) or from one huge image.

Captions come from a sidecar `.txt` (same stem) or a `captions.jsonl` ({"file": ..., "caption": ...}).
Unreadable images are skipped with a warning that names them. Sampling is driven by
one `torch.Generator`, whose state is checkpointed so that a resumed run sees the
same crops in the same order.
"""
from __future__ import annotations

import json
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from ..images import load_rgb

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"}


def list_images(path: str | Path) -> list[Path]:
    """All image files under `path` (recursively), or `[path]` when it is one image file."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise UserError(f"data path not found: {path}")
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(path).parts))
    if not files:
        raise UserError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found under {path}")
    return files


def read_captions(files: list[Path], root: Path) -> dict[Path, str]:
    """Captions from sidecar .txt files and/or `captions.jsonl` in the data root."""
    captions: dict[Path, str] = {}
    jsonl = root / "captions.jsonl" if root.is_dir() else root.parent / "captions.jsonl"
    if jsonl.is_file():
        for line_no, line in enumerate(jsonl.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                captions[(jsonl.parent / record["file"]).resolve()] = str(record["caption"])
            except (json.JSONDecodeError, KeyError, TypeError):
                warn(f"{jsonl}:{line_no}: not a {{\"file\", \"caption\"}} record, ignored")
    for file in files:
        sidecar = file.with_suffix(".txt")
        if sidecar.is_file():
            captions[file.resolve()] = sidecar.read_text().strip()
    return captions


def warn(message: str) -> None:
    print(f"nuwa-inf: warning: {message}", file=sys.stderr)


class ImageCache:
    """Decoded images kept in RAM up to a byte budget (least recently used dropped first)."""

    def __init__(self, budget_bytes: int = 4 << 30):
        self.budget = budget_bytes
        self.items: OrderedDict[Path, np.ndarray] = OrderedDict()
        self.used = 0

    def get(self, path: Path) -> np.ndarray:
        if path in self.items:
            self.items.move_to_end(path)
            return self.items[path]
        image = load_rgb(path)
        self.items[path] = image
        self.used += image.nbytes
        while self.used > self.budget and len(self.items) > 1:
            _, dropped = self.items.popitem(last=False)
            self.used -= dropped.nbytes
        return image


CHANNEL_ORDERS = [[0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]]  # every RGB order but the identity


class CropSampler:
    """Random `crop`×`crop` RGB crops (optionally flipped) from a folder or one huge image.

    Images smaller than the crop are upscaled (nearest-free: bicubic via PIL) to fit,
    with a one-time message naming them. Unreadable images are dropped with a warning.
    `channel_shuffle`: the share of crops whose RGB channels are permuted (one of the five
    other orders). A tokenizer trained on mostly grey-brown scrolls otherwise learns codes that
    say "light, grainy" but not which hue: the same code then stands for a blue sky in one
    image and an orange one in another, and the transformer cannot carry a palette.
    """

    def __init__(self, path: str | Path, crop: int, flip: bool = True, seed: int = 0,
                 cache_bytes: int = 4 << 30, channel_shuffle: float = 0.0):
        self.root = Path(path)
        self.files = list_images(self.root)
        self.captions = read_captions(self.files, self.root)
        self.crop = crop
        self.flip = flip
        self.channel_shuffle = channel_shuffle
        self.cache = ImageCache(cache_bytes)
        self.generator = torch.Generator().manual_seed(seed)
        self.bad: set[Path] = set()
        self.upscaled: set[Path] = set()

    def _image(self, path: Path) -> np.ndarray | None:
        try:
            image = self.cache.get(path)
        except UserError as err:
            if path not in self.bad:
                warn(f"skipping unreadable image: {err}")
                self.bad.add(path)
            return None
        if min(image.shape[:2]) < self.crop:
            image = upscale_to(image, self.crop)
            if path not in self.upscaled:
                warn(f"{path} is smaller than the {self.crop}px crop; upscaled")
                self.upscaled.add(path)
            self.cache.items[path] = image
        return image

    def sample(self, count: int) -> torch.Tensor:
        """`count` crops as (count, 3, crop, crop) float in [-1, 1]."""
        crops = []
        while len(crops) < count:
            if len(self.bad) == len(self.files):
                raise UserError(f"none of the {len(self.files)} images under {self.root} can be read")
            index = int(torch.randint(len(self.files), (1,), generator=self.generator))
            image = self._image(self.files[index])
            if image is None:
                continue
            height, width = image.shape[:2]
            y = int(torch.randint(height - self.crop + 1, (1,), generator=self.generator))
            x = int(torch.randint(width - self.crop + 1, (1,), generator=self.generator))
            crop = image[y: y + self.crop, x: x + self.crop]
            if self.flip and bool(torch.rand((), generator=self.generator) < 0.5):
                crop = crop[:, ::-1]
            if self.channel_shuffle > 0 and bool(torch.rand((), generator=self.generator) < self.channel_shuffle):
                other = int(torch.randint(len(CHANNEL_ORDERS), (1,), generator=self.generator))
                crop = crop[:, :, CHANNEL_ORDERS[other]]
            crops.append(np.ascontiguousarray(crop))
        batch = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float()
        return batch / 127.5 - 1.0


def upscale_to(image: np.ndarray, min_side: int) -> np.ndarray:
    from PIL import Image

    height, width = image.shape[:2]
    scale = min_side / min(height, width)
    size = (max(min_side, round(width * scale)), max(min_side, round(height * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.BICUBIC))
