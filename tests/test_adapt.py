"""Test-time adaptation (infer/adapt.py): the copy learns the input, the loaded model stays as it
was, and an adapted extension resumes exactly from the weights its run directory keeps."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import kill_at_wave, smooth_image
from model_fixtures import make_model_dir
from nuwa_inf.cli import main
from nuwa_inf.infer.adapt import ADAPTED_FILE, adapt_to_input, crop_config
from nuwa_inf.infer.bundle import load_bundle
from nuwa_inf.train.crop_layout import sample_crop_contexts
from nuwa_inf.train.crop_loss import crop_loss
from nuwa_inf.train.token_cache import TokenCropSampler

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_model_dir(tmp_path_factory.mktemp("model"))


def held_out_bits(model, grid: np.ndarray, canvas: tuple[int, int]) -> float:
    """Teacher-forced bits/token on the same 16 crops and orders of `grid` every time."""
    cfg = crop_config(model.cfg, *grid.shape)
    saved, model.cfg = model.cfg, cfg
    sampler = TokenCropSampler([grid], cfg.crop_rows, cfg.crop_cols, cfg.patch_h, cfg.patch_w, seed=99, canvas=canvas)
    model.eval()
    with torch.no_grad():
        loss = crop_loss(model, model.forward_train, sampler, cfg, 16, torch.Generator().manual_seed(7),
                         sample_crop_contexts, [grid], "auto", "cpu")
    model.cfg = saved
    return float(loss) / math.log(2)


def test_the_copy_learns_the_input_and_the_loaded_model_is_untouched(model_dir):
    transformer = load_bundle(model_dir).transformer
    before = {k: v.clone() for k, v in transformer.state_dict().items()}
    rng = np.random.default_rng(0)
    stripes = rng.integers(0, transformer.cfg.vocab_size, size=(16, 1))
    grid = np.repeat(stripes, 24, axis=1).astype(np.int64)   # (16, 24): each token row one code
    canvas = (0, 16)
    start = held_out_bits(transformer, grid, canvas)
    adapted = adapt_to_input(transformer, grid, canvas, steps=40, seed=0, lr=3e-3, progress=False)
    assert held_out_bits(adapted, grid, canvas) < 0.5 * start
    assert adapted.cfg == transformer.cfg
    assert all(torch.equal(before[k], v) for k, v in transformer.state_dict().items())


def test_recomputing_blocks_and_loss_gives_the_same_loss_and_gradients(model_dir):
    """`recompute` (what adaptation trains with) keeps only each block's input and the loss's
    hidden states; backward must compute every block again with *its own* weights and context."""
    transformer = load_bundle(model_dir).transformer.float()
    rng = np.random.default_rng(1)
    grid = rng.integers(0, transformer.cfg.vocab_size, size=(16, 24)).astype(np.int64)
    cfg = crop_config(transformer.cfg, *grid.shape)
    transformer.cfg = cfg
    results = []
    for recompute in (False, True):
        transformer.recompute = recompute
        transformer.zero_grad(set_to_none=True)
        sampler = TokenCropSampler([grid], cfg.crop_rows, cfg.crop_cols, cfg.patch_h, cfg.patch_w, seed=3,
                                   canvas=(0, 16))
        loss = crop_loss(transformer, transformer.forward_train, sampler, cfg, 2, torch.Generator().manual_seed(4),
                         sample_crop_contexts, [grid], "auto", "cpu")
        loss.backward()
        grads = {n: p.grad.clone() for n, p in transformer.named_parameters() if p.grad is not None}
        results.append((loss.item(), grads))
    (plain_loss, plain), (loss, recomputed) = results
    assert loss == pytest.approx(plain_loss, rel=1e-5)
    assert plain.keys() == recomputed.keys() and len(plain) > 10
    for name, grad in plain.items():
        assert torch.allclose(recomputed[name], grad, rtol=1e-4, atol=1e-6), name


def test_an_input_smaller_than_a_patch_is_refused(model_dir, tmp_path, capsys):
    source = tmp_path / "small.png"
    Image.fromarray(smooth_image(192, 48, seed=2)).save(source)
    code = main(["extend", str(source), "-o", str(tmp_path / "x.png"), "--width", "320", "--height", "192",
                 "--model", str(model_dir), "--quiet", "--threads", "1", "--adapt", "3"])
    err = capsys.readouterr().err
    assert code == 2 and "--adapt needs an input of at least one patch" in err and err.count("\n") == 1
    assert not (tmp_path / "x.png").exists()


def test_an_adapted_extension_differs_and_resumes_exactly_from_its_kept_weights(model_dir, tmp_path):
    source = tmp_path / "input.png"
    Image.fromarray(smooth_image(128, 192, seed=5)).save(source)
    cmd = [sys.executable, "-m", "nuwa_inf", "extend", str(source), "--width", "1280", "--height", "192",
           "--model", str(model_dir), "--quiet", "--threads", "1"]
    assert main(cmd[3:] + ["-o", str(tmp_path / "plain.png")]) == 0
    assert main(cmd[3:] + ["-o", str(tmp_path / "straight.png"), "--adapt", "20"]) == 0
    plain, straight = (np.asarray(Image.open(tmp_path / n)) for n in ("plain.png", "straight.png"))
    assert not np.array_equal(plain, straight)

    run_dir = tmp_path / "run"
    killed = cmd + ["-o", str(tmp_path / "resumed.png"), "--adapt", "20", "--run-dir", str(run_dir)]
    kill_at_wave(killed, run_dir, 2, ROOT)
    kept = run_dir / ADAPTED_FILE
    assert kept.is_file() and not (tmp_path / "resumed.png").exists()
    written = kept.stat().st_mtime_ns
    assert main(killed[3:-2] + ["--resume", str(run_dir)]) == 0
    assert kept.stat().st_mtime_ns == written  # read back, not trained again
    assert np.array_equal(straight, np.asarray(Image.open(tmp_path / "resumed.png")))
