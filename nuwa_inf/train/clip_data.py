"""Pre-tokenised training clips, and random crops of T frames × R × C patches from them.

Every frame of a clip (a frame folder or a video file, video/clips.py) is encoded once and
cached as one (T, h, w) int16 token array per clip (and one for its mirror image), so the
transformer never runs the encoder in its loop:

    CACHE/manifest.json   {"tokenizer": <weights hash>, "items": [{"source", "mtime", "size", "file"}]}
    CACHE/clip_00000.npy  (T, h, w) int16 (clip_00000_flip.npy: the mirrored clip's)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..atomic import atomic_path, write_json
from ..data.datasets import warn
from ..errors import UserError
from ..tokenizer.tiled import encode_tiled
from ..tokenizer.vqgan import VQGAN
from ..video.clips import caption_of_clip, list_clips, read_clip
from .token_cache import load_manifest, to_patches

MAX_TRAINING_FRAMES = 64      # frames read per clip: crops are a few frames long


def _stamp(path: Path) -> tuple[float, int]:
    """(mtime, size) of a clip: a folder's newest frame and its frame count."""
    if path.is_dir():
        frames = [p for p in path.iterdir() if p.is_file()]
        return max((p.stat().st_mtime for p in frames), default=0.0), len(frames)
    stat = path.stat()
    return stat.st_mtime, stat.st_size


def pretokenize_clips(data: str | Path, tokenizer: VQGAN, cache: Path, min_shape: tuple[int, int, int],
                      flips: bool = True) -> tuple[list[np.ndarray], list[Path]]:
    """(token arrays (T, h, w) of every usable clip under `data` and their mirror copies, the
    clip of each); clips shorter or smaller than `min_shape` (frames, h, w tokens) are skipped
    with a message."""
    manifest_path, manifest = load_manifest(cache, tokenizer)
    done = {(item["source"], item["mtime"], item["size"]): item for item in manifest["items"]}
    f = tokenizer.downsample
    clips, sources = [], []
    for path in tqdm(list_clips(data), desc="pre-tokenising clips", dynamic_ncols=True):
        key = (str(path.resolve()), *_stamp(path))
        item = done.get(key)
        if item is None or not (cache / item["file"]).is_file() or (flips and not item.get("flip")):
            try:
                frames = read_clip(path, max_frames=MAX_TRAINING_FRAMES)
            except UserError as err:
                warn(f"skipping unreadable clip: {err}")
                continue
            t, h, w = frames.shape[0], frames.shape[1] // f, frames.shape[2] // f
            if t < min_shape[0] or h < min_shape[1] or w < min_shape[2]:
                warn(f"{path} ({t} frames of {frames.shape[2]}x{frames.shape[1]}) is smaller than one training "
                     f"crop ({min_shape[0]} frames of {min_shape[2] * f}x{min_shape[1] * f}); skipped")
                continue
            frames = frames[:, :h * f, :w * f]
            name = f"clip_{len(manifest['items']):05d}.npy"
            _save(cache / name, _encode(tokenizer, frames))
            item = {"source": key[0], "mtime": key[1], "size": key[2], "file": name, "flip": None}
            if flips:
                item["flip"] = name.replace(".npy", "_flip.npy")
                _save(cache / item["flip"], _encode(tokenizer, np.ascontiguousarray(frames[:, :, ::-1])))
            manifest["items"].append(item)
            write_json(manifest_path, manifest)
        clips.append(np.load(cache / item["file"]))
        sources.append(Path(item["source"]))
        if flips and item.get("flip"):
            clips.append(np.load(cache / item["flip"]))
            sources.append(Path(item["source"]))
    if not clips:
        raise UserError(f"no usable training clips under {data}")
    return clips, sources


def clip_captions(data: str | Path) -> dict[Path, str]:
    """Caption of each clip under `data` that has one (the sidecar .txt beside it)."""
    captions = {}
    for path in list_clips(data):
        text = caption_of_clip(path)
        if text:
            captions[path.resolve()] = text
    return captions


def _encode(tokenizer: VQGAN, frames: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 → (T, H/f, W/f) token grids, one frame at a time."""
    return np.stack([encode_tiled(tokenizer, frame) for frame in frames])


def _save(path: Path, tokens: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, tokens.astype(np.int16))


class ClipCropSampler:
    """Random crops of `frames` consecutive frames × rows × cols patches of the clips' token
    arrays, returned patch-major and frame-major (B·T·R·C, P), like TokenCropSampler's."""

    def __init__(self, clips: list[np.ndarray], frames: int, rows: int, cols: int, ph: int, pw: int, seed: int = 0):
        self.clips = clips
        self.frames, self.rows, self.cols, self.ph, self.pw = frames, rows, cols, ph, pw
        self.canvas = None  # each clip is its own canvas (as TokenCropSampler's `canvas`)
        self.generator = torch.Generator().manual_seed(seed)

    def first_frames(self) -> list[np.ndarray]:
        """Each clip's first frame (h, w): what a training crop's style memory is pooled from,
        as an animation's memory is its still."""
        return [clip[0] for clip in self.clips]

    def sample_with_picks(self, count: int) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, int, int]]]:
        """`count` crops → (tokens (B·T·R·C, P), canvas rows (B·T·R·C, 2), per crop (clip index,
        top token row, left token column)); a crop's frames start anywhere in its clip."""
        t_len, h, w = self.frames, self.rows * self.ph, self.cols * self.pw
        crops, rows, picks = [], [], []
        for _ in range(count):
            index = int(torch.randint(len(self.clips), (1,), generator=self.generator))
            clip = self.clips[index]
            t0 = int(torch.randint(clip.shape[0] - t_len + 1, (1,), generator=self.generator))
            y = int(torch.randint(clip.shape[1] - h + 1, (1,), generator=self.generator))
            x = int(torch.randint(clip.shape[2] - w + 1, (1,), generator=self.generator))
            window = clip[t0: t0 + t_len, y: y + h, x: x + w].astype(np.int64)      # (T, h, w)
            crops.append(torch.from_numpy(window).reshape(t_len * h, w))
            picks.append((index, y, x))
            rows.extend([[y + r * self.ph, clip.shape[1]] for _ in range(t_len) for r in range(self.rows)
                         for _ in range(self.cols)])
        # frames stacked as rows of one (T·h, w) grid: patches come out frame-major, raster within
        return to_patches(torch.stack(crops), t_len * self.rows, self.cols, self.ph, self.pw), torch.tensor(rows), picks
