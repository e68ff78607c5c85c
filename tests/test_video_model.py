"""The transformer's time terms: rotary time channels, offset tables grown for earlier frames,
clip crops, and the temporal context path learning to carry a frame into the next."""
from __future__ import annotations

import numpy as np
import torch

from nuwa_inf.config import from_preset
from nuwa_inf.kernels import PatchLayout
from nuwa_inf.model.config import MODEL_PRESETS, ModelConfig
from nuwa_inf.model.transformer import LocalTransformer
from nuwa_inf.train.clip_data import ClipCropSampler
from nuwa_inf.train.crop_layout import batch_layout, sample_clip_contexts
from nuwa_inf.train.finetune import grow_offset_tables


def tiny(**overrides) -> ModelConfig:
    return from_preset(ModelConfig, MODEL_PRESETS, "tiny", overrides)


def test_time_channels_change_nothing_within_a_frame_and_something_across_frames():
    torch.manual_seed(0)
    model = LocalTransformer(tiny(rope_time_dims=4, extent_t=1)).eval()
    tokens = torch.randint(0, model.cfg.vocab_size, (2, model.cfg.patch_tokens))
    # patch 1 reads patch 0 at offset (0, 0, -1) or (-1, 0, 0)
    same_frame = PatchLayout(torch.tensor([[-1], [0]]), torch.tensor([[0], [model.cfg.offset_id(0, 0, -1)]]),
                             model.cfg.n_offsets)
    with torch.no_grad():
        at_0 = model.forward_train(tokens, same_frame, positions=torch.tensor([[0, 0, 0], [0, 0, 1]]))
        at_7 = model.forward_train(tokens, same_frame, positions=torch.tensor([[7, 0, 0], [7, 0, 1]]))
    assert torch.allclose(at_0, at_7, atol=1e-5)   # one frame: the time rotation cancels
    earlier = PatchLayout(torch.tensor([[-1], [0]]), torch.tensor([[0], [model.cfg.offset_id(-1, 0, 0)]]),
                          model.cfg.n_offsets)
    with torch.no_grad():
        one_back = model.forward_train(tokens, earlier, positions=torch.tensor([[0, 0, 0], [1, 0, 0]]))
        no_time = LocalTransformer(tiny(extent_t=1)).eval()
        no_time.load_state_dict(model.state_dict())
        plain = no_time.forward_train(tokens, earlier, positions=torch.tensor([[0, 0, 0], [1, 0, 0]]))
    assert not torch.allclose(one_back[1], plain[1], atol=1e-4)   # across frames it does rotate


def test_an_image_model_grown_for_video_predicts_images_as_before():
    torch.manual_seed(0)
    image_model = LocalTransformer(tiny()).eval()
    with torch.no_grad():
        for block in image_model.blocks:
            block.attn.offset_bias.normal_()
            block.attn.offset_vec.normal_()
    video_model = LocalTransformer(tiny(extent_t=2, rope_time_dims=4)).eval()
    spatial = image_model.cfg.n_offsets
    grown = grow_offset_tables(dict(image_model.state_dict()), video_model.cfg.n_offsets, spatial)
    video_model.load_state_dict(grown)
    assert video_model.blocks[0].attn.offset_bias.shape[1] == 3 * image_model.blocks[0].attn.offset_bias.shape[1]
    cfg = image_model.cfg
    generator = torch.Generator().manual_seed(3)
    from nuwa_inf.train.crop_layout import sample_crop_contexts
    layout = batch_layout([sample_crop_contexts(cfg, generator) for _ in range(2)], cfg.n_offsets)
    tokens = torch.randint(0, cfg.vocab_size, (2 * cfg.crop_rows * cfg.crop_cols, cfg.patch_tokens))
    with torch.no_grad():
        before = image_model.forward_train(tokens, layout)
        after = video_model.forward_train(tokens, PatchLayout(layout.ctx_index, layout.ctx_offset,
                                                              video_model.cfg.n_offsets))
    assert torch.allclose(before, after, atol=1e-5)


