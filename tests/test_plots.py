"""Figures of long runs: training curves from log.jsonl (`train/curves.py`) and the per-column-window
quality figures of `nuwa-inf eval --plot` (`eval/columns.py`, `eval/plot.py`)."""
from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
from PIL import Image

from nuwa_inf.cli import main
from nuwa_inf.eval.columns import column_profile, default_window
from nuwa_inf.train.curves import moving_average, plot_curves, read_log

P = 64


def write_log(path, records, torn: bool = True):
    lines = [json.dumps(r) for r in records]
    if torn:
        lines.append('{"step": 99999, "loss"')  # a run killed mid-write
    path.write_text("\n".join(lines) + "\n")
    return path


def model_records(steps: int = 600):
    out = []
    for step in range(1, steps + 1):
        loss = 6.0 * math.exp(-step / 150) + 2.9 + 0.1 * math.sin(step)
        record = {"step": step, "loss": loss, "bits": loss / math.log(2), "lr": 3e-4 * min(1, step / 50),
                  "grad_norm": 1.0}
        if step % 50 == 0:
            record["val_bits"] = (loss + 0.1) / math.log(2)
        out.append(record)
    return out


def tokenizer_records(steps: int = 300):
    return [{"step": s, "loss": 0.5 / s ** 0.3, "psnr": 18 + 6 * (1 - math.exp(-s / 80)), "usage": 0.8,
             "perplexity": 300.0, "d_loss": 0.0, "lr": 1e-4} for s in range(1, steps + 1)]


def test_read_log_skips_torn_lines_and_keeps_the_last_record_of_a_repeated_step(tmp_path):
    records = model_records(10) + [{"step": 5, "loss": 123.0, "lr": 0.0}]  # a resumed run logs step 5 again
    got = read_log(write_log(tmp_path / "log.jsonl", records))
    assert [r["step"] for r in got] == list(range(1, 11))
    assert got[4]["loss"] == 123.0


def test_moving_average_is_a_trailing_mean():
    assert np.allclose(moving_average(np.array([1.0, 3.0, 5.0, 7.0]), 2), [1, 2, 4, 6])


@pytest.mark.parametrize("records", [model_records, tokenizer_records], ids=["transformer", "tokenizer"])
def test_plot_curves_draws_a_png_for_either_trainer(tmp_path, records):
    pytest.importorskip("matplotlib", reason="pip install 'nuwa-inf[plots]'")
    out = plot_curves(write_log(tmp_path / "log.jsonl", records()), tmp_path / "curves.png")
    assert out == tmp_path / "curves.png"
    with Image.open(out) as img:
        assert img.format == "PNG" and img.width > 600 and img.height > 400
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # written atomically


def test_plot_curves_without_matplotlib_warns_once_and_returns_none(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import fails as if not installed
    assert plot_curves(write_log(tmp_path / "log.jsonl", model_records(20)), tmp_path / "c.png") is None
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "matplotlib" in err and "nuwa-inf[plots]" in err
    assert not (tmp_path / "c.png").exists()


def test_plot_curves_of_an_empty_log_warns_and_returns_none(tmp_path, capsys):
    (tmp_path / "log.jsonl").write_text("")
    assert plot_curves(tmp_path / "log.jsonl", tmp_path / "c.png") is None
    assert "no training records" in capsys.readouterr().err


# ---------------------------------------------------------------- eval --plot


def texture(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((h, w, 3)).astype(np.float32)
    kernel = np.ones(5, np.float32) / 5  # a little smoothing: real images have correlated neighbours
    for axis in (0, 1):
        noise = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="same"), axis, noise)
    return np.clip(128 + 90 * noise, 0, 255).astype(np.uint8)


def seamy_right_half(h: int = 4 * P, w: int = 12 * P) -> np.ndarray:
    """A stationary texture whose right half has a visible step at every patch boundary."""
    img = texture(h, w, 0).astype(np.int16)
    for bx in range(w // (2 * P), w // P):
        img[:, bx * P:(bx + 1) * P] += 40 if bx % 2 else -40
    return np.clip(img, 0, 255).astype(np.uint8)


def test_column_profile_finds_where_along_x_the_seams_are():
    img = seamy_right_half()
    profile = column_profile(img, patch=P, window=2 * P)
    assert profile.window == 2 * P and list(profile.x0) == list(range(0, 12 * P, 2 * P))
    left, right = profile.seam[:2], profile.seam[3:5]  # windows wholly left / right of the middle
    assert left.max() < 1.3 and right.min() > 2 * left.max()
    assert profile.distance is None and np.isfinite(profile.drift).all()


def test_column_profile_distance_to_references_and_its_window_floor():
    from nuwa_inf.eval import block_features

    img = texture(4 * P, 12 * P, 1)
    img[:, 8 * P:] = img[:, 8 * P:] // 2  # the last third goes dark: far from the references
    ref = block_features(texture(4 * P, 16 * P, 2), P).features
    profile = column_profile(img, patch=P, window=2 * P, reference_features=ref)
    assert np.isfinite(profile.window_floor)
    assert profile.distance[-1] > 5 * max(profile.distance[0], profile.window_floor)
    assert profile.drift[-1] > 5 * profile.drift[0]


def test_default_window_holds_eight_blocks():
    assert default_window(2048, 256) == 256 and default_window(256, 256) == 8 * 256
    assert default_window(700, 256) == 4 * 256


def test_eval_plot_writes_the_figure(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="pip install 'nuwa-inf[plots]'")
    Image.fromarray(seamy_right_half()).save(tmp_path / "canvas.png")
    Image.fromarray(texture(4 * P, 16 * P, 2)).save(tmp_path / "real.png")
    code = main(["eval", str(tmp_path / "canvas.png"), "--reference", str(tmp_path / "real.png"), "--patch", str(P),
                 "--exclude", f"0,0,{2 * P},{4 * P}", "--plot", str(tmp_path / "columns.png"), "--repeats", "2"])
    assert code == 0
    assert "wrote" in capsys.readouterr().out
    with Image.open(tmp_path / "columns.png") as img:
        assert img.format == "PNG" and img.width > 800


@pytest.mark.parametrize("flags, message", [(["--plot", "columns.txt"], "--plot"),
                                            (["--plot", "c.png", "--plot-window", "100"], "--plot-window")])
def test_eval_plot_bad_flags_are_one_line_errors(tmp_path, capsys, flags, message):
    Image.fromarray(seamy_right_half()).save(tmp_path / "canvas.png")
    flags = [str(tmp_path / f) if f.endswith((".txt", ".png")) else f for f in flags]
    assert main(["eval", str(tmp_path / "canvas.png"), "--patch", str(P), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nuwa-inf: error:") and message in err and "\n" not in err
