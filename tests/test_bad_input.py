"""Bad input everywhere: every command given a broken file, a bad size, a bad path or a bad
checkpoint answers with ONE line on stderr naming the problem and exit code 2 — no
traceback, no partial output, nothing overwritten. Odd but valid images work.

The CLI runs in-process (`nuwa_inf.cli.main` returns the exit code); the corpus is built
in a temporary folder once per module.
"""
from __future__ import annotations

import errno
import json
import os
import pickle
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import smooth_image
from model_fixtures import make_model_dir
from nuwa_inf.cli import main
from nuwa_inf.config import from_preset, to_dict
from nuwa_inf.tokenizer.config import TOKENIZER_PRESETS, TokenizerConfig
from unprivileged import run_unprivileged, shared_folder

# ----------------------------------------------------------------------------- the corpus


def png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG signature + IHDR chunk claiming width×height, and no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk
                     + struct.pack(">I", zlib.crc32(chunk)))


def build_corpus(root: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    good = root / "good.png"
    Image.fromarray(smooth_image(64, 96, seed=1)).save(good)
    files["good"] = good
    big = root / "big.png"  # one tiny-model training crop is 128x192 px
    Image.fromarray(smooth_image(160, 224, seed=2)).save(big)
    files["big"] = big
    (root / "empty.png").write_bytes(b"")
    files["empty"] = root / "empty.png"
    data = good.read_bytes()
    (root / "truncated.png").write_bytes(data[: len(data) // 2])
    files["truncated"] = root / "truncated.png"
    Image.fromarray(smooth_image(64, 96, seed=3)).save(root / "whole.jpg", quality=90)
    jpeg = (root / "whole.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    files["truncated_jpg"] = root / "truncated.jpg"
    (root / "notes.png").write_text("this is not an image\n")
    files["text"] = root / "notes.png"
    (root / "noise.jpg").write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    files["noise"] = root / "noise.jpg"
    png_header_only(root / "bomb.png", 200000, 200000)
    files["bomb"] = root / "bomb.png"
    png_header_only(root / "zero.png", 0, 64)
    files["zero"] = root / "zero.png"
    (root / "a_folder.png").mkdir()
    files["folder"] = root / "a_folder.png"
    files["missing"] = root / "missing.png"
    return files


def build_checkpoints(root: Path) -> dict[str, Path]:
    """A good tiny model directory and broken copies of it."""
    good = make_model_dir(root / "model_good")
    dirs = {"good": good}

    def copy(name: str) -> Path:
        shutil.copytree(good, root / name)
        dirs[name] = root / name
        return root / name

    (copy("no_weights") / "tokenizer" / "model.safetensors").unlink()
    (copy("no_config") / "transformer" / "config.json").unlink()
    path = copy("wrong_shapes") / "transformer" / "config.json"
    meta = json.loads(path.read_text())
    meta["config"]["dim"] = 48
    path.write_text(json.dumps(meta))
    path = copy("other_preset") / "tokenizer" / "config.json"  # small's config beside tiny's weights
    meta = json.loads(path.read_text())
    meta["config"] = to_dict(from_preset(TokenizerConfig, TOKENIZER_PRESETS, "small"))
    path.write_text(json.dumps(meta))
    (copy("pickle") / "tokenizer" / "model.safetensors").write_bytes(pickle.dumps({"weight": [0.0] * 16}))
    torn = copy("torn") / "transformer" / "model.safetensors"
    torn.write_bytes(torn.read_bytes()[:1000])
    (copy("bad_json") / "tokenizer" / "config.json").write_text("{not json")
    (copy("not_a_dict") / "tokenizer" / "config.json").write_text("[1, 2, 3]")
    shutil.rmtree(copy("no_tokenizer") / "tokenizer")
    path = copy("kind_swap")
    shutil.rmtree(path / "transformer")
    shutil.copytree(path / "tokenizer", path / "transformer")
    return dirs


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    return build_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    return build_checkpoints(tmp_path_factory.mktemp("checkpoints"))


# ----------------------------------------------------------------------------- the check


def snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every file under `roots`: (size, mtime_ns)."""
    seen = {}
    for root in roots:
        for path in sorted(Path(root).rglob("*")):
            stat = path.stat()
            seen[str(path)] = (stat.st_size if path.is_file() else -1, stat.st_mtime_ns)
    return seen


def run_bad(argv: list[str], capsys, mentions: str, *watched: Path, noisy: bool = False) -> str:
    """Run the CLI; expect exit 2, one stderr line matching the regex `mentions`, no traceback,
    and no file under `watched` created, removed or changed. `noisy`: training over a folder
    may first warn about each file it skips (and show its progress bar)."""
    before = snapshot(*watched)
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    err = captured.err
    assert code == 2, f"exit {code}, stderr: {err}"
    assert "Traceback" not in err
    lines = [line for line in re.split(r"[\r\n]", err) if line.strip()]
    if noisy:
        lines = [line for line in lines if "warning:" not in line and "%|" not in line]
    assert len(lines) == 1, f"expected one line, got: {err!r}"
    assert "error" in lines[0]
    assert re.search(mentions, lines[0], re.IGNORECASE), f"{mentions!r} not in {lines[0]!r}"
    assert snapshot(*watched) == before, "a failed command changed files"
    return lines[0]


# ----------------------------------------------------------------------------- images in


BAD_IMAGES = [("empty", "empty"), ("truncated", "truncated|cannot read"), ("truncated_jpg", "truncated"),
              ("text", "not an image|cannot read as an image"),
              ("noise", "not an image|cannot read as an image"), ("bomb", "200000x200000"),
              ("zero", "zero size"), ("folder", "directory"), ("missing", "no such file")]


@pytest.mark.parametrize("name, mentions", BAD_IMAGES)
def test_extend_refuses_a_bad_image(name, mentions, corpus, models, tmp_path, capsys):
    run_bad(["extend", corpus[name], "-o", tmp_path / "out.png", "--width", 256, "--height", 128,
             "--model", models["good"], "--quiet", "--threads", 1], capsys, mentions, tmp_path, corpus["good"].parent)


@pytest.mark.parametrize("name, mentions", BAD_IMAGES)
def test_reconstruct_refuses_a_bad_image(name, mentions, corpus, models, tmp_path, capsys):
    run_bad(["reconstruct", corpus[name], "-o", tmp_path / "out.png", "--model", models["good"]],
            capsys, mentions, tmp_path, corpus["good"].parent)


EVAL_BAD_IMAGES = [(case[0], case[1] + "|cannot read as an image") if case[0] == "zero" else case
                   for case in BAD_IMAGES]


@pytest.mark.parametrize("name, mentions", EVAL_BAD_IMAGES)
def test_eval_refuses_a_bad_image(name, mentions, corpus, tmp_path, capsys):
    run_bad(["eval", corpus[name], "--patch", 16, "--json", tmp_path / "q.json"], capsys, mentions,
            tmp_path, corpus["good"].parent)


@pytest.mark.parametrize("name, mentions", EVAL_BAD_IMAGES[:-2])
def test_eval_refuses_a_bad_reference(name, mentions, corpus, tmp_path, capsys):
    run_bad(["eval", corpus["good"], "--patch", 16, "--reference", corpus[name]], capsys, mentions,
            tmp_path, corpus["good"].parent)


@pytest.mark.parametrize("name, mentions", [("missing", "not found"), ("empty", "empty"), ("text", "not an image"),
                                             ("bomb", "200000x200000"), ("truncated", "truncated")])
def test_train_tokenizer_refuses_bad_data(name, mentions, corpus, tmp_path, capsys):
    run_bad(["train", "tokenizer", "--data", corpus[name], "--out", tmp_path / "tok", "--config", "tiny",
             "--steps", 2, "--threads", 1], capsys, mentions, tmp_path, corpus["good"].parent)
    assert not (tmp_path / "tok").exists()


def test_train_tokenizer_refuses_a_folder_without_images(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "readme.txt").write_text("no images here")
    run_bad(["train", "tokenizer", "--data", tmp_path / "data", "--out", tmp_path / "tok", "--config", "tiny"],
            capsys, "no images", tmp_path)


def test_train_tokenizer_refuses_a_folder_of_unreadable_images(corpus, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("empty", "truncated", "text"):
        shutil.copy(corpus[name], data / f"{name}.png")
    run_bad(["train", "tokenizer", "--data", data, "--out", tmp_path / "tok", "--config", "tiny",
             "--steps", 2, "--threads", 1], capsys, "none of the 3 images", tmp_path, noisy=True)


@pytest.mark.parametrize("name, mentions", [("missing", "not found"), ("text", "no usable"),
                                             ("good", "no usable")])  # good.png: smaller than one crop
def test_train_model_refuses_bad_data(name, mentions, corpus, models, tmp_path, capsys):
    run_bad(["train", "model", "--data", corpus[name], "--tokenizer", models["good"], "--out", tmp_path / "m",
             "--config", "tiny", "--steps", 2, "--threads", 1], capsys, mentions, tmp_path,
            corpus["good"].parent, models["good"], noisy=True)


# ----------------------------------------------------------------------------- sizes and flags


@pytest.mark.parametrize("flags, mentions", [
    (["--width", "0"], "--width"),
    (["--width", "-640"], "--width"),
    (["--height", "0"], "--height"),
    (["--width", "99999999999"], "--width"),
    (["--width", "abc"], "invalid int"),
    (["--height", "1.5"], "invalid int"),
    (["--width", ""], "invalid int"),
    (["--width", "64"], "smaller than the input"),
    (["--batch", "-1"], "--batch"),
    (["--batch", "x"], "invalid int"),
    (["--seed", "one"], "invalid int"),
    (["--temperature", "hot"], "invalid float"),
    (["--temperature", "-1"], "--temperature"),
    (["--top-p", "0"], "--top-p"),
    (["--top-p", "nan"], "--top-p"),
    (["--top-k", "-3"], "--top-k"),
    (["--threads", "0"], "--threads"),
    (["--threads", "-2"], "--threads"),
    (["--anchor", "nowhere"], "--anchor"),
    (["--anchor=-16,0"], "outside"),
    (["--anchor", "-16,0"], "expected one argument"),
    (["--attn-backend", "magic"], "magic"),
    (["--device", "tpu"], "--device"),
    (["--order", "sideways"], "--order"),
    (["--colour-match", "3"], "--colour-match"),
    (["--colour-match", "-0.5"], "--colour-match"),
    (["--detail-transfer", "3"], "--detail-transfer"),
    (["--detail-transfer", "-0.5"], "--detail-transfer"),
    (["--no-such-flag"], "unrecognized"),
])
def test_extend_refuses_bad_flags(flags, mentions, corpus, models, tmp_path, capsys):
    run_bad(["extend", corpus["good"], "-o", tmp_path / "out.png", "--width", 256, "--height", 128,
             "--model", models["good"], "--quiet", *flags], capsys, mentions, tmp_path)


@pytest.mark.parametrize("flags, mentions", [
    (["--width", "0"], "--width"),
    (["--height", "-1"], "--height"),
    (["--width", "4e3"], "invalid int"),
    (["--width", "2000000", "--height", "2000000"], "--width"),
])
def test_generate_refuses_bad_sizes(flags, mentions, models, tmp_path, capsys):
    run_bad(["generate", "-o", tmp_path / "out.png", "--width", 128, "--height", 128, "--model", models["good"],
             "--quiet", *flags], capsys, mentions, tmp_path)


def test_generate_refuses_a_canvas_too_large_for_the_disk(models, tmp_path, capsys):
    # 1048576 x 1048576 px is within the per-side limit, but its pixels alone would be 3.3 TB
    run_bad(["generate", "-o", tmp_path / "out.png", "--width", 1 << 20, "--height", 1 << 20,
             "--model", models["good"], "--quiet"], capsys, "disk", tmp_path)


@pytest.mark.parametrize("flags, mentions", [
    (["--tile", "0"], "--tile"),
    (["--tile", "-4"], "--tile"),
    (["--tile", "big"], "invalid int"),
    (["--threads", "0"], "--threads"),
])
def test_reconstruct_refuses_bad_flags(flags, mentions, corpus, models, tmp_path, capsys):
    run_bad(["reconstruct", corpus["good"], "-o", tmp_path / "out.png", "--model", models["good"], *flags],
            capsys, mentions, tmp_path)




@pytest.mark.parametrize("flags, mentions", [
    (["--steps", "0"], "--steps"),
    (["--steps", "-5"], "--steps"),
    (["--steps", "many"], "invalid int"),
    (["--batch-size", "0"], "--batch-size"),
    (["--save-every", "0"], "--save-every"),
    (["--grad-accum", "0"], "--grad-accum"),
    (["--grad-accum", "two"], "invalid int"),
    (["--threads", "0"], "--threads"),
    (["--time-budget", "soon"], "--time-budget"),
    (["--time-budget=-5m"], "--time-budget"),
    (["--config", "huge"], "unknown preset"),
    (["--set", "ch=-3"], "must be positive"),
    (["--set", "nonsense=1"], "nonsense"),
    (["--set", "novalue"], "key=value"),
    (["--set", "crop=100"], "crop"),
    (["--set", "ch_mult=[1]"], "ch_mult"),
    (["--set", "fsq_levels=[1,4]"], "fsq_levels"),
    (["--set", "ch=lots"], "ch"),
    (["--set", "lr=fast"], "lr"),
    (["--set", "crop=0"], "crop"),
    (["--set", "batch_size=0"], "batch_size"),
    (["--device", "tpu"], "--device"),
])
def test_train_tokenizer_refuses_bad_flags(flags, mentions, corpus, tmp_path, capsys):
    run_bad(["train", "tokenizer", "--data", corpus["big"], "--out", tmp_path / "tok",
             "--config", "tiny", "--threads", 1, "--steps", 2, *flags], capsys, mentions, tmp_path)
    assert not (tmp_path / "tok").exists()


@pytest.mark.parametrize("flags, mentions", [
    (["--steps", "0"], "--steps"),
    (["--val-every", "0"], "--val-every"),
    (["--set", "dim=31"], "dim"),
    (["--set", "patch_h=0"], "patch size"),
    (["--set", "heads=0"], "heads"),
    (["--set", "vocab_size=99"], "vocab"),
    (["--attn-backend", "magic"], "magic"),
    (["--config", "huge"], "unknown preset"),
])
def test_train_model_refuses_bad_flags(flags, mentions, corpus, models, tmp_path, capsys):
    run_bad(["train", "model", "--data", corpus["big"], "--tokenizer", models["good"], "--out", tmp_path / "m",
             "--config", "tiny", "--threads", 1, "--steps", 2, *flags], capsys, mentions, tmp_path, models["good"])
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("flags, mentions", [
    (["--patch", "0"], "--patch"),
    (["--patch", "p"], "invalid int"),
    (["--repeats", "0"], "--repeats"),
    (["--exclude", "1,2,3"], "--exclude"),
    (["--exclude", "0,0,9999,10"], "--exclude"),
    (["--patch", "128"], "smaller than one"),
])
def test_eval_refuses_bad_flags(flags, mentions, corpus, tmp_path, capsys):
    run_bad(["eval", corpus["good"], "--patch", 16, *flags], capsys, mentions, tmp_path)


# ----------------------------------------------------------------------------- paths out


def test_output_in_a_missing_folder_is_refused_everywhere(corpus, models, tmp_path, capsys):
    out = tmp_path / "no" / "such" / "out.png"
    common = ["--model", models["good"]]
    run_bad(["extend", corpus["good"], "-o", out, "--width", 256, "--height", 128, "--quiet", *common],
            capsys, "does not exist", tmp_path)
    run_bad(["generate", "-o", out, "--width", 128, "--height", 128, "--quiet", *common],
            capsys, "does not exist", tmp_path)
    run_bad(["reconstruct", corpus["good"], "-o", out, *common], capsys, "does not exist", tmp_path)
    run_bad(["eval", corpus["good"], "--patch", 16, "--json", out.with_suffix(".json")], capsys,
            "does not exist", tmp_path)
    run_bad(["extend", corpus["good"], "-o", tmp_path / "out.png", "--preview", out, "--width", 256,
             "--height", 128, "--quiet", *common], capsys, "does not exist", tmp_path)


@pytest.mark.parametrize("name, mentions", [("out.jpg", "unsupported output type"), ("out", "unsupported output"),
                                             ("", "directory")])
def test_bad_output_names_are_refused(name, mentions, corpus, models, tmp_path, capsys):
    run_bad(["extend", corpus["good"], "-o", tmp_path / name, "--width", 256, "--height", 128,
             "--model", models["good"], "--quiet"], capsys, mentions, tmp_path)
    run_bad(["reconstruct", corpus["good"], "-o", tmp_path / name, "--model", models["good"]],
            capsys, mentions, tmp_path)


def test_existing_outputs_are_not_overwritten(corpus, models, tmp_path, capsys):
    keep = tmp_path / "keep.png"
    keep.write_bytes(b"precious")
    run_bad(["extend", corpus["good"], "-o", keep, "--width", 256, "--height", 128, "--model", models["good"],
             "--quiet"], capsys, "already exists", tmp_path)
    run_bad(["generate", "-o", keep, "--width", 128, "--height", 128, "--model", models["good"], "--quiet"],
            capsys, "already exists", tmp_path)
    run_bad(["reconstruct", corpus["good"], "-o", keep, "--model", models["good"]], capsys, "already exists",
            tmp_path)
    assert keep.read_bytes() == b"precious"


def test_output_that_is_the_input_is_refused(corpus, models, tmp_path, capsys):
    image = tmp_path / "in.png"
    shutil.copy(corpus["good"], image)
    run_bad(["reconstruct", image, "-o", image, "--model", models["good"]], capsys, "already exists", tmp_path)


def test_output_in_a_read_only_folder_is_refused(corpus, models, capsys):
    with shared_folder() as folder:
        image, model = folder / "in.png", folder / "model"
        shutil.copy(corpus["good"], image)
        shutil.copytree(models["good"], model)
        for path in [model, *model.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        locked = folder / "ro"
        locked.mkdir()
        locked.chmod(0o555)
        run_unprivileged(lambda: run_bad(["reconstruct", image, "-o", locked / "o.png", "--model", model],
                                         capsys, "not writable", folder))


# ----------------------------------------------------------------------------- checkpoints in


BAD_MODELS = [("no_weights", "model.safetensors"), ("no_config", "config.json"), ("wrong_shapes", "shape"),
              ("other_preset", "shape"), ("pickle", "pickle"), ("torn", "safetensors"),
              ("bad_json", "json"), ("not_a_dict", "config"), ("no_tokenizer", "tokenizer"),
              ("kind_swap", "'tokenizer' checkpoint"), ("missing_dir", "not found")]


@pytest.mark.parametrize("name, mentions", BAD_MODELS)
def test_extend_and_generate_refuse_a_bad_model(name, mentions, corpus, models, tmp_path, capsys):
    model = models.get(name, tmp_path / "nope")
    run_bad(["extend", corpus["good"], "-o", tmp_path / "out.png", "--width", 256, "--height", 128,
             "--model", model, "--quiet"], capsys, mentions, tmp_path, model.parent)
    run_bad(["generate", "-o", tmp_path / "out.png", "--width", 128, "--height", 128,
             "--model", model, "--quiet"], capsys, mentions, tmp_path, model.parent)


TOKENIZER_CASES = [("no_weights", "model.safetensors"), ("other_preset", "shape"), ("pickle", "pickle"),
                   ("bad_json", "json"), ("not_a_dict", "config"), ("no_tokenizer", "no tokenizer checkpoint"),
                   ("missing_dir", "no tokenizer checkpoint")]


@pytest.mark.parametrize("name, mentions", TOKENIZER_CASES)
def test_reconstruct_refuses_a_bad_tokenizer(name, mentions, corpus, models, tmp_path, capsys):
    model = models.get(name, tmp_path / "nope")
    run_bad(["reconstruct", corpus["good"], "-o", tmp_path / "out.png", "--model", model], capsys, mentions,
            tmp_path, model.parent)


@pytest.mark.parametrize("name, mentions", TOKENIZER_CASES)
def test_train_model_refuses_a_bad_tokenizer(name, mentions, corpus, models, tmp_path, capsys):
    model = models.get(name, tmp_path / "nope")
    run_bad(["train", "model", "--data", corpus["big"], "--tokenizer", model, "--out", tmp_path / "m",
             "--config", "tiny", "--steps", 2, "--threads", 1], capsys, mentions, tmp_path, model.parent)
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("name, mentions", [("good", "shape"), ("pickle", "pickle"),
                                             ("no_weights", "model.safetensors"), ("missing_dir", "no tokenizer")])
def test_train_tokenizer_refuses_a_bad_init(name, mentions, corpus, models, tmp_path, capsys):
    model = models.get(name, tmp_path / "nope")  # tiny weights into a `small` tokenizer: shapes differ
    run_bad(["train", "tokenizer", "--data", corpus["big"], "--out", tmp_path / "tok", "--config", "small",
             "--steps", 2, "--threads", 1, "--init", model], capsys, mentions, tmp_path, model.parent)
    assert not (tmp_path / "tok").exists()


def test_train_model_refuses_a_transformer_init_of_another_shape(corpus, models, tmp_path, capsys):
    run_bad(["train", "model", "--data", corpus["big"], "--tokenizer", models["good"], "--out", tmp_path / "m",
             "--config", "tiny", "--set", "dim=64", "--steps", 2, "--threads", 1, "--init", models["good"]],
            capsys, "shape", tmp_path, models["good"])


# ----------------------------------------------------------------------------- broken training runs


@pytest.fixture(scope="module")
def trained(tmp_path_factory, corpus) -> Path:
    """A finished 2-step tiny tokenizer run (checkpoint at step 2)."""
    out = tmp_path_factory.mktemp("run") / "tok"
    assert main(["train", "tokenizer", "--data", str(corpus["big"]), "--out", str(out), "--config", "tiny",
                 "--steps", "2", "--save-every", "2", "--threads", "1"]) == 0
    return out


def broken_run(trained: Path, tmp_path: Path, damage) -> Path:
    out = tmp_path / "tok"
    shutil.copytree(trained, out)
    damage(out / "checkpoints")
    return out


@pytest.mark.parametrize("damage, mentions", [
    (lambda c: (c / "latest.json").write_text("{oops"), "corrupt"),
    (lambda c: (c / "latest.json").write_text("[]"), "corrupt"),
    (lambda c: (c / "latest.json").write_text('{"dir": "step_00000099"}'), "missing checkpoint"),
    (lambda c: (c / "latest.json").write_text('{"dir": "../../elsewhere"}'), "latest.json"),
    (lambda c: (c / "step_00000002" / "train_state.safetensors").unlink(), "train_state.safetensors"),
    (lambda c: (c / "step_00000002" / "train_state.json").unlink(), "train_state.json"),
    (lambda c: (c / "step_00000002" / "train_state.json").write_text("{"), "train_state.json"),
    (lambda c: (c / "step_00000002" / "model.safetensors").write_bytes(b"\x80\x04junk"), "pickle"),
    (lambda c: (c / "step_00000002" / "config.json").unlink(), "config.json"),
    (lambda c: (c / "step_00000002" / "train_state.safetensors").write_bytes(b"{}" * 8), "safetensors"),
])
def test_resume_refuses_a_broken_checkpoint(damage, mentions, trained, corpus, tmp_path, capsys):
    out = broken_run(trained, tmp_path, damage)
    run_bad(["train", "tokenizer", "--data", corpus["big"], "--out", out, "--config", "tiny", "--steps", 4,
             "--threads", 1, "--resume"], capsys, mentions, tmp_path)


def test_resume_without_a_run_is_refused(corpus, tmp_path, capsys):
    run_bad(["train", "tokenizer", "--data", corpus["big"], "--out", tmp_path / "tok", "--config", "tiny",
             "--resume"], capsys, "no checkpoint", tmp_path)


def test_resume_of_a_tokenizer_run_as_a_model_run_is_refused(trained, corpus, models, tmp_path, capsys):
    out = broken_run(trained, tmp_path, lambda c: None)
    run_bad(["train", "model", "--data", corpus["big"], "--tokenizer", models["good"], "--out", out,
             "--config", "tiny", "--resume"], capsys, "tokenizer", tmp_path)


def test_train_out_that_is_a_file_is_refused(corpus, tmp_path, capsys):
    (tmp_path / "out").write_text("a file")
    run_bad(["train", "tokenizer", "--data", corpus["big"], "--out", tmp_path / "out", "--config", "tiny",
             "--steps", 1], capsys, "out", tmp_path)


# ----------------------------------------------------------------------------- odd but valid images


def odd_images(root: Path) -> dict[str, Path]:
    rgb = smooth_image(40, 56, seed=7)
    paths = {}
    grey16 = (smooth_image(40, 56, seed=8)[:, :, 0].astype(np.uint16) * 257)
    Image.fromarray(grey16).save(root / "grey16.png")             # mode I;16
    paths["16-bit grey"] = root / "grey16.png"
    rgb16 = np.dstack([rgb.astype(np.uint16) * 257]).astype(">u2")
    png_rgb16(root / "rgb16.png", rgb16)                          # 16-bit RGB PNG
    paths["16-bit RGB"] = root / "rgb16.png"
    Image.fromarray(np.dstack([rgb, np.linspace(0, 255, 56, dtype=np.uint8)[None].repeat(40, 0)]),
                    "RGBA").save(root / "rgba.png")
    paths["RGBA"] = root / "rgba.png"
    Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=16).save(root / "palette.png")
    paths["palette"] = root / "palette.png"
    Image.fromarray(rgb).convert("CMYK").save(root / "cmyk.jpg")
    paths["CMYK"] = root / "cmyk.jpg"
    Image.fromarray(rgb).convert("CMYK").save(root / "cmyk.tif")
    paths["CMYK TIFF"] = root / "cmyk.tif"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when shown
    Image.fromarray(rgb).save(root / "rotated.jpg", exif=exif)
    paths["EXIF-rotated"] = root / "rotated.jpg"
    Image.fromarray(rgb[:1, :1]).save(root / "one_pixel.png")
    paths["one pixel"] = root / "one_pixel.png"
    Image.fromarray(rgb[:, :, 0] > 128).save(root / "bilevel.png")
    paths["1-bit"] = root / "bilevel.png"
    Image.fromarray(rgb[:, :, 0]).convert("LA").save(root / "grey_alpha.png")
    paths["grey+alpha"] = root / "grey_alpha.png"
    return paths


def png_rgb16(path: Path, pixels: np.ndarray) -> None:
    """Write a 16-bit-per-channel RGB PNG by hand (PIL cannot write one)."""
    height, width, _ = pixels.shape
    raw = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def odd(tmp_path_factory) -> dict[str, Path]:
    return odd_images(tmp_path_factory.mktemp("odd"))


ODD = ["16-bit grey", "16-bit RGB", "RGBA", "palette", "CMYK", "CMYK TIFF", "EXIF-rotated", "one pixel", "1-bit",
       "grey+alpha"]


@pytest.mark.parametrize("name", ODD)
def test_reconstruct_takes_odd_but_valid_images(name, odd, models, tmp_path, capsys):
    assert main(["reconstruct", str(odd[name]), "-o", str(tmp_path / "out.png"), "--model", str(models["good"])]) == 0
    size = (40, 56) if name == "EXIF-rotated" else (1, 1) if name == "one pixel" else (56, 40)
    assert Image.open(tmp_path / "out.png").size == size


@pytest.mark.parametrize("name", ODD)
def test_extend_takes_odd_but_valid_images(name, odd, models, tmp_path, capsys):
    assert main(["extend", str(odd[name]), "-o", str(tmp_path / "out.png"), "--width", "128", "--height", "128",
                 "--model", str(models["good"]), "--quiet", "--threads", "1"]) == 0
    assert Image.open(tmp_path / "out.png").size == (128, 128)


# ----------------------------------------------------------------------------- the machine, safe loading


def test_disk_full_while_writing_is_one_line_and_leaves_nothing(corpus, models, tmp_path, capsys, monkeypatch):
    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)  # every atomic write flushes before its rename
    run_bad(["reconstruct", corpus["good"], "-o", tmp_path / "out.png", "--model", models["good"]], capsys,
            "no space left", tmp_path)


def test_no_pickle_is_ever_loaded():
    """Weights only through safetensors: no torch.load, pickle.load or np.load(allow_pickle=True)."""
    root = Path(__file__).resolve().parents[1]
    offenders = []
    for path in sorted([*root.glob("nuwa_inf/**/*.py"), *root.glob("benchmarks/**/*.py")]):
        text = path.read_text()
        for needle in ("torch.load(", "pickle.load", "allow_pickle=True", "weights_only=False"):
            if needle in text:
                offenders.append(f"{path.relative_to(root)}: {needle}")
    assert not offenders


def test_the_command_in_its_own_process_exits_with_mains_code(tmp_path):
    """`python -m nuwa_inf` (what torchrun and the `nuwa-inf` script run) exits with `main`'s code."""
    cmd = [sys.executable, "-m", "nuwa_inf", "extend", str(tmp_path / "missing.png"), "-o", str(tmp_path / "o.png"),
           "--width", "512", "--height", "256"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "missing.png" in proc.stderr
    assert not (tmp_path / "o.png").exists()
