"""The temporal median that deflickers a clip (video/deflicker.py): it undoes back-and-forth,
keeps steady change, passes the first and last frames, and streams any number of frames."""
from __future__ import annotations

import numpy as np

from nuwa_inf.eval.video_metrics import flicker, motion
from nuwa_inf.video.deflicker import temporal_median


def frames_of(values: list[int]) -> list[np.ndarray]:
    return [np.full((4, 5, 3), v, np.uint8) for v in values]


def test_back_and_forth_is_removed_and_steady_change_kept():
    popping = [f[0, 0, 0] for f in temporal_median(frames_of([100, 100, 140, 100, 100, 60, 100]))]
    assert popping == [100, 100, 100, 100, 100, 100, 100]  # a change the next frame undoes is gone
    ramp = [f[0, 0, 0] for f in temporal_median(frames_of([10, 20, 30, 40, 50]))]
    assert ramp == [10, 20, 30, 40, 50]


def test_first_and_last_frames_pass_and_short_clips_stream():
    frames = frames_of([7, 200, 9, 250])
    out = list(temporal_median(iter(frames)))
    assert len(out) == 4 and out[0] is frames[0] and out[-1] is frames[-1]
    assert [len(list(temporal_median(frames_of([1] * n)))) for n in (0, 1, 2, 3)] == [0, 1, 2, 3]


def test_a_noisy_clip_flickers_less_and_still_moves():
    rng = np.random.default_rng(0)
    drift = np.linspace(0, 60, 12)[:, None, None, None]                         # a steady brightening
    clip = np.clip(80 + drift + rng.normal(0, 12, (12, 32, 48, 3)), 0, 255).astype(np.uint8)
    smooth = np.stack(list(temporal_median(clip)))
    assert flicker(smooth) < 0.5 * flicker(clip)
    assert motion(smooth) > 0.3 * motion(clip) and motion(smooth) > 3
