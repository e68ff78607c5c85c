"""The still's own detail in every frame of its animation.

A clip is drawn through the tokenizer, whose 16-px codes lose what is finer than them: at the
video benchmark's 512×256 a still comes back at 23–29 dB PSNR, a day scene's ridges and trees as
soft blobs and its green hills grey, a night scene's ridges and moon as a dark blur. The frames
of an animation are the still's decoded tokens carried on by the video transformer, so what the
tokenizer lost from the still, `still − decoded frame 0`, is what it loses from every frame
wherever the scene has not moved, and it is added back:

    out_t = clip(decoded_t + (still − decoded_0), 0, 255)

Frame 0 comes out as the still itself, and a frame's change from the one before is the sampled
change, so motion and flicker are the sampled clip's. Where something moved, the still's detail
stays where it was: a drifting cloud carries little of it; a bright moon whose decoded blob fades
leaves a darker ring. Measured with benchmarks/bench_video.py (README, Video).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np


def add_still_detail(frames: Iterable[np.ndarray], still: np.ndarray) -> Iterator[np.ndarray]:
    """Decoded (H, W, 3) uint8 frames, frame 0 the still's decoded tokens → the same frames with
    `still − frame 0` added (clipped to uint8); holds one frame and the detail at a time."""
    detail = None
    for frame in frames:
        if detail is None:
            if frame.shape != still.shape:
                raise ValueError(f"the still is {still.shape}, the clip's frames {frame.shape}")
            detail = still.astype(np.int16) - frame
        yield np.clip(frame + detail, 0, 255).astype(np.uint8)
