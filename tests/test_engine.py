"""The generation engine end to end on a tiny random model: sizes, input preservation,
batch-size invariance, kill-and-resume equality, bad input."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import kill_at_wave, smooth_image
from model_fixtures import make_model_dir
from nuwa_inf.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_model_dir(tmp_path_factory.mktemp("model"))


@pytest.fixture
def input_png(tmp_path):
    path = tmp_path / "input.png"
    Image.fromarray(smooth_image(128, 192, seed=5)).save(path)
    return path


def extend(model_dir, input_png, out, *extra):
    return main(["extend", str(input_png), "-o", str(out), "--width", "640", "--height", "192",
                 "--model", str(model_dir), "--quiet", "--threads", "1", *extra])


def test_extend_makes_the_requested_size_and_keeps_the_input(model_dir, input_png, tmp_path):
    assert extend(model_dir, input_png, tmp_path / "out.png") == 0
    out = np.asarray(Image.open(tmp_path / "out.png"))
    assert out.shape == (192, 640, 3)
    # the input sits centred on the patch grid (64 px patches): x0 = 192, y0 = 0
    original = np.asarray(Image.open(input_png))
    inner = out[0:128 - 48, 192 + 48: 192 + 192 - 48]  # away from the blended border (a quarter of 192 px)
    assert np.array_equal(inner, original[0:80, 48:144])
    assert out[:, :150].std() > 1  # something was generated outside


def test_the_inputs_own_columns_are_not_decoded(model_dir, tmp_path, monkeypatch):
    """Where the input spans the height and is not blended, its pixels are written as they are:
    the decoder is never asked for those token columns (its output there would be discarded),
    and the image keeps the input's pixels there."""
    import nuwa_inf.infer.engine as engine

    asked = []
    real_decode = engine.decode_tiled

    def recording_decode(tokenizer, tokens, *args, cols=None, **kwargs):  # the real decoder, calls noted
        asked.append(cols if cols is not None else (0, tokens.shape[1]))
        return real_decode(tokenizer, tokens, *args, cols=cols, **kwargs)

    monkeypatch.setattr(engine, "decode_tiled", recording_decode)
    original = smooth_image(192, 320, seed=7)                  # full height, 320 px wide
    Image.fromarray(original).save(tmp_path / "tall.png")
    assert main(["extend", str(tmp_path / "tall.png"), "-o", str(tmp_path / "out.png"), "--width", "960",
                 "--height", "192", "--model", str(model_dir), "--quiet", "--threads", "1"]) == 0
    out = np.asarray(Image.open(tmp_path / "out.png"))
    x0 = 320                                                   # centred on the 64-px patch grid
    blend = 80                                                 # 256 px, capped at a quarter of the input
    assert np.array_equal(out[:, x0 + blend: x0 + 320 - blend], original[:, blend: 320 - blend])
    f = 16                                                     # the tiny tokenizer: 16-px tokens
    decoded = np.zeros(960 // f, dtype=bool)
    for a, b in asked:
        decoded[a:b] = True
    interior = range((x0 + blend) // f + 1, (x0 + 320 - blend) // f - 1)
    assert not decoded[list(interior)].any(), "the input's interior was decoded"
    assert decoded[: x0 // f].all() and decoded[(x0 + 320) // f:].all()


def test_generate_unconditional_any_size(model_dir, tmp_path):
    assert main(["generate", "-o", str(tmp_path / "g.png"), "--width", "200", "--height", "100",
                 "--model", str(model_dir), "--quiet", "--threads", "1"]) == 0
    assert Image.open(tmp_path / "g.png").size == (200, 100)


def test_image_does_not_depend_on_batch_size(model_dir, input_png, tmp_path):
    assert extend(model_dir, input_png, tmp_path / "b1.png", "--batch", "1") == 0
    assert extend(model_dir, input_png, tmp_path / "b16.png", "--batch", "16") == 0
    a, b = (np.asarray(Image.open(tmp_path / n)) for n in ("b1.png", "b16.png"))
    assert np.array_equal(a, b)


def test_different_seeds_give_different_images(model_dir, input_png, tmp_path):
    assert extend(model_dir, input_png, tmp_path / "s0.png", "--seed", "0") == 0
    assert extend(model_dir, input_png, tmp_path / "s1.png", "--seed", "1") == 0
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "s0.png")), np.asarray(Image.open(tmp_path / "s1.png")))


def test_killed_run_resumes_to_the_same_image(model_dir, input_png, tmp_path):
    assert extend(model_dir, input_png, tmp_path / "straight.png", "--width", "1280") == 0
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "nuwa_inf", "extend", str(input_png), "-o", str(tmp_path / "resumed.png"),
           "--width", "1280", "--height", "192", "--model", str(model_dir), "--quiet", "--threads", "1",
           "--run-dir", str(run_dir)]
    kill_at_wave(cmd, run_dir, 3, ROOT)
    assert not (tmp_path / "resumed.png").exists()
    assert json.loads((run_dir / "state.json").read_text())["wave"] >= 3
    assert main(cmd[3:-2] + ["--resume", str(run_dir)]) == 0
    a, b = (np.asarray(Image.open(tmp_path / n)) for n in ("straight.png", "resumed.png"))
    assert np.array_equal(a, b)


@pytest.mark.parametrize("flags, message", [
    (["--width", "100"], "smaller than the input"),
    (["--width", "0"], "--width"),
    (["--order", "sideways"], "--order"),
    (["--batch", "0"], "--batch"),
    (["--min-p", "1.5"], "--min-p"),
    (["--style-weight", "2"], "--style-weight"),
    (["--code-prior", "-1"], "--code-prior"),
    (["--code-prior-far", "11"], "--code-prior-far"),
    (["--canvas-prior", "-2"], "--canvas-prior"),
    (["--neighbour-match", "1.5"], "--neighbour-match"),
    (["--adapt", "-1"], "--adapt"),
    (["--anchor", "5000,0"], "outside"),
])
def test_bad_flags_are_one_line_exit_2(model_dir, input_png, tmp_path, capsys, flags, message):
    assert extend(model_dir, input_png, tmp_path / "x.png", *flags) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "x.png").exists()


def test_existing_output_is_not_overwritten(model_dir, input_png, tmp_path, capsys):
    (tmp_path / "keep.png").write_bytes(b"precious")
    assert extend(model_dir, input_png, tmp_path / "keep.png") == 2
    assert (tmp_path / "keep.png").read_bytes() == b"precious"


def test_missing_model_is_one_line_exit_2(input_png, tmp_path, capsys):
    assert extend(tmp_path / "nope", input_png, tmp_path / "x.png") == 2
    assert "model directory not found" in capsys.readouterr().err