def test_a_video_model_grown_to_read_two_frames_back_starts_reading_them_like_one_back():
    """extent_t 1 → 2: the tables keep their Δt = 0 and −1 blocks, and the new Δt = −2 block is a
    copy of the −1 block, so a patch two frames back is first read as one frame back is."""
    torch.manual_seed(0)
    one_back = LocalTransformer(tiny(extent_t=1, rope_time_dims=4)).eval()
    with torch.no_grad():
        for block in one_back.blocks:
            block.attn.offset_bias.normal_()
            block.attn.offset_vec.normal_()
    two_back = LocalTransformer(tiny(extent_t=2, rope_time_dims=4)).eval()
    spatial = one_back.cfg.offsets_per_frame
    two_back.load_state_dict(grow_offset_tables(dict(one_back.state_dict()), two_back.cfg.n_offsets, spatial))
    for old, new in zip(one_back.blocks, two_back.blocks, strict=True):
        for name in ("offset_bias", "offset_vec"):
            before, after = getattr(old.attn, name), getattr(new.attn, name)
            assert torch.equal(after[:, :2 * spatial], before)
            assert torch.equal(after[:, 2 * spatial:], before[:, spatial:])


def test_clip_crops_take_the_same_window_from_consecutive_frames():
    rng = np.random.default_rng(0)
    clip = rng.integers(0, 16, (6, 8, 12))          # (T, h, w) tokens
    sampler = ClipCropSampler([clip], frames=3, rows=1, cols=2, ph=4, pw=4, seed=1)
    tokens, rows, picks = sampler.sample_with_picks(4)
    assert tokens.shape == (4 * 3 * 1 * 2, 16) and rows.shape == (24, 2)
    for b, (_, y, x) in enumerate(picks):
        crop = tokens[b * 6:(b + 1) * 6].reshape(3, 2, 4, 4)            # (T, C, ph, pw)
        # find the crop's first frame in the clip: its window repeats in the next frames at the same place
        starts = [t for t in range(4) if np.array_equal(clip[t, y:y + 4, x:x + 4], crop[0, 0].numpy())]
        assert starts, "first patch not found at its pick"
        t0 = starts[0]
        for t in range(3):
            for c in range(2):
                assert np.array_equal(clip[t0 + t, y:y + 4, x + 4 * c: x + 4 * c + 4], crop[t, c].numpy())


def test_the_temporal_context_path_learns_to_carry_the_previous_frame():
    """Static clips of random tokens: a frame is known only from the frame before it. Trained as
    the trainer trains (clip crops, per-frame sweeps, the first frame sometimes given), the model
    copies it through the temporal context; with that frame taken out of the layout it guesses."""
    cfg = tiny(batch_size=8, dim=32, extent_t=1, crop_frames=2, crop_rows=1, crop_cols=2, rope_time_dims=4)
    rng = np.random.default_rng(0)
    clips = [np.repeat(rng.integers(0, cfg.vocab_size, (1, 2 * cfg.patch_h, 4 * cfg.patch_w)), 4, axis=0)
             for _ in range(32)]
    sampler = ClipCropSampler(clips, cfg.crop_frames, cfg.crop_rows, cfg.crop_cols, cfg.patch_h, cfg.patch_w, seed=0)
    orders = torch.Generator().manual_seed(1)
    torch.manual_seed(0)
    model = LocalTransformer(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    for _ in range(300):
        tokens, rows, _ = sampler.sample_with_picks(cfg.batch_size)
        layout = batch_layout([sample_clip_contexts(cfg, orders) for _ in range(cfg.batch_size)], cfg.n_offsets)
        logits = model.forward_train(tokens, layout, canvas_rows=rows)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, cfg.vocab_size), tokens.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    tokens, rows, _ = sampler.sample_with_picks(16)
    # frame 1's left patch (index 2 of each crop) reads frame 0's two patches only
    n = 4
    index = torch.full((16 * n, 2), -1)
    offset = torch.zeros((16 * n, 2), dtype=torch.int64)
    for b in range(16):
        index[b * n + 2] = torch.tensor([b * n, b * n + 1])
        offset[b * n + 2] = torch.tensor([cfg.offset_id(-1, 0, 0), cfg.offset_id(-1, 0, 1)])
    with torch.no_grad():
        with_prev = model.forward_train(tokens, PatchLayout(index, offset, cfg.n_offsets), canvas_rows=rows)
        without = model.forward_train(tokens, PatchLayout(torch.full_like(index, -1), offset, cfg.n_offsets),
                                      canvas_rows=rows)
    target = tokens[2::n]                                    # (16, P) frame 1, left patch
    right_with = (with_prev[2::n].argmax(-1) == target).float().mean().item()
    right_without = (without[2::n].argmax(-1) == target).float().mean().item()
    assert right_with > 0.8 and right_without < 0.3, (right_with, right_without)
