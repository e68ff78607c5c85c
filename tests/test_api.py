"""The Python API on a tiny random model: the same images as the CLI, PIL in and out,
writing to a path, progress callbacks, resuming through run_dir, and the CLI's checks
raised as `nuwa_inf.UserError`."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import nuwa_inf
from conftest import smooth_image
from model_fixtures import make_model_dir
from nuwa_inf.cli import main


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_model_dir(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def model(model_dir):
    return nuwa_inf.load(model_dir, device="cpu")


@pytest.fixture
def piece():
    return Image.fromarray(smooth_image(128, 192, seed=5))


def test_extend_returns_the_same_image_as_the_cli(model, model_dir, piece, tmp_path):
    piece.save(tmp_path / "piece.png")
    assert main(["extend", str(tmp_path / "piece.png"), "-o", str(tmp_path / "cli.png"), "--width", "640",
                 "--height", "192", "--model", str(model_dir), "--seed", "3", "--quiet", "--threads", "1"]) == 0
    result = model.extend(piece, width=640, height=192, seed=3)
    assert isinstance(result, Image.Image) and result.size == (640, 192)
    assert np.array_equal(np.asarray(result), np.asarray(Image.open(tmp_path / "cli.png")))


def test_extend_accepts_paths_arrays_and_other_modes(model, piece, tmp_path):
    piece.save(tmp_path / "piece.png")
    from_path = model.extend(tmp_path / "piece.png", width=320, height=128, anchor="left")
    from_array = model.extend(np.asarray(piece), width=320, height=128, anchor="left")
    assert np.array_equal(np.asarray(from_path), np.asarray(from_array))
    grey = model.extend(piece.convert("L"), width=320, height=128, anchor="left")
    assert grey.size == (320, 128) and grey.mode == "RGB"


def test_progress_callback_counts_up_to_the_total(model, piece):
    calls = []
    model.extend(piece, width=640, height=192, batch=2, progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1][0] == calls[-1][1]
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_output_path_is_written_and_returned(model, tmp_path):
    out = model.generate(width=200, height=100, output=tmp_path / "g.png")
    assert out == tmp_path / "g.png" and Image.open(out).size == (200, 100)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # temporary run dir removed
    with pytest.raises(nuwa_inf.UserError, match="already exists"):
        model.generate(width=200, height=100, output=tmp_path / "g.png")
    assert model.generate(width=200, height=100, output=tmp_path / "g.png", overwrite=True) == out


def test_canvas_too_big_for_memory_asks_for_an_output(model, monkeypatch):
    monkeypatch.setattr(nuwa_inf.api, "MAX_IN_MEMORY_PIXELS", 10_000)
    with pytest.raises(nuwa_inf.UserError, match="output="):
        model.generate(width=200, height=100)


def test_run_dir_continues_the_same_job_and_refuses_another(model, piece, tmp_path):
    first = model.extend(piece, width=384, height=128, run_dir=tmp_path / "run")
    again = model.extend(piece, width=384, height=128, run_dir=tmp_path / "run")  # resumes the finished run
    assert np.array_equal(np.asarray(first), np.asarray(again))
    with pytest.raises(nuwa_inf.UserError, match="seed"):
        model.extend(piece, width=384, height=128, seed=9, run_dir=tmp_path / "run")


@pytest.mark.parametrize("kwargs, message", [
    (dict(width=100, height=192), "smaller than the input"),
    (dict(width=0, height=192), "--width"),
    (dict(width=640, height=192, batch=0), "--batch"),
    (dict(width=640, height=192, order="sideways"), "--order"),
    (dict(width=640, height=192, top_p=0), "--top-p"),
    (dict(width=640, height=192, min_p=-0.1), "--min-p"),
    (dict(width=640, height=192, style_weight=-1), "--style-weight"),
    (dict(width=640, height=192, anchor="5000,0"), "outside"),
    (dict(width=640, height=192, output="x.jpg"), "unsupported output type"),
])
def test_bad_arguments_raise_user_error(model, piece, kwargs, message):
    with pytest.raises(nuwa_inf.UserError, match=message):
        model.extend(piece, **kwargs)


def test_bad_inputs_raise_user_error(model, model_dir, tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(nuwa_inf.UserError, match="broken.png"):
        model.extend(tmp_path / "broken.png", width=640, height=192)
    with pytest.raises(nuwa_inf.UserError, match="uint8"):
        model.extend(np.zeros((8, 8, 3), np.float32), width=640, height=192)
    with pytest.raises(nuwa_inf.UserError, match="model directory not found"):
        nuwa_inf.load(tmp_path / "nope")
    with pytest.raises(nuwa_inf.UserError, match="--device"):
        nuwa_inf.load(model_dir, device="tpu")


def test_reconstruct_matches_the_cli_round_trip(model, model_dir, tmp_path):
    image = Image.fromarray(smooth_image(37, 53, seed=2))
    image.save(tmp_path / "in.png")
    assert main(["reconstruct", str(tmp_path / "in.png"), "-o", str(tmp_path / "cli.png"),
                 "--model", str(model_dir)]) == 0
    recon = model.reconstruct(image)
    assert recon.size == (53, 37)
    assert np.array_equal(np.asarray(recon), np.asarray(Image.open(tmp_path / "cli.png")))
    assert nuwa_inf.psnr(image, recon) == pytest.approx(nuwa_inf.psnr(tmp_path / "in.png", tmp_path / "cli.png"))
    assert model.reconstruct(image, output=tmp_path / "r.png") == tmp_path / "r.png"
