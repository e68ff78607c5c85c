"""Transformer training: layouts from random orders, loss goes down, resume is exact."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import smooth_image
from model_fixtures import make_model_dir
from nuwa_inf.cli import main
from nuwa_inf.config import from_preset
from nuwa_inf.model.config import MODEL_PRESETS, ModelConfig
from nuwa_inf.model.transformer import LocalTransformer
from nuwa_inf.train.crop_layout import batch_layout, sample_crop_contexts


def test_crop_layouts_reference_only_patches_of_the_same_crop():
    cfg = from_preset(ModelConfig, MODEL_PRESETS, "tiny", {"crop_rows": 3, "crop_cols": 4})
    generator = torch.Generator().manual_seed(0)
    layout = batch_layout([sample_crop_contexts(cfg, generator) for _ in range(5)], cfg.n_offsets)
    per_crop = cfg.crop_rows * cfg.crop_cols
    for row, slots in enumerate(layout.ctx_index.tolist()):
        for slot in slots:
            if slot >= 0:
                assert slot // per_crop == row // per_crop and slot != row


def test_context_changes_the_prediction():
    """The context path is live: a patch's logits depend on its context patches' tokens."""
    cfg = from_preset(ModelConfig, MODEL_PRESETS, "tiny")
    torch.manual_seed(0)
    model = LocalTransformer(cfg).eval()
    with torch.no_grad():
        for block in model.blocks:
            block.attn.offset_bias.normal_()
    from nuwa_inf.kernels import PatchLayout
    layout = PatchLayout(torch.tensor([[-1], [0]]), torch.tensor([[0], [3]]), cfg.n_offsets)
    tokens = torch.randint(0, cfg.vocab_size, (2, cfg.patch_tokens))
    other = tokens.clone()
    other[0] = (other[0] + 1) % cfg.vocab_size
    positions = torch.tensor([[0, 0], [0, 1]])  # patch 1 is right of patch 0 (offset id 3 = left)
    with torch.no_grad():
        a = model.forward_train(tokens, layout, positions=positions)
        b = model.forward_train(other, layout, positions=positions)
    assert not torch.allclose(a[1], b[1])      # patch 1 reads patch 0
    assert torch.allclose(a[0, :1], b[0, :1])  # patch 0's first token sees only BOS


def train_args(tmp_path, images: int, steps: int, save_every: int, val_every: int) -> list[str]:
    """`train model` flags for a tiny model on `images` smooth images (written under tmp_path)."""
    image_folder = tmp_path / "images"
    image_folder.mkdir()
    for i in range(images):
        Image.fromarray(smooth_image(192, 320, seed=i)).save(image_folder / f"{i}.png")
    model_dir = make_model_dir(tmp_path / "m")
    return ["train", "model", "--data", str(image_folder), "--tokenizer", str(model_dir / "tokenizer"),
            "--config", "tiny", "--steps", str(steps), "--save-every", str(save_every), "--val-every", str(val_every)]


def test_train_model_reduces_loss_and_resumes_exactly(tmp_path):
    args = train_args(tmp_path, images=3, steps=40, save_every=20, val_every=20)
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    log = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert np.mean([r["loss"] for r in log[-8:]]) < np.mean([r["loss"] for r in log[:8]])
    assert "val_bits" in log[-1]
    resumed = tmp_path / "b"
    resumed.mkdir()
    for part in ("tokenizer", "token_cache", "token_cache_val"):
        if (tmp_path / "a" / part).exists():
            shutil.copytree(tmp_path / "a" / part, resumed / part)
    (resumed / "checkpoints").mkdir()
    shutil.copytree(tmp_path / "a" / "checkpoints" / "step_00000020", resumed / "checkpoints" / "step_00000020")
    (resumed / "checkpoints" / "latest.json").write_text(json.dumps({"step": 20, "dir": "step_00000020"}))
    assert main(args + ["--out", str(resumed), "--resume"]) == 0
    a, b = LocalTransformer.load(tmp_path / "a"), LocalTransformer.load(resumed)
    for name, tensor in a.state_dict().items():
        assert torch.equal(tensor, b.state_dict()[name]), name


def test_the_context_path_learns_to_copy_the_left_neighbour():
    """Token rows constant across the canvas, a random value per row: a patch's first column is
    known only from its left neighbour. Trained as the trainer trains (random crops and orders),
    the model copies it through the context path; with the neighbour taken out of the layout
    the same column is a guess again."""
    from nuwa_inf.kernels import PatchLayout
    from nuwa_inf.train.token_cache import TokenCropSampler

    cfg = from_preset(ModelConfig, MODEL_PRESETS, "tiny", {"batch_size": 8, "dim": 32})
    rng = np.random.default_rng(0)
    grids = [np.repeat(rng.integers(0, cfg.vocab_size, (4 * cfg.patch_h, 1)), 8 * cfg.patch_w, axis=1)
             for _ in range(32)]
    sampler = TokenCropSampler(grids, cfg.crop_rows, cfg.crop_cols, cfg.patch_h, cfg.patch_w, seed=0)
    orders = torch.Generator().manual_seed(1)
    torch.manual_seed(0)
    model = LocalTransformer(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    for _ in range(300):
        tokens = sampler.sample(cfg.batch_size)
        layout = batch_layout([sample_crop_contexts(cfg, orders) for _ in range(cfg.batch_size)], cfg.n_offsets)
        logits = model.forward_train(tokens, layout)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, cfg.vocab_size), tokens.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()

    model.eval()
    row_values = torch.from_numpy(rng.integers(0, cfg.vocab_size, (64, cfg.patch_h)))
    pair = row_values[:, :, None].expand(-1, -1, cfg.patch_w).reshape(64, cfg.patch_tokens)  # (64, P)
    tokens = pair.repeat_interleave(2, dim=0)                   # patch A, patch B right of it, 64 times
    positions = torch.tensor([[0, 0], [0, 1]]).repeat(64, 1)

    def first_column_accuracy(b_reads_a: bool) -> float:
        ctx = torch.tensor([[-1], [0]]).repeat(64, 1) + torch.arange(64).repeat_interleave(2)[:, None] * 2
        ctx[0::2] = -1
        if not b_reads_a:
            ctx[1::2] = -1
        offsets = torch.full_like(ctx, cfg.offset_id(0, 0, -1))
        with torch.no_grad():
            logits = model.forward_train(tokens, PatchLayout(ctx, offsets, cfg.n_offsets), positions=positions)
        guess = logits[1::2].argmax(-1).view(64, cfg.patch_h, cfg.patch_w)[:, :, 0]
        return float((guess == row_values).float().mean())

    assert first_column_accuracy(True) > 0.9
    assert first_column_accuracy(False) < 0.4


def test_token_cache_adds_mirror_copies_later_and_leaves_them_out_when_asked(tmp_path):
    """A cache made without mirror copies gets them (and only the missing ones are encoded) when a
    later run wants them; a run with --no-flips gets none even from a cache that has them."""
    from nuwa_inf.tokenizer.vqgan import VQGAN
    from nuwa_inf.train.token_cache import pretokenize

    image_folder = tmp_path / "images"
    image_folder.mkdir()
    for i in range(2):
        Image.fromarray(smooth_image(64, 96, seed=i)).save(image_folder / f"{i}.png")
    tokenizer = VQGAN.load(make_model_dir(tmp_path / "m") / "tokenizer")
    cache = tmp_path / "cache"
    plain = pretokenize(image_folder, tokenizer, cache, (2, 2), flips=False)
    assert len(plain) == 2 and not list(cache.glob("*_flip.npy"))
    with_flips = pretokenize(image_folder, tokenizer, cache, (2, 2), flips=True)
    assert len(with_flips) == 4 and len(list(cache.glob("*_flip.npy"))) == 2
    for grid, mirror in zip(with_flips[0::2], with_flips[1::2], strict=True):
        assert grid.shape == mirror.shape and not np.array_equal(grid, mirror)
    fresh = pretokenize(image_folder, tokenizer, tmp_path / "fresh", (2, 2), flips=True)
    for added, encoded in zip(with_flips, fresh, strict=True):  # the same grids as a cache made with flips
        assert np.array_equal(added, encoded)
    again = pretokenize(image_folder, tokenizer, cache, (2, 2), flips=False)
    assert len(again) == 2 and all(np.array_equal(a, b) for a, b in zip(again, plain, strict=True))


def test_train_model_recompute_takes_the_same_steps(tmp_path):
    """--recompute holds less and computes again in backward: the same losses and weights."""
    args = train_args(tmp_path, images=2, steps=6, save_every=6, val_every=3)
    assert main(args + ["--out", str(tmp_path / "plain")]) == 0
    assert main(args + ["--out", str(tmp_path / "recomputed"), "--recompute"]) == 0
    logs = [[json.loads(line) for line in (tmp_path / run / "log.jsonl").read_text().splitlines()]
            for run in ("plain", "recomputed")]
    assert [r["loss"] for r in logs[0]] == pytest.approx([r["loss"] for r in logs[1]], rel=1e-4)
    a, b = LocalTransformer.load(tmp_path / "plain"), LocalTransformer.load(tmp_path / "recomputed")
    for name, tensor in a.state_dict().items():
        assert torch.allclose(tensor, b.state_dict()[name], rtol=1e-3, atol=1e-5), name
