"""A disk-backed RGB uint8 canvas: the finished pixels of a run, one raw file in the run directory.

The file is exactly H * W * 3 bytes, row-major (y, x, rgb), no header: the run state stores
the shape. Regions are written with positioned writes (`os.pwrite`) and read back with
positioned reads, so the process's resident memory holds only what the caller asks for
(the OS page cache holds the rest and does not count toward RSS; an `np.memmap` of the
whole file would). Data written before a kill is in the file; reopen with `create=False`.

Exporters that stream a canvas to PNG/TIFF live in `nuwa_inf.infer.writers`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np

from nuwa_inf.errors import UserError

CHANNELS = 3


class PixelCanvas:
    """(height, width, 3) uint8 pixels in a plain file at `path`.

    create=True makes a new all-black canvas (replacing any file at `path`);
    create=False opens an existing one and checks its size against (height, width).
    """

    def __init__(self, path: str | os.PathLike, height: int, width: int, create: bool = True):
        if height <= 0 or width <= 0:
            raise ValueError(f"canvas size must be positive, got {height}x{width}")
        self.path = Path(path)
        self.height = int(height)
        self.width = int(width)
        self.row_bytes = self.width * CHANNELS
        self.nbytes = self.height * self.row_bytes
        self._fd = -1
        if create:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o644)
            os.ftruncate(self._fd, self.nbytes)  # sparse on most filesystems: costs no disk until written
        else:
            try:
                self._fd = os.open(self.path, os.O_RDWR | getattr(os, "O_BINARY", 0))
            except FileNotFoundError:
                raise UserError(f"{self.path}: pixel canvas not found (run directory incomplete?)") from None
            size = os.fstat(self._fd).st_size
            if size != self.nbytes:
                self.close()
                raise UserError(
                    f"{self.path}: pixel canvas is {size} bytes, expected {self.nbytes} "
                    f"for {self.height}x{self.width} RGB (run directory from a different canvas size?)"
                )

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, CHANNELS)

    def write_region(self, y0: int, x0: int, pixels: np.ndarray) -> None:
        """Store `pixels` (h, w, 3) uint8 with its top-left corner at (y0, x0)."""
        if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != CHANNELS:
            raise ValueError(f"expected (h, w, 3) uint8 pixels, got {pixels.shape} {pixels.dtype}")
        h, w = pixels.shape[:2]
        self._check_bounds(y0, x0, h, w)
        if h == 0 or w == 0:
            return
        if w == self.width:  # whole rows are contiguous in the file: one write
            _pwrite_all(self._fd, memoryview(np.ascontiguousarray(pixels)).cast("B"), y0 * self.row_bytes)
            return
        for r in range(h):
            row = np.ascontiguousarray(pixels[r])  # (w, 3)
            _pwrite_all(self._fd, memoryview(row).cast("B"), (y0 + r) * self.row_bytes + x0 * CHANNELS)

    def read_region(self, y0: int, x0: int, h: int, w: int) -> np.ndarray:
        """Return a new (h, w, 3) uint8 array with the pixels at (y0:y0+h, x0:x0+w)."""
        self._check_bounds(y0, x0, h, w)
        out = np.empty((h, w, CHANNELS), np.uint8)
        if h == 0 or w == 0:
            return out
        if w == self.width:
            _pread_into(self._fd, memoryview(out).cast("B"), y0 * self.row_bytes)
            return out
        for r in range(h):
            _pread_into(self._fd, memoryview(out[r]).cast("B"), (y0 + r) * self.row_bytes + x0 * CHANNELS)
        return out

    def iter_bands(self, rows: int = 64) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (y0, band) with band of shape (<=rows, width, 3), top to bottom."""
        for y0 in range(0, self.height, rows):
            yield y0, self.read_region(y0, 0, min(rows, self.height - y0), self.width)

    def flush(self) -> None:
        """Make everything written so far durable (survives a power cut, not just a kill)."""
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "PixelCanvas":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_fd", -1) >= 0:
            self.close()

    def __repr__(self) -> str:
        return f"PixelCanvas({str(self.path)!r}, height={self.height}, width={self.width})"

    def _check_bounds(self, y0: int, x0: int, h: int, w: int) -> None:
        if self._fd < 0:
            raise ValueError(f"{self!r} is closed")
        if y0 < 0 or x0 < 0 or h < 0 or w < 0 or y0 + h > self.height or x0 + w > self.width:
            raise ValueError(f"region y={y0} x={x0} h={h} w={w} outside the {self.height}x{self.width} canvas")


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    """Write all of `data` at `offset` (a single pwrite may write less, e.g. above 2 GiB)."""
    while len(data):
        if hasattr(os, "pwrite"):
            n = os.pwrite(fd, data, offset)
        else:  # Windows: no pwrite; the canvas is used from one thread
            os.lseek(fd, offset, os.SEEK_SET)
            n = os.write(fd, data)
        data = data[n:]
        offset += n


def _pread_into(fd: int, buf: memoryview, offset: int) -> None:
    """Fill `buf` from `offset`; a short read means the file is shorter than the canvas."""
    while len(buf):
        if hasattr(os, "preadv"):
            n = os.preadv(fd, [buf], offset)
        else:
            os.lseek(fd, offset, os.SEEK_SET)
            chunk = os.read(fd, len(buf))
            n = len(chunk)
            buf[:n] = chunk
        if n == 0:
            raise OSError(f"pixel canvas file ended early at byte {offset}")
        buf = buf[n:]
        offset += n
