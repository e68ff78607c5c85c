"""Soak test of crash safety: SIGKILL a real `nuwa-inf extend` run several times at random
moments, resume it each time, and compare the final image byte for byte with an
uninterrupted run of the same job.

    .venv/bin/python benchmarks/soak_resume.py                   # 5 kills, 2048x256, tiny random model
    .venv/bin/python benchmarks/soak_resume.py --kills 10 --width 4096 --seed 3

The model is a tiny random-weight one (tests/model_fixtures.py): what is tested is the run
directory, not the pictures. Run state is saved after every wave (NUWA_CHECKPOINT_SECONDS=0)
so that kills land in every phase: model loading, prefill, sampling, saving state, decoding,
exporting. Kill moments are uniformly random, spread so that the run is still going: the
first after the run directory's job.json exists (before it there is nothing to resume),
the others anywhere from the process start. Exit code 0 when the images match.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from model_fixtures import make_model_dir  # noqa: E402


def input_piece(path: Path, width: int, height: int) -> None:
    """A crop of the bundled example scroll: real content for the tokenizer to encode."""
    with Image.open(ROOT / "nuwa_inf" / "assets" / "example_scroll.png") as scroll:
        scroll.convert("RGB").crop((0, 0, width, height)).save(path)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="nuwa_soak_"))
    model = make_model_dir(work / "model")
    piece = work / "piece.png"
    input_piece(piece, 192, 128)
    env = dict(os.environ, NUWA_CHECKPOINT_SECONDS="0", OMP_NUM_THREADS="1")

    def command(output: Path, *extra: str) -> list[str]:
        return [sys.executable, "-m", "nuwa_inf", "extend", str(piece), "-o", str(output),
                "--width", str(args.width), "--height", str(args.height), "--model", str(model),
                "--quiet", "--threads", "1", *extra]

    straight_run = work / "straight_run"
    started = time.monotonic()
    proc = subprocess.Popen(command(work / "straight.png", "--run-dir", str(straight_run)), cwd=ROOT, env=env)
    while not (straight_run / "job.json").is_file() and proc.poll() is None:
        time.sleep(0.005)
    startup_seconds = time.monotonic() - started  # interpreter, torch, model, input: before any work
    if proc.wait() != 0:
        print("FAIL: the uninterrupted run failed")
        return 1
    straight_seconds = time.monotonic() - started
    print(f"uninterrupted run: {straight_seconds:.1f} s ({startup_seconds:.1f} s start-up), "
          f"{sha(work / 'straight.png')}")

    rng = random.Random(args.seed)
    run_dir = work / "run"
    killed = work / "killed.png"
    work_left = straight_seconds - startup_seconds  # roughly: redone work is not counted
    kills = 0
    for attempt in range(args.kills):
        extra = ["--resume", str(run_dir)] if attempt else ["--run-dir", str(run_dir)]
        begun = time.monotonic()
        proc = subprocess.Popen(command(killed, *extra), cwd=ROOT, env=env)
        if attempt == 0:
            # the first kill comes after job.json exists: before it there is no run to resume
            while not (run_dir / "job.json").is_file() and proc.poll() is None:
                time.sleep(0.005)
            base, window = time.monotonic(), work_left / (args.kills - attempt)
        else:  # resumed runs can die anywhere, start-up included
            base, window = begun, startup_seconds + work_left / (args.kills - attempt)
        time.sleep(max(0.0, base + rng.uniform(0, window) - time.monotonic()))
        if proc.poll() is not None:
            print(f"kill {attempt + 1}: the run had already finished (exit {proc.returncode})")
            break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
        alive = time.monotonic() - begun
        work_left = max(0.5, work_left - max(0.0, alive - startup_seconds))
        state = run_dir / "state.json"
        wave = json.loads(state.read_text())["wave"] if state.is_file() else "none yet"
        print(f"kill {attempt + 1}: SIGKILL {alive:.2f} s after start; saved wave: {wave}; "
              f"output file: {'exists' if killed.exists() else 'absent'}")
        if killed.exists():
            print("FAIL: a killed run left an output file")
            return 1
    if not killed.exists():
        subprocess.run(command(killed, "--resume", str(run_dir)), cwd=ROOT, env=env, check=True)
    same_bytes = killed.read_bytes() == (work / "straight.png").read_bytes()
    same_pixels = np.array_equal(np.asarray(Image.open(killed)), np.asarray(Image.open(work / "straight.png")))
    print(f"after {kills} kills and resumes: {sha(killed)} -> "
          f"{'IDENTICAL' if same_bytes else 'DIFFERENT'} bytes, {'identical' if same_pixels else 'different'} pixels")
    if args.keep:
        print(f"work folder: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if same_bytes else 1


if __name__ == "__main__":
    sys.exit(main())
