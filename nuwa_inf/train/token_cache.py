"""Pre-tokenised training data: every image encoded once (and its mirror image), cached as
int16 token grids, so the transformer never runs the encoder in its loop.

    CACHE/manifest.json   {"tokenizer": <weights hash>, "items": [{"source", "mtime", "size", "file"}]}
    CACHE/tok_00000.npy   (h, w) int16 token grid  (tok_00000_flip.npy: the mirrored image's)
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..atomic import atomic_path, write_json
from ..data.datasets import list_images, warn
from ..errors import UserError
from ..images import load_rgb
from ..tokenizer.tiled import encode_tiled
from ..tokenizer.vqgan import VQGAN


def weights_hash(model: torch.nn.Module) -> str:
    digest = hashlib.sha1()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().float().numpy().tobytes())
    return digest.hexdigest()[:16]


def pretokenize(data: str | Path, tokenizer: VQGAN, cache: Path, min_tokens: tuple[int, int],
                flips: bool = True, with_sources: bool = False):
    """Token grids of every readable image under `data` (cached); grids smaller than
    `min_tokens` (h, w) are skipped with a message. With `with_sources`: (grids, the image
    path of each grid — a mirror copy's is its original's)."""
    manifest_path, manifest = load_manifest(cache, tokenizer)
    done = {(item["source"], item["mtime"], item["size"]): item for item in manifest["items"]}
    f = tokenizer.downsample
    items = []
    for path in tqdm(list_images(data), desc="pre-tokenising", dynamic_ncols=True):
        stat = path.stat()
        key = (str(path.resolve()), stat.st_mtime, stat.st_size)
        cached = done.get(key)
        if cached is not None and (cache / cached["file"]).is_file():
            if flips and not (cached.get("flip") and (cache / cached["flip"]).is_file()):
                # cached by a run without mirror copies: add this image's now
                image = _load(path)
                if image is None:
                    continue
                cached["flip"] = _save_mirror(cache, cached["file"], tokenizer, _whole_tokens(image, f))
                write_json(manifest_path, manifest)
            items.append(cached)
            continue
        image = _load(path)
        if image is None:
            continue
        if image.shape[0] // f < min_tokens[0] or image.shape[1] // f < min_tokens[1]:
            warn(f"{path} ({image.shape[1]}x{image.shape[0]}) is smaller than one training crop "
                 f"({min_tokens[1] * f}x{min_tokens[0] * f}); skipped")
            continue
        image = _whole_tokens(image, f)
        name = f"tok_{len(manifest['items']):05d}.npy"
        _save_grid(cache / name, encode_tiled(tokenizer, image))
        item = {"source": key[0], "mtime": key[1], "size": key[2], "file": name,
                "flip": _save_mirror(cache, name, tokenizer, image) if flips else None}
        manifest["items"].append(item)
        items.append(item)
        write_json(manifest_path, manifest)
    if not items:
        raise UserError(f"no usable training images under {data}")
    grids, sources = [], []
    for item in items:
        grids.append(np.load(cache / item["file"]))
        sources.append(Path(item["source"]))
        if flips and item.get("flip"):
            grids.append(np.load(cache / item["flip"]))
            sources.append(Path(item["source"]))
    return (grids, sources) if with_sources else grids


def load_manifest(cache: Path, tokenizer: VQGAN) -> tuple[Path, dict]:
    """(the cache's manifest path, its manifest): the saved one if `tokenizer` made it, else empty."""
    cache.mkdir(parents=True, exist_ok=True)
    manifest_path = cache / "manifest.json"
    tok_hash = weights_hash(tokenizer)
    manifest = {"tokenizer": tok_hash, "items": []}
    if manifest_path.is_file():
        old = json.loads(manifest_path.read_text())
        if old.get("tokenizer") == tok_hash:
            manifest = old
    return manifest_path, manifest


def _load(path: Path) -> np.ndarray | None:
    """The image, or None (with a message) if it cannot be read."""
    try:
        return load_rgb(path)
    except UserError as err:
        warn(f"skipping unreadable image: {err}")
        return None


def _whole_tokens(image: np.ndarray, f: int) -> np.ndarray:
    """The image cut to whole f-pixel tokens."""
    return image[:image.shape[0] // f * f, :image.shape[1] // f * f]


def _save_mirror(cache: Path, name: str, tokenizer: VQGAN, image: np.ndarray) -> str:
    """Encode the mirrored image beside grid `name` ('tok_00000.npy' → 'tok_00000_flip.npy')."""
    flip = name.replace(".npy", "_flip.npy")
    _save_grid(cache / flip, encode_tiled(tokenizer, np.ascontiguousarray(image[:, ::-1])))
    return flip


def _save_grid(path: Path, grid: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, grid.astype(np.int16))


class TokenCropSampler:
    """Random (frames·rows·ph) × (cols·pw) token crops, returned patch-major (B·N, P)."""

    def __init__(self, grids: list[np.ndarray], rows: int, cols: int, ph: int, pw: int, seed: int = 0,
                 canvas: tuple[int, int] | None = None):
        """`canvas` = (top token row, canvas token rows): where every grid sits in a taller canvas
        (an input being extended); None: each grid is its own canvas."""
        self.grids = grids
        self.canvas = canvas
        self.rows, self.cols, self.ph, self.pw = rows, cols, ph, pw
        self.generator = torch.Generator().manual_seed(seed)

    def sample(self, count: int) -> torch.Tensor:
        return self.sample_with_rows(count)[0]

    def sample_with_rows(self, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """`count` crops → (tokens (B·N, P), canvas rows (B·N, 2)): each patch's first token row in
        its image and the image's height in token rows (the band embedding's input, vertical.py)."""
        tokens, rows, _ = self.sample_with_picks(count)
        return tokens, rows

    def sample_with_picks(self, count: int) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, int, int]]]:
        """As `sample_with_rows`, plus each crop's (grid index, top token row, left token column)."""
        h, w = self.rows * self.ph, self.cols * self.pw
        crops, rows, picks = [], [], []
        for _ in range(count):
            index = int(torch.randint(len(self.grids), (1,), generator=self.generator))
            grid = self.grids[index]
            y = int(torch.randint(grid.shape[0] - h + 1, (1,), generator=self.generator))
            x = int(torch.randint(grid.shape[1] - w + 1, (1,), generator=self.generator))
            crops.append(torch.from_numpy(grid[y: y + h, x: x + w].astype(np.int64)))
            picks.append((index, y, x))
            top, height = self.canvas if self.canvas is not None else (0, grid.shape[0])
            for r in range(self.rows):
                rows.extend([[top + y + r * self.ph, height]] * self.cols)
        return to_patches(torch.stack(crops), self.rows, self.cols, self.ph, self.pw), torch.tensor(rows), picks


def to_patches(grids: torch.Tensor, rows: int, cols: int, ph: int, pw: int) -> torch.Tensor:
    """(B, rows·ph, cols·pw) → (B·rows·cols, ph·pw), patches in raster order, tokens in raster order."""
    batch = grids.shape[0]
    patches = grids.view(batch, rows, ph, cols, pw).permute(0, 1, 3, 2, 4)   # (B, R, C, ph, pw)
    return patches.reshape(batch * rows * cols, ph * pw)
