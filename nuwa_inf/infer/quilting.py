"""Image quilting's minimum-error cuts: blocks laid on a grid, each carrying a surround that overlaps
its neighbours, joined where their overlaps agree best instead of along the grid lines.

Blocks of detail taken from unrelated places of a source disagree at their borders: pasted whole, they
leave a grid (detail_transfer.py). As in Efros & Freeman's quilting, each block here brings `overlap`
px of its source's surround on every side; between two neighbours a path through their 2·overlap-px
wide overlap, one pixel per step and moving at most one pixel sideways per step, takes the least
disagreement (graph-cut textures' cost: a cut between two pixels costs how much the two sources differ
at both), and each pixel takes the source on its side of the path, softened across it by a small
Gaussian (`feather` px). First within each block row (vertical cuts: strips of blocks side by side),
then between block rows (horizontal cuts, one per block column, pinned to the grid line at both ends
so that neighbouring cuts meet).

Every cut reads only the two blocks it joins, and every pixel only its block's neighbours: a window of
blocks gives the same pixels inside it, one block in from its edges, wherever it lies.
All arithmetic is elementwise, so results do not depend on how many blocks are cut at once.
"""
from __future__ import annotations

import math

import torch


def cut_costs(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(n, L, K, 3) two sources over an overlap → (n, L, K): the cost of a path at k, which gives
    pixels before k to `a` and k onwards to `b` (|a − b| at k and k − 1)."""
    diff = a - b
    apart = (diff[..., 0] ** 2 + diff[..., 1] ** 2 + diff[..., 2] ** 2).sqrt()
    return apart + torch.cat([apart[..., :1], apart[..., :-1]], dim=-1)


def cheapest_paths(costs: torch.Tensor) -> torch.Tensor:
    """(n, L, K) costs per step l and position k → (n, L) int64: for each of the n overlaps the
    positions, one per step, moving by at most one between steps, of least total cost."""
    n, steps, width = costs.shape
    total = costs[:, 0].clone()
    moves = torch.zeros((n, steps, width), dtype=torch.int64)
    wall = torch.full((n, 1), math.inf)
    for step in range(1, steps):
        came_from = torch.stack([torch.cat([wall, total[:, :-1]], 1), total,
                                 torch.cat([total[:, 1:], wall], 1)], dim=2)   # (n, K, 3): from k-1, k, k+1
        best, move = came_from.min(dim=2)
        moves[:, step] = move - 1
        total = costs[:, step] + best
    path = torch.empty((n, steps), dtype=torch.int64)
    path[:, -1] = total.argmin(dim=1)
    for step in range(steps - 1, 0, -1):
        path[:, step - 1] = path[:, step] + moves[:, step].gather(1, path[:, step:step + 1])[:, 0]
    return path


def first_source_share(path: torch.Tensor, width: int, feather: float) -> torch.Tensor:
    """(n, L) cut positions → (n, L, K, 1) float32: 1 before the cut (the first source), 0 from
    it on, blurred across it by a Gaussian of `feather` px (edges repeated)."""
    share = (torch.arange(width)[None, None, :] < path[:, :, None]).float()   # (n, L, K)
    if feather > 0:
        reach = math.ceil(2 * feather)
        taps = torch.exp(-0.5 * (torch.arange(-reach, reach + 1) / feather) ** 2)
        taps = taps / taps.sum()
        padded = torch.cat([share[..., :1].expand(-1, -1, reach), share,
                            share[..., -1:].expand(-1, -1, reach)], dim=-1)
        share = sum(float(tap) * padded[..., i:i + width] for i, tap in enumerate(taps))
    return share[..., None]


def join(a: torch.Tensor, b: torch.Tensor, feather: float, pinned: int | None = None) -> torch.Tensor:
    """(n, L, K, 3) two sources over n overlaps → (n, L, K, 3) joined along each one's cheapest cut
    (`pinned`: the cut starts and ends at this position)."""
    costs = cut_costs(a, b)
    if pinned is not None:
        for end in (0, -1):
            kept = costs[:, end, pinned].clone()
            costs[:, end] = math.inf
            costs[:, end, pinned] = kept
    share = first_source_share(cheapest_paths(costs), a.shape[2], feather)
    return share * a + (1 - share) * b


def quilt(blocks: torch.Tensor, overlap: int, feather: float) -> torch.Tensor:
    """(h, w, B + 2·overlap, B + 2·overlap, 3) each grid block's content with its surround →
    (h·B, w·B, 3): the blocks joined along minimum-error cuts (the outermost surrounds dropped)."""
    h, w, side = blocks.shape[:3]
    block, o = side - 2 * overlap, overlap
    if o == 0:
        return blocks.permute(0, 2, 1, 3, 4).reshape(h * block, w * block, 3)
    # vertical cuts: each block row becomes a strip (h, side, w·B, 3) over the row and its surround
    strips = blocks[:, :, :, o:o + block].permute(0, 2, 1, 3, 4).reshape(h, side, w * block, 3).clone()
    if w > 1:
        left, right = blocks[:, :-1, :, block:block + 2 * o], blocks[:, 1:, :, :2 * o]   # (h, w-1, side, 2o, 3)
        joined = join(left.reshape(-1, side, 2 * o, 3), right.reshape(-1, side, 2 * o, 3), feather)
        columns = (torch.arange(1, w)[:, None] * block - o + torch.arange(2 * o)[None, :]).reshape(-1)
        strips[:, :, columns] = joined.view(h, w - 1, side, 2 * o, 3).permute(0, 2, 1, 3, 4).reshape(h, side, -1, 3)
    out = strips[:, o:o + block].reshape(h * block, w * block, 3)   # (h·B, w·B, 3): rows of strips
    if h > 1:
        # horizontal cuts: per block column, between a strip's lower surround and the next one's upper
        above, below = strips[:-1, block:block + 2 * o], strips[1:, :2 * o]           # (h-1, 2o, w·B, 3)

        def per_column(rows):   # (h-1, 2o, w·B, 3) → ((h-1)·w, B, 2o, 3): one overlap per block column
            return rows.view(h - 1, 2 * o, w, block, 3).permute(0, 2, 3, 1, 4).reshape(-1, block, 2 * o, 3)

        joined = join(per_column(above), per_column(below), feather, pinned=o)
        joined = joined.view(h - 1, w, block, 2 * o, 3).permute(0, 3, 1, 2, 4).reshape(-1, w * block, 3)
        rows = (torch.arange(1, h)[:, None] * block - o + torch.arange(2 * o)[None, :]).reshape(-1)
        out[rows] = joined
    return out
