"""Test-time adaptation: fine-tune a copy of the transformer on the input's own tokens, then extend.

The bundled transformer learned what procedural scrolls look like in general; a continuation
should look like *this* input. PatchMatch gets there by pasting the input; a model can get there
by learning from it: a few hundred teacher-forced steps on random crops of the input's token grid
(and its mirror image), exactly as training does them (train/crop_loss.py: random orders, a
quarter of the crops without context, each crop's style memory from another part of the input).
The model then draws the input's kind of peaks, palette and water at the input's heights instead
of its average scroll's, and draws them anew (it does not see the input's pixels, and its
samples are not copies: the continuation benchmark's copy figure stays at 0).

The adapted weights are written to the run directory, so `--resume` continues with the same
model without training again. Deterministic for a given seed and thread count (CPU).

Cost: each step is ADAPT_BATCH crops, one at a time (their gradients summed), so the activations
held at once are one crop's, and the model recomputes in backward (`LocalTransformer.recompute`:
each block's insides and the loss's logits, in chunks, are computed again rather than held):
training peaks ≈ 620 MiB above the loaded model (≈ 980 without the recomputation, ≈ 1390 with
both crops at once), and that memory is handed back when it ends (`release_freed_memory`). The
matrix products run in bfloat16 where the CPU has bf16 instructions (AVX-512 BF16 / AMX; torch's
autocast, weights and optimizer in float32): 1.37 s a step against 1.79 in float32 at 2 threads
(the bundled model, before the recomputation, which adds ≈ 12 %: 1.65 against 1.48 s).
"""
from __future__ import annotations

import contextlib
import copy
import ctypes
import dataclasses
import gc
import math
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..checkpoint import load_tensors, save_tensors
from ..errors import UserError
from ..train.crop_layout import sample_crop_contexts
from ..train.crop_loss import crop_loss
from ..train.optimizer import set_rate, transformer_optimizer
from ..train.schedule import warmup_cosine
from ..train.token_cache import TokenCropSampler

ADAPT_LR = 2e-4           # peak learning rate (warm-up over a tenth of the steps, cosine to a tenth)
ADAPT_BATCH = 2           # crops per step, as the bundled model trained
ADAPT_CONTEXT_DROP = 0.25  # crops without context: the memory is their only view of the input
ADAPTED_FILE = "adapted.safetensors"


def bf16_autocast(device: torch.device):
    """bfloat16 autocast where it is fast (CUDA, or a CPU with bf16 instructions), else nothing."""
    if device.type == "cuda" or (device.type == "cpu" and (torch.cpu._is_avx512_bf16_supported()
                                                          or torch.cpu._is_amx_tile_supported())):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def crop_config(cfg, grid_h: int, grid_w: int):
    """The model's config with its training crop shrunk to fit a grid of grid_h × grid_w tokens."""
    rows, cols = min(cfg.crop_rows, grid_h // cfg.patch_h), min(cfg.crop_cols, grid_w // cfg.patch_w)
    if rows < 1 or cols < 1:
        raise UserError(f"--adapt needs an input of at least one patch ({cfg.patch_h}×{cfg.patch_w} tokens for "
                        f"this model); the input's kept tokens are {grid_h}×{grid_w}")
    return dataclasses.replace(cfg, crop_rows=rows, crop_cols=cols, context_drop=ADAPT_CONTEXT_DROP)


def adapt_to_input(transformer, grid: np.ndarray, canvas: tuple[int, int], steps: int, seed: int,
                   backend: str = "auto", lr: float = ADAPT_LR, progress: bool = True):
    """A copy of `transformer` trained `steps` steps on crops of `grid` (the input's known tokens,
    (h, w) int) and its mirror image; `canvas` = (the grid's top token row, canvas token rows)."""
    cfg = crop_config(transformer.cfg, *grid.shape)
    model = copy.deepcopy(transformer).float()
    model.cfg = cfg  # forward_train reads the crop size from the model's config
    model.recompute = True  # the activations of one crop's blocks are recomputed, not held
    device = next(model.parameters()).device
    grids = [np.ascontiguousarray(grid), np.ascontiguousarray(grid[:, ::-1])]
    sampler = TokenCropSampler(grids, cfg.crop_rows, cfg.crop_cols, cfg.patch_h, cfg.patch_w, seed=seed,
                               canvas=canvas)
    order_rng = torch.Generator().manual_seed(seed + 1)
    opt = transformer_optimizer(model, lr, cfg.weight_decay)
    warmup = max(1, steps // 10)
    model.train()
    bar = tqdm(range(steps), desc="adapting to the input", dynamic_ncols=True, disable=not progress)
    for step in bar:
        set_rate(opt, lr * warmup_cosine(step, steps, warmup))
        opt.zero_grad(set_to_none=True)
        total = 0.0
        for _ in range(ADAPT_BATCH):  # one crop at a time: the activations of one crop are held at once
            with bf16_autocast(device):
                loss = crop_loss(model, model.forward_train, sampler, cfg, 1, order_rng, sample_crop_contexts,
                                 grids, backend, device) / ADAPT_BATCH
            loss.backward()
            total += loss.item()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        bar.set_postfix(bits=f"{total / math.log(2):.3f}")
    bar.close()
    model.eval()
    model.cfg = transformer.cfg  # sampling reads the model's own config
    model.recompute = False
    model.requires_grad_(False)
    for param in model.parameters():
        param.grad = None
    del opt
    release_freed_memory()
    return model


def release_freed_memory() -> None:
    """Hand the training step's freed activations back to the system: glibc keeps freed heap
    memory for reuse: after 5 steps on the bundled model the process held 988 MiB, trimmed 541."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def adapted_model(transformer, run_dir: Path, grid: np.ndarray, canvas: tuple[int, int], steps: int, seed: int,
                  backend: str = "auto", progress: bool = True):
    """The adapted copy: read from the run directory when an earlier (killed) run left it, else
    trained and written there first."""
    path = Path(run_dir) / ADAPTED_FILE
    if path.is_file():
        model = copy.deepcopy(transformer).float()
        model.load_state_dict(load_tensors(path))
        return model.eval()
    model = adapt_to_input(transformer, grid, canvas, steps, seed, backend, progress=progress)
    save_tensors(path, model.state_dict())
    return model
