"""Video figures discriminate on real procedural clips: frozen, noisy, shuffled and switched
clips score where they should against the real one."""
from __future__ import annotations

import numpy as np
import pytest

from nuwa_inf.data.procedural import render_clip
from nuwa_inf.eval.video_metrics import (
    clip_figures,
    drift,
    first_frame_psnr,
    flicker,
    frame_seam_ratio,
    identical_pairs,
    motion,
)


@pytest.fixture(scope="module")
def real():
    return render_clip(256, 128, 8, seed=97000, attrs={"water": "lake", "time": "sunset"})


def test_a_frozen_clip_has_no_motion_and_only_identical_pairs(real):
    frozen = np.repeat(real[:1], 8, axis=0)
    assert motion(real) > 0.3 and identical_pairs(real) == 0
    assert motion(frozen) == 0 and identical_pairs(frozen) == 7 and drift(frozen) == 0


def test_noise_and_shuffling_flicker_far_more_than_real_motion(real):
    rng = np.random.default_rng(0)
    noisy = np.clip(real.astype(int) + rng.integers(-6, 7, real.shape), 0, 255).astype(np.uint8)
    shuffled = real[[0, 4, 1, 6, 2, 7, 3, 5]]
    assert flicker(noisy) > 3 * flicker(real)
    assert flicker(shuffled) > 1.5 * flicker(real)
    # real drift moves each pixel steadily: its second difference stays below its first
    assert flicker(real) < 1.5 * motion(real)


def test_drift_sees_a_clip_that_turns_into_another_scene(real):
    other = render_clip(256, 128, 8, seed=97001, attrs={"water": "lake", "time": "night"})
    switched = np.concatenate([real[:4], other[4:]])
    assert drift(switched) > 5 * drift(real)


def test_first_frame_psnr_and_seams(real):
    assert first_frame_psnr(real, real[0]) == float("inf")
    assert first_frame_psnr(real, real[1]) < 60
    wide = render_clip(512, 256, 2, seed=97002)
    assert 0.8 < frame_seam_ratio(wide) < 1.2
    tiled = wide.copy()
    tiled[:, :, 256:] = np.clip(tiled[:, :, 256:].astype(int) + 40, 0, 255)   # a step at the patch border
    assert frame_seam_ratio(tiled) > 1.5 * frame_seam_ratio(wide)
    assert set(clip_figures(real, real[0])) >= {"motion", "flicker", "drift", "first_frame_psnr", "seam"}
