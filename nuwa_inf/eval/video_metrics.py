"""Figures of a clip (T, H, W, 3) uint8, to set a generated clip beside a real one.

    motion           mean |L_{t+1} − L_t| over pixels and steps, L the BT.601 luma (grey
                     levels): how much changes from frame to frame.
    flicker          the part of that change which the next step undoes (grey levels): with
                     d_t = L_{t+1} − L_t per pixel, each interior frame t contributes
                     min(|d_{t−1}|, |d_t|) where d_{t−1} and d_t have opposite signs, else 0;
                     flicker is the mean over pixels and interior frames. A drifting cloud
                     brightens or darkens a pixel for several frames in a row (no reversal);
                     noise, popping tokens and alternating frames go back and forth. 0 ≤ flicker,
                     and it equals motion for frames that alternate A, B, A, B.
                     Why not the temporal second difference |L_{t+1} − 2L_t + L_{t−1}|: steady
                     drift is not free of it (a feature passing a pixel has curvature), so it
                     scored real procedural clips at 0.7–0.9 × their motion against 1.6–1.9 ×
                     for per-frame noise: a factor 6 apart; the reversal figure put them
                     50 × apart (256×128, 8 frames: real 0.02, noise σ = 3 levels 1.06,
                     shuffled frames 1.2, alternating 0.8).
    identical_pairs  consecutive frames that differ by at most 1 grey level in every value.
    drift            how far the last frame's block statistics are from frame 0's, generated
                     over real: per 64-px block at the same place, the distance between its
                     `block_stats` feature vectors (colour histograms, power spectrum, colour
                     moments; standardised by the real clip's frame-0 blocks) in frame T−1 and
                     frame 0, averaged over blocks; drift = that of the clip ÷ that of the
                     reference clip (1 = moves as far as real motion does, 0 = frozen, ≫ 1 =
                     turns into another scene).
    static_change    mean |L_t − L_0| of the generated clip over its frames, on the pixels that
                     never change in the reference clip (every frame within STILL_LEVELS of its
                     frame 0: ridges, trees, the moon; not the clouds, mist or water): how much
                     of what should stand still the clip repaints (grey levels; the reference
                     itself scores under STILL_LEVELS by construction). Drift is read per 64-px
                     block and so forgives a moon that fades into a dark ring in its block;
                     this figure reads it where it stands.
    first_frame_psnr frame 0 against the still an animation started from (`nuwa_inf.psnr`: an
                     exact copy reads 148 dB, its cap).
    frame_seam_ratio mean over frames of `seams.seam_ratio`: patch borders visible in the frames?
    seam_control     the same figure on lines half a patch off the grid, where no patch border
                     lies: what the frames' own content scores. A 512×256 frame has one line
                     (x = 256, 256 pairs), so its seam ratio is mostly content.

Memory: the per-frame figures hold two or three luma frames at a time, never the clip in float.
"""
from __future__ import annotations

import numpy as np

from ..colour import luma
from .block_stats import FeatureScale, block_features
from .seams import seam_stats

DRIFT_PATCH = 64  # px: blocks of the drift figure (a 512×256 frame has 32)
IDENTICAL_LEVELS = 1  # consecutive frames within this many levels everywhere are "identical"
STILL_LEVELS = 2      # a reference pixel whose luma stays within this of frame 0's in every frame stands still


def check_clip(clip: np.ndarray, min_frames: int = 1) -> tuple[int, int, int]:
    """(T, H, W) of a (T, H, W, 3) uint8 clip with at least `min_frames` frames, or ValueError."""
    if clip.ndim != 4 or clip.shape[3] != 3 or clip.dtype != np.uint8:
        raise ValueError(f"expected a (T, H, W, 3) uint8 clip, got {clip.shape} {clip.dtype}")
    if clip.shape[0] < min_frames:
        raise ValueError(f"this figure needs at least {min_frames} frames, the clip has {clip.shape[0]}")
    return clip.shape[0], clip.shape[1], clip.shape[2]


def _steps(clip: np.ndarray):
    """Yield d_t = L_{t+1} − L_t, (H, W) float32, for t = 0 … T−2."""
    previous = luma(clip[0])
    for frame in clip[1:]:
        current = luma(frame)
        yield current - previous
        previous = current


def motion(clip: np.ndarray) -> float:
    """Mean |L_{t+1} − L_t| per pixel and step (grey levels); 0 for a frozen clip."""
    check_clip(clip, 2)
    return float(np.mean([np.abs(step).mean(dtype=np.float64) for step in _steps(clip)]))


def flicker(clip: np.ndarray) -> float:
    """Mean change undone by the next step (grey levels): min(|d_{t−1}|, |d_t|) where they reverse sign."""
    check_clip(clip, 3)
    steps = _steps(clip)
    previous, undone = next(steps), []
    for step in steps:
        back = np.where(previous * step < 0, np.minimum(np.abs(previous), np.abs(step)), np.float32(0))
        undone.append(back.mean(dtype=np.float64))
        previous = step
    return float(np.mean(undone))


def identical_pairs(clip: np.ndarray) -> int:
    """How many consecutive frame pairs differ by at most IDENTICAL_LEVELS in every value."""
    check_clip(clip, 1)
    pairs = zip(clip[:-1], clip[1:], strict=True)  # (frame t, frame t+1)
    return sum(int(np.abs(b.astype(np.int16) - a).max() <= IDENTICAL_LEVELS) for a, b in pairs)


