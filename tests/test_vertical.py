"""Band embeddings (vertical.py): which band a token falls in, that a zero table changes
nothing, that the bands move the logits, and that training crops know where they were cut."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from nuwa_inf.config import from_preset
from nuwa_inf.kernels import PatchLayout
from nuwa_inf.model.config import MODEL_PRESETS, ModelConfig
from nuwa_inf.model.transformer import LocalTransformer
from nuwa_inf.model.vertical import band_of_positions, bounding_canvas_rows, scale_weights
from nuwa_inf.train.token_cache import TokenCropSampler


def tiny(**overrides) -> LocalTransformer:
    torch.manual_seed(0)
    return LocalTransformer(from_preset(ModelConfig, MODEL_PRESETS, "tiny", overrides)).eval()


def no_context(n: int, cfg: ModelConfig) -> PatchLayout:
    return PatchLayout(torch.full((n, 1), -1), None, cfg.n_offsets)


def test_bands_split_the_canvas_height_evenly():
    cfg = from_preset(ModelConfig, MODEL_PRESETS, "tiny", {"row_bins": 4})   # 4×4-token patches
    canvas = 8 * cfg.patch_h                                                   # 8 patch rows, 32 token rows
    rows = torch.tensor([[r * cfg.patch_h, canvas] for r in range(8)])
    bands = band_of_positions(cfg, rows)                                       # (8, 17)
    assert bands.shape == (8, cfg.seq_len)
    assert bands[:, 0].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]                    # two patch rows per band
    assert bands[0].max() == 0 and bands[-1].min() == 3
    # token rows inside one patch can straddle a band edge: 24 token rows, 4 bands of 6
    straddling = band_of_positions(cfg, torch.tensor([[4, 24]]))[0]
    token_rows = 4 + torch.arange(cfg.seq_len).clamp_max(cfg.patch_tokens - 1) // cfg.patch_w
    assert straddling.tolist() == (token_rows // 6).tolist()


def test_bounding_rows_of_a_crop_grid():
    cfg = from_preset(ModelConfig, MODEL_PRESETS, "tiny", {})
    positions = torch.tensor([[3, 0], [3, 1], [4, 0], [4, 1]])
    assert bounding_canvas_rows(cfg, positions).tolist() == [[0, 8], [0, 8], [4, 8], [4, 8]]


def test_a_zero_band_table_changes_nothing():
    """A model given bands later starts exactly where the model without them was."""
    without, banded = tiny(row_bins=0), tiny(row_bins=4)
    banded.load_state_dict({**without.state_dict(), "row_emb": torch.zeros_like(banded.row_emb)})
    tokens = torch.randint(0, without.cfg.vocab_size, (6, without.cfg.patch_tokens))
    layout = no_context(6, without.cfg)
    with torch.no_grad():
        assert torch.equal(without.forward_train(tokens, layout), banded.forward_train(tokens, layout))


def test_bands_move_the_logits_by_canvas_height_only():
    model = tiny(row_bins=4)
    cfg = model.cfg
    with torch.no_grad():
        model.row_emb.normal_()
    tokens = torch.randint(0, cfg.vocab_size, (2, cfg.patch_tokens), generator=torch.Generator().manual_seed(1))
    positions = torch.tensor([[0, 0], [0, 1]])
    layout = no_context(2, cfg)

    def logits(top: int, height: int) -> torch.Tensor:
        with torch.no_grad():
            return model.forward_train(tokens, layout, positions=positions,
                                       canvas_rows=torch.tensor([[top, height]] * 2))

    assert not torch.allclose(logits(0, 32), logits(28, 32))                   # top band vs bottom band
    assert torch.equal(logits(0, 32), logits(1, 32))                          # same bands: same logits
    assert torch.equal(logits(8, 32), logits(16, 64))                         # only the fraction counts
    with pytest.raises(ValueError, match="canvas rows"):
        model.forward_patches(tokens, layout, positions=positions)            # inference must say where


def test_crops_know_where_they_were_cut():
    """Every token of a sampled crop equals its canvas row (the grid is painted with row numbers)."""
    ph, pw, rows, cols = 4, 4, 2, 3
    grids = [np.repeat(np.arange(h, dtype=np.int16)[:, None], w, axis=1) for h, w in [(20, 30), (9, 12)]]
    sampler = TokenCropSampler(grids, rows, cols, ph, pw, seed=3)
    tokens, canvas_rows = sampler.sample_with_rows(16)                         # (16·6, 16), (16·6, 2)
    assert canvas_rows.shape == (16 * rows * cols, 2)
    first_token_row = tokens.view(-1, ph, pw)[:, 0, 0]
    assert torch.equal(first_token_row, canvas_rows[:, 0])
    assert set(canvas_rows[:, 1].tolist()) == {20, 9}                          # both images were drawn
    assert torch.equal(tokens.view(-1, ph, pw)[:, -1, 0], canvas_rows[:, 0] + ph - 1)


def test_scale_weights_interpolate_between_height_octaves():
    cfg = from_preset(ModelConfig, MODEL_PRESETS, "tiny", {"scale_bins": 3})   # octaves of 2, 4, 8 patch rows
    two = 2 * cfg.patch_h
    heights = [two // 2, two, 2 * two, 4 * two, 16 * two]
    weights = scale_weights(cfg, torch.tensor([[0, h] for h in heights]))
    assert torch.allclose(weights.sum(1), torch.ones(len(heights)))
    assert weights[0].tolist() == [1, 0, 0] and weights[1].tolist() == [1, 0, 0]   # at or below the first octave
    assert weights[2].tolist() == [0, 1, 0] and weights[3].tolist() == [0, 0, 1]
    assert weights[4].tolist() == [0, 0, 1]                                        # above the table: its last row
    between = scale_weights(cfg, torch.tensor([[0, round(two * 2 ** 0.5)]]))[0]    # half an octave up
    assert 0.4 < between[0] < 0.6 and abs(between[1] - (1 - between[0])) < 1e-6


def test_a_zero_scale_table_changes_nothing_and_a_trained_one_tells_heights_apart():
    """Given later (zero), the scale table leaves the model as it was; trained, it separates two
    canvases whose bands agree but whose heights do not (which bands alone cannot)."""
    banded, scaled = tiny(row_bins=4), tiny(row_bins=4, scale_bins=3)
    with torch.no_grad():
        banded.row_emb.normal_()
    scaled.load_state_dict({**banded.state_dict(), "scale_emb": torch.zeros_like(scaled.scale_emb)})
    cfg = banded.cfg
    tokens = torch.randint(0, cfg.vocab_size, (2, cfg.patch_tokens), generator=torch.Generator().manual_seed(2))
    positions, layout = torch.tensor([[0, 0], [0, 1]]), no_context(2, cfg)

    def logits(model: LocalTransformer, top: int, height: int) -> torch.Tensor:
        with torch.no_grad():
            return model.forward_train(tokens, layout, positions=positions,
                                       canvas_rows=torch.tensor([[top, height]] * 2))

    assert torch.equal(logits(banded, 8, 32), logits(scaled, 8, 32))
    with torch.no_grad():
        scaled.scale_emb.normal_()
    assert torch.equal(logits(banded, 4, 16), logits(banded, 8, 32))            # bands: only the fraction
    assert not torch.allclose(logits(scaled, 4, 16), logits(scaled, 8, 32))     # scale: the height too


def test_the_scale_embedding_learns_at_its_own_rate():
    """Its optimizer group carries `lr_scale`, which the trainer multiplies into the schedule's rate;
    every other parameter is in exactly one group at the base rate."""
    from nuwa_inf.train.optimizer import SCALE_EMB_LR, transformer_optimizer
    model = tiny(row_bins=4, scale_bins=3)
    opt = transformer_optimizer(model, lr=1e-3, weight_decay=0.1)
    scaled = [g for g in opt.param_groups if g.get("lr_scale", 1.0) != 1.0]
    assert len(scaled) == 1 and scaled[0]["params"] == [model.scale_emb] and scaled[0]["lr_scale"] == SCALE_EMB_LR
    grouped = [p for g in opt.param_groups for p in g["params"]]
    assert len(grouped) == len({id(p) for p in grouped}) == len(list(model.parameters()))


def test_set_rate_gives_every_group_the_schedule_times_its_scale():
    """The trainer and test-time adaptation set the rate the same way: the scale embedding's group
    at SCALE_EMB_LR times the schedule's rate, the others at it."""
    from nuwa_inf.train.optimizer import SCALE_EMB_LR, set_rate, transformer_optimizer
    opt = transformer_optimizer(tiny(row_bins=4, scale_bins=3), lr=1e-3, weight_decay=0.1)
    set_rate(opt, 2e-4)
    assert sorted(g["lr"] for g in opt.param_groups) == [2e-4, 2e-4, 2e-4 * SCALE_EMB_LR]
