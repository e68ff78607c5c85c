"""One teacher-forced loss on random crops: what a training step of the transformer computes.

Shared by `nuwa-inf train model` (model_trainer.py) and by test-time adaptation to an input
(infer/adapt.py): B crops from the sampler, each with a random generation order (crop_layout.py),
a share `context_drop` of them without context, each crop's style memory from another crop of
its image (memory_crops.py), and the token cross-entropy of the whole batch.
"""
from __future__ import annotations

import torch

from .crop_layout import batch_layout
from .memory_crops import drop_context, training_memory


def crop_loss(model, forward, sampler, cfg, batch: int, order_rng: torch.Generator, contexts, memory_grids,
              backend: str, device, text_ids: torch.Tensor | None = None) -> torch.Tensor:
    """Mean cross-entropy (nats/token) of `batch` crops; `forward` is `model.forward_train` or
    its DDP wrapper; `contexts(cfg, generator)` draws one crop's order and context layout."""
    patches_per_crop = cfg.crop_frames * cfg.crop_rows * cfg.crop_cols
    tokens, canvas_rows, picks = sampler.sample_with_picks(batch)                   # (B·N, P), (B·N, 2)
    tokens = tokens.to(device)
    layout = batch_layout([contexts(cfg, order_rng) for _ in range(batch)], cfg.n_offsets)
    layout = drop_context(layout, batch, patches_per_crop, cfg.context_drop, order_rng)
    memory = None if model.memory is None else training_memory(
        model, memory_grids, picks, cfg, sampler.generator, device, patches_per_crop, text_ids=text_ids,
        canvas=sampler.canvas)
    return forward(tokens, layout, backend, None, canvas_rows, memory, tokens)     # the patches' own tokens
