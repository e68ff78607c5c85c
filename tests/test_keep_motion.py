"""Keeping a clip moving (infer/keep_motion.py): the rule, and a frozen clip kept moving by it,
the same clip for any batch size."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from conftest import smooth_image
from model_fixtures import make_model_dir
from nuwa_inf.infer.bundle import load_bundle
from nuwa_inf.infer.clip_cli import ClipSettings, run_clip
from nuwa_inf.infer.keep_motion import MAX_TEMPERATURE, motion_temperature, recent_change


def test_the_change_is_read_over_the_patch_and_its_neighbours_two_and_one_frames_back():
    tokens = np.full((3, 8, 12), -1, dtype=np.int32)           # 3 frames of 2 × 3 patches of 4 × 4 tokens
    tokens[0] = 0
    tokens[1] = 0
    tokens[1, :4, 8:] = 1                                       # frame 1 changed patch (0, 2) only
    assert recent_change(tokens, (1, 0, 0), (4, 4)) is None     # no two frames before frame 1
    assert recent_change(tokens, (2, 1, 0), (4, 4)) == 0.0      # patches (·, 0..1) did not change
    assert recent_change(tokens, (2, 1, 1), (4, 4)) == pytest.approx(16 / 96)  # all six patches, one changed
    assert recent_change(tokens, (2, 0, 2), (4, 4)) == pytest.approx(16 / 64)  # four patches at the corner


def test_a_frozen_neighbourhood_is_sampled_hotter_and_a_moving_one_is_not():
    assert motion_temperature(0.3, 0.2, 0.2) == 0.3              # moving as much as asked
    assert motion_temperature(0.3, 0.2, 0.5) == 0.3
    assert motion_temperature(0.3, 0.0, 0.0) == 0.3              # off
    assert motion_temperature(0.3, 0.2, None) == 0.3             # unknown (frames 0 and 1)
    assert 0.3 < motion_temperature(0.3, 0.2, 0.1) < motion_temperature(0.3, 0.2, 0.05) <= MAX_TEMPERATURE
    assert motion_temperature(0.3, 0.2, 0.0) == MAX_TEMPERATURE


@pytest.fixture(scope="module")
def video_model(tmp_path_factory):
    return make_model_dir(tmp_path_factory.mktemp("video_model"), extent_t=1, rope_time_dims=4)


def test_a_held_clip_moves_with_keep_motion_and_does_not_depend_on_the_batch(video_model, tmp_path):
    """At a strong persistence the tiny model's clip barely changes after frame 1; asking for
    motion makes later frames change more, and the clip is the same sampled one patch at a time."""
    bundle = load_bundle(video_model, "cpu", video=True)
    still = smooth_image(64, 128, seed=3)

    def changes(keep_motion: float, batch: int, name: str) -> tuple[np.ndarray, np.ndarray]:
        settings = ClipSettings(frames=6, seed=2, temperature=0.3, persistence=1.0, keep_motion=keep_motion,
                                batch=batch)
        result = run_clip(bundle, still, 128, 64, settings, run_dir=tmp_path / name, progress=False)
        clip = np.stack([np.asarray(Image.open(p)) for p in result.frames]).astype(int)
        return clip, np.array([np.abs(clip[t + 1] - clip[t]).mean() for t in range(2, 5)])

    held, held_change = changes(0.0, 16, "held")
    moving, moving_change = changes(1.0, 16, "moving")
    one_by_one, _ = changes(1.0, 1, "one")
    assert np.array_equal(held[:3], moving[:3])                  # frames 0–2 sample at the clip temperature
    assert moving_change.mean() > 1.5 * held_change.mean(), (held_change, moving_change)
    assert np.array_equal(moving, one_by_one)
