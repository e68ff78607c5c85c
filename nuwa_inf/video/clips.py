"""Reading clips: frame folders (what `nuwa-inf data procedural --video` writes) and video
files (MP4, WebM, MOV, MKV, AVI through PyAV; GIF and animated WebP through Pillow), as (T, H, W, 3) uint8.

A clip is a video file, or a folder holding at least 2 image frames directly inside it (in
name order); its caption is the text file beside it with the same stem (`clip_00000.txt`
next to the folder `clip_00000/` or the file `clip_00000.mp4`). Reading stops after the
frames asked for; a broken file is one `UserError` that names it.
"""
from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence

from ..errors import UserError
from ..images import load_rgb

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".gif")
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
PILLOW_CLIPS = (".gif", ".webp")   # read frame by frame with Pillow (an animated WebP is read, not listed)
# What PyAV (its FFmpegError, InvalidDataError is also a ValueError) and Pillow raise for a broken file.
_DECODE_ERRORS = (OSError, ValueError, EOFError, SyntaxError, IndexError, struct.error, zlib.error)


def is_video_file(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def frame_files(folder: Path) -> list[Path]:
    """The image frames directly inside `folder`, in name order."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES
                  and not p.name.startswith("."))


def list_clips(root: str | os.PathLike) -> list[Path]:
    """Every clip under `root` (nested), sorted; `root` may itself be one video file or one frame folder."""
    root = Path(root)
    if root.is_file():
        if not is_video_file(root):
            raise UserError(f"{root} is not a video file ({', '.join(VIDEO_SUFFIXES)}) or a folder of frames")
        return [root]
    if not root.is_dir():
        raise UserError(f"clip data not found: {root}")
    clips = []
    for folder, dirs, files in os.walk(root, followlinks=True):   # linked clip folders count
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        here = Path(folder)
        clips += [here / f for f in files if is_video_file(f) and not f.startswith(".")]
        if len(frame_files(here)) >= 2:
            clips.append(here)
    if not clips:
        raise UserError(f"no clips under {root}: expected video files ({', '.join(VIDEO_SUFFIXES)}) or folders of "
                        f"at least 2 frames")
    return sorted(clips)


def read_clip(path: str | os.PathLike, max_frames: int | None = None, start: int = 0) -> np.ndarray:
    """Frames start … start + max_frames - 1 of the clip at `path` → (T, H, W, 3) uint8 RGB."""
    path = Path(path)
    if start < 0 or (max_frames is not None and max_frames < 1):
        raise UserError(f"read_clip {path}: start must be >= 0 and max_frames >= 1 (got {start}, {max_frames})")
    stop = None if max_frames is None else start + max_frames
    if not path.exists():
        raise UserError(f"clip not found: {path}")
    try:
        if path.is_dir():
            frames = [load_rgb(p) for p in frame_files(path)[start:stop]]   # load_rgb names a broken frame
        elif path.suffix.lower() in PILLOW_CLIPS:
            frames = _read_with_pillow(path, start, stop)
        else:
            frames = _read_with_av(path, start, stop)
    except UserError:
        raise
    except _DECODE_ERRORS as err:
        raise UserError(f"cannot read clip {path}: {_one_line(err)}") from None
    if not frames:
        raise UserError(f"clip {path} has no frames from frame {start}")
    if any(frame.shape != frames[0].shape for frame in frames):
        raise UserError(f"clip {path}: its frames differ in size")
    return np.stack(frames)


def _read_with_pillow(path: Path, start: int, stop: int | None) -> list[np.ndarray]:
    frames = []
    with Image.open(path) as image:
        for index, frame in enumerate(ImageSequence.Iterator(image)):
            if stop is not None and index >= stop:
                break
            if index >= start:
                frames.append(np.asarray(frame.convert("RGB")))
    return frames


def _read_with_av(path: Path, start: int, stop: int | None) -> list[np.ndarray]:
    import av

    frames = []
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise UserError(f"{path} holds no video stream")
        for index, frame in enumerate(container.decode(video=0)):
            if stop is not None and index >= stop:
                break
            if index >= start:
                frames.append(frame.to_ndarray(format="rgb24"))
    return frames


def clip_fps(path: str | os.PathLike) -> float | None:
    """The clip's frame rate when its file says it; None for frame folders.

    GIF and WebP: frames / total duration (a run of identical frames, which Pillow stores as
    one longer frame, lowers it). Other files: the video stream's average rate.
    """
    path = Path(path)
    if path.is_dir():
        return None
    try:
        if path.suffix.lower() in PILLOW_CLIPS:
            return _pillow_fps(path)
        import av

        with av.open(str(path)) as container:
            rate = container.streams.video[0].average_rate if container.streams.video else None
        return float(rate) if rate else None
    except _DECODE_ERRORS as err:
        raise UserError(f"cannot read clip {path}: {_one_line(err)}") from None


def _pillow_fps(path: Path) -> float | None:
    durations = []
    with Image.open(path) as image:
        for frame in ImageSequence.Iterator(image):
            frame.load()   # WebP sets a frame's duration when it decodes it
            durations.append(frame.info.get("duration") or 0)
    return 1000.0 * len(durations) / sum(durations) if sum(durations) else None


def caption_of_clip(path: str | os.PathLike) -> str | None:
    """The caption beside the clip (`<stem>.txt`), stripped; None without one."""
    path = Path(path)
    sidecar = path.parent / f"{path.stem if path.is_file() else path.name}.txt"
    if not sidecar.is_file():
        return None
    text = sidecar.read_text(errors="replace").strip()
    return text or None


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__
