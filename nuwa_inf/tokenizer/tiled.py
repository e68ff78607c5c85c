"""Tiled encode/decode of images of any size with bounded memory.

Tiles are cut on the latent grid; each tile carries a margin (in latents) on every
side that is not the canvas border. With margin ≥ the receptive field, the tile's
core equals the whole-image result (the codec has no global attention and no
spatial normalisation), so tiles are simply pasted, no blending.
"""
from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import torch

from .vqgan import VQGAN


def tile_spans(length: int, tile: int, margin: int) -> Iterator[tuple[int, int, int, int]]:
    """Yield (core_start, core_end, read_start, read_end) along one axis, in latents."""
    for start in range(0, length, tile):
        end = min(start + tile, length)
        yield start, end, max(0, start - margin), min(length, end + margin)


def to_pixels_float(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 → (1, 3, H, W) float in [-1, 1]."""
    pixels = np.require(image, requirements=["C", "W"])   # a copy only where read-only (torch warns on those)
    return torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0).float() / 127.5 - 1.0


def to_uint8(pixels: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) float in [-1, 1] → (H, W, 3) uint8."""
    return ((pixels[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()


@torch.inference_mode()
def encode_tiled(model: VQGAN, image: np.ndarray, tile: int = 64, margin: int | None = None) -> np.ndarray:
    """(H, W, 3) uint8 with H, W multiples of f → token grid (H/f, W/f) int32."""
    f = model.downsample
    height, width = image.shape[0] // f, image.shape[1] // f
    if image.shape[0] % f or image.shape[1] % f:
        raise ValueError(f"image size {image.shape[:2]} is not a multiple of {f}")
    margin = model.encoder_margin if margin is None else margin
    device = next(model.parameters()).device
    tokens = np.zeros((height, width), dtype=np.int32)
    for y0, y1, ry0, ry1 in tile_spans(height, tile, margin):
        for x0, x1, rx0, rx1 in tile_spans(width, tile, margin):
            crop = image[ry0 * f: ry1 * f, rx0 * f: rx1 * f]
            codes = model.encode(to_pixels_float(crop).to(device))[0].cpu().numpy()
            tokens[y0:y1, x0:x1] = codes[y0 - ry0: y1 - ry0, x0 - rx0: x1 - rx0]
    return tokens


@torch.inference_mode()
def decode_tiled(model: VQGAN, tokens: np.ndarray, tile: int | tuple[int, int] = 64, margin: int | None = None,
                 sink: Callable[[int, int, np.ndarray], None] | None = None,
                 cols: tuple[int, int] | None = None,
                 post: Callable[[np.ndarray, tuple[int, int]], np.ndarray] | None = None) -> np.ndarray | None:
    """Token grid (h, w) → (h·f, w·f, 3) uint8.

    With `sink`, each decoded tile is handed to `sink(y_px, x_px, pixels)` instead of
    being assembled in memory (for canvases larger than RAM), and None is returned.
    `cols` = (a, b) decodes only token columns a…b-1 (their margins read from `tokens`).
    `tile` is the core tile size in tokens, or (rows, cols): tall tiles need no vertical margin.
    `post(pixels, (y_px, x_px))` maps each decoded window, margins included, whose top-left pixel
    lies at (y_px, x_px) of the whole grid's pixels, to new pixels of the same shape before its core
    is kept: a filter reaching less far than the margin gives the same pixels for any tiling.
    """
    tile_h, tile_w = (tile, tile) if isinstance(tile, int) else tile
    f = model.downsample
    height, width = tokens.shape
    col_start, col_end = cols if cols is not None else (0, width)
    margin = model.decoder_margin if margin is None else margin
    device = next(model.parameters()).device
    out = None if sink is not None else np.zeros((height * f, (col_end - col_start) * f, 3), dtype=np.uint8)
    for x0, x1, _, _ in tile_spans(col_end - col_start, tile_w, 0):
        x0, x1 = x0 + col_start, x1 + col_start
        rx0, rx1 = max(0, x0 - margin), min(width, x1 + margin)
        for y0, y1, ry0, ry1 in tile_spans(height, tile_h, margin):
            pixels = decode_window(model, tokens[ry0:ry1, rx0:rx1], device)
            if post is not None:
                pixels = post(pixels, (ry0 * f, rx0 * f))
            core = pixels[(y0 - ry0) * f: (y1 - ry0) * f, (x0 - rx0) * f: (x1 - rx0) * f]
            if sink is not None:
                sink(y0 * f, x0 * f, core)
            else:
                out[y0 * f: y1 * f, (x0 - col_start) * f: (x1 - col_start) * f] = core
    return out


def decode_window(model: VQGAN, tokens: np.ndarray, device: torch.device | str = "cpu") -> np.ndarray:
    """Decode one window of tokens (h, w) → (h·f, w·f, 3) uint8, no tiling."""
    indices = torch.from_numpy(np.ascontiguousarray(tokens).astype(np.int64)).unsqueeze(0).to(device)
    return to_uint8(model.decode(indices).cpu().contiguous())  # decode returns float32
