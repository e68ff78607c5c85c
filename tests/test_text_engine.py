"""Prompts in canvas jobs: `extend --text`, `generate --text`, guidance with its own pool."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import nuwa_inf
from conftest import kill_at_wave, smooth_image
from model_fixtures import make_model_dir
from nuwa_inf.cli import main
from nuwa_inf.infer.bundle import TEXT_MODEL_MAX_HEIGHT, draws_with_text_model

ROOT = Path(__file__).resolve().parent.parent
WORDS = ["ink-wash", "scroll", "at", "night", "snowy", "peaks", "a", "lake"]


@pytest.fixture(scope="module")
def text_model(tmp_path_factory):
    return make_model_dir(tmp_path_factory.mktemp("text_model"), text_vocab=WORDS)


@pytest.fixture(scope="module")
def plain_model(tmp_path_factory):
    return make_model_dir(tmp_path_factory.mktemp("plain_model"))


@pytest.fixture
def input_png(tmp_path):
    path = tmp_path / "input.png"
    Image.fromarray(smooth_image(128, 192, seed=5)).save(path)
    return path


def extend(model, input_png, out, *extra):
    return main(["extend", str(input_png), "-o", str(out), "--width", "640", "--height", "192",
                 "--model", str(model), "--quiet", "--threads", "1", *extra])


def pixels(path):
    return np.asarray(Image.open(path))


def test_the_prompt_and_the_guidance_change_the_image(text_model, input_png, tmp_path):
    assert extend(text_model, input_png, tmp_path / "none.png") == 0
    assert extend(text_model, input_png, tmp_path / "night.png", "--text", "ink-wash scroll at night",
                  "--guidance", "3") == 0
    assert extend(text_model, input_png, tmp_path / "snow.png", "--text", "snowy peaks, a lake") == 0
    assert extend(text_model, input_png, tmp_path / "night1.png", "--text", "ink-wash scroll at night",
                  "--guidance", "1") == 0
    images = [pixels(tmp_path / n) for n in ("none.png", "night.png", "snow.png", "night1.png")]
    for i in range(4):
        for j in range(i + 1, 4):
            assert not np.array_equal(images[i], images[j]), (i, j)


def test_the_style_weight_changes_a_prompted_extension_only(text_model, input_png, tmp_path):
    """--style-weight lets the prompted branch read less of the input's style: a prompted job
    changes with it, a prompt-free one (no prompted branch) does not."""
    prompt = ["--text", "ink-wash scroll at night", "--guidance", "3"]
    assert extend(text_model, input_png, tmp_path / "all.png", *prompt, "--style-weight", "1") == 0
    assert extend(text_model, input_png, tmp_path / "yield.png", *prompt, "--style-weight", "0.3") == 0
    assert not np.array_equal(pixels(tmp_path / "all.png"), pixels(tmp_path / "yield.png"))
    assert extend(text_model, input_png, tmp_path / "plain.png") == 0
    assert extend(text_model, input_png, tmp_path / "plain_w.png", "--style-weight", "0.3") == 0
    assert np.array_equal(pixels(tmp_path / "plain.png"), pixels(tmp_path / "plain_w.png"))


def test_guidance_on_the_input_changes_the_image_and_keeps_exactness(plain_model, input_png, tmp_path):
    """Both blind branches (no style memory; no memory and no neighbours) give images of their
    own, independent of the batch; guidance 1 is the plain job."""
    assert extend(plain_model, input_png, tmp_path / "plain.png") == 0
    assert extend(plain_model, input_png, tmp_path / "one.png", "--input-guidance", "1") == 0
    images = {}
    for blind in ("memory", "all"):
        for batch in ("1", "16"):
            assert extend(plain_model, input_png, tmp_path / f"{blind}{batch}.png", "--input-guidance", "3",
                          "--input-blind", blind, "--batch", batch) == 0
        images[blind] = pixels(tmp_path / f"{blind}16.png")
        assert np.array_equal(pixels(tmp_path / f"{blind}1.png"), images[blind])
    assert np.array_equal(pixels(tmp_path / "plain.png"), pixels(tmp_path / "one.png"))
    plain = pixels(tmp_path / "plain.png")
    assert not np.array_equal(images["memory"], plain) and not np.array_equal(images["all"], plain)
    assert not np.array_equal(images["memory"], images["all"])


def test_guided_images_do_not_depend_on_batch_size(text_model, input_png, tmp_path):
    for batch in ("1", "16"):
        assert extend(text_model, input_png, tmp_path / f"b{batch}.png", "--text", "a lake at night",
                      "--guidance", "4", "--batch", batch) == 0
    assert np.array_equal(pixels(tmp_path / "b1.png"), pixels(tmp_path / "b16.png"))


def test_a_killed_guided_run_resumes_to_the_same_image(text_model, input_png, tmp_path):
    flags = ["--width", "1280", "--text", "snowy peaks at night", "--guidance", "3"]
    assert extend(text_model, input_png, tmp_path / "straight.png", *flags) == 0
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "nuwa_inf", "extend", str(input_png), "-o", str(tmp_path / "resumed.png"),
           "--height", "192", "--model", str(text_model), "--quiet", "--threads", "1", *flags,
           "--run-dir", str(run_dir)]
    kill_at_wave(cmd, run_dir, 3, ROOT)
    assert "pool_uncond" in json.loads((run_dir / "state.json").read_text())["files"]
    assert main(cmd[3:-2] + ["--resume", str(run_dir)]) == 0
    assert np.array_equal(pixels(tmp_path / "straight.png"), pixels(tmp_path / "resumed.png"))


def test_generate_from_a_prompt_names_unknown_words(text_model, tmp_path, capsys):
    assert main(["generate", "-o", str(tmp_path / "g.png"), "--width", "256", "--height", "128", "--model",
                 str(text_model), "--quiet", "--threads", "1", "--text", "a lake with cranes"]) == 0
    assert Image.open(tmp_path / "g.png").size == (256, 128)
    err = capsys.readouterr().err
    assert "with, cranes" in err


@pytest.mark.parametrize("model, flags, message", [
    ("text", ["--text", " ,;; "], "no words"),
    ("text", ["--text", "a " * 9], "at most 8"),
    ("text", ["--text", "a lake", "--guidance", "-1"], "--guidance"),
    ("plain", ["--text", "a lake"], "no text encoder"),
])
def test_bad_prompts_are_one_line_exit_2(text_model, plain_model, input_png, tmp_path, capsys, model, flags, message):
    chosen = text_model if model == "text" else plain_model
    assert extend(chosen, input_png, tmp_path / "x.png", *flags) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "x.png").exists()


def test_a_prompt_draws_with_the_text_transformer(text_model, input_png, tmp_path):
    """A model directory with `text/` (the bundled layout) draws `generate --text`, and `extend --text`
    up to TEXT_MODEL_MAX_HEIGHT high, with that transformer (CLI and API alike), and everything else
    with `transformer/`."""
    other = make_model_dir(tmp_path / "other", seed=1, text_vocab=WORDS)
    with_text = tmp_path / "with_text"                # text_model + other's transformer as its text/
    swapped = tmp_path / "swapped"                    # text_model with other's transformer as its transformer/
    for directory in (with_text, swapped):
        shutil.copytree(text_model / "tokenizer", directory / "tokenizer")
    shutil.copytree(text_model / "transformer", with_text / "transformer")
    shutil.copytree(other / "transformer", with_text / "text")
    shutil.copytree(other / "transformer", swapped / "transformer")

    def generate(model, name, *flags):
        assert main(["generate", "-o", str(tmp_path / name), "--width", "256", "--height", "128", "--model",
                     str(model), "--quiet", "--threads", "1", *flags]) == 0
        return pixels(tmp_path / name)

    def extended(model, name, *flags):
        assert extend(model, input_png, tmp_path / name, *flags) == 0
        return pixels(tmp_path / name)

    prompt = ["--text", "snowy peaks, a lake"]
    drawn = generate(with_text, "drawn.png", *prompt)
    assert np.array_equal(drawn, generate(swapped, "swapped.png", *prompt))
    assert not np.array_equal(drawn, generate(text_model, "plain.png", *prompt))
    assert np.array_equal(generate(with_text, "free.png"), generate(text_model, "free_plain.png"))
    outpainted = extended(with_text, "ext.png", *prompt)
    assert np.array_equal(outpainted, extended(swapped, "ext_swapped.png", *prompt))
    assert not np.array_equal(outpainted, extended(text_model, "ext_plain.png", *prompt))
    assert np.array_equal(extended(with_text, "ext_free.png"), extended(text_model, "ext_free_plain.png"))
    model = nuwa_inf.load(with_text, device="cpu")
    assert np.array_equal(np.asarray(model.generate(256, 128, text="snowy peaks, a lake")), drawn)
    api = model.extend(Image.open(input_png), 640, 192, text="snowy peaks, a lake")
    assert np.array_equal(np.asarray(api), outpainted)


def test_a_prompted_extension_taller_than_the_text_transformer_trained_on_is_the_image_transformers():
    assert draws_with_text_model("snow", has_input=False, height=4 * TEXT_MODEL_MAX_HEIGHT)
    assert draws_with_text_model("snow", has_input=True, height=TEXT_MODEL_MAX_HEIGHT)
    assert not draws_with_text_model("snow", has_input=True, height=TEXT_MODEL_MAX_HEIGHT + 16)
    assert not draws_with_text_model("", has_input=False, height=512)
