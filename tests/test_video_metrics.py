"""The video figures tell real procedural motion from frozen, noisy, shuffled and switched clips."""
from __future__ import annotations

import numpy as np
import pytest

from nuwa_inf.data.procedural import render_clip
from nuwa_inf.eval.video_metrics import (
    clip_figures,
    drift,
    first_frame_psnr,
    flicker,
    frame_seam_control,
    frame_seam_ratio,
    identical_pairs,
    motion,
    static_change,
)

FRAMES = 8


@pytest.fixture(scope="module")
def real() -> np.ndarray:
    return render_clip(256, 128, FRAMES, seed=97000, attrs={"time": "sunset", "water": "lake", "mist": True})


@pytest.fixture(scope="module")
def other_scene() -> np.ndarray:
    return render_clip(256, 128, FRAMES, seed=97001, attrs={"time": "night", "water": "river"})


def with_noise(clip: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """Independent Gaussian noise on every frame."""
    noise = np.random.default_rng(seed).normal(0, sigma, clip.shape)
    return np.clip(clip + noise.round(), 0, 255).astype(np.uint8)


def test_a_frozen_clip_has_no_motion_and_every_pair_identical(real):
    frozen = np.repeat(real[:1], FRAMES, axis=0)
    assert motion(real) > 0.3 and identical_pairs(real) == 0
    assert motion(frozen) == 0 and flicker(frozen) == 0
    assert identical_pairs(frozen) == FRAMES - 1


def test_identical_pairs_forgives_one_level_but_not_two(real):
    frame = real[0]
    plus_one = np.minimum(frame.astype(int) + 1, 255).astype(np.uint8)
    assert identical_pairs(np.stack([frame, plus_one, real[1]])) == 1
    plus_two = plus_one.copy()
    where = int(np.flatnonzero(frame.ravel() < 250)[0])
    plus_two.ravel()[where] = frame.ravel()[where] + 2          # one value two levels off
    assert identical_pairs(np.stack([frame, plus_two])) == 0


def test_real_drift_is_smooth_while_noise_and_shuffling_flicker(real):
    shuffled = real[[0, 4, 1, 6, 2, 7, 3, 5]]
    alternating = real[[0, 1] * (FRAMES // 2)]
    assert flicker(real) < 0.1 * motion(real)              # drifting clouds, mist and water do not go back
    assert flicker(with_noise(real, 3.0)) > 10 * flicker(real)
    assert flicker(shuffled) > 5 * flicker(real)
    assert flicker(alternating) == pytest.approx(motion(alternating), rel=1e-6)


def test_drift_is_one_for_real_zero_frozen_and_large_for_a_scene_change(real, other_scene):
    switched = np.concatenate([real[:FRAMES // 2], other_scene[FRAMES // 2:]])
    frozen = np.repeat(real[:1], FRAMES, axis=0)
    assert drift(real, real) == 1.0
    assert drift(frozen, real) == 0.0
    assert drift(switched, real) > 3.0
    assert drift(with_noise(real, 1.0), real) < drift(switched, real)


def test_static_change_reads_what_repaints_the_still_parts_and_not_the_moving_ones(real, other_scene):
    """Where the real clip stands still, the real clip changes by at most STILL_LEVELS, a frozen
    clip by nothing; switching to another scene changes a lot; noise changes by about its size."""
    frozen = np.repeat(real[:1], len(real), axis=0)
    own, share = static_change(real, real)
    assert 0.3 < share < 1 and own <= 2
    assert static_change(frozen, real) == (0.0, share)
    switched = np.concatenate([real[:1], other_scene[1:]])
    assert static_change(switched, real)[0] > 20
    noisy = static_change(with_noise(real, 4.0), real)[0]
    assert 2 < noisy < 6, noisy
    with pytest.raises(ValueError, match="same T, H, W"):
        static_change(real[:4], real)


def test_first_frame_psnr_is_capped_for_an_exact_still_and_low_for_another_frame(real):
    assert first_frame_psnr(real, real[0]) > 100
    assert first_frame_psnr(real, real[-1]) < 40
    assert first_frame_psnr(with_noise(real, 3.0), real[0]) == pytest.approx(38.7, abs=1.0)  # σ = 3: 20·log10(255/3)


def test_frame_seam_ratio_sees_a_step_at_the_patch_border_and_refuses_frames_of_one_patch(real):
    wide = render_clip(512, 256, 2, seed=97002, attrs={"time": "day", "water": "lake"})
    stepped = wide.copy()
    stepped[:, :, 256:] = np.clip(stepped[:, :, 256:].astype(int) + 30, 0, 255)
    assert 0.8 < frame_seam_ratio(wide) < 1.2
    assert frame_seam_ratio(stepped) > 1.5 * frame_seam_ratio(wide)
    # the mid-patch control does not see the step at the border: it stays where the content puts it
    control = frame_seam_control(stepped)
    assert abs(control - frame_seam_control(wide)) < 0.1 and frame_seam_ratio(stepped) > 3 * control
    # it reads the axis the seam figure reads: a horizon half a patch down (a horizontal line at y = 128,
    # where a 512×256 frame has no border) does not count
    horizon = wide.copy()
    horizon[:, 128:] = np.clip(horizon[:, 128:].astype(int) - 40, 0, 255)
    assert abs(frame_seam_control(horizon) - frame_seam_control(wide)) < 0.1
    with pytest.raises(ValueError, match="patch boundary"):
        frame_seam_ratio(real)
    assert frame_seam_ratio(real, patch=128) > 0


def test_clip_figures_gathers_every_figure(real):
    figures = clip_figures(real, real, real[0])
    assert figures["drift"] == 1.0 and figures["seam"] is None and figures["first_frame_psnr"] > 100
    assert figures["seam_control"] is None
    assert set(figures) == {"motion", "flicker", "identical_pairs", "drift", "static_change", "still_share", "seam",
                            "seam_control", "first_frame_psnr"}
    with pytest.raises(ValueError, match="uint8 clip"):
        motion(real[0])
