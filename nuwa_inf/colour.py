"""BT.601 luma and chroma (the JPEG YCbCr matrix, offsets dropped): what the tokenizer's losses
and the quality figures measure colour in. Rows: Y, Cb, Cr; columns: R, G, B. Only differences
and histograms over fixed spans are taken of these, so the +128 chroma offset is left out."""
from __future__ import annotations

import numpy as np

BT601 = np.array([[0.299, 0.587, 0.114],
                  [-0.168736, -0.331264, 0.5],
                  [0.5, -0.418688, -0.081312]])


def ycbcr(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) RGB in any scale -> (..., 3) float64 Y, Cb, Cr in the same scale."""
    return rgb.astype(np.float64) @ BT601.T


def channel_planes(r: np.ndarray, g: np.ndarray, b: np.ndarray) -> list[np.ndarray]:
    """Separate R, G, B planes (same shape, float32) -> [Y, Cb, Cr] planes of that shape, float32,
    without stacking the three into one (n, 3) array (the eval's blocks are large)."""
    return [np.float32(w[0]) * r + np.float32(w[1]) * g + np.float32(w[2]) * b for w in BT601]


def luma(rgb: np.ndarray) -> np.ndarray:
    """(h, w, 3) RGB (uint8 or float, 0…255) -> (h, w) float32 luma, one channel at a time (small temporaries)."""
    out = rgb[..., 0].astype(np.float32) * np.float32(BT601[0, 0])
    out += rgb[..., 1].astype(np.float32) * np.float32(BT601[0, 1])
    out += rgb[..., 2].astype(np.float32) * np.float32(BT601[0, 2])
    return out
