"""SIGKILL real training processes at random moments (a checkpoint every step, so many kills
land mid-save): `checkpoints/latest.json` must always name a complete checkpoint whose
files load, `--resume` must continue, and the finished run must equal an uninterrupted one
(and its log hold every step once).
(Kill-and-resume of extend/generate is in test_engine.py and benchmarks/soak_resume.py.)"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from conftest import smooth_image
from model_fixtures import make_model_dir
from nuwa_inf.checkpoint import load_tensors
from nuwa_inf.cli import main
from nuwa_inf.model.transformer import LocalTransformer
from nuwa_inf.tokenizer.vqgan import VQGAN

ROOT = Path(__file__).resolve().parents[1]
KILLS = 3


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("crash_images")
    for i, (h, w) in enumerate([(160, 224), (192, 256)]):  # ≥ one tiny-model crop (128×192 px)
        Image.fromarray(smooth_image(h, w, seed=i)).save(folder / f"img_{i}.png")
    return folder


def latest_step(out: Path) -> int:
    try:
        return json.loads((out / "checkpoints" / "latest.json").read_text())["step"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


def check_latest_is_complete(out: Path, load_model) -> int:
    """latest.json names a checkpoint whose every file loads; returns its step."""
    latest = json.loads((out / "checkpoints" / "latest.json").read_text())
    directory = out / "checkpoints" / latest["dir"]
    load_model(directory)  # config.json + model.safetensors, every tensor shape checked
    load_tensors(directory / "train_state.safetensors")
    assert json.loads((directory / "train_state.json").read_text())["step"] == latest["step"]
    return latest["step"]


def log_steps(out: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]


def kill_at_random_moments(args: list[str], out: Path, load_model, seed: int) -> None:
    """Start the run, SIGKILL it KILLS times, resuming each time: each kill comes 1-3
    checkpoints after the (re)start, at a random fraction of a step (a checkpoint is written
    every step, so some kills land mid-save); every kill leaves a loadable latest checkpoint."""
    rng = random.Random(seed)
    cmd = [sys.executable, "-m", "nuwa_inf", *args, "--out", str(out), "--threads", "1"]
    env = dict(os.environ, OMP_NUM_THREADS="1")

    def wait_for(proc: subprocess.Popen, step: int) -> None:
        deadline = time.monotonic() + 60
        while latest_step(out) < step and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)

    for kill in range(KILLS):
        before = latest_step(out)
        proc = subprocess.Popen(cmd + (["--resume"] if kill else []), cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for(proc, before + 1 + rng.randrange(3))
        started, reached = time.monotonic(), latest_step(out)
        wait_for(proc, reached + 1)  # how long one step (+ its checkpoint) takes right now
        time.sleep(rng.uniform(0, time.monotonic() - started))
        assert proc.poll() is None, f"the run ended before it was killed: {proc.stderr.read().decode()[-2000:]}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        assert check_latest_is_complete(out, load_model) > before


def test_killed_tokenizer_training_resumes_to_the_uninterrupted_weights(tmp_path, data):
    args = ["train", "tokenizer", "--data", str(data), "--config", "tiny", "--steps", "40", "--save-every", "1",
            "--set", "disc_start=2"]
    kill_at_random_moments(args, tmp_path / "killed", VQGAN.load, seed=1)
    assert main(args + ["--out", str(tmp_path / "killed"), "--threads", "1", "--resume"]) == 0
    assert main(args + ["--out", str(tmp_path / "straight"), "--threads", "1"]) == 0
    assert log_steps(tmp_path / "killed") == list(range(1, 41))  # every step logged once
    killed, straight = VQGAN.load(tmp_path / "killed"), VQGAN.load(tmp_path / "straight")
    for name, tensor in straight.state_dict().items():
        assert (killed.state_dict()[name] == tensor).all(), name


def test_killed_model_training_resumes_to_the_uninterrupted_weights(tmp_path, data):
    tokenizer = make_model_dir(tmp_path / "base") / "tokenizer"
    args = ["train", "model", "--data", str(data), "--tokenizer", str(tokenizer), "--config", "tiny",
            "--steps", "40", "--save-every", "1", "--val-every", "5"]
    kill_at_random_moments(args, tmp_path / "killed", LocalTransformer.load, seed=2)
    assert main(args + ["--out", str(tmp_path / "killed"), "--threads", "1", "--resume"]) == 0
    assert main(args + ["--out", str(tmp_path / "straight"), "--threads", "1"]) == 0
    assert log_steps(tmp_path / "killed") == list(range(1, 41))
    assert (tmp_path / "killed" / "model.safetensors").read_bytes() == \
        (tmp_path / "straight" / "model.safetensors").read_bytes()
