"""Detail transfer: the fine detail the input's tokens lose, laid onto every decoded block from the
input block that looks most alike at about the same height.

The decoder draws what a 16-px code holds: paper grain, crisp ridge edges, the dots of trees and
figures come back soft or as the decoder's own faint mesh (the held-out ink sunset: the texture part
of carry 0.39 against 0.05 for another scroll of its style). The input shows what is lost there: its
pixels minus its own decoded tokens (after the colour and detail matches), high-passed (minus a
Gaussian blur of SIGMA px, so that light and colour stay the model's) — the *lost detail*. So, as in
image analogies (A = the decoded input, A' = the input, B = the decoded canvas, B' = ?):

    bank     per token block (16 px) of the decoded input (at most its centre FIT_SIDE px, as the
             other fits): a descriptor, the mean colour of its 4×4 cells (48 numbers), its canvas
             token row, and its lost detail (16×16×3, rounded to int8)
    B'       per token block of every decoded window, on the token grid: the bank block whose
             descriptor is nearest among those within REACH token rows of the block's own canvas row
             (the bank's nearest rows where the input has none), its lost detail × W added

Each block's pixels depend on its own decoded pixels and its position only, so they do not depend on
the tiling; the bank is kept in the run directory (`BANK_FILE`), so a resumed run draws the same
pixels. Blocks are pasted whole: overlapping them with feathered edges averaged two banks' grain into
less than either (the sunset's texture part 0.29 against 0.22 with whole blocks). Whole blocks leave
a faint grid of their own where neighbours borrow different detail (the main job's seam ratio 1.61
against 0.93 without), so extend runs this only when asked (`--detail-transfer`; README,
"Continuation against the truth").
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_path
from .detail import blur_planes, pixel_planes

CELLS = 4            # a descriptor is the mean colour of a block's CELLS × CELLS cells
SIGMA = 3.0          # px: the lost detail is what a blur of this size takes away
REACH = 2            # token rows: a block reads bank blocks this far above and below its own row
BANK_FILE = "detail_bank.npz"


@dataclass
class DetailBank:
    """Per bank block (n of them, sorted by row): descriptor (n, 48) float32, canvas token row (n,)
    int64 and lost detail (n, f, f, 3) int8, f the tokenizer's pixels per token."""

    descriptors: np.ndarray
    rows: np.ndarray
    detail: np.ndarray

    def save(self, path: Path) -> None:
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, descriptors=self.descriptors, rows=self.rows, detail=self.detail)

    @classmethod
    def load(cls, path: Path) -> "DetailBank":
        with np.load(path) as kept:
            return cls(kept["descriptors"], kept["rows"], kept["detail"])


def block_descriptors(pixels: np.ndarray, block: int) -> torch.Tensor:
    """(h, w, 3) uint8, h and w multiples of `block` → (h/block, w/block, 48) float32: the mean
    colour of each block's CELLS × CELLS cells."""
    h, w, k = pixels.shape[0] // block, pixels.shape[1] // block, CELLS
    cells = torch.from_numpy(np.ascontiguousarray(pixels)).float()
    cells = cells.view(h, k, block // k, w, k, block // k, 3).mean(dim=(2, 5))   # (h, k, w, k, 3)
    return cells.permute(0, 2, 1, 3, 4).reshape(h, w, k * k * 3)


def build_bank(original: np.ndarray, decoded: np.ndarray, first_row: int, block: int) -> DetailBank:
    """The bank of an input: `original` and `decoded` (the same token-aligned window of the input and
    of its decoded, filtered tokens, (h, w, 3) uint8; tokens of `block` px, a multiple of CELLS),
    whose top block row is canvas token row `first_row`."""
    if original.shape != decoded.shape or original.shape[0] % block or original.shape[1] % block or block % CELLS:
        raise ValueError(f"original {original.shape} and decoded {decoded.shape} must be one size, "
                         f"whole blocks of {block} px (a multiple of {CELLS})")
    lost = pixel_planes(original) - pixel_planes(decoded)                       # (3, 1, h, w)
    lost = (lost - blur_planes(lost, SIGMA))[:, 0].permute(1, 2, 0)             # (h, w, 3) high-passed
    h, w = original.shape[0] // block, original.shape[1] // block
    detail = lost.round().clamp(-127, 127).to(torch.int8)
    detail = detail.view(h, block, w, block, 3).permute(0, 2, 1, 3, 4).reshape(h * w, block, block, 3)
    rows = np.repeat(np.arange(first_row, first_row + h, dtype=np.int64), w)   # row-major: sorted
    return DetailBank(block_descriptors(decoded, block).reshape(h * w, -1).numpy(), rows, detail.numpy())


def job_bank(run_dir: Path, build) -> DetailBank:
    """The bank kept in the run directory, or `build()` now (and kept) for a new run."""
    path = Path(run_dir) / BANK_FILE
    if not path.is_file():
        build().save(path)
    return DetailBank.load(path)


def transfer_detail(pixels: np.ndarray, origin: tuple[int, int], bank: DetailBank,
                    strength: float = 1.0) -> np.ndarray:
    """(h, w, 3) uint8 decoded window, whole blocks, whose top-left pixel lies at canvas `origin`
    (y, x) on the token grid → the same with each block's nearest bank block's lost detail ×
    `strength` added (x plays no part: bank blocks are chosen by height and look)."""
    if strength == 0.0 or not len(bank.rows):
        return pixels
    block = bank.detail.shape[1]
    h, w = pixels.shape[0] // block, pixels.shape[1] // block
    wanted = block_descriptors(pixels, block)                                 # (h, w, 48)
    descriptors, detail = torch.from_numpy(bank.descriptors), torch.from_numpy(bank.detail)
    lowest, highest = int(bank.rows[0]), int(bank.rows[-1])
    out = torch.from_numpy(np.ascontiguousarray(pixels)).float()
    blocks = out.view(h, block, w, block, 3)                                  # a view: added in place
    for i in range(h):
        row = min(max(origin[0] // block + i, lowest), highest)             # the bank's nearest row
        start, end = np.searchsorted(bank.rows, [row - REACH, row + REACH + 1])
        nearest = torch.cdist(wanted[i], descriptors[start:end]).argmin(dim=1) + int(start)   # (w,)
        blocks[i] += strength * detail[nearest].float().permute(1, 0, 2, 3)  # (w, B, B, 3) → (B, w, B, 3)
    return out.round_().clamp_(0, 255).to(torch.uint8).numpy()
