"""The clip engine end to end on a tiny random video model: animate and generate --frames,
frame 0 = the still (its decoded tokens plus the detail they lose), batch invariance, resume
equality, a pool that does not grow with the clip's length, training on frame folders, and bad input."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

import nuwa_inf
from conftest import smooth_image
from model_fixtures import make_model_dir
from nuwa_inf.cli import main
from nuwa_inf.infer.bundle import load_bundle
from nuwa_inf.infer.clip_cli import DEFAULT_DRAWN_CODE_PRIOR, ClipSettings, run_clip
from nuwa_inf.infer.first_frame import FIRST_FRAME_FILE, draw_scale


@pytest.fixture(scope="module")
def video_model(tmp_path_factory):
    return make_model_dir(tmp_path_factory.mktemp("video_model"), extent_t=1, rope_time_dims=4)


@pytest.fixture(scope="module")
def image_model(tmp_path_factory):
    return make_model_dir(tmp_path_factory.mktemp("image_model"))


@pytest.fixture(scope="module")
def paired_model(image_model, video_model, tmp_path_factory):
    """The bundled layout: an image transformer in transformer/, a video one in video/, one tokenizer."""
    path = tmp_path_factory.mktemp("paired_model")
    shutil.copytree(image_model, path, dirs_exist_ok=True)
    shutil.copytree(video_model / "transformer", path / "video")
    return path


@pytest.fixture
def still(tmp_path):
    path = tmp_path / "still.png"
    Image.fromarray(smooth_image(64, 128, seed=3)).save(path)
    return path


def test_animate_keeps_the_still_as_frame_0_and_moves(video_model, still, tmp_path):
    """Frame 0 is the still itself (its detail the tokenizer loses added back to every frame) and
    every step changes the frame as the sampled one does; without that, frame 0 is the still's
    reconstruction."""
    model = nuwa_inf.load(video_model)
    clip = model.animate(still, frames=5, seed=1)
    assert clip.shape == (5, 64, 128, 3) and clip.dtype == np.uint8
    pixels = np.asarray(Image.open(still).convert("RGB"))
    assert np.array_equal(clip[0], pixels)
    decoded = model.animate(still, frames=5, seed=1, still_detail=False)
    recon = np.asarray(model.reconstruct(still))
    assert np.array_equal(decoded[0], recon) and not np.array_equal(recon, pixels)
    steps, decoded_steps = np.diff(clip.astype(int), axis=0), np.diff(decoded.astype(int), axis=0)
    inside = (clip[1:] > 0) & (clip[1:] < 255) & (clip[:-1] > 0) & (clip[:-1] < 255)   # where nothing was clipped
    assert inside.mean() > 0.5 and np.array_equal(steps[inside], decoded_steps[inside])
    changes = [np.abs(clip[t + 1].astype(int) - clip[t]).mean() for t in range(4)]
    assert all(change > 0 for change in changes)


def test_deflicker_filters_the_frames_written_and_keeps_frame_0(video_model, still, tmp_path):
    """animate's frames go through the temporal median by default: frame 0 (the still) and the
    last frame as sampled, the others each the median of the raw frames around it."""
    model = nuwa_inf.load(video_model)
    raw = model.animate(still, frames=5, seed=3, temperature=1.0, deflicker=False)
    smooth = model.animate(still, frames=5, seed=3, temperature=1.0)
    assert np.array_equal(smooth[0], raw[0]) and np.array_equal(smooth[-1], raw[-1])
    assert np.array_equal(smooth[2], np.median(raw[1:4], axis=0).astype(np.uint8))
    assert not np.array_equal(smooth[1:-1], raw[1:-1])
    assert main(["animate", str(still), "--model", str(video_model), "--quiet", "--seed", "3", "--temperature", "1",
                 "--frames", "5", "--no-deflicker", "-o", str(tmp_path / "raw") + "/"]) == 0
    written = sorted((tmp_path / "raw").glob("*.png"))
    assert np.array_equal(np.stack([np.asarray(Image.open(p).convert("RGB")) for p in written]), raw)


def test_persistence_keeps_tokens_in_place(video_model, still):
    """The bigger the bonus for the token a place held before, the less changes from frame to
    frame (this untrained model's logits are scaled up 50×, so even 20 does not freeze it)."""
    model = nuwa_inf.load(video_model)

    def change(persistence):
        clip = model.animate(still, frames=4, seed=2, temperature=1.0, persistence=persistence,
                             deflicker=False).astype(int)
        return float(np.mean([np.abs(clip[t + 1] - clip[t]).mean() for t in range(3)]))

    free, held, steady = change(0.0), change(2.0), change(20.0)
    assert 0 < steady < held < free, (free, held, steady)


def test_clip_does_not_depend_on_batch_size_and_resumes_identically(video_model, still, tmp_path):
    bundle = load_bundle(video_model, "cpu", video=True)
    image = np.asarray(Image.open(still))
    whole = run_clip(bundle, image, 128, 64, ClipSettings(frames=4, batch=16), run_dir=tmp_path / "a",
                     progress=False)
    one = run_clip(bundle, image, 128, 64, ClipSettings(frames=4, batch=1), run_dir=tmp_path / "b", progress=False)
    frames_a = [np.asarray(Image.open(p)) for p in whole.frames]
    assert all(np.array_equal(x, np.asarray(Image.open(p))) for x, p in zip(frames_a, one.frames, strict=True))

    class Stop(Exception):
        pass

    def stop_after_three(done, total):
        if done >= 3:
            raise Stop

    from nuwa_inf.infer.clip_engine import ClipRun, ClipSpec
    defaults = ClipSettings(frames=4)
    spec = ClipSpec(width=128, height=64, frames=4, animate=True, model_hash=bundle.weights_hash,
                    temperature=defaults.temperature, persistence=defaults.persistence,
                    code_prior=defaults.code_prior_strength(drawn=False),
                    keep_motion=defaults.keep_motion_share)    # as run_clip's above
    run_dir = tmp_path / "killed"
    run_dir.mkdir()
    killed = ClipRun(bundle, spec, run_dir, image, batch=1, progress=False, on_progress=stop_after_three)
    killed.checkpoint_seconds = 0          # state after every wave
    with pytest.raises(Stop):
        killed.run(False)
    state = json.loads((run_dir / "state.json").read_text())
    assert 0 < state["wave"] < 6
    paths = ClipRun(bundle, spec, run_dir, image, batch=1, progress=False).run(True)
    assert all(np.array_equal(x, np.asarray(Image.open(p))) for x, p in zip(frames_a, paths, strict=True))


def test_a_strong_code_prior_keeps_a_clip_to_the_codes_of_its_frame_0(video_model, still, tmp_path):
    """Generated frames use codes frame 0 does not (the untrained model draws any); a strong code
    prior (code_prior.py: here frame 0's rows are all within reach) keeps them to frame 0's."""
    bundle = load_bundle(video_model, "cpu", video=True)
    image = np.asarray(Image.open(still))

    def foreign_share(code_prior: float) -> float:
        run = tmp_path / f"prior{code_prior:g}"
        run_clip(bundle, image, 128, 64, ClipSettings(frames=3, seed=2, temperature=1.0, persistence=0.0,
                                                      code_prior=code_prior), run_dir=run, progress=False)
        tokens = np.load(next(run.glob("tokens_*.npy")))                      # (T, h, w)
        return float(np.isin(tokens[1:], np.unique(tokens[0]), invert=True).mean())

    assert foreign_share(0.0) > 0.2
    assert foreign_share(10.0) < 0.01


def test_the_pool_does_not_grow_with_the_clip(video_model, still, tmp_path):
    from nuwa_inf.infer.clip_engine import ClipRun, ClipSpec

    bundle = load_bundle(video_model, "cpu", video=True)
    image = np.asarray(Image.open(still))
    peaks = []
    for frames in (3, 9):
        spec = ClipSpec(width=128, height=64, frames=frames, model_hash=bundle.weights_hash)
        (tmp_path / str(frames)).mkdir()
        job = ClipRun(bundle, spec, tmp_path / str(frames), image, progress=False)
        job.run(False)
        peaks.append(job.peak_pool)
    assert peaks[0] == peaks[1] <= 2 * 2 * 2   # at most the frame before and this one, 2×2 patches each


def test_generate_frames_writes_a_gif_with_the_right_durations(video_model, tmp_path):
    out = tmp_path / "clip.gif"
    assert main(["generate", "--frames", "3", "--fps", "4", "--width", "128", "--height", "64", "-o", str(out),
                 "--model", str(video_model), "--quiet", "--threads", "1"]) == 0
    with Image.open(out) as gif:
        assert gif.n_frames == 3 and gif.size == (128, 64)
        assert gif.info["duration"] == 250   # milliseconds


def test_a_generated_frame_0_takes_its_own_temperature(video_model):
    """Text-to-video's frame 0 at `first_frame_temperature`: it differs from the plain clip's and
    is frame 0 of a clip sampled at that temperature throughout; the clip stays batch-invariant."""
    model = nuwa_inf.load(video_model)

    def clip(temperature=0.3, **options):
        return model.generate_clip(128, 64, 3, seed=4, temperature=temperature, **options)

    plain, hot = clip(), clip(first_frame_temperature=1.0)
    assert not np.array_equal(plain[0], hot[0])
    assert np.array_equal(hot[0], clip(temperature=1.0)[0])
    assert not np.array_equal(hot[1:], clip(temperature=1.0)[1:])
    assert np.array_equal(hot, clip(first_frame_temperature=1.0, batch=1))


def test_text_to_video_draws_frame_0_with_the_image_transformer_and_animates_it(paired_model, tmp_path):
    """first_frame="image": frame 0 is text-to-image at draw_scale× the frame, shrunk, and the clip
    is exactly `animate` of that frame (with the drawn frame's code prior); "clip" samples frame 0
    with the video transformer instead."""
    model = nuwa_inf.load(paired_model)
    scale = draw_scale(128, 64)
    drawn = model.generate(128 * scale, 64 * scale, seed=4).resize((128, 64), Image.LANCZOS)
    clip = model.generate_clip(128, 64, 3, seed=4, first_frame="image")
    assert np.array_equal(clip, model.animate(np.array(drawn), frames=3, seed=4, code_prior=DEFAULT_DRAWN_CODE_PRIOR))
    assert np.array_equal(clip[0], np.asarray(drawn))               # frame 0 is the drawn still itself
    assert np.array_equal(clip, model.generate_clip(128, 64, 3, seed=4))             # auto = image here
    assert not np.array_equal(clip[0], model.generate_clip(128, 64, 3, seed=4, first_frame="clip")[0])
    run = tmp_path / "run"
    assert main(["generate", "--frames", "3", "--width", "128", "--height", "64", "--seed", "4", "-o",
                 str(tmp_path / "c.gif"), "--model", str(paired_model), "--run-dir", str(run), "--quiet"]) == 0
    assert np.array_equal(np.asarray(Image.open(run / FIRST_FRAME_FILE)), np.asarray(drawn))
    assert not (run / "first_frame").exists()   # the drawing's own run directory is gone once drawn


def test_a_prompted_frame_0_is_drawn_by_the_text_transformer_where_there_is_one(tmp_path):
    """With text/ beside transformer/ and video/ (the bundled layout), text-to-video's frame 0 is
    drawn as `generate --text` draws, by text/; without a prompt, by transformer/."""
    words = ["snowy", "lake"]
    paired = tmp_path / "paired"
    shutil.copytree(make_model_dir(tmp_path / "image", text_vocab=words), paired)
    shutil.copytree(make_model_dir(tmp_path / "video", text_vocab=words, extent_t=1, rope_time_dims=4) / "transformer",
                    paired / "video")
    plain = tmp_path / "plain"                       # the same without text/
    shutil.copytree(paired, plain)
    shutil.copytree(make_model_dir(tmp_path / "other", seed=1, text_vocab=words) / "transformer", paired / "text")
    scale = draw_scale(128, 64)

    def first_frame(directory, text):
        model = nuwa_inf.load(directory)
        clip = model.generate_clip(128, 64, 2, seed=4, text=text)
        drawn = model.generate(128 * scale, 64 * scale, seed=4, text=text).resize((128, 64), Image.LANCZOS)
        assert np.array_equal(clip[0], np.asarray(drawn))
        return clip[0]

    prompted = first_frame(paired, "snowy lake")
    assert not np.array_equal(prompted, first_frame(plain, "snowy lake"))
    assert np.array_equal(first_frame(paired, ""), first_frame(plain, ""))
    run = tmp_path / "run"
    assert main(["generate", "--frames", "2", "--width", "128", "--height", "64", "--seed", "4", "--text", "snowy lake",
                 "-o", str(tmp_path / "c.gif"), "--model", str(paired), "--run-dir", str(run), "--quiet"]) == 0
    assert np.array_equal(np.asarray(Image.open(run / FIRST_FRAME_FILE)), prompted)


def test_first_frame_image_needs_an_image_transformer(video_model, tmp_path, capsys):
    out = tmp_path / "c.gif"
    assert main(["generate", "--frames", "3", "--width", "128", "--height", "64", "--first-frame", "image",
                 "-o", str(out), "--model", str(video_model), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--first-frame image" in err and len(err.strip().splitlines()) == 1 and not out.exists()


def test_min_p_changes_a_clip_and_keeps_it_batch_invariant(video_model):
    model = nuwa_inf.load(video_model)

    def clip(**options):
        return model.generate_clip(128, 64, 3, seed=4, temperature=1.0, **options)

    truncated = clip(min_p=0.5)
    assert not np.array_equal(truncated, clip())
    assert np.array_equal(truncated, clip(min_p=0.5, batch=1))


def test_animate_cli_writes_a_frame_folder(video_model, still, tmp_path):
    out = tmp_path / "frames/"
    assert main(["animate", str(still), "-o", str(out) + "/", "--frames", "3", "--model", str(video_model),
                 "--quiet", "--threads", "1"]) == 0
    assert len(list(out.glob("*.png"))) == 3


def test_train_model_video_on_frame_folders_makes_a_video_model(video_model, tmp_path):
    clips = tmp_path / "clips"
    for c in range(2):
        folder = clips / f"clip_{c:05d}"
        folder.mkdir(parents=True)
        base = smooth_image(64, 160, seed=c)
        for t in range(4):
            Image.fromarray(np.roll(base, 4 * t, axis=1)[:, :128]).save(folder / f"frame_{t:04d}.png")
        (clips / f"clip_{c:05d}.txt").write_text("a scroll landscape by day\n")
    out = tmp_path / "trained"
    assert main(["train", "model", "--video", "--frames", "2", "--data", str(clips), "--out", str(out),
                 "--tokenizer", str(video_model / "tokenizer"), "--config", "tiny", "--set", "crop_rows=1",
                 "--set", "crop_cols=2", "--steps", "4", "--save-every", "2", "--val-every", "2"]) == 0
    bundle = load_bundle(out, "cpu", video=True)
    assert bundle.transformer.cfg.extent_t == 1 and bundle.transformer.cfg.crop_frames == 2
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert len(log) == 4 and "val_bits" in log[-1]


@pytest.mark.parametrize("argv, message", [
    (["--frames", "0"], "--frames"),
    (["--frames", "3", "--fps", "0"], "--fps"),
    (["--frames", "3", "-o", "clip.avi"], "frame folder"),
    (["--frames", "3", "--min-p", "1"], "--min-p"),
    (["--frames", "3", "--keep-motion", "1.5"], "--keep-motion"),
])
def test_bad_clip_flags_get_one_line_and_exit_2(video_model, still, tmp_path, capsys, argv, message):
    base = ["animate", str(still), "--model", str(video_model), "--quiet", "-o", str(tmp_path / "c.gif")]
    assert main(base + argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_animate_refuses_an_image_model_and_a_video_as_input(image_model, video_model, still, tmp_path, capsys):
    assert main(["animate", str(still), "-o", str(tmp_path / "c.gif"), "--model", str(image_model), "--quiet"]) == 2
    assert "video" in capsys.readouterr().err
    fake = tmp_path / "input.mp4"
    fake.write_bytes(b"not really")
    assert main(["animate", str(fake), "-o", str(tmp_path / "c.gif"), "--model", str(video_model), "--quiet"]) == 2
    assert "still image" in capsys.readouterr().err
    existing = tmp_path / "there.gif"
    existing.write_bytes(b"keep me")
    assert main(["animate", str(still), "-o", str(existing), "--model", str(video_model), "--quiet"]) == 2
    assert existing.read_bytes() == b"keep me"


def test_a_prompt_the_image_transformer_cannot_read_falls_back_to_the_video_one(image_model, tmp_path, capsys):
    """auto: a video model with a text encoder beside an image one without: frame 0 is sampled by the
    video transformer; --first-frame image is refused before anything is written."""
    paired = tmp_path / "paired"
    shutil.copytree(image_model, paired)
    video = make_model_dir(tmp_path / "video_text", text_vocab=["lake", "snow"], extent_t=1, rope_time_dims=4)
    shutil.copytree(video / "transformer", paired / "video")
    out, run = tmp_path / "out" / "c.gif", tmp_path / "run"
    out.parent.mkdir()
    args = ["generate", "--frames", "2", "--width", "128", "--height", "64", "--text", "lake", "--model", str(paired),
            "--quiet"]
    assert main(args + ["--first-frame", "image", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no text encoder" in err and len(err.strip().splitlines()) == 1
    assert list(out.parent.iterdir()) == []                       # no output, no run directory left behind
    assert main(args + ["-o", str(out), "--run-dir", str(run)]) == 0
    assert out.is_file() and not (run / FIRST_FRAME_FILE).exists()   # frame 0 sampled, not drawn


def test_frame_0_is_drawn_at_most_four_times_the_frame_and_never_wider_than_a_canvas():
    assert [draw_scale(512, h) for h in (256, 512, 1024, 2048, 4096)] == [4, 4, 2, 1, 1]
    assert draw_scale(1 << 18, 256) == 4 and draw_scale((1 << 18) + 16, 256) == 3 and draw_scale(1 << 20, 16) == 1


def test_animate_refuses_the_flags_of_a_generated_frame_0(video_model, still, tmp_path, capsys):
    for flag in (["--first-frame", "image"], ["--first-frame-temperature", "0.5"]):
        out = tmp_path / "a.gif"
        assert main(["animate", str(still), "-o", str(out), "--frames", "2", "--model", str(video_model), "--quiet",
                     *flag]) == 2
        err = capsys.readouterr().err
        assert "animate's frame 0 is the still" in err and len(err.strip().splitlines()) == 1 and not out.exists()
