"""Training layouts: a random generation order per crop (the Arbitrary Direction Controller's
training side), turned into one `PatchLayout` over all crops of a batch.

A crop is R×C patches (× T frames). Half the time (`known_region_prob`) a random block of
the crop plays the known input, listed first in raster order, and the rest follows an
outpainting order around it ("strips", "outward" or a sweep) — the situations `extend`
meets; otherwise the whole crop follows one of the 8 sweep directions.
"""
from __future__ import annotations

import torch

from ..kernels import PatchLayout
from ..model.config import ModelConfig
from ..model.orders import DIRECTIONS, build_schedule, known_raster, make_order


def _randint(low: int, high: int, generator: torch.Generator) -> int:
    """Uniform integer in [low, high]."""
    return low + int(torch.randint(high - low + 1, (1,), generator=generator))


def sample_crop_contexts(cfg: ModelConfig, generator: torch.Generator) -> list[list[tuple[int, int]]]:
    """For each patch of one crop (frame-major raster index), its [(context patch index, offset id)]."""
    frames, rows, cols = cfg.crop_frames, cfg.crop_rows, cfg.crop_cols
    region = (0, 0, 0, 0)
    if rows * cols > 1 and float(torch.rand((), generator=generator)) < cfg.known_region_prob:
        while True:
            r0, r1 = sorted((_randint(0, rows, generator), _randint(0, rows, generator)))
            c0, c1 = sorted((_randint(0, cols, generator), _randint(0, cols, generator)))
            if r1 > r0 and c1 > c0 and (r1 - r0) * (c1 - c0) < rows * cols:
                region = (r0, c0, r1, c1)
                break
        choices = ["strips", "outward"] + DIRECTIONS
    else:
        choices = DIRECTIONS
    name = choices[int(torch.randint(len(choices), (1,), generator=generator))]
    order = make_order(name, rows, cols, region, frames)
    return schedule_contexts(cfg, order, known_raster(region, frames))


def sample_clip_contexts(cfg: ModelConfig, generator: torch.Generator) -> list[list[tuple[int, int]]]:
    """The same for a crop of `crop_frames` frames of a clip: each frame in one of the 8 sweep
    directions, frame after frame; for a share `known_region_prob` of the crops the first frame
    is the given still (animation), else every frame is generated (text-to-video, and any
    window of a long clip, whose earlier frames come first in the order anyway)."""
    frames, rows, cols = cfg.crop_frames, cfg.crop_rows, cfg.crop_cols
    name = DIRECTIONS[int(torch.randint(len(DIRECTIONS), (1,), generator=generator))]
    order = make_order(name, rows, cols, None, frames)
    known: list = []
    if frames > 1 and float(torch.rand((), generator=generator)) < cfg.known_region_prob:
        known = [p for p in known_raster((0, 0, rows, cols), 1)]
        order = [p for p in order if p[0] > 0]
    return schedule_contexts(cfg, order, known)


def schedule_contexts(cfg: ModelConfig, order: list, known: list) -> list[list[tuple[int, int]]]:
    """Per patch of a crop (frame-major raster index) its [(context patch index, offset id)]
    under `order` with `known` patches given."""
    frames, rows, cols = cfg.crop_frames, cfg.crop_rows, cfg.crop_cols
    schedule = build_schedule(order, known, (cfg.extent_t, cfg.extent_h, cfg.extent_w), (frames, rows, cols))

    def flat(p: tuple[int, int, int]) -> int:
        return (p[0] * rows + p[1]) * cols + p[2]

    contexts: list[list[tuple[int, int]]] = [[] for _ in range(frames * rows * cols)]
    for p, entries in schedule.context.items():
        contexts[flat(p)] = [(flat(q), cfg.offset_id(*offset)) for q, offset in entries]
    return contexts


def batch_layout(crop_contexts: list[list[list[tuple[int, int]]]], n_offsets: int) -> PatchLayout:
    """Fold the crops' context lists into one layout over B·N patches (crop b's patch i → b·N + i)."""
    patches_per_crop = len(crop_contexts[0])
    width = max((len(entries) for crop in crop_contexts for entries in crop), default=0)
    width = max(width, 1)
    total = len(crop_contexts) * patches_per_crop
    ctx_index = torch.full((total, width), -1, dtype=torch.int64)
    ctx_offset = torch.zeros((total, width), dtype=torch.int64)
    for b, crop in enumerate(crop_contexts):
        for i, entries in enumerate(crop):
            row = b * patches_per_crop + i
            for m, (q, offset) in enumerate(entries):
                ctx_index[row, m] = b * patches_per_crop + q
                ctx_offset[row, m] = offset
    return PatchLayout(ctx_index, ctx_offset, n_offsets)
