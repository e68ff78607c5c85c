"""torchrun with 2 CPU processes (gloo): both trainers keep every rank's weights identical,
each rank draws its own crops, rank 0 alone logs and checkpoints, and a DDP run resumes
exactly from its per-rank sampler states."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from conftest import smooth_image
from model_fixtures import make_model_dir
from nuwa_inf.checkpoint import load_tensors

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp_images")
    for i, (h, w) in enumerate([(160, 224), (192, 256)]):  # ≥ one tiny-model crop (128×192 px)
        Image.fromarray(smooth_image(h, w, seed=i)).save(folder / f"img_{i}.png")
    return folder


def torchrun(args: list[str], dump: Path) -> None:
    env = dict(os.environ, NUWA_DEBUG_DUMP_WEIGHTS=str(dump), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "nuwa_inf", "train", *args, "--threads", "1", "--device", "cpu"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]


def rank_hashes(dump: Path, tag: str) -> list[dict[str, str]]:
    hashes = []
    for rank in range(2):
        lines = (dump / f"{tag}.rank{rank}.txt").read_text().split("\n")
        hashes.append(dict(line.split() for line in lines if line))
    return hashes


def check_ranks(out: Path, dump: Path, tag: str, steps: int) -> None:
    rank0, rank1 = rank_hashes(dump, tag)
    assert rank0["weights"] == rank1["weights"]        # gradients were all-reduced every step
    assert rank0["sampler"] != rank1["sampler"]        # but each rank drew its own crops
    assert len((out / "log.jsonl").read_text().splitlines()) == steps  # one writer: rank 0
    latest = json.loads((out / "checkpoints" / "latest.json").read_text())
    state = load_tensors(out / "checkpoints" / latest["dir"] / "train_state.safetensors")
    assert not (state["rng.sampler.rank0"] == state["rng.sampler.rank1"]).all()


def test_two_ranks_train_the_tokenizer_to_identical_weights(tmp_path, data):
    out = tmp_path / "tok"
    torchrun(["tokenizer", "--data", str(data), "--out", str(out), "--config", "tiny", "--steps", "4",
              "--save-every", "2", "--grad-accum", "2", "--set", "disc_start=1"], tmp_path / "dump")
    check_ranks(out, tmp_path / "dump", "tokenizer", 4)


def test_two_ranks_train_the_model_identically_and_resume_exactly(tmp_path, data):
    tokenizer = make_model_dir(tmp_path / "base") / "tokenizer"
    args = ["model", "--data", str(data), "--tokenizer", str(tokenizer), "--config", "tiny", "--steps", "4",
            "--save-every", "2", "--grad-accum", "2"]
    straight = tmp_path / "straight"
    torchrun(args + ["--out", str(straight)], tmp_path / "dump")
    check_ranks(straight, tmp_path / "dump", "model", 4)
    # stopped after its step-2 checkpoint, resumed by 2 ranks: the same weights as the straight run
    resumed = tmp_path / "resumed"
    shutil.copytree(straight / "tokenizer", resumed / "tokenizer")
    shutil.copytree(straight / "checkpoints" / "step_00000002", resumed / "checkpoints" / "step_00000002")
    (resumed / "checkpoints" / "latest.json").write_text(json.dumps({"step": 2, "dir": "step_00000002"}))
    torchrun(args + ["--out", str(resumed), "--resume"], tmp_path / "dump_resumed")
    assert (resumed / "model.safetensors").read_bytes() == (straight / "model.safetensors").read_bytes()
    assert rank_hashes(tmp_path / "dump_resumed", "model") == rank_hashes(tmp_path / "dump", "model")
