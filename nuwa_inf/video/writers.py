"""Writing clips frame by frame: MP4 and WebM through PyAV, GIF and animated WebP through
Pillow, or a folder of PNG frames (a path ending in / or without a suffix).

Every format is written to a temporary sibling and renamed into place on `close()`, so a
killed job never leaves half a clip under the final name; an error or `abort()` leaves the
output as it was.

Decisions:
  * MP4 is H.264 (libx264), else MPEG-4 part 2; WebM is VP9, else VP8; both yuv420p. Those
    codecs need even sizes: an odd frame gets its last row / column repeated (a 63x47 clip
    reads back as 64x48).
  * GIF and WebP: Pillow's `save_all` wants every frame at the end, so frames are spilled to
    an uncompressed multi-page TIFF beside the output (disk, not RAM) and Pillow reads them
    back one at a time. Frame i ends at round(1000 (i + 1) / fps) ms on the format's grain
    (GIF 10 ms, WebP 1 ms), so each frame lasts round(1000 / fps) ms when that is on the
    grain and the total time is right when it is not. GIF plays at most 50 fps (viewers
    slow shorter frames to 100 ms). Both formats store a run of identical frames as one
    longer frame.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from ..atomic import atomic_path
from ..errors import UserError

CLIP_SUFFIXES = (".mp4", ".webm", ".gif", ".webp")
VIDEO_CODECS = {".mp4": ("libx264", "mpeg4"), ".webm": ("libvpx-vp9", "libvpx")}   # preferred first
MAX_FPS = 240.0
GIF_MAX_FPS = 50.0
_DURATION_GRAIN_MS = {".gif": 10, ".webp": 1}
_FRAME_NAME = "frame_{:05d}.png"


class _Aborted(Exception):
    """Thrown into `atomic_path` to drop its temporary file instead of renaming it."""


def is_frame_folder(path: str | os.PathLike) -> bool:
    text = os.fspath(path)
    return text.endswith(("/", os.sep)) or not Path(text).suffix


def frame_durations(count: int, fps: float, grain_ms: int) -> list[int]:
    """Milliseconds per frame: frame i ends at 1000 (i + 1) / fps, rounded to the grain."""
    ends = [grain_ms * round(1000 * (i + 1) / fps / grain_ms) for i in range(count)]
    return np.diff([0] + ends).tolist()


class ClipWriter(ABC):
    """Streams frames (H, W, 3) uint8 into one clip; `close()` puts it in place, `abort()` drops it."""

    def __init__(self, out: Path, fps: float):
        self.out, self.fps = out, fps
        self.frames_written = 0
        self.size: tuple[int, int] | None = None   # (H, W) of the first frame
        self.closed = False

    def write(self, frame: np.ndarray) -> None:
        if self.closed:
            raise UserError(f"{self.out}: the clip writer is closed")
        frame = np.asarray(frame)
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
        """Finish the clip and rename it onto the output path (a clip without frames is an error)."""
        if not self.closed:
            self.closed = True
            try:
                if self.frames_written == 0:
                    raise UserError(f"{self.out}: no frames to write")
                self._finish()
            finally:
                self._cleanup()
        return self.out

    def abort(self) -> None:
        """Drop what was written (the output is left as it was)."""
        if not self.closed:
            self.closed = True
            self._cleanup()

    def __enter__(self) -> "ClipWriter":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()

    @abstractmethod
    def _write(self, frame: np.ndarray) -> None:
        """Add one checked frame (each format's own)."""

    @abstractmethod
    def _finish(self) -> None:
        """Put the finished clip in place (each format's own)."""

    def _cleanup(self) -> None:  # noqa: B027 (a format without temporary files has nothing to do)
        """Remove the temporary files (after `_finish`, or instead of it)."""


class FolderWriter(ClipWriter):
    """frame_00000.png … in a temporary sibling folder, renamed onto `out` at the end."""

    def __init__(self, out: Path, fps: float):
        super().__init__(out, fps)
        self.staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        umask = os.umask(0)
        os.umask(umask)
        self.staging.chmod(0o777 & ~umask)   # mkdtemp makes 0700

    def _write(self, frame: np.ndarray) -> None:
        Image.fromarray(frame).save(self.staging / _FRAME_NAME.format(self.frames_written), compress_level=1)

    def _finish(self) -> None:
        old = None
        if os.path.lexists(self.out):   # an empty folder or old frames (check_clip_output), moved aside first
            old = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.old.", dir=self.out.parent)) / "old"
            os.replace(self.out, old)
        os.replace(self.staging, self.out)
        if old is not None:
            shutil.rmtree(old.parent)

    def _cleanup(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


class PillowWriter(ClipWriter):
    """Animated GIF or WebP: frames spilled to a temporary TIFF, encoded by Pillow at `close()`."""

    def __init__(self, out: Path, fps: float):
        import tifffile

        super().__init__(out, fps)
        self.suffix = out.suffix.lower()
        fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".frames.tif", dir=out.parent)
        os.close(fd)
        self.spill = Path(name)
        self.tiff = tifffile.TiffWriter(self.spill)

    def _write(self, frame: np.ndarray) -> None:
        self.tiff.write(frame, photometric="rgb", contiguous=False)

    def _finish(self) -> None:
        self.tiff.close()
        options = {"save_all": True, "loop": 0,
                   "duration": frame_durations(self.frames_written, self.fps, _DURATION_GRAIN_MS[self.suffix])}
        if self.suffix == ".webp":
            options.update(format="WEBP", lossless=False, quality=90)
        else:
            options.update(format="GIF")
        limit = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None   # our own spill file: no decompression-bomb guard for large frames
        try:
            with Image.open(self.spill) as frames, atomic_path(self.out) as tmp:
                frames.save(tmp, **options)   # Pillow seeks through the TIFF's pages one by one
        finally:
            Image.MAX_IMAGE_PIXELS = limit

    def _cleanup(self) -> None:
        self.tiff.close()
        self.spill.unlink(missing_ok=True)


class AvWriter(ClipWriter):
    """MP4 or WebM (codec: the first of VIDEO_CODECS this PyAV build encodes), yuv420p, streamed to a
    temporary sibling."""

    def __init__(self, out: Path, fps: float):
        import av

        super().__init__(out, fps)
        choices = VIDEO_CODECS[out.suffix.lower()]
        codecs = [name for name in choices if _can_encode(name)]
        if not codecs:
            raise UserError(f"{out}: this PyAV build has no encoder for {out.suffix} (tried {', '.join(choices)})")
        self.codec = codecs[0]
        self.stream = None
        self._atomic = atomic_path(out)
        self.tmp = self._atomic.__enter__()
        try:
            self.container = av.open(str(self.tmp), mode="w")
        except BaseException:
            self._atomic.__exit__(_Aborted, _Aborted(), None)
            raise
        self._container_open = True

    def _write(self, frame: np.ndarray) -> None:
        import av

        h, w = frame.shape[:2]
        frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")   # (H, W, 3) -> even H, W
        if self.stream is None:
            self.stream = self.container.add_stream(self.codec, rate=Fraction(self.fps).limit_denominator(1001))
            self.stream.width, self.stream.height = frame.shape[1], frame.shape[0]
            self.stream.pix_fmt = "yuv420p"
        for packet in self.stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            self.container.mux(packet)

    def _finish(self) -> None:
        for packet in self.stream.encode():   # flush the encoder's delayed frames
            self.container.mux(packet)
        self.container.close()
        self._container_open = False
        self._atomic.__exit__(None, None, None)   # fsync and rename into place

    def _cleanup(self) -> None:
        if self._container_open:   # not finished: drop the temporary file
            self._container_open = False
            self.container.close()
            self._atomic.__exit__(_Aborted, _Aborted(), None)


def _can_encode(codec: str) -> bool:
    import av

    try:
        av.Codec(codec, "w")
    except ValueError:   # av's UnknownCodecError
        return False
    return True


def check_clip_output(out_path: str | os.PathLike, overwrite: bool) -> Path:
    """The output path of a clip, checked before any work: a known format (or a folder) whose
    directory exists, not already there unless `overwrite`. A frame folder may be an empty
    folder; it replaces an old one only if that holds nothing but frame_*.png files."""
    folder = is_frame_folder(out_path)
    out = Path(out_path)
    if not folder and out.suffix.lower() not in CLIP_SUFFIXES:
        raise UserError(f"{out_path}: a clip is written as {', '.join(CLIP_SUFFIXES)} or a frame folder (a path "
                        f"ending in /)")
    if not out.parent.is_dir():
        raise UserError(f"{out_path}: directory {out.parent} does not exist")
    if not os.path.lexists(out):
        return out
    if folder and out.is_dir() and not out.is_symlink():
        entries = list(out.iterdir())
        if not entries:
            return out
        if overwrite and all(p.is_file() and p.name.startswith("frame_") and p.suffix == ".png" for p in entries):
            return out
        if overwrite:
            raise UserError(f"{out}: holds files other than frame_*.png; not replacing it (choose another folder)")
    elif folder or out.is_dir():
        raise UserError(f"{out} exists and is not a {'frame folder' if folder else 'file'}")
    elif overwrite:
        return out
    raise UserError(f"{out} exists (pass --overwrite to replace it)")


def open_clip_writer(out_path: str | os.PathLike, fps: float, overwrite: bool = False) -> ClipWriter:
    """A writer for `out_path` chosen by its suffix (no suffix or a trailing /: a frame folder)."""
    if not 0 < fps <= MAX_FPS:
        raise UserError(f"fps must be in (0, {MAX_FPS:g}], got {fps}")
    out = check_clip_output(out_path, overwrite)
    suffix = out.suffix.lower()
    if suffix == ".gif" and fps > GIF_MAX_FPS:
        raise UserError(f"{out}: GIF plays at most {GIF_MAX_FPS:g} fps (viewers slow shorter frames to 100 ms), "
                        f"got {fps}; use a lower fps or .mp4 / .webm / .webp")
    if is_frame_folder(out_path):
        return FolderWriter(out, fps)
    if suffix in _DURATION_GRAIN_MS:
        return PillowWriter(out, fps)
    return AvWriter(out, fps)
