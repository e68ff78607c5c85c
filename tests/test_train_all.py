"""Fine-tuning with --init (weights really loaded, mismatches named, the encoder frozen) and
`nuwa-inf train all` end to end on data as users have it: nested folders, mixed formats,
an image smaller than a crop, an unreadable file, one long image; resuming a killed run."""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import nuwa_inf
from conftest import smooth_image
from model_fixtures import make_model_dir
from nuwa_inf.checkpoint import load_tensors
from nuwa_inf.cli import main


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_model_dir(tmp_path_factory.mktemp("model"), live_memory=False)  # as the bundled one started


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Images at least one tiny transformer crop (128x192 px) in size."""
    folder = tmp_path_factory.mktemp("photos")
    for i, (h, w) in enumerate([(192, 256), (256, 320), (200, 300)]):
        Image.fromarray(smooth_image(h, w, seed=i)).save(folder / f"p{i}.png")
    return folder


@pytest.fixture
def messy_folder(tmp_path):
    """A folder as users have it: nested, PNG + JPEG + grey, one too small, one unreadable."""
    folder = tmp_path / "my photos"
    (folder / "2023" / "summer").mkdir(parents=True)
    for i, (h, w) in enumerate([(192, 256), (256, 320), (160, 224), (200, 300)]):
        Image.fromarray(smooth_image(h, w, seed=i)).save(folder / f"img{i}.png")
    Image.fromarray(smooth_image(240, 320, seed=7)).save(folder / "2023" / "beach.JPG", quality=90)
    Image.fromarray(smooth_image(100, 90, seed=8)).convert("L").save(folder / "2023" / "summer" / "tiny.png")
    (folder / "2023" / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    return folder


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_model_init_loads_the_weights_then_improves(model_dir, photos, tmp_path):
    from nuwa_inf.model.transformer import LocalTransformer
    from nuwa_inf.tokenizer.vqgan import VQGAN
    from nuwa_inf.train.crop_layout import batch_layout, sample_crop_contexts
    from nuwa_inf.train.token_cache import TokenCropSampler, pretokenize

    out = tmp_path / "ft"
    assert main(["train", "model", "--data", str(photos), "--out", str(out), "--tokenizer", str(model_dir),
                 "--init", str(model_dir), "--config", "tiny", "--steps", "12", "--threads", "1"]) == 0
    log = read_log(out / "log.jsonl")
    # the first step's batch, rebuilt as the trainer draws it (crops: seed, orders: seed + 1)
    initial = LocalTransformer.load(model_dir / "transformer")
    cfg = initial.cfg
    grids = pretokenize(photos, VQGAN.load(model_dir / "tokenizer"), out / "token_cache",
                        (cfg.crop_rows * cfg.patch_h, cfg.crop_cols * cfg.patch_w))
    sampler = TokenCropSampler(grids, cfg.crop_rows, cfg.crop_cols, cfg.patch_h, cfg.patch_w, seed=0)
    tokens = sampler.sample(cfg.batch_size)
    orders = torch.Generator().manual_seed(1)
    layout = batch_layout([sample_crop_contexts(cfg, orders) for _ in range(cfg.batch_size)], cfg.n_offsets)
    with torch.no_grad():
        logits = initial.forward_train(tokens, layout)
    expected = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens.reshape(-1)).item()
    assert log[0]["loss"] == pytest.approx(expected, rel=1e-4)
    assert np.mean([r["loss"] for r in log[-3:]]) < 0.5 * log[0]["loss"]


def test_init_may_gain_band_embeddings(photos, tmp_path):
    """A checkpoint made without bands fine-tunes into one with them: the same start, then they learn."""
    from nuwa_inf.model.transformer import LocalTransformer

    old = make_model_dir(tmp_path / "old", row_bins=0)
    assert LocalTransformer.load(old / "transformer").row_emb is None
    plain, banded = tmp_path / "plain", tmp_path / "banded"
    common = ["--data", str(photos), "--tokenizer", str(old), "--init", str(old), "--steps", "6", "--threads", "1"]
    assert main(["train", "model", "--out", str(plain), *common]) == 0
    assert main(["train", "model", "--out", str(banded), *common, "--set", "row_bins=4"]) == 0
    plain_loss = read_log(plain / "log.jsonl")[0]["loss"]
    assert read_log(banded / "log.jsonl")[0]["loss"] == pytest.approx(plain_loss, rel=1e-5)
    gained = LocalTransformer.load(banded).row_emb
    assert gained is not None and gained.shape == (4, 32) and gained.abs().sum() > 0


def test_tokenizer_init_loads_the_weights_then_improves(model_dir, photos, tmp_path):
    from nuwa_inf.data.datasets import CropSampler
    from nuwa_inf.tokenizer.losses import reconstruction_loss
    from nuwa_inf.tokenizer.vqgan import VQGAN

    out = tmp_path / "ft"
    assert main(["train", "tokenizer", "--data", str(photos), "--out", str(out), "--init", str(model_dir),
                 "--config", "tiny", "--steps", "15", "--set", "lr=2e-3", "--threads", "1"]) == 0
    log = read_log(out / "log.jsonl")
    initial = VQGAN.load(model_dir / "tokenizer")
    cfg = initial.cfg
    batch = CropSampler(photos, cfg.crop, flip=True, seed=0).sample(cfg.batch_size)
    with torch.no_grad():
        recon, _ = initial.train()(batch)  # train mode: the quantiser adds its code-usage term
        expected = reconstruction_loss(recon, batch, cfg.l1_weight, cfg.l2_weight, cfg.grad_weight)
        expected = (expected + cfg.entropy_weight * initial.quantizer.aux_loss).item()
    assert log[0]["loss"] == pytest.approx(expected, rel=1e-4)
    assert np.mean([r["loss"] for r in log[-5:]]) < np.mean([r["loss"] for r in log[:5]])


def test_freeze_encoder_trains_only_the_decoder(model_dir, photos, tmp_path):
    assert main(["train", "tokenizer", "--data", str(photos), "--out", str(tmp_path / "ft"), "--init", str(model_dir),
                 "--config", "tiny", "--steps", "3", "--set", "freeze=encoder", "--threads", "1"]) == 0
    before = load_tensors(model_dir / "tokenizer" / "model.safetensors")
    after = load_tensors(tmp_path / "ft" / "model.safetensors")
    for name, tensor in before.items():
        if name.startswith("decoder."):
            continue
        assert torch.equal(tensor, after[name]), f"{name} changed although the encoder is frozen"
    assert any(not torch.equal(before[n], after[n]) for n in before if n.startswith("decoder."))


def test_decoder_finetuned_with_the_band_loss_exports_into_a_bundle(model_dir, photos, tmp_path):
    """The bundled model's recipe: fine-tune the decoder with spectral_weight, export it beside the
    transformer; the bundle holds the new decoder, the old transformer, and trains whole by default."""
    from nuwa_inf.assets.export import export

    assert main(["train", "tokenizer", "--data", str(photos), "--out", str(tmp_path / "ft"), "--init", str(model_dir),
                 "--steps", "3", "--set", "freeze=encoder", "--set", "spectral_weight=0.01", "--threads", "1"]) == 0
    export(model_dir, tmp_path / "bundle", tmp_path / "ft")
    tuned = load_tensors(tmp_path / "ft" / "model.safetensors")
    bundled = load_tensors(tmp_path / "bundle" / "tokenizer" / "model.safetensors")
    assert all(torch.equal(bundled[n], t.half()) for n, t in tuned.items())
    transformer = load_tensors(model_dir / "transformer" / "model.safetensors")
    assert all(torch.equal(v.half(), load_tensors(tmp_path / "bundle" / "transformer" / "model.safetensors")[n])
               for n, v in transformer.items())
    config = json.loads((tmp_path / "bundle" / "tokenizer" / "config.json").read_text())["config"]
    assert config["freeze"] == "none" and config["spectral_weight"] == 0.01
    assert nuwa_inf.load(tmp_path / "bundle") is not None


@pytest.mark.parametrize("command, flags, part", [
    ("tokenizer", ["--config", "tiny", "--set", "ch=16"], "tokenizer"),
    ("tokenizer", ["--config", "small"], "tokenizer"),  # another preset
    ("model", ["--config", "tiny", "--set", "dim=48", "--tokenizer", "MODEL"], "transformer"),
])
def test_init_mismatch_names_the_tensor_and_both_shapes(model_dir, photos, tmp_path, capsys, command, flags, part):
    flags = [str(model_dir) if f == "MODEL" else f for f in flags]
    code = main(["train", command, "--data", str(photos), "--out", str(tmp_path / "x"), "--init", str(model_dir),
                 "--steps", "2", *flags])
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the pre-tokenising bar, one error line
    assert code == 2 and err.startswith("nuwa-inf: error: ")
    found = re.search(r"tensor (\S+) has shape \(([\d, ]*)\), model expects \(([\d, ]*)\)", err)
    assert found, err
    name, theirs, ours = found.groups()
    init_shape = tuple(load_tensors(model_dir / part / "model.safetensors")[name].shape)
    assert init_shape == tuple(int(v) for v in theirs.split(",") if v.strip()) and theirs != ours


def test_init_without_that_part_is_exit_2(photos, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["train", "tokenizer", "--data", str(photos), "--out", str(tmp_path / "x"),
                 "--init", str(tmp_path / "empty"), "--config", "tiny"]) == 2
    assert "--init" in capsys.readouterr().err


def train_all(*flags: str) -> int:
    return main(["train", "all", "--threads", "1", *flags])


def test_train_all_from_a_messy_folder_to_a_usable_model(model_dir, messy_folder, tmp_path, capsys):
    out = tmp_path / "mine"
    assert train_all("--data", str(messy_folder), "--out", str(out), "--init", str(model_dir), "--steps", "8") == 0
    captured = capsys.readouterr()
    assert "broken.jpg" in captured.err and "unreadable" in captured.err
    assert "tiny.png" in captured.err and "upscaled" in captured.err
    assert "fine-tuning the tokenizer" in captured.out and "below 28 dB" in captured.out
    assert "before" in captured.out and "bits/token" in captured.out
    report = json.loads((out / "report.json").read_text())
    assert report["images"] == {"train": 5, "val": 1, "tune": 1}  # tune: 1 of the 5 only validates
    assert report["after"]["bits"] < report["before"]["bits"]
    assert report["tokenizer"]["choice"] in ("fine-tuned", "kept")
    # decoder-only fine-tuning: the codes are the starting model's
    start = load_tensors(model_dir / "tokenizer" / "model.safetensors")
    final = load_tensors(out / "tokenizer" / "model.safetensors")
    assert all(torch.equal(start[n], final[n]) for n in start if n.startswith("encoder."))
    # a model directory the API and the CLI take
    wide = nuwa_inf.load(out, device="cpu").extend(Image.open(messy_folder / "img1.png"), width=448, height=256)
    assert wide.size == (448, 256)


def test_train_all_keeps_a_good_enough_tokenizer(model_dir, photos, tmp_path, capsys):
    out = tmp_path / "kept"
    assert train_all("--data", str(photos), "--out", str(out), "--init", str(model_dir), "--steps", "2",
                     "--keep-psnr", "5") == 0
    assert "keeping the starting tokenizer" in capsys.readouterr().out
    assert (out / "tokenizer" / "model.safetensors").read_bytes() == \
        (model_dir / "tokenizer" / "model.safetensors").read_bytes()
    assert train_all("--data", str(photos), "--out", str(out), "--init", str(model_dir)) == 2
    assert "--resume" in capsys.readouterr().err


def test_train_all_resumes_the_stage_that_was_running(model_dir, photos, tmp_path, monkeypatch):
    import nuwa_inf.train.model_trainer as model_trainer

    real = model_trainer.train_model

    def killed_after_three_steps(run):
        real(dataclasses.replace(run, steps=3))
        raise KeyboardInterrupt

    out = tmp_path / "resumed"
    flags = ["--data", str(photos), "--out", str(out), "--init", str(model_dir), "--steps", "6"]
    monkeypatch.setattr(model_trainer, "train_model", killed_after_three_steps)
    assert train_all(*flags) == 130
    tokenizer_log = (out / "work" / "tokenizer" / "log.jsonl").read_text()
    monkeypatch.setattr(model_trainer, "train_model", real)
    assert train_all("--out", str(out), "--data", str(photos), "--resume") == 0
    assert (out / "work" / "tokenizer" / "log.jsonl").read_text() == tokenizer_log  # not trained again
    steps = [r["step"] for r in read_log(out / "transformer" / "log.jsonl")]
    assert steps == [1, 2, 3, 4, 5, 6]  # continued from the step-3 checkpoint
    assert json.loads((out / "pipeline.json").read_text())["done"][-1] == "after"


def test_train_all_on_one_long_image_with_a_time_budget(model_dir, tmp_path, capsys):
    Image.fromarray(smooth_image(256, 768, seed=3)).save(tmp_path / "scroll.png")
    out = tmp_path / "scroll_model"
    assert train_all("--data", str(tmp_path / "scroll.png"), "--out", str(out), "--init", str(model_dir),
                     "--time-budget", "6s") == 0
    text = capsys.readouterr().out
    assert "the last 192 px of its width are held out" in text
    assert "s/step measured" in text
    report = json.loads((out / "report.json").read_text())
    assert report["steps"]["transformer"] >= 1 and report["after"]["bits"] is not None


def test_train_all_bad_flags_are_exit_2(photos, tmp_path, capsys):
    assert train_all("--data", str(photos), "--out", str(tmp_path / "o"), "--tokenizer", "keep") == 2
    assert "--init" in capsys.readouterr().err
    assert train_all("--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "o2"), "--steps", "1",
                     "--config", "tiny") == 2
    assert "not found" in capsys.readouterr().err
    assert train_all("--data", str(photos), "--out", str(tmp_path / "o3"), "--resume") == 2


def test_heldout_bits_on_crops_smaller_than_the_model_s(model_dir, photos, tmp_path):
    """`train all` measures on crops fitted to the user's images, not the preset's crop size:
    the rotary positions must follow those crops (a 1×2 crop under a 2×3 model)."""
    from nuwa_inf.tokenizer.vqgan import VQGAN
    from nuwa_inf.train.pipeline import heldout_bits

    tokenizer = VQGAN.load(model_dir / "tokenizer")
    small = heldout_bits(tokenizer, model_dir / "transformer", photos, tmp_path / "cache12", (1, 2), "auto")
    full = heldout_bits(tokenizer, model_dir / "transformer", photos, tmp_path / "cache23", (2, 3), "auto")
    assert 0 < small < 64 and 0 < full < 64 and small != full


@pytest.mark.parametrize("lr, best_is_start", [("5", True), (None, False)])
def test_keep_best_ends_with_the_best_validated_weights(model_dir, photos, tmp_path, lr, best_is_start):
    """--keep-best measures before step 1 and at every validation; the run's model is the best.
    A diverging learning rate must leave the starting weights; a sane one a trained step."""
    from nuwa_inf.model.transformer import LocalTransformer

    out = tmp_path / "kb"
    args = ["train", "model", "--data", str(photos), "--val-data", str(photos), "--out", str(out),
            "--tokenizer", str(model_dir), "--init", str(model_dir), "--config", "tiny", "--steps", "12",
            "--val-every", "3", "--threads", "1", "--keep-best"]
    assert main(args + (["--set", f"lr={lr}"] if lr else [])) == 0
    best = json.loads((out / "best" / "best.json").read_text())
    vals = [r["val_bits"] for r in read_log(out / "log.jsonl") if "val_bits" in r]
    assert len(vals) == 4
    assert (best["step"] == 0) == best_is_start
    if best["step"]:
        assert best["val_bits"] == min(v for v in vals if v == v)
    kept = LocalTransformer.load(out).state_dict()
    start = LocalTransformer.load(model_dir / "transformer").state_dict()
    same_as_start = all(torch.equal(kept[name], start[name]) for name in start)
    assert same_as_start == best_is_start


def test_patience_stops_when_validation_stops_improving(model_dir, photos, tmp_path, capsys):
    """At a diverging learning rate no validation beats the one before step 1 (as in the test
    above): --patience 2 at every 3 steps must stop at step 6 of 30, saved, ending with the
    starting weights."""
    from nuwa_inf.model.transformer import LocalTransformer
    from nuwa_inf.train.state import latest_checkpoint

    out = tmp_path / "patient"
    args = ["train", "model", "--data", str(photos), "--val-data", str(photos), "--out", str(out),
            "--tokenizer", str(model_dir), "--init", str(model_dir), "--config", "tiny", "--steps", "30",
            "--val-every", "3", "--threads", "1", "--keep-best", "--set", "lr=5"]
    assert main(args + ["--patience", "2"]) == 0
    assert "stopping at step 6" in capsys.readouterr().out
    assert [r["step"] for r in read_log(out / "log.jsonl")][-1] == 6
    assert latest_checkpoint(out) is not None and "00000006" in str(latest_checkpoint(out))
    kept = LocalTransformer.load(out).state_dict()
    start = LocalTransformer.load(model_dir / "transformer").state_dict()
    assert all(torch.equal(kept[name], start[name]) for name in start)


def test_patience_needs_keep_best(model_dir, photos, tmp_path, capsys):
    args = ["train", "model", "--data", str(photos), "--out", str(tmp_path / "p"), "--tokenizer", str(model_dir),
            "--config", "tiny", "--steps", "3", "--patience", "2"]
    assert main(args) == 2
    assert "--patience needs --keep-best" in capsys.readouterr().err


def test_finetune_lr_follows_the_preset_not_the_checkpoints_last_stage(tmp_path):
    """`--init` fine-tunes at LR_SCALE × the preset's from-scratch rate: a checkpoint whose last
    stage ran at some other rate, or a fine-tune of a fine-tune, starts at the same rate."""
    from nuwa_inf.model.config import MODEL_PRESETS, ModelConfig
    from nuwa_inf.tokenizer.config import TOKENIZER_PRESETS, TokenizerConfig
    from nuwa_inf.train.finetune import LR_SCALE, resolve_config

    model_dir = make_model_dir(tmp_path / "m")
    for part, cls, presets in (("transformer", ModelConfig, MODEL_PRESETS),
                               ("tokenizer", TokenizerConfig, TOKENIZER_PRESETS)):
        config_path = model_dir / part / "config.json"
        meta = json.loads(config_path.read_text())
        preset_lr = presets["tiny"].get("lr", cls().lr)
        meta["config"]["lr"] = preset_lr * 0.01          # its last stage ran far lower
        config_path.write_text(json.dumps(meta))
        cfg = resolve_config(cls, presets, part, None, model_dir / part, [])
        assert cfg.lr == pytest.approx(preset_lr * LR_SCALE)
        assert resolve_config(cls, presets, part, None, model_dir / part, ["lr=1e-5"]).lr == 1e-5
        meta["config"]["preset"] = "custom"              # no known preset: its own rate is the base
        config_path.write_text(json.dumps(meta))
        cfg = resolve_config(cls, presets, part, None, model_dir / part, [])
        assert cfg.lr == pytest.approx(preset_lr * 0.01 * LR_SCALE)
