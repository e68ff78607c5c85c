"""2-D canvas RoPE: only relative positions matter, they do matter, and sampling with KV
caches rotates exactly as the teacher-forced pass does."""
from __future__ import annotations

import pytest
import torch

from nuwa_inf.config import from_preset
from nuwa_inf.errors import UserError
from nuwa_inf.kernels import PatchLayout
from nuwa_inf.model.config import MODEL_PRESETS, ModelConfig
from nuwa_inf.model.context_pool import ContextPool
from nuwa_inf.model.sampler import WaveSampler
from nuwa_inf.model.transformer import LocalTransformer

LEFT = (0, 0, -1)  # the context patch is left of the query patch


def tiny_model(**overrides) -> LocalTransformer:
    torch.manual_seed(0)
    cfg = from_preset(ModelConfig, MODEL_PRESETS, "tiny", overrides)
    model = LocalTransformer(cfg).eval()
    with torch.no_grad():  # untrained weights are too small for positions to move the logits much
        for block in model.blocks:
            block.attn.qkv.weight.mul_(8)
    return model


def pair_layout(cfg: ModelConfig) -> PatchLayout:
    """Two patches; patch 1 reads patch 0 as its left neighbour."""
    return PatchLayout(torch.tensor([[-1], [0]]), torch.tensor([[0], [cfg.offset_id(*LEFT)]]), cfg.n_offsets)


def test_only_relative_positions_matter():
    model = tiny_model()
    tokens = torch.randint(0, model.cfg.vocab_size, (2, model.cfg.patch_tokens),
                           generator=torch.Generator().manual_seed(1))
    layout = pair_layout(model.cfg)
    near = torch.tensor([[0, 0], [0, 1]])
    with torch.no_grad():
        a = model.forward_train(tokens, layout, positions=near)
        shifted = model.forward_train(tokens, layout, positions=near + torch.tensor([7, 2431]))
        moved = model.forward_train(tokens, layout, positions=torch.tensor([[0, 0], [1, 0]]))
    assert torch.allclose(a, shifted, atol=2e-4)          # a far-away canvas position changes nothing
    assert (a[1] - moved[1]).abs().max() > 1e-2            # the neighbour's relative place does matter


def test_rope_off_ignores_positions():
    model = tiny_model(rope_dims=0)
    tokens = torch.randint(0, model.cfg.vocab_size, (2, model.cfg.patch_tokens))
    layout = pair_layout(model.cfg)
    with torch.no_grad():
        a = model.forward_train(tokens, layout, positions=torch.tensor([[0, 0], [0, 1]]))
        b = model.forward_train(tokens, layout, positions=torch.tensor([[0, 0], [1, 0]]))
    assert torch.equal(a, b)


def test_positions_are_required_when_the_model_rotates():
    model = tiny_model()
    tokens = torch.zeros((2, model.cfg.patch_tokens), dtype=torch.int64)
    with pytest.raises(ValueError, match="positions"):
        model.forward_patches(tokens, pair_layout(model.cfg))


@pytest.mark.parametrize("rope_dims", [2, 6, 20])
def test_bad_rope_dims_are_refused(rope_dims):
    with pytest.raises(UserError, match="rope_dims"):
        from_preset(ModelConfig, MODEL_PRESETS, "tiny", {"rope_dims": rope_dims}).validate()


def test_sampling_rotates_like_the_teacher_forced_pass():
    """Prefill patch A, sample patch B next to it with its tokens forced: B's cached K/V equal
    the teacher-forced pass over [A, B] at the same canvas positions."""
    model = tiny_model()
    cfg = model.cfg
    tokens = torch.randint(0, cfg.vocab_size, (2, cfg.patch_tokens), generator=torch.Generator().manual_seed(2))
    positions = torch.tensor([[5, 300], [5, 301]])
    canvas_rows = torch.tensor([[5 * cfg.patch_h, 8 * cfg.patch_h]] * 2)
    with torch.no_grad():
        model.row_emb.normal_()  # the band embedding takes part too
        _, (k_ref, v_ref) = model.forward_patches(tokens, pair_layout(cfg), collect_kv=True, positions=positions,
                                                  canvas_rows=canvas_rows)

    pool = ContextPool(cfg.layers, cfg.heads, cfg.patch_tokens, cfg.head_dim, capacity=2)
    sampler = WaveSampler(model, pool)
    empty = PatchLayout(torch.full((1, 1), -1), None, cfg.n_offsets)
    k_a, v_a = sampler.prefill(tokens[:1], empty, positions[:1], canvas_rows[:1])
    pool.add([(0, 5, 300)], k_a, v_a)
    reads_a = PatchLayout(pool.slots([[(0, 5, 300)]]), torch.tensor([[cfg.offset_id(*LEFT)]]), cfg.n_offsets)
    uniforms = torch.rand((1, cfg.patch_tokens), dtype=torch.float64)
    sampled, k_b, v_b = sampler.sample(reads_a, positions[1:], uniforms, forced=tokens[1:],
                                       canvas_rows=canvas_rows[1:])
    assert torch.equal(sampled, tokens[1:])
    assert torch.allclose(k_a, k_ref[:, :1], atol=1e-5) and torch.allclose(v_a, v_ref[:, :1], atol=1e-5)
    assert torch.allclose(k_b, k_ref[:, 1:], atol=1e-4) and torch.allclose(v_b, v_ref[:, 1:], atol=1e-4)


def test_rotation_keeps_the_autocast_dtype():
    """Under bf16 autocast (CUDA training) q, k and v must stay one dtype for the kernels."""
    model = tiny_model()
    tokens = torch.randint(0, model.cfg.vocab_size, (2, model.cfg.patch_tokens))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model.forward_train(tokens, pair_layout(model.cfg), positions=torch.tensor([[0, 0], [0, 1]]))
    assert logits.dtype == torch.bfloat16 and torch.isfinite(logits.float()).all()
