"""The condition memory (model/memory.py): it starts as a no-op, it is what the patches read,
and the model learns to take a crop's look from it."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from nuwa_inf.checkpoint import load_state_into
from nuwa_inf.config import from_preset
from nuwa_inf.model.config import MODEL_PRESETS, ModelConfig
from nuwa_inf.model.memory import StyleSource, cell_edges
from nuwa_inf.model.transformer import LocalTransformer, gainable
from nuwa_inf.train.crop_layout import batch_layout, sample_crop_contexts
from nuwa_inf.train.memory_crops import memory_span, training_memory
from nuwa_inf.train.token_cache import TokenCropSampler


def tiny(**overrides) -> LocalTransformer:
    return LocalTransformer(from_preset(ModelConfig, MODEL_PRESETS, "tiny", overrides))


def crops(cfg: ModelConfig, count: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    layout = batch_layout([sample_crop_contexts(cfg, generator) for _ in range(count)], cfg.n_offsets)
    patches = count * cfg.crop_rows * cfg.crop_cols
    tokens = torch.randint(cfg.vocab_size, (patches, cfg.patch_tokens), generator=generator)
    return tokens, layout


def test_cells_cover_the_grid_in_near_equal_parts():
    assert cell_edges(128, 8, 16) == [i * 8 for i in range(17)]
    assert cell_edges(100, 16, 8) == [0, 14, 29, 43, 57, 71, 86, 100]   # ⌈100/16⌉ = 7 cells
    assert cell_edges(2432, 16, 8) == [round(i * 2432 / 8) for i in range(9)]  # capped at 8


def test_a_model_gaining_a_memory_starts_unchanged():
    torch.manual_seed(0)
    old = tiny(memory_rows=0).eval()
    new = tiny().eval()
    load_state_into(new, old.state_dict(), "old", may_lack=gainable(new))
    tokens, layout = crops(new.cfg, 2)
    source = StyleSource(torch.randint(16, (8, 12)), 0, 8)
    memory = new.style_memory([source, source]).select(torch.arange(2).repeat_interleave(6))
    with torch.no_grad():
        assert torch.equal(old.forward_train(tokens, layout), new.forward_train(tokens, layout, memory=memory))


def test_the_patches_read_their_own_memory():
    torch.manual_seed(0)
    model = tiny().eval()
    for block in model.blocks:
        torch.nn.init.normal_(block.cross.proj.weight, std=0.5)
    tokens, layout = crops(model.cfg, 2)
    owner = torch.arange(2).repeat_interleave(6)
    a = StyleSource(torch.zeros(8, 12, dtype=torch.long), 0, 8)
    b = StyleSource(torch.full((8, 12), 7, dtype=torch.long), 0, 8)
    with torch.no_grad():
        aa = model.forward_train(tokens, layout, memory=model.style_memory([a, a]).select(owner))
        ab = model.forward_train(tokens, layout, memory=model.style_memory([a, b]).select(owner))
        none = model.forward_train(tokens, layout)
        null = model.forward_train(tokens, layout, memory=model.style_memory([None, None]).select(owner))
    assert torch.equal(aa[:6], ab[:6])            # crop 0 reads memory a in both
    assert not torch.allclose(aa[6:], ab[6:])     # crop 1 reads a, then b
    assert torch.equal(none, null)                # no memory = the null entry alone
    assert not torch.allclose(aa, none)


def test_unknown_tokens_do_not_enter_the_memory():
    torch.manual_seed(0)
    model = tiny().eval()
    grid = torch.randint(16, (8, 12))
    partial = grid.clone()
    partial[:, 4:] = -1
    with torch.no_grad():
        cut = model.style_memory([StyleSource(grid[:, :4], 0, 8)])
        masked = model.style_memory([StyleSource(partial, 0, 8)])
    assert int(masked.valid.sum()) < int(model.style_memory([StyleSource(grid, 0, 8)]).valid.sum())
    assert int(masked.valid.sum()) == int(cut.valid.sum())


def test_training_memories_come_from_elsewhere_in_the_image():
    cfg = from_preset(ModelConfig, MODEL_PRESETS, "small", {})
    generator = torch.Generator().manual_seed(0)
    for crop_x in (0, 60, 190):
        x0, x1 = memory_span(256, crop_x, 64, cfg, generator)
        assert cfg.memory_min_w <= x1 - x0 <= cfg.memory_max_w
        assert x1 <= crop_x or x0 >= crop_x + 64


def test_the_model_learns_a_crops_look_from_its_memory():
    """Each image is one token plus noise: without memory, the first token of a crop's first
    patch has to guess which (ln 16 = 2.8 nats); with the memory of another crop of the same
    image it knows (≈ 1.0 nats: the noise)."""
    torch.manual_seed(0)
    model = tiny(known_region_prob=0.0)
    cfg = model.cfg
    rng = np.random.default_rng(0)
    grids = []
    for _ in range(64):
        grid = np.full((8, 48), rng.integers(16), dtype=np.int16)
        noise = rng.random(grid.shape) < 0.2
        grid[noise] = rng.integers(16, size=int(noise.sum()))
        grids.append(grid)
    sampler = TokenCropSampler(grids, cfg.crop_rows, cfg.crop_cols, cfg.patch_h, cfg.patch_w, seed=0)
    generator = torch.Generator().manual_seed(1)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    n = cfg.crop_rows * cfg.crop_cols
    for _ in range(150):
        tokens, rows, picks = sampler.sample_with_picks(8)
        layout = batch_layout([sample_crop_contexts(cfg, generator) for _ in range(8)], cfg.n_offsets)
        memory = training_memory(model, grids, picks, cfg, generator, "cpu", n)
        loss = F.cross_entropy(model.forward_train(tokens, layout, canvas_rows=rows, memory=memory).reshape(-1, 16),
                               tokens.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    tokens, rows, picks = sampler.sample_with_picks(32)
    layout = batch_layout([sample_crop_contexts(cfg, generator) for _ in range(32)], cfg.n_offsets)
    first = (layout.ctx_index < 0).all(1)          # patches without any context
    with torch.no_grad():
        memory = training_memory(model, grids, picks, cfg, generator, "cpu", n, drop=0.0)
        with_memory = F.cross_entropy(model.forward_train(tokens, layout, canvas_rows=rows, memory=memory)[first, 0],
                                      tokens[first, 0])
        without = F.cross_entropy(model.forward_train(tokens, layout, canvas_rows=rows)[first, 0], tokens[first, 0])
    assert float(with_memory) < 0.6 * float(without), (float(with_memory), float(without))
