"""Clips in and out: every output format read back (frames, sizes, durations), frame folders
and video files found and read, and the errors of bad paths and bad clips."""
from __future__ import annotations

import av
import numpy as np
import pytest
from PIL import Image

from nuwa_inf.errors import UserError
from nuwa_inf.video.clips import caption_of_clip, clip_fps, list_clips, read_clip
from nuwa_inf.video.writers import open_clip_writer


def moving_square(frames: int = 8, height: int = 48, width: int = 64) -> np.ndarray:
    """(T, H, W, 3) uint8: a bright square moving right over a gradient: every frame differs."""
    y, x = np.mgrid[0:height, 0:width]
    clip = []
    for t in range(frames):
        frame = np.stack([x * 3, y * 4, np.full_like(x, 90)], axis=-1).astype(np.uint8)
        frame[10:26, 4 + 4 * t: 20 + 4 * t] = (250, 240, 30)
        clip.append(frame)
    return np.stack(clip)


def write(path, clip, fps=8.0, **options):
    with open_clip_writer(path, fps, **options) as writer:
        for frame in clip:
            writer.write(frame)
    return path


def test_a_frame_folder_round_trips_exactly(tmp_path):
    clip = moving_square()
    out = write(str(tmp_path / "frames") + "/", clip)
    assert np.array_equal(read_clip(out), clip)
    assert list_clips(tmp_path) == [tmp_path / "frames"]
    assert clip_fps(out) is None


@pytest.mark.parametrize("fps", [8.0, 12.5])
def test_gif_keeps_frames_and_durations_in_milliseconds(tmp_path, fps):
    clip = moving_square()
    out = write(tmp_path / "c.gif", clip, fps)
    with Image.open(out) as gif:
        # milliseconds, to the format's grain of 10 ms (GIF stores centiseconds)
        assert gif.n_frames == 8 and abs(gif.info["duration"] - 1000 / fps) <= 5
    back = read_clip(out)
    assert back.shape == clip.shape and np.abs(back.astype(int) - clip).mean() < 6


def test_webp_keeps_frames_and_durations(tmp_path):
    out = write(tmp_path / "c.webp", moving_square(), 4.0)
    with Image.open(out) as webp:
        webp.load()   # Pillow reads a WebP frame's duration when it decodes the frame
        assert webp.n_frames == 8 and webp.info["duration"] == 250
    assert read_clip(out, max_frames=3).shape == (3, 48, 64, 3)


@pytest.mark.parametrize("suffix", [".mp4", ".webm"])
def test_video_files_keep_frame_count_size_rate_and_pixels(tmp_path, suffix):
    clip = moving_square()
    out = write(tmp_path / f"c{suffix}", clip, 10.0)
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (64, 48)
    assert clip_fps(out) == pytest.approx(10.0)
    back = read_clip(out)
    assert back.shape == clip.shape
    assert np.abs(back.astype(int) - clip).mean() < 12
    assert read_clip(out, max_frames=3, start=2).shape[0] == 3
    assert list_clips(out) == [out]


def test_an_odd_sized_clip_is_padded_for_the_codec(tmp_path):
    clip = moving_square(4, 47, 63)
    back = read_clip(write(tmp_path / "odd.mp4", clip))
    assert back.shape == (4, 48, 64, 3)


def test_list_clips_finds_folders_and_files_and_skips_single_images(tmp_path):
    (tmp_path / "a").mkdir()
    write(str(tmp_path / "a" / "clip_00000") + "/", moving_square(3))
    (tmp_path / "a" / "clip_00000.txt").write_text("a scroll landscape at night\n")
    write(tmp_path / "b.gif", moving_square(3))
    lone = tmp_path / "lone"
    lone.mkdir()
    Image.fromarray(moving_square(1)[0]).save(lone / "only.png")
    assert list_clips(tmp_path) == [tmp_path / "a" / "clip_00000", tmp_path / "b.gif"]
    assert caption_of_clip(tmp_path / "a" / "clip_00000") == "a scroll landscape at night"
    assert caption_of_clip(tmp_path / "b.gif") is None
    with pytest.raises(UserError, match="no clips"):
        list_clips(lone)


def test_writer_errors_leave_nothing_behind(tmp_path):
    with pytest.raises(UserError, match="frame folder"):
        open_clip_writer(tmp_path / "c.avi", 8)
    existing = tmp_path / "c.gif"
    existing.write_bytes(b"keep")
    with pytest.raises(UserError, match="exists"):
        open_clip_writer(existing, 8)
    assert existing.read_bytes() == b"keep"
    with pytest.raises(UserError, match="fps"):
        open_clip_writer(tmp_path / "d.gif", 0)
    with pytest.raises(UserError, match="frame 1"):
        with open_clip_writer(tmp_path / "e.mp4", 8) as writer:
            writer.write(moving_square(1)[0])
            writer.write(moving_square(1, 32, 32)[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.gif"]


def test_a_corrupt_video_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x01 not a video at all" * 10)
    with pytest.raises(UserError, match="bad.mp4"):
        read_clip(bad)
