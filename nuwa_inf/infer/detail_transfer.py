"""Detail transfer: the fine detail the input's tokens lose, laid onto every decoded block from the
input block that looks most alike at about the same height.

The decoder draws what a 16-px code holds: paper grain, crisp ridge edges, the dots of trees and
figures come back soft or as the decoder's own faint mesh (the held-out ink sunset: the texture part
of carry 0.39 against 0.05 for another scroll of its style). The input shows what is lost there: its
pixels minus its own decoded tokens (after the colour and detail matches), high-passed (minus a
Gaussian blur of SIGMA px, so that light and colour stay the model's) — the *lost detail*. So, as in
image analogies (A = the decoded input, A' = the input, B = the decoded canvas, B' = ?):

    bank     the lost detail of the decoded input (at most its centre FIT_SIDE px, as the other
             fits; rounded to int8), and per token block (16 px) of it but the outermost: a
             descriptor, the mean colour of its 4×4 cells (48 numbers), and its canvas token row
    B'       per token block of every decoded window, on the token grid: the bank block whose
             descriptor is nearest among those within REACH token rows of the block's own canvas row
             (the bank's nearest rows where the input has none); its lost detail × W added

Blocks are not pasted whole: each brings OVERLAP px of its source's surround, and neighbours are
joined along image quilting's minimum-error cuts (quilting.py). Pasted whole, neighbours borrowing
unrelated detail left a grid of 16-px steps (the main job's seam ratio 1.61 against 0.93 without);
crossfaded overlaps averaged two grains into less than either (the day scroll's carry gain gone).

A block's choice depends on its own decoded pixels and position only, and its pixels on its own and
its neighbours' choices: a decoded window gives the same pixels for any tiling when the blocks one
beyond it (RING) are decoded exactly too (the engine decodes with that much more margin). The bank is
kept in the run directory (`BANK_FILE`), so a resumed run draws the same pixels.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_path
from .detail import blur_planes, pixel_planes
from .quilting import quilt

CELLS = 4            # a descriptor is the mean colour of a block's CELLS × CELLS cells
SIGMA = 2.0          # px: the lost detail is what a blur of this size takes away
REACH = 2            # token rows: a block reads bank blocks this far above and below its own row
OVERLAP = 4          # px of its source's surround a block brings to the cuts with its neighbours
FEATHER = 0.7        # px: the cuts' edges softened by a Gaussian this wide
RING = 1             # blocks: a window's pixels read its neighbours' choices this far out
BANK_FILE = "detail_source.npz"   # (a run of the first, whole-block transfer kept "detail_bank.npz")


@dataclass
class DetailBank:
    """The input's lost detail `detail` (H, W, 3) int8, and per bank block (n of them, sorted by
    row): descriptor (n, 48) float32, canvas token row (n,) int64, and the top-left pixel (n, 2)
    int64 (y, x) of the block in `detail`, at least OVERLAP px in from its edges. Blocks of `block` px."""

    descriptors: np.ndarray
    rows: np.ndarray
    corners: np.ndarray
    detail: np.ndarray
    block: int

    def save(self, path: Path) -> None:
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, descriptors=self.descriptors, rows=self.rows, corners=self.corners,
                     detail=self.detail, block=self.block)

    @classmethod
    def load(cls, path: Path) -> "DetailBank":
        with np.load(path) as kept:
            return cls(kept["descriptors"], kept["rows"], kept["corners"], kept["detail"], int(kept["block"]))


def block_descriptors(pixels: np.ndarray, block: int) -> torch.Tensor:
    """(h, w, 3) uint8, h and w multiples of `block` → (h/block, w/block, 48) float32: the mean
    colour of each block's CELLS × CELLS cells."""
    h, w, k = pixels.shape[0] // block, pixels.shape[1] // block, CELLS
    cells = torch.from_numpy(np.ascontiguousarray(pixels)).float()
    cells = cells.view(h, k, block // k, w, k, block // k, 3).mean(dim=(2, 5))   # (h, k, w, k, 3)
    return cells.permute(0, 2, 1, 3, 4).reshape(h, w, k * k * 3)


def build_bank(original: np.ndarray, decoded: np.ndarray, first_row: int, block: int) -> DetailBank:
    """The bank of an input: `original` and `decoded` (the same token-aligned window of the input and
    of its decoded, filtered tokens, (h, w, 3) uint8; tokens of `block` px, a multiple of CELLS and
    at least OVERLAP), whose top block row is canvas token row `first_row`. Its blocks are all but
    the window's outermost ones, whose surrounds would reach outside it (none for an input under
    3 blocks either way: then the bank is empty and the transfer adds nothing)."""
    if (original.shape != decoded.shape or original.shape[0] % block or original.shape[1] % block
            or block % CELLS or block < OVERLAP):
        raise ValueError(f"original {original.shape} and decoded {decoded.shape} must be one size, "
                         f"whole blocks of {block} px (a multiple of {CELLS}, at least {OVERLAP})")
    lost = pixel_planes(original) - pixel_planes(decoded)                       # (3, 1, H, W)
    lost = (lost - blur_planes(lost, SIGMA))[:, 0].permute(1, 2, 0)             # (H, W, 3) high-passed
    h, w = original.shape[0] // block, original.shape[1] // block
    inner = np.stack(np.meshgrid(np.arange(1, h - 1), np.arange(1, w - 1), indexing="ij"), -1).reshape(-1, 2)
    descriptors = block_descriptors(decoded, block)[inner[:, 0], inner[:, 1]]  # (n, 48) row-major: sorted by row
    return DetailBank(descriptors.numpy(), first_row + inner[:, 0].astype(np.int64), inner.astype(np.int64) * block,
                      lost.round().clamp(-127, 127).to(torch.int8).numpy(), block)


def job_bank(run_dir: Path, build) -> DetailBank:
    """The bank kept in the run directory, or `build()` now (and kept) for a new run."""
    path = Path(run_dir) / BANK_FILE
    if not path.is_file():
        build().save(path)
    return DetailBank.load(path)


def nearest_bank_blocks(wanted: torch.Tensor, top_row: int, bank: DetailBank) -> torch.Tensor:
    """(h, w, 48) descriptors of a window's blocks, whose top block row is canvas token row
    `top_row` → (h, w) int64: each block's nearest-described bank block within REACH rows of its own
    (of the bank's nearest row where the input has none)."""
    descriptors = torch.from_numpy(bank.descriptors)
    lowest, highest = int(bank.rows[0]), int(bank.rows[-1])
    chosen = torch.empty(wanted.shape[:2], dtype=torch.int64)
    for i in range(wanted.shape[0]):
        row = min(max(top_row + i, lowest), highest)
        start, end = np.searchsorted(bank.rows, [row - REACH, row + REACH + 1])
        chosen[i] = torch.cdist(wanted[i], descriptors[start:end]).argmin(dim=1) + int(start)
    return chosen


def surrounds(bank: DetailBank, chosen: torch.Tensor) -> torch.Tensor:
    """(h, w) bank blocks → (h, w, B + 2·OVERLAP, B + 2·OVERLAP, 3) float32: each one's lost
    detail with OVERLAP px of its surround."""
    side = bank.block + 2 * OVERLAP
    corners = torch.from_numpy(bank.corners)[chosen] - OVERLAP                # (h, w, 2)
    span = torch.arange(side)
    ys = corners[..., 0, None, None] + span[:, None]                          # (h, w, side, 1)
    xs = corners[..., 1, None, None] + span[None, :]                          # (h, w, 1, side)
    return torch.from_numpy(bank.detail)[ys, xs].float()


def transfer_detail(pixels: np.ndarray, origin: tuple[int, int], bank: DetailBank,
                    strength: float = 1.0) -> np.ndarray:
    """(h, w, 3) uint8 decoded window, whole blocks, whose top-left pixel lies at canvas `origin`
    (y, x) on the token grid → the same with the lost detail of each block's nearest bank block ×
    `strength` added, neighbours joined along quilting cuts (x plays no part: bank blocks are chosen
    by height and look)."""
    if strength == 0.0 or not len(bank.rows):
        return pixels
    block = bank.block
    chosen = nearest_bank_blocks(block_descriptors(pixels, block), origin[0] // block, bank)
    detail = quilt(surrounds(bank, chosen), OVERLAP, FEATHER)                 # (h·B, w·B, 3)
    out = torch.from_numpy(np.ascontiguousarray(pixels)).float() + strength * detail
    return out.round_().clamp_(0, 255).to(torch.uint8).numpy()
