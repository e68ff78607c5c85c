"""A colour prior from the input: at each height of the canvas, the palette the input holds there.

The transformer alone lets the palette and layout of the input fade within a patch or two of
its edges (a night sky turns to day, a lake to grey streaks). This prior is meant to carry them
on: every code of the tokenizer decodes to a colour (`code_colours`); for each token row of the
canvas, the input's own 16-px cells in the nearest input rows are that height's palette, and a
code's prior is −d²/2h², d the distance of its colour to the nearest colour of the palette
(floored). Sampling adds `strength` × prior to the logits. The palette's support, not its
frequencies: a density (tried first) favours the row's commonest colour and turned every ridge
into fog; the nearest distance leaves the ink of a ridge as likely as the sky beside it.

Measured (docs/notes/continuation.md, "a colour prior from the input"): off by default. With the
bundled model, strength 1 puts every stretch's vertical layout nearer the truth (4 of 4 held-out
cases) and keeps a night scroll night, but the ridges dissolve into fog: the model draws them with
codes the prior penalises, so carry (light and texture) gets worse on the three other cases. The
option stays for night scenes and for models whose structure codes share the input's colours.

Deterministic in the input and the tokenizer, so per-patch RNG, batch invariance and resume
stay exact.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from ..tokenizer.tiled import decode_tiled

BANDWIDTH = 0.06       # h: how far (RGB in [0, 1]) a code's colour may lie from the palette
FLOOR = -3.0           # a code's prior never goes below this (nats, before the strength)
ROW_REACH = 1          # input cell rows on each side that join a canvas row's palette
MAX_CELLS = 768        # cells per canvas row's palette (evenly subsampled beyond)
BLOCK = 3              # each code decoded as BLOCK×BLOCK copies of itself; the centre is read


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nuwa-inf"


def _tokenizer_hash(tokenizer) -> str:
    digest = hashlib.sha1()
    for name, tensor in sorted(tokenizer.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def code_colours(tokenizer) -> np.ndarray:
    """(codebook size, 3) float32 mean RGB in [0, 1] of each code, decoded as a block of itself;
    cached per tokenizer under ~/.cache/nuwa-inf (the bundled tokenizer's takes ≈ 40 s once)."""
    codes = tokenizer.codebook_size
    path = _cache_dir() / f"code-colours-{_tokenizer_hash(tokenizer)}-{codes}.npy"
    if path.is_file():
        return np.load(path)
    f, side = tokenizer.downsample, int(np.ceil(np.sqrt(codes)))
    grid = np.arange(side * side).clip(max=codes - 1).reshape(side, side)
    blocks = np.kron(grid, np.ones((BLOCK, BLOCK), dtype=np.int64)).astype(np.int32)   # (side·B, side·B)
    pixels = decode_tiled(tokenizer, blocks)                                            # (side·B·f, side·B·f, 3)
    cells = pixels.reshape(side, BLOCK, f, side, BLOCK, f, 3)[:, BLOCK // 2, :, :, BLOCK // 2]  # (side, f, side, f, 3)
    colours = (cells.astype(np.float32).mean((1, 3)) / 255.0).reshape(side * side, 3)[:codes]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, colours)
        os.replace(tmp, path)
    except OSError:
        pass  # no writable cache: computed again next time
    return colours


def cell_colours(image: np.ndarray, f: int) -> np.ndarray:
    """(H, W, 3) uint8 → (H/f, W/f, 3) float32 mean RGB in [0, 1] of each f×f cell (edges cut)."""
    h, w = image.shape[0] // f, image.shape[1] // f
    cells = image[: h * f, : w * f].reshape(h, f, w, f, 3).astype(np.float32).mean((1, 3))
    return cells / 255.0


def row_prior(image: np.ndarray, y0: int, canvas_token_rows: int, colours: np.ndarray, f: int) -> torch.Tensor:
    """(canvas_token_rows, codes) float32 prior, ≤ 0, of each code at each canvas token row, from
    the palette of the input `image` placed with its top at canvas pixel row `y0`."""
    cells = cell_colours(image, f)                                         # (h, w, 3)
    h = cells.shape[0]
    codes = torch.from_numpy(colours)                                      # (V, 3)
    prior = torch.empty((canvas_token_rows, len(colours)), dtype=torch.float32)
    for row in range(canvas_token_rows):
        centre = int(np.clip(round((row * f - y0) / f), 0, h - 1))         # the nearest input cell row
        palette = cells[max(0, centre - ROW_REACH): centre + ROW_REACH + 1].reshape(-1, 3)
        if len(palette) > MAX_CELLS:
            palette = palette[np.linspace(0, len(palette) - 1, MAX_CELLS).round().astype(int)]
        nearest = torch.cdist(codes, torch.from_numpy(palette)).min(dim=1).values   # (V,)
        prior[row] = (-nearest ** 2 / (2 * BANDWIDTH ** 2)).clamp_min(FLOOR)
    return prior
