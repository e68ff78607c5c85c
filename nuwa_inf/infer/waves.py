"""What the image and the clip engines share: the context layout of a chunk of patches, and
the prefill of the given patches' keys/values into the Nearby Context Pool.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..kernels import PatchLayout
from ..model.config import ModelConfig
from ..model.context_pool import ContextPool, Pos
from ..model.orders import Schedule


def context_layout(schedule: Schedule, pool: ContextPool, cfg: ModelConfig, patches: list[Pos]) -> PatchLayout:
    """Pool slots and direction-controller offsets of each patch's context (-1 padded)."""
    contexts = [[q for q, _ in schedule.context[p]] for p in patches]
    offsets = torch.zeros((len(patches), max(1, max(len(c) for c in contexts))), dtype=torch.int64)
    for i, p in enumerate(patches):
        for m, (_, off) in enumerate(schedule.context[p]):
            offsets[i, m] = cfg.offset_id(*off)
    return PatchLayout(pool.slots(contexts), offsets, cfg.n_offsets)


def prefill_known(schedule: Schedule, samplers: list, pools: list[ContextPool], cfg: ModelConfig,
                  patch_tokens: Callable[[Pos], np.ndarray], positions: Callable[[list[Pos]], torch.Tensor],
                  canvas_rows: Callable[[list[Pos]], torch.Tensor], batch: int) -> None:
    """K/V of the schedule's given patches, wave by wave in raster order (as in training), into
    every sampler's pool; a given patch no generated patch reads leaves the pools at once."""
    known = schedule.known
    wave: dict = {}
    for p in known:
        wave[p] = 1 + max((wave[q] for q, _ in schedule.context[p]), default=-1)
    last = {p: -1 for p in known}
    for p in known:
        for q, _ in schedule.context[p]:
            last[q] = max(last[q], wave[p])
    for w in range(max(wave.values(), default=-1) + 1):
        group = [p for p in known if wave[p] == w]
        for start in range(0, len(group), batch):
            chunk = group[start:start + batch]
            ids = torch.from_numpy(np.stack([patch_tokens(p) for p in chunk]).astype(np.int64))
            layout = context_layout(schedule, pools[0], cfg, chunk)
            for sampler in samplers:
                k, v = sampler.prefill(ids, layout, positions(chunk), canvas_rows(chunk))
                sampler.pool.add(chunk, k, v)
        for pool in pools:
            pool.evict([q for q in known if last[q] == w and schedule.last_use[q] < 0])