def static_change(clip: np.ndarray, reference_clip: np.ndarray) -> tuple[float, float]:
    """(mean |L_t − L_0| of `clip` over t ≥ 1 on the pixels that stand still in `reference_clip`
    (grey levels), the share of the frame they cover); (nan, 0) if none stands still."""
    frames = check_clip(clip, 2)
    if check_clip(reference_clip, 2) != frames:
        raise ValueError(f"the clip is {clip.shape[:3]}, the reference {reference_clip.shape[:3]}: same T, H, W")
    first = luma(reference_clip[0])
    still = np.ones(first.shape, dtype=bool)
    for frame in reference_clip[1:]:
        still &= np.abs(luma(frame) - first) <= STILL_LEVELS
    if not still.any():
        return float("nan"), 0.0
    start = luma(clip[0])
    changes = [np.abs(luma(frame) - start)[still].mean(dtype=np.float64) for frame in clip[1:]]
    return float(np.mean(changes)), float(still.mean())


def _block_change(clip: np.ndarray, scale: FeatureScale, patch: int) -> float:
    """Mean over blocks of |standardised features(frame T−1) − features(frame 0)|, same block positions."""
    first = scale.apply(block_features(clip[0], patch).features)   # (blocks, N_FEATURES)
    last = scale.apply(block_features(clip[-1], patch).features)
    return float(np.linalg.norm(last - first, axis=1).mean())


def drift(clip: np.ndarray, reference_clip: np.ndarray, patch: int = DRIFT_PATCH) -> float:
    """Block-statistics change from frame 0 to frame T−1 of `clip` ÷ that of `reference_clip`
    (same frame size): 1 = drifts as far as the reference, 0 = ends where it began."""
    _, height, width = check_clip(clip, 2)
    _, ref_height, ref_width = check_clip(reference_clip, 2)
    if (height, width) != (ref_height, ref_width):
        raise ValueError(f"the clip's frames are {width}x{height}, the reference's {ref_width}x{ref_height}")
    reference_blocks = block_features(reference_clip[0], patch).features
    if len(reference_blocks) < 2:
        raise ValueError(f"frames of {width}x{height} hold fewer than two {patch}-px blocks: pass a smaller patch")
    scale = FeatureScale.fit(reference_blocks)
    mine, real = _block_change(clip, scale, patch), _block_change(reference_clip, scale, patch)
    if real == 0:
        return 1.0 if mine == 0 else float("inf")
    return mine / real


def first_frame_psnr(clip: np.ndarray, still: np.ndarray) -> float:
    """PSNR (dB) of frame 0 against `still` (H, W, 3) uint8."""
    from .. import psnr

    check_clip(clip, 1)
    return psnr(clip[0], still)


def frame_seam_ratio(clip: np.ndarray, patch: int = 256) -> float:
    """Mean `seam_ratio` of the frames (1.0 = no visible patch borders). Frames need a patch
    boundary: wider or taller than `patch` (ValueError otherwise)."""
    _check_boundary(clip, patch)
    return float(np.mean([seam_stats(frame, patch).ratio for frame in clip]))


def _check_boundary(clip: np.ndarray, patch: int) -> tuple[int, int]:
    """(height, width) of frames that have a patch boundary (ValueError otherwise)."""
    _, height, width = check_clip(clip, 1)
    if width <= patch and height <= patch:
        raise ValueError(f"frames of {width}x{height} have no {patch}-px patch boundary: "
                         f"the seam ratio needs a width or height over {patch}")
    return height, width


def frame_seam_control(clip: np.ndarray, patch: int = 256) -> float:
    """The seam ratio's control: the same ratio on lines half a patch off the grid, where no
    border lies, its two axes weighted by the pairs of the seam figure's own lines (a 512×256
    frame's seam figure reads one vertical line, so its control reads vertical lines alone)."""
    height, width = _check_boundary(clip, patch)
    on_x, on_y = (width - 1) // patch * height, (height - 1) // patch * width   # pairs on the real lines
    ratios = []
    for frame in clip:
        mid = seam_stats(frame, patch, offset=patch // 2)
        parts = [(n, r) for n, r in ((on_x, mid.ratio_x), (on_y, mid.ratio_y)) if n and not np.isnan(r)]
        ratios.append(sum(n * r for n, r in parts) / sum(n for n, _ in parts))
    return float(np.mean(ratios))


def clip_figures(clip: np.ndarray, reference_clip: np.ndarray, still: np.ndarray | None = None,
                 patch: int = 256) -> dict:
    """Every figure of `clip` beside `reference_clip` (a real clip of the same size): the clip's own
    motion, flicker and identical pairs, its drift ratio, its change where the reference stands
    still (and the share of the frame that is), its seam ratio and mid-patch control (None for
    frames of one patch) and, given the still, the first-frame PSNR."""
    _, height, width = check_clip(clip, 3)
    seams = max(width, height) > patch
    change, still_share = static_change(clip, reference_clip)
    return {
        "motion": motion(clip),
        "flicker": flicker(clip),
        "identical_pairs": identical_pairs(clip),
        "drift": drift(clip, reference_clip),
        "static_change": change,
        "still_share": still_share,
        "seam": frame_seam_ratio(clip, patch) if seams else None,
        "seam_control": frame_seam_control(clip, patch) if seams else None,
        "first_frame_psnr": None if still is None else first_frame_psnr(clip, still),
    }
