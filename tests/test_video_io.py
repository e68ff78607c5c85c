"""Clips in and out: every output format read back (frames, sizes, durations, rates), frame
folders and video files found and read, reading that stops early, and the errors of bad paths
and bad clips."""
from __future__ import annotations

import av
import numpy as np
import pytest
from PIL import Image, ImageSequence

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
    assert writer.frames_written == len(clip)
    return path


def pillow_durations(path) -> list[int]:
    with Image.open(path) as image:
        durations = []
        for frame in ImageSequence.Iterator(image):
            frame.load()   # WebP sets a frame's duration when it decodes it
            durations.append(frame.info["duration"])
    return durations


def names(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_frame_folder_round_trips_exactly(tmp_path):
    clip = moving_square()
    out = write(str(tmp_path / "frames") + "/", clip)
    assert np.array_equal(read_clip(out), clip)
    assert names(tmp_path / "frames") == [f"frame_{i:05d}.png" for i in range(8)]
    assert names(tmp_path) == ["frames"]   # the staging folder is gone
    assert list_clips(tmp_path) == [tmp_path / "frames"]
    assert clip_fps(out) is None


@pytest.mark.parametrize("fps", [10.0, 12.5, 25.0])
def test_gif_keeps_frames_and_durations_in_milliseconds(tmp_path, fps):
    clip = moving_square()
    out = write(tmp_path / "c.gif", clip, fps)
    assert pillow_durations(out) == [round(1000 / fps)] * 8
    back = read_clip(out)
    assert back.shape == clip.shape and np.abs(back.astype(int) - clip).mean() < 4
    assert clip_fps(out) == pytest.approx(fps)
    assert names(tmp_path) == ["c.gif"]   # the spilled frames are gone


def test_gif_off_its_10_ms_grain_keeps_the_total_time(tmp_path):
    durations = pillow_durations(write(tmp_path / "c.gif", moving_square(), 8.0))   # 125 ms a frame
    assert set(durations) <= {120, 130} and sum(durations) == 1000


def test_webp_keeps_frames_and_durations(tmp_path):
    clip = moving_square()
    out = write(tmp_path / "c.webp", clip, 4.0)
    assert pillow_durations(out) == [250] * 8
    assert np.abs(read_clip(out).astype(int) - clip).mean() < 6
    assert read_clip(out, max_frames=3).shape == (3, 48, 64, 3)
    assert names(tmp_path) == ["c.webp"]


@pytest.mark.parametrize("suffix", [".mp4", ".webm"])
def test_video_files_keep_frame_count_size_rate_and_pixels(tmp_path, suffix):
    clip = moving_square()
    out = write(tmp_path / f"c{suffix}", clip, 10.0)
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (64, 48)
        assert float(stream.average_rate) == pytest.approx(10.0)
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(decoded) == 8
    assert np.abs(np.stack(decoded).astype(int) - clip).mean() < 6
    assert clip_fps(out) == pytest.approx(10.0)
    assert np.array_equal(read_clip(out), np.stack(decoded))
    assert np.array_equal(read_clip(out, max_frames=3, start=2), np.stack(decoded[2:5]))
    assert list_clips(out) == [out]
    assert names(tmp_path) == [f"c{suffix}"]


def test_an_odd_sized_clip_is_padded_for_the_codec(tmp_path):
    clip = moving_square(4, 47, 63)
    back = read_clip(write(tmp_path / "odd.mp4", clip))
    assert back.shape == (4, 48, 64, 3)
    assert np.abs(back[:, :47, :63].astype(int) - clip).mean() < 6


def test_reading_stops_after_max_frames(tmp_path):
    folder = write(str(tmp_path / "frames") + "/", moving_square(6))
    (tmp_path / "frames" / "frame_00004.png").write_bytes(b"not a png")   # only a full read reaches it
    assert read_clip(folder, max_frames=3).shape == (3, 48, 64, 3)
    with pytest.raises(UserError, match="frame_00004.png"):
        read_clip(folder)
    gif = write(tmp_path / "c.gif", moving_square(), 10.0)
    gif.write_bytes(gif.read_bytes()[: gif.stat().st_size * 2 // 3])   # the last frames cut off
    assert read_clip(gif, max_frames=2).shape == (2, 48, 64, 3)
    with pytest.raises(UserError, match="c.gif"):
        read_clip(gif)


def test_list_clips_finds_folders_and_files_and_skips_single_images(tmp_path):
    (tmp_path / "a").mkdir()
    write(str(tmp_path / "a" / "clip_00000") + "/", moving_square(3))
    (tmp_path / "a" / "clip_00000.txt").write_text("a scroll landscape at night\n")
    write(tmp_path / "b.gif", moving_square(3))
    lone = tmp_path / "lone"
    lone.mkdir()
    Image.fromarray(moving_square(1)[0]).save(lone / "only.png")
    assert list_clips(tmp_path) == [tmp_path / "a" / "clip_00000", tmp_path / "b.gif"]
    assert list_clips(tmp_path / "a" / "clip_00000") == [tmp_path / "a" / "clip_00000"]
    assert caption_of_clip(tmp_path / "a" / "clip_00000") == "a scroll landscape at night"
    assert caption_of_clip(tmp_path / "b.gif") is None
    with pytest.raises(UserError, match="no clips"):
        list_clips(lone)
    with pytest.raises(UserError, match="not found"):
        list_clips(tmp_path / "missing")


def test_writer_errors_leave_nothing_behind(tmp_path):
    with pytest.raises(UserError, match=r"\.mp4, \.webm, \.gif, \.webp or a frame folder"):
        open_clip_writer(tmp_path / "c.avi", 8)
    existing = tmp_path / "c.gif"
    existing.write_bytes(b"keep")
    with pytest.raises(UserError, match="exists"):
        open_clip_writer(existing, 8)
    assert existing.read_bytes() == b"keep"
    for fps in (0, 241):
        with pytest.raises(UserError, match="fps"):
            open_clip_writer(tmp_path / "d.mp4", fps)
    with pytest.raises(UserError, match="GIF plays at most 50 fps"):
        open_clip_writer(tmp_path / "d.gif", 60)
    for suffix in (".mp4", ".gif", "/"):
        with pytest.raises(UserError, match="frame 1 is 32x32"):
            with open_clip_writer(str(tmp_path / "e") + suffix, 8) as writer:
                writer.write(moving_square(1)[0])
                writer.write(moving_square(1, 32, 32)[0])
    with pytest.raises(UserError, match="no frames"):
        open_clip_writer(tmp_path / "f.webm", 8).close()
    assert names(tmp_path) == ["c.gif"]


def test_overwrite_replaces_a_clip_but_never_a_folder_of_other_files(tmp_path):
    out = write(tmp_path / "c.mp4", moving_square(), 10.0)
    write(out, moving_square(3), 10.0, overwrite=True)
    assert len(read_clip(out)) == 3
    frames = write(str(tmp_path / "frames") + "/", moving_square())
    write(frames, moving_square(2), overwrite=True)
    assert names(tmp_path / "frames") == ["frame_00000.png", "frame_00001.png"]
    (tmp_path / "frames" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="other than frame"):
        open_clip_writer(frames, 8, overwrite=True)
    assert (tmp_path / "frames" / "notes.txt").read_text() == "mine"


def test_a_clip_whose_frames_differ_in_size_is_refused(tmp_path):
    folder = write(str(tmp_path / "frames") + "/", moving_square(3))
    Image.fromarray(moving_square(1, 32, 32)[0]).save(tmp_path / "frames" / "frame_00003.png")
    with pytest.raises(UserError, match="differ in size"):
        read_clip(folder)


def test_a_corrupt_video_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x01 not a video at all" * 10)
    with pytest.raises(UserError, match="bad.mp4"):
        read_clip(bad)
    with pytest.raises(UserError, match="bad.mp4"):
        clip_fps(bad)
