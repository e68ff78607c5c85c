"""Text in the condition memory (model/text.py, train/captions.py): the vocabulary, the
prompts users may give, training with captions, and that the model learns from them."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from conftest import smooth_image
from model_fixtures import make_model_dir
from nuwa_inf.cli import main
from nuwa_inf.config import from_preset
from nuwa_inf.errors import UserError
from nuwa_inf.model.config import MODEL_PRESETS, ModelConfig
from nuwa_inf.model.memory import StyleSource
from nuwa_inf.model.text import PAD, UNK, build_vocab, check_prompt, encode_caption
from nuwa_inf.model.transformer import LocalTransformer
from nuwa_inf.train.crop_layout import batch_layout, sample_crop_contexts
from nuwa_inf.train.memory_crops import training_memory
from nuwa_inf.train.token_cache import TokenCropSampler


def test_vocabulary_and_prompts():
    vocab = build_vocab(["Ink-wash scroll by day, a lake", "blue-green scroll at night"])
    assert vocab == ["ink-wash", "scroll", "by", "day", "a", "lake", "blue-green", "at", "night"]
    assert build_vocab(["snowy scroll"], vocab) == vocab + ["snowy"]          # old ids kept, new words appended
    ids, unknown = encode_caption("a snowy lake", vocab, 6)
    assert ids == [2 + vocab.index("a"), UNK, 2 + vocab.index("lake"), PAD, PAD, PAD] and unknown == ["snowy"]
    with pytest.raises(UserError, match="at most 4"):
        check_prompt("one two three four five", vocab, 4)
    with pytest.raises(UserError, match="no words"):
        check_prompt("  ,;  ", vocab, 4)


@pytest.mark.parametrize("gate", [False, True])
def test_the_model_learns_an_images_look_from_its_caption(gate):
    """Each image is one token plus noise, named by its caption's colour word; with the style
    memory always dropped, only the caption can say which token the first patch starts with."""
    torch.manual_seed(0)
    words = [f"colour{i}" for i in range(16)]
    vocab = build_vocab(words)
    model = LocalTransformer(from_preset(ModelConfig, MODEL_PRESETS, "tiny", {
        "known_region_prob": 0.0, "memory_drop": 1.0, "text_len": 4, "text_drop": 0.0,
        "text_vocab_size": len(vocab) + 2, "text_gate": gate}))
    cfg = model.cfg
    rng = np.random.default_rng(0)
    grids, captions = [], []
    for _ in range(64):
        colour = int(rng.integers(16))
        grid = np.full((8, 48), colour, dtype=np.int16)
        noise = rng.random(grid.shape) < 0.2
        grid[noise] = rng.integers(16, size=int(noise.sum()))
        grids.append(grid)
        captions.append(encode_caption(f"a colour{colour}", vocab, 4)[0])
    text_ids = torch.tensor(captions)
    sampler = TokenCropSampler(grids, cfg.crop_rows, cfg.crop_cols, cfg.patch_h, cfg.patch_w, seed=0)
    generator = torch.Generator().manual_seed(1)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    n = cfg.crop_rows * cfg.crop_cols
    for _ in range(150):
        tokens, rows, picks = sampler.sample_with_picks(8)
        layout = batch_layout([sample_crop_contexts(cfg, generator) for _ in range(8)], cfg.n_offsets)
        memory = training_memory(model, grids, picks, cfg, generator, "cpu", n, text_ids=text_ids)
        loss = F.cross_entropy(model.forward_train(tokens, layout, canvas_rows=rows, memory=memory).reshape(-1, 16),
                               tokens.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    tokens, rows, picks = sampler.sample_with_picks(32)
    layout = batch_layout([sample_crop_contexts(cfg, generator) for _ in range(32)], cfg.n_offsets)
    first = (layout.ctx_index < 0).all(1)
    with torch.no_grad():
        memory = training_memory(model, grids, picks, cfg, generator, "cpu", n, text_ids=text_ids)
        dropped = training_memory(model, grids, picks, cfg, generator, "cpu", n, text_ids=text_ids, text_drop=1.0)
        told = F.cross_entropy(model.forward_train(tokens, layout, canvas_rows=rows, memory=memory)[first, 0],
                               tokens[first, 0])
        untold = F.cross_entropy(model.forward_train(tokens, layout, canvas_rows=rows, memory=dropped)[first, 0],
                                 tokens[first, 0])
    assert float(told) < 0.6 * float(untold), (float(told), float(untold))


def test_training_with_captions_saves_and_extends_the_vocabulary(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for i, caption in enumerate(["ink scroll by day", "blue-green scroll at night", "ink scroll at sunset"]):
        Image.fromarray(smooth_image(192, 320, seed=i)).save(images / f"{i}.png")
        (images / f"{i}.txt").write_text(caption + "\n")
    model_dir = make_model_dir(tmp_path / "m")
    args = ["train", "model", "--data", str(images), "--tokenizer", str(model_dir / "tokenizer"),
            "--steps", "4", "--save-every", "2", "--val-every", "2"]
    assert main(args + ["--out", str(tmp_path / "a"), "--config", "tiny", "--set", "text_len=6"]) == 0
    meta = json.loads((tmp_path / "a" / "config.json").read_text())
    assert meta["text_vocab"] == ["ink", "scroll", "by", "day", "blue-green", "at", "night", "sunset"]
    assert meta["config"]["text_vocab_size"] == 10
    log = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert "val_bits_no_text" in log[-1]
    (images / "0.txt").write_text("ink scroll with snowy peaks\n")
    assert main(args + ["--out", str(tmp_path / "b"), "--init", str(tmp_path / "a")]) == 0
    grown = json.loads((tmp_path / "b" / "config.json").read_text())
    assert grown["text_vocab"][:8] == meta["text_vocab"] and grown["text_vocab"][8:] == ["with", "snowy", "peaks"]
    old = LocalTransformer.load(tmp_path / "a")
    new = LocalTransformer.load(tmp_path / "b")
    assert new.text.emb.weight.shape[0] == 13 and old.text.emb.weight.shape[0] == 10


def test_gated_text_starts_as_a_no_op_and_leaves_prompt_free_jobs_exact():
    """With `text_gate`, a text encoder added to a trained model changes nothing at first, and
    however its text projections train, patches whose memory holds no text get the base model's
    logits exactly — in training (per-patch memories) and in sampling (one folded memory)."""
    torch.manual_seed(0)
    base = LocalTransformer(from_preset(ModelConfig, MODEL_PRESETS, "tiny", {})).eval()
    for block in base.blocks:  # a trained memory path, not the zero-initialised one
        torch.nn.init.normal_(block.cross.proj.weight, std=0.2)
    gated = LocalTransformer(from_preset(ModelConfig, MODEL_PRESETS, "tiny", {
        "text_len": 4, "text_vocab_size": 8, "text_gate": True})).eval()
    missing, unexpected = gated.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and all(name.startswith("text.") or "text_proj" in name for name in missing)
    cfg = base.cfg
    grids = [np.random.default_rng(i).integers(0, 16, (8, 24)).astype(np.int16) for i in range(2)]
    sampler = TokenCropSampler(grids, cfg.crop_rows, cfg.crop_cols, cfg.patch_h, cfg.patch_w, seed=0)
    tokens, rows, picks = sampler.sample_with_picks(4)
    layout = batch_layout([sample_crop_contexts(cfg, torch.Generator().manual_seed(i)) for i in range(4)],
                          cfg.n_offsets)
    n = cfg.crop_rows * cfg.crop_cols
    text_ids = torch.tensor([[2, 3, 0, 0], [4, 5, 6, 0]])

    def logits(model, text_drop):
        memory = training_memory(model, grids, picks, cfg, torch.Generator().manual_seed(5), "cpu", n,
                                 drop=0.0, text_ids=text_ids if model.text is not None else None,
                                 text_drop=text_drop)
        with torch.no_grad():
            return model.forward_train(tokens, layout, canvas_rows=rows, memory=memory)

    reference = logits(base, 0.0)
    # zero-initialised: a no-op (to rounding: the style softmax runs over a longer, masked row)
    assert torch.allclose(logits(gated, 0.0), reference, atol=1e-6, rtol=0)
    for block in gated.blocks:
        torch.nn.init.normal_(block.cross.text_proj.weight, std=0.2)
    assert not torch.allclose(logits(gated, 0.0), reference, atol=1e-3)  # the prompt now counts
    assert torch.equal(logits(gated, 1.0), reference)              # no prompt: the base model
    # sampling folds all patches into one memory: text-free it is exact too, with text it differs
    x = torch.randn(3, 5, cfg.dim)
    source = StyleSource(torch.from_numpy(grids[0].astype(np.int64)), 0, 8)
    block, old = gated.blocks[0], base.blocks[0]
    with torch.no_grad():
        plain = base.style_memory([source])
        alone = gated.style_memory([source], torch.zeros(1, 4, dtype=torch.int64))
        told = gated.style_memory([source], text_ids[:1])
        expected = old.cross(x, old.cross.keys_values(plain), plain)
        assert torch.equal(block.cross(x, block.cross.keys_values(alone), alone), expected)
        assert not torch.allclose(block.cross(x, block.cross.keys_values(told), told), expected, atol=1e-3)


def test_the_style_weight_moves_the_read_from_the_input_s_style_to_no_style():
    """`style_weight` (extend --style-weight) scales how much of the style cells a patch reads:
    1 is the memory as trained, 0 reads exactly what a job without style memory reads (the
    prompt's group unchanged), and weights between lie between."""
    torch.manual_seed(0)
    model = LocalTransformer(from_preset(ModelConfig, MODEL_PRESETS, "tiny", {
        "text_len": 4, "text_vocab_size": 8, "text_gate": True})).eval()
    for block in model.blocks:  # a trained memory path, not the zero-initialised one
        torch.nn.init.normal_(block.cross.proj.weight, std=0.2)
        torch.nn.init.normal_(block.cross.text_proj.weight, std=0.2)
    grid = np.random.default_rng(0).integers(0, 16, (8, 24)).astype(np.int64)
    source = StyleSource(torch.from_numpy(grid), 0, 8)
    prompt = torch.tensor([[2, 3, 0, 0]])
    x = torch.randn(3, 5, model.cfg.dim)
    cross = model.blocks[0].cross

    def read(style, weight):
        memory = model.style_memory([style], prompt)
        memory.style_weight = weight
        return cross(x, cross.keys_values(memory), memory)

    with torch.no_grad():
        full, half, none = read(source, 1.0), read(source, 0.5), read(source, 0.0)
        styleless = read(None, 1.0)
        assert torch.allclose(none, styleless, atol=1e-6, rtol=0)
        assert not torch.allclose(full, styleless, atol=1e-3)
        assert torch.allclose(half, (full + styleless) / 2, atol=1e-5, rtol=0)  # the read is linear in it
        # training's per-patch memories (owner rows) take the weight the same way
        owned = model.style_memory([source], prompt).select(torch.zeros(3, dtype=torch.int64))
        owned.style_weight = 0.0
        assert torch.allclose(cross(x, cross.keys_values(owned), owned), styleless, atol=1e-6, rtol=0)
