"""Writing clips frame by frame: MP4 and WebM through PyAV, GIF and animated WebP through
Pillow, or a folder of PNG frames (a path ending in / or without a suffix).

Every format is written to a temporary sibling and renamed into place on `close()`, so a
killed job never leaves half a clip under the final name. GIF and WebP need all frames at
the end (Pillow's `save_all`): GIF frames are kept palette-quantised (1 byte a pixel), WebP
frames as RGB. Durations are milliseconds per frame (round(1000 / fps)), as both formats
store them. Video codecs need even sizes: an odd last row or column is repeated.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from ..atomic import atomic_path
from ..errors import UserError

CLIP_SUFFIXES = (".mp4", ".webm", ".gif", ".webp")
VIDEO_CODECS = {".mp4": ("libx264", "mpeg4"), ".webm": ("libvpx-vp9", "libvpx")}


def is_frame_folder(path: str | os.PathLike) -> bool:
    text = str(path)
    return text.endswith(("/", os.sep)) or not Path(text).suffix


class ClipWriter:
    """Streams frames (H, W, 3) uint8 into one clip; `close()` puts it in place."""

    def __init__(self, out: Path, fps: float):
        self.out, self.fps, self.frames_written, self.size = out, fps, 0, None
        self.closed = False

    def write(self, frame: np.ndarray) -> None:
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise UserError(f"a frame must be (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
        if self.size is None:
            self.size = frame.shape[:2]
        elif frame.shape[:2] != self.size:
            raise UserError(f"frame {self.frames_written} is {frame.shape[1]}x{frame.shape[0]}, the clip's frames "
                            f"are {self.size[1]}x{self.size[0]}")
        self._write(np.ascontiguousarray(frame))
        self.frames_written += 1

    def close(self) -> Path:
        if not self.closed:
            self.closed = True
            self._finish()
        return self.out

    def abort(self) -> None:
        """Drop what was written (the output is left as it was)."""
        self.closed = True

    def __enter__(self) -> "ClipWriter":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()
        self._cleanup()

    def _write(self, frame: np.ndarray) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        raise NotImplementedError

    def _cleanup(self) -> None:
        pass


class FolderWriter(ClipWriter):
    """frame_00000.png … in a temporary sibling folder, renamed onto `out` at the end."""

    def __init__(self, out: Path, fps: float):
        super().__init__(out, fps)
        self.staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))

    def _write(self, frame: np.ndarray) -> None:
        Image.fromarray(frame).save(self.staging / f"frame_{self.frames_written:05d}.png", compress_level=1)

    def _finish(self) -> None:
        if self.out.exists():
            shutil.rmtree(self.out) if self.out.is_dir() else self.out.unlink()
        os.replace(self.staging, self.out)

    def _cleanup(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


class PillowWriter(ClipWriter):
    """Animated GIF (palette frames) or WebP, saved at `close()`."""

    def __init__(self, out: Path, fps: float):
        super().__init__(out, fps)
        self.images: list[Image.Image] = []

    def _write(self, frame: np.ndarray) -> None:
        image = Image.fromarray(frame)
        self.images.append(image.quantize(256, dither=Image.Dither.NONE) if self.out.suffix.lower() == ".gif"
                           else image)

    def _finish(self) -> None:
        if not self.images:
            raise UserError(f"{self.out}: no frames to write")
        duration = round(1000 / self.fps)
        options = {"loop": 0, "duration": duration}
        if self.out.suffix.lower() == ".webp":
            options.update(lossless=False, quality=90)
        with atomic_path(self.out) as tmp:
            self.images[0].save(tmp, save_all=True, append_images=self.images[1:], **options)


class AvWriter(ClipWriter):
    """MP4 (H.264, else MPEG-4 part 2) or WebM (VP9, else VP8), yuv420p, streamed to a temporary sibling."""

    def __init__(self, out: Path, fps: float):
        import av

        super().__init__(out, fps)
        codecs = [c for c in VIDEO_CODECS[out.suffix.lower()] if c in av.codecs_available]
        if not codecs:
            raise UserError(f"this PyAV build has no encoder for {out.suffix} ({', '.join(VIDEO_CODECS[out.suffix])})")
        self.codec = codecs[0]
        self._atomic = atomic_path(out)
        self.tmp = self._atomic.__enter__()
        self.container = av.open(str(self.tmp), mode="w")
        self.closed_container = False
        self.stream = None

    def _write(self, frame: np.ndarray) -> None:
        import av

        h, w = frame.shape[:2]
        frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        if self.stream is None:
            self.stream = self.container.add_stream(self.codec, rate=Fraction(self.fps).limit_denominator(1001))
            self.stream.width, self.stream.height = frame.shape[1], frame.shape[0]
            self.stream.pix_fmt = "yuv420p"
        for packet in self.stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            self.container.mux(packet)

    def _finish(self) -> None:
        if self.stream is None:
            raise UserError(f"{self.out}: no frames to write")
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()
        self.closed_container = True
        self._atomic.__exit__(None, None, None)   # fsync and rename into place

    def _cleanup(self) -> None:
        if not self.closed_container:
            self.container.close()
        self.tmp.unlink(missing_ok=True)


def check_clip_output(out_path: str | os.PathLike, overwrite: bool) -> Path:
    """The output path of a clip, checked before any work: a known format (or a folder) whose
    directory exists, not already there unless `overwrite` (an empty folder may be used)."""
    folder = is_frame_folder(out_path)
    out = Path(out_path)
    if not folder and out.suffix.lower() not in CLIP_SUFFIXES:
        raise UserError(f"{out_path}: a clip is written as {', '.join(CLIP_SUFFIXES)} or a frame folder (a path "
                        f"ending in /)")
    if not out.parent.is_dir():
        raise UserError(f"{out_path}: directory {out.parent} does not exist")
    if out.exists() and not overwrite and not (folder and out.is_dir() and not any(out.iterdir())):
        raise UserError(f"{out} exists (pass --overwrite to replace it)")
    return out


def open_clip_writer(out_path: str | os.PathLike, fps: float, overwrite: bool = False) -> ClipWriter:
    """A writer for `out_path` chosen by its suffix (no suffix or a trailing /: a frame folder)."""
    if not 0 < fps <= 240:
        raise UserError(f"fps must be in (0, 240], got {fps}")
    out = check_clip_output(out_path, overwrite)
    suffix = out.suffix.lower()
    if is_frame_folder(out_path):
        return FolderWriter(out, fps)
    if suffix in (".gif", ".webp"):
        return PillowWriter(out, fps)
    return AvWriter(out, fps)
