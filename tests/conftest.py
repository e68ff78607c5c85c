"""Shared fixtures: tiny images on disk and a tiny trained-from-scratch tokenizer; killing a canvas run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

torch.set_num_threads(1)


def kill_at_wave(cmd: list[str], run_dir: Path, wave: int, cwd: Path) -> None:
    """Run `cmd` (a canvas job with --run-dir `run_dir`) in its own process, saving state at every
    wave, and SIGKILL it once its saved state has reached `wave` (or after 120 s)."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=dict(os.environ, NUWA_CHECKPOINT_SECONDS="0"))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = run_dir / "state.json"
        if state.is_file() and json.loads(state.read_text())["wave"] >= wave:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def smooth_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A deterministic, image-like (H, W, 3) uint8 array: gradients plus low-frequency waves."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    channels = []
    for _ in range(3):
        fx, fy, phase = rng.uniform(0.005, 0.05, 2).tolist() + [rng.uniform(0, 6.28)]
        channels.append(127 + 100 * np.sin(fx * x + fy * y + phase))
    return np.clip(np.stack(channels, -1), 0, 255).astype(np.uint8)


@pytest.fixture
def image_folder(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i, (h, w) in enumerate([(96, 160), (128, 128), (80, 200)]):
        Image.fromarray(smooth_image(h, w, seed=i)).save(folder / f"img_{i}.png")
    return folder


@pytest.fixture(params=[False, True], ids=["plain", "shortcuts"])
def tiny_tokenizer(request):
    """The tiny tokenizer at random weights, without and with the down/upsampling shortcuts."""
    from nuwa_inf.config import from_preset
    from nuwa_inf.tokenizer.config import TOKENIZER_PRESETS, TokenizerConfig
    from nuwa_inf.tokenizer.vqgan import VQGAN

    torch.manual_seed(0)
    return VQGAN(from_preset(TokenizerConfig, TOKENIZER_PRESETS, "tiny", {"shortcuts": request.param})).eval()
