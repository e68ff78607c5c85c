"""Training memories: for each training crop, a style memory from *another* crop of the same
image, so that the model learns the image's style and layout from it, not to copy it.

The memory crop spans the image's full height (as a scroll's input spans the canvas) and is
`memory_min_w`…`memory_max_w` tokens wide, placed beside the training crop without overlapping
it where the image leaves room (else the widest gap, else anywhere). A share `memory_drop` of
the crops gets no memory (the null entry alone): the model keeps working without one, and
classifier-free guidance has its unconditional branch. With captions (`text_ids`, one row of
word ids per grid), each crop also reads its image's caption, dropped for a share `text_drop`
of the crops (independently of the style). `context_drop` trains a share of the crops with
no context patches at all, so that the memory is their only view of the scroll: the patches
that need the memory most (far from anything, or the first of a sweep) are few otherwise.
"""
from __future__ import annotations

import numpy as np
import torch

from ..kernels import PatchLayout
from ..model.config import ModelConfig
from ..model.memory import Memory, StyleSource


def _randint(low: int, high: int, generator: torch.Generator) -> int:
    """Uniform integer in [low, high]."""
    return low + int(torch.randint(high - low + 1, (1,), generator=generator))


def memory_span(grid_w: int, crop_x: int, crop_w: int, cfg: ModelConfig, generator: torch.Generator) -> tuple[int, int]:
    """(x0, x1) token columns of the memory crop for a training crop at [crop_x, crop_x + crop_w)."""
    width = _randint(min(cfg.memory_min_w, grid_w), min(cfg.memory_max_w, grid_w), generator)
    gaps = [(0, crop_x), (crop_x + crop_w, grid_w)]              # free columns left and right of the crop
    fitting = [(a, b) for a, b in gaps if b - a >= width]
    if not fitting:
        a, b = max(gaps, key=lambda g: g[1] - g[0])
        if b - a >= min(cfg.memory_min_w, grid_w) // 2:
            fitting, width = [(a, b)], b - a
        else:
            fitting = [(0, grid_w)]
    a, b = fitting[int(torch.randint(len(fitting), (1,), generator=generator))]
    x0 = _randint(a, b - width, generator)
    return x0, x0 + width


def training_memory(model, grids: list[np.ndarray], picks: list[tuple[int, int, int]], cfg: ModelConfig,
                    generator: torch.Generator, device, patches_per_crop: int, drop: float | None = None,
                    text_ids: torch.Tensor | None = None, text_drop: float | None = None,
                    canvas: tuple[int, int] | None = None) -> Memory:
    """The memory of each crop (`picks` from TokenCropSampler.sample_with_picks), owner per patch;
    `canvas` as in TokenCropSampler (where the grids sit in a taller canvas)."""
    drop = cfg.memory_drop if drop is None else drop
    text_drop = cfg.text_drop if text_drop is None else text_drop
    crop_w = cfg.crop_cols * cfg.patch_w
    sources: list[StyleSource | None] = []
    for index, _, x in picks:
        grid = grids[index]
        x0, x1 = memory_span(grid.shape[1], x, crop_w, cfg, generator)
        if float(torch.rand((), generator=generator)) < drop:
            sources.append(None)
            continue
        tokens = torch.from_numpy(grid[:, x0:x1].astype(np.int64)).to(device)
        top, height = canvas if canvas is not None else (0, grid.shape[0])
        sources.append(StyleSource(tokens, top, height))
    texts = None
    if text_ids is not None and model.text is not None:
        texts = text_ids[[index for index, _, _ in picks]].clone()            # (B, T)
        dropped = torch.rand(len(picks), generator=generator) < text_drop
        texts[dropped] = 0
        texts = texts.to(device)
    memory = model.style_memory(sources, texts)
    owner = torch.arange(len(picks), device=device).repeat_interleave(patches_per_crop)
    return memory.select(owner)


def drop_context(layout: PatchLayout, crops: int, patches_per_crop: int, share: float,
                 generator: torch.Generator) -> PatchLayout:
    """The layout with every context patch of a random `share` of the crops removed."""
    if share <= 0:
        return layout
    dropped = (torch.rand(crops, generator=generator) < share).repeat_interleave(patches_per_crop)  # (B·N,)
    if not dropped.any():
        return layout
    index = layout.ctx_index.masked_fill(dropped[:, None], -1)
    return PatchLayout(index, layout.ctx_offset, layout.n_offsets)
