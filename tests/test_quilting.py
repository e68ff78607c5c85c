"""Quilting cuts (infer/quilting.py): the cheapest path is found, blocks from neighbouring places of
one picture join back into it, unrelated blocks meet with smaller steps than pasted whole, and a
window of blocks gives the same pixels inside it as the whole grid."""
from __future__ import annotations

import torch

from nuwa_inf.infer.quilting import cheapest_paths, join, quilt

B, SURROUND = 16, 4


def test_the_cheapest_path_follows_the_planted_valley():
    costs = torch.ones((2, 12, 8))
    valley = torch.tensor([3, 4, 5, 5, 4, 3, 2, 2, 3, 4, 5, 6])   # moves by at most one
    costs[0, torch.arange(12), valley] = 0.0
    costs[1, :, 6] = 0.0
    paths = cheapest_paths(costs)
    assert paths[0].tolist() == valley.tolist() and paths[1].tolist() == [6] * 12


def test_a_join_cuts_where_the_sources_agree():
    a = torch.rand((1, 10, 8, 3)) * 50
    b = torch.rand((1, 10, 8, 3)) * 50 + 100
    b[:, :, 5:7] = a[:, :, 5:7]          # they agree on columns 5 and 6 only
    joined = join(a, b, feather=0.0)
    assert torch.equal(joined[:, :, :6], a[:, :, :6]) and torch.equal(joined[:, :, 6:], b[:, :, 6:])
    pinned = join(a, b, feather=0.0, pinned=2)   # made to start and end at 2: the ends differ
    assert torch.equal(pinned[:, 0, :2], a[:, 0, :2]) and torch.equal(pinned[:, 0, 2:], b[:, 0, 2:])


def field(height: int, width: int, seed: int) -> torch.Tensor:
    """A smooth random picture (height, width, 3), grain correlated over a few pixels."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn((3, 1, height, width), generator=g)
    kernel = torch.ones((1, 1, 5, 5)) / 25
    return torch.nn.functional.conv2d(noise, kernel, padding=2)[:, 0].permute(1, 2, 0) * 20


def cut_out(picture: torch.Tensor, corners: torch.Tensor) -> torch.Tensor:
    """(h, w, 2) top-left pixels → (h, w, B + 2O, B + 2O, 3) blocks with their surrounds."""
    span = torch.arange(B + 2 * SURROUND)
    ys = corners[..., 0, None, None] - SURROUND + span[:, None]
    xs = corners[..., 1, None, None] - SURROUND + span[None, :]
    return picture[ys, xs]


def grid_corners(h: int, w: int, y0: int = 0, x0: int = 0) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(h) * B + y0, torch.arange(w) * B + x0, indexing="ij")
    return torch.stack([ys, xs], dim=-1)


def test_blocks_from_neighbouring_places_join_back_into_the_picture():
    picture = field(8 * B, 10 * B, 0)
    blocks = cut_out(picture, grid_corners(6, 8, B, B))          # the picture's inner 6 × 8 blocks, in place
    joined = quilt(blocks, SURROUND, feather=0.7)
    assert torch.allclose(joined, picture[B:7 * B, B:9 * B], atol=1e-4)


def steps_on_the_grid(pixels: torch.Tensor) -> float:
    """Mean |Δ| between horizontal neighbours across the block grid's lines ÷ elsewhere."""
    dx = (pixels[:, 1:] - pixels[:, :-1]).abs().mean(dim=(0, 2))
    on = (torch.arange(dx.numel()) + 1) % B == 0
    return float(dx[on].mean() / dx[~on].mean())


def test_unrelated_blocks_meet_with_smaller_steps_than_pasted_whole():
    picture = field(40 * B, 40 * B, 1)
    g = torch.Generator().manual_seed(2)
    corners = torch.randint(1, 38, (6, 12, 2), generator=g) * B   # anywhere in the picture
    blocks = cut_out(picture, corners)
    quilted, whole = quilt(blocks, SURROUND, 0.7), quilt(blocks[:, :, SURROUND:-SURROUND, SURROUND:-SURROUND], 0, 0.7)
    assert steps_on_the_grid(quilted) < 1.2 < 1.5 < steps_on_the_grid(whole)


def test_a_window_of_blocks_gives_the_whole_grids_pixels_inside_it():
    picture = field(40 * B, 40 * B, 3)
    corners = torch.randint(1, 38, (7, 9, 2), generator=torch.Generator().manual_seed(4)) * B
    whole = quilt(cut_out(picture, corners), SURROUND, 0.7)
    window = quilt(cut_out(picture, corners[2:6, 3:8]), SURROUND, 0.7)   # blocks 2…5 × 3…7
    assert torch.equal(window[B:-B, B:-B], whole[3 * B:5 * B, 4 * B:7 * B])
