"""Figures of a clip (T, H, W, 3) uint8, for generated clips beside real ones.

    motion           mean |L_{t+1} − L_t| per pixel (BT.601 luma, grey levels): how much moves
    flicker          mean |L_{t+1} − 2 L_t + L_{t−1}|: the temporal second difference. Drift at
                     a steady speed changes each pixel by about the same amount every frame, so
                     its second difference is small; noise, popping and back-and-forth changes
                     make it as large as the change itself or larger
    identical_pairs  consecutive frames whose pixels differ by at most 1 grey level anywhere
    drift            how far the last frame's block statistics (mean colour and contrast of
                     32-px blocks) move from frame 0's: a clip's own figure, to be divided by a
                     real clip's (1 = drifts as much as real motion does)
    first_frame_psnr PSNR of frame 0 against the still an animation started from
    frame_seam_ratio mean seam ratio (eval/seams.py) of the frames: patch borders visible?
"""
from __future__ import annotations

import numpy as np

from .seams import luma, seam_ratio

BLOCK = 32


def _check(clip: np.ndarray, min_frames: int = 2) -> None:
    if clip.ndim != 4 or clip.shape[-1] != 3 or clip.shape[0] < min_frames:
        raise ValueError(f"a clip is (T ≥ {min_frames}, H, W, 3), got {clip.shape}")


def clip_luma(clip: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 → (T, H, W) float32 luma."""
    return np.stack([luma(frame) for frame in clip])


def motion(clip: np.ndarray) -> float:
    _check(clip)
    lum = clip_luma(clip)
    return float(np.abs(np.diff(lum, axis=0)).mean())


def flicker(clip: np.ndarray) -> float:
    _check(clip, 3)
    lum = clip_luma(clip)
    return float(np.abs(lum[2:] - 2 * lum[1:-1] + lum[:-2]).mean())


def identical_pairs(clip: np.ndarray) -> int:
    _check(clip)
    return int(sum(np.abs(clip[t + 1].astype(np.int16) - clip[t]).max() <= 1 for t in range(clip.shape[0] - 1)))


def block_features(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) → (blocks, 4): each 32-px block's mean R, G, B and luma standard deviation."""
    h, w = frame.shape[0] // BLOCK * BLOCK, frame.shape[1] // BLOCK * BLOCK
    blocks = frame[:h, :w].astype(np.float32).reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK, 3)
    means = blocks.mean(axis=(1, 3)).reshape(-1, 3)
    lum = luma(frame[:h, :w]).reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK)
    return np.concatenate([means, lum.std(axis=(1, 3)).reshape(-1, 1)], axis=1)


def drift(clip: np.ndarray) -> float:
    """Mean |features(last frame) − features(frame 0)| over blocks (grey levels)."""
    _check(clip)
    return float(np.abs(block_features(clip[-1]) - block_features(clip[0])).mean())


def first_frame_psnr(clip: np.ndarray, still: np.ndarray) -> float:
    mse = float(np.mean((clip[0].astype(np.float64) - still.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def frame_seam_ratio(clip: np.ndarray, patch: int = 256) -> float:
    """Mean seam ratio of the frames (nan for frames of a single patch: no boundary)."""
    _check(clip, 1)
    ratios = [seam_ratio(frame, patch) for frame in clip]
    return float(np.nanmean(ratios)) if not all(np.isnan(ratios)) else float("nan")


def clip_figures(clip: np.ndarray, still: np.ndarray | None = None) -> dict:
    """Every figure of one clip (first-frame PSNR when the still is given)."""
    figures = {"motion": motion(clip), "flicker": flicker(clip), "identical_pairs": identical_pairs(clip),
               "drift": drift(clip), "seam": frame_seam_ratio(clip)}
    if still is not None:
        figures["first_frame_psnr"] = first_frame_psnr(clip, still)
    return figures
