"""Quality figures without networks: seam ratio, block distance vs noise floor, drift, and `nuwa-inf eval`."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from nuwa_inf.cli import main
from nuwa_inf.eval import (
    block_distance,
    block_features,
    compare_blocks,
    drift,
    evaluate,
    noise_floor,
    seam_ratio,
    seam_stats,
)

P = 64  # small patches keep the tests fast


def smooth_noise(h: int, w: int, seed: int, sigma: float = 4.0, tint=(1.0, 1.0, 1.0),
                 contrast: float = 40.0) -> np.ndarray:
    """Stationary texture: white noise low-passed by a Gaussian of `sigma` px, as (h, w, 3) uint8."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((3, h, w)).astype(np.float32)
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :]
    gain = np.exp(-2 * (np.pi * sigma) ** 2 * (fy**2 + fx**2)).astype(np.float32)
    smooth = np.fft.irfft2(np.fft.rfft2(noise) * gain, s=(h, w))
    smooth /= smooth.std()
    img = 128 + contrast * smooth.transpose(1, 2, 0) * np.asarray(tint, np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def other_texture(h: int, w: int, seed: int) -> np.ndarray:
    """Finer grain, warmer colour, lower contrast than `smooth_noise` defaults."""
    return smooth_noise(h, w, seed, sigma=1.5, tint=(1.3, 1.0, 0.7), contrast=30.0)


def shuffle_blocks(img: np.ndarray, p: int, seed: int) -> np.ndarray:
    h, w, _ = img.shape
    blocks = img.reshape(h // p, p, w // p, p, 3).transpose(0, 2, 1, 3, 4).reshape(-1, p, p, 3)
    blocks = blocks[np.random.default_rng(seed).permutation(len(blocks))]
    return blocks.reshape(h // p, w // p, p, p, 3).transpose(0, 2, 1, 3, 4).reshape(h, w, 3)


@pytest.fixture(scope="module")
def texture_a() -> np.ndarray:
    return smooth_noise(512, 2048, seed=0)


# ---------------------------------------------------------------- seam ratio


def test_seam_ratio_is_one_for_a_seamless_texture(texture_a):
    stats = seam_stats(texture_a, P)
    assert abs(stats.ratio - 1) < 0.03
    assert abs(stats.ratio_x - 1) < 0.03 and abs(stats.ratio_y - 1) < 0.03


def test_seam_ratio_is_large_for_shuffled_blocks(texture_a):
    shuffled = shuffle_blocks(texture_a, P, seed=1)
    stats = seam_stats(shuffled, P)
    assert stats.ratio > 3 and stats.ratio_x > 3 and stats.ratio_y > 3
    assert seam_ratio(shuffled, P) == stats.ratio


def test_seam_control_at_half_patch_offset_ignores_patch_seams(texture_a):
    shuffled = shuffle_blocks(texture_a, P, seed=1)
    assert seam_stats(shuffled, P).ratio > 3
    # the control's "inside" pairs now hold the real seams (1 pair in 64), so it dips a little below 1
    assert 0.8 < seam_stats(shuffled, P, offset=P // 2).ratio < 1.03


def test_seam_ratio_sees_only_the_seams_of_its_own_axis(texture_a):
    # swap whole block columns: only vertical lines x = k·P become seams
    cols = texture_a.reshape(512, 2048 // P, P, 3)[:, np.random.default_rng(2).permutation(2048 // P)]
    stats = seam_stats(np.ascontiguousarray(cols.reshape(512, 2048, 3)), P)
    assert stats.ratio_x > 3 and abs(stats.ratio_y - 1) < 0.03


def test_seam_ratio_does_not_depend_on_strip_width(texture_a):
    shuffled = shuffle_blocks(texture_a, P, seed=1)
    box = (100, 30, 700, 300)
    wide = seam_stats(shuffled, P, exclude=box, strip=4096)
    for strip in (64, 100, 333):
        narrow = seam_stats(shuffled, P, exclude=box, strip=strip)
        assert math.isclose(narrow.ratio, wide.ratio, rel_tol=1e-6)
        assert narrow.boundary_pairs == wide.boundary_pairs


def test_seam_ratio_excludes_pairs_inside_the_input_region(texture_a):
    img = texture_a.copy()
    # seams strictly inside the input region (0, 0, 256, 256); its border with the rest stays smooth
    img[64:192, 64:192] = shuffle_blocks(img[64:192, 64:192], P, seed=3)[::-1]
    assert seam_ratio(img, P) > 1.1
    assert abs(seam_ratio(img, P, exclude=(0, 0, 256, 256)) - 1) < 0.05


def test_seam_ratio_of_a_flat_image_is_one_and_of_one_patch_nan():
    assert seam_ratio(np.full((128, 128, 3), 7, np.uint8), P) == 1.0
    assert math.isnan(seam_ratio(np.zeros((P, P, 3), np.uint8), P))


# ---------------------------------------------------------------- block statistics


def test_block_distance_same_texture_is_small_against_a_different_texture(texture_a):
    feats = block_features(texture_a, P)
    assert feats.features.shape == (8 * 32, 36)
    left, right = feats.features[feats.x < 1024], feats.features[feats.x >= 1024]
    other = block_features(other_texture(512, 2048, seed=5), P).features
    same = block_distance(left, right)
    assert same < 0.05 * block_distance(other, right)


def test_noise_floor_ratio_is_near_one_for_real_like_blocks_and_large_otherwise(texture_a):
    ref = block_features(texture_a, P).features
    like = block_features(smooth_noise(512, 2048, seed=7), P).features
    unlike = block_features(other_texture(512, 2048, seed=8), P).features
    near = compare_blocks(like, ref, repeats=4)
    far = compare_blocks(unlike, ref, repeats=4)
    assert near["noise_floor"] == pytest.approx(noise_floor(ref, repeats=4))
    assert 0.5 < near["ratio"] < 2.0
    assert far["ratio"] > 50


def test_scene_floor_holds_out_each_reference_image(texture_a):
    like = block_features(smooth_noise(512, 2048, seed=7), P).features
    unlike = block_features(other_texture(512, 2048, seed=8), P).features
    same_kind = [block_features(smooth_noise(256, 2048, seed=s), P).features for s in (21, 22)]
    ref = np.concatenate(same_kind)
    groups = np.repeat([0, 1], [len(f) for f in same_kind])
    near = compare_blocks(like, ref, repeats=4, ref_groups=groups)
    far = compare_blocks(unlike, ref, repeats=4, ref_groups=groups)
    assert near["scenes"] == 2 and 0.3 < near["scene_ratio"] < 3
    assert far["scene_ratio"] > 30
    # references of two different kinds: one scene is far from the other, so the scene floor
    # is far above the mixed-halves floor and a canvas like one of them is within it
    mixed = np.concatenate([same_kind[0], block_features(other_texture(256, 2048, seed=9), P).features])
    mixed_figures = compare_blocks(like[:128], mixed, repeats=4, ref_groups=groups)
    assert mixed_figures["scene_floor"] > 10 * mixed_figures["noise_floor"]
    assert mixed_figures["scene_ratio"] < 1 < mixed_figures["ratio"]
    one = compare_blocks(like, same_kind[0], repeats=4, ref_groups=np.zeros(len(same_kind[0])))
    assert one["scenes"] == 0 and math.isnan(one["scene_ratio"])


def test_blocks_overlapping_the_excluded_region_are_left_out(texture_a):
    feats = block_features(texture_a, P, exclude=(0, 0, 100, 512))  # touches block columns 0 and 1
    assert len(feats) == 8 * 30 and feats.x.min() == 128


# ---------------------------------------------------------------- drift


def test_drift_detects_a_canvas_whose_right_third_changes(texture_a):
    canvas = smooth_noise(512, 2048, seed=9)
    canvas[:, 1408:] = other_texture(512, 640, seed=10)  # block columns 22..31 = the last third
    blocks = block_features(canvas, P)
    ref = block_features(texture_a, P).features
    assert drift(blocks, ref)["ratio"] > 10
    assert drift(blocks)["ratio"] > 10  # no reference: last vs first third, against middle vs first


def test_drift_of_a_stationary_canvas_is_below_threshold():
    canvas = smooth_noise(256, 6144, seed=11)
    blocks = block_features(canvas, 32)  # 8 × 192 blocks, 512 per third
    ref = block_features(smooth_noise(256, 3072, seed=12), 32).features
    with_ref, without = drift(blocks, ref), drift(blocks)
    assert with_ref["ratio"] <= with_ref["threshold"]
    assert without["ratio"] <= without["threshold"]


def test_drift_of_a_canvas_too_short_to_split_is_nan():
    assert math.isnan(drift(block_features(smooth_noise(64, 128, seed=0), P))["ratio"])


def test_evaluate_returns_all_figures(texture_a):
    figures = evaluate(texture_a, [smooth_noise(256, 1024, seed=13)], patch=P, repeats=2)
    assert figures["generated_blocks"] == 256 and figures["reference_blocks"] == 64
    assert set(figures) >= {"seam", "seam_control", "blocks", "drift"}
    assert figures["drift"]["mode"] == "reference"
    assert figures["blocks"]["scenes"] == 0  # one reference image: no scene floor


def test_evaluate_groups_references_by_image(texture_a):
    refs = [smooth_noise(256, 1024, seed=s) for s in (13, 15)]
    figures = evaluate(texture_a, refs, patch=P, repeats=2)
    assert figures["reference_blocks"] == 128 and figures["blocks"]["scenes"] == 2
    assert math.isfinite(figures["blocks"]["scene_ratio"])


# ---------------------------------------------------------------- CLI


@pytest.fixture()
def files(tmp_path, texture_a):
    gen = tmp_path / "gen.png"
    Image.fromarray(texture_a[:256, :1024]).save(gen)
    ref = tmp_path / "ref.png"
    Image.fromarray(smooth_noise(256, 1024, seed=14)).save(ref)
    return tmp_path, gen, ref


def test_cli_prints_a_table_and_writes_json(files, capsys):
    tmp, gen, ref = files
    out = tmp / "figures.json"
    code = main(["eval", str(gen), "--reference", str(ref), "--patch", str(P), "--exclude", "0,0,64,256",
                 "--repeats", "2", "--json", str(out)])
    assert code == 0
    figures = json.loads(out.read_text())
    assert figures["generated_blocks"] == 4 * 15 and figures["exclude"] == [0, 0, 64, 256]
    assert 0.9 < figures["seam"]["ratio"] < 1.1
    assert figures["blocks"]["ratio"] > 0
    assert "seam ratio" in capsys.readouterr().out


def test_cli_with_two_references_reports_the_scene_floor(files, capsys):
    tmp, gen, ref = files
    second = tmp / "ref2.png"
    Image.fromarray(smooth_noise(256, 1024, seed=15)).save(second)
    out = tmp / "figures.json"
    assert main(["eval", str(gen), "--reference", str(ref), str(second), "--patch", str(P), "--repeats", "2",
                 "--json", str(out)]) == 0
    blocks = json.loads(out.read_text())["blocks"]
    assert blocks["scenes"] == 2 and blocks["scene_floor"] > 0 and blocks["scene_ratio"] > 0
    assert "scene floor" in capsys.readouterr().out


def test_cli_without_reference_writes_null_block_figures(files):
    tmp, gen, _ = files
    out = tmp / "figures.json"
    assert main(["eval", str(gen), "--patch", str(P), "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["blocks"] is None and figures["drift"]["mode"] == "first-third"


@pytest.mark.parametrize("make_args", [
    lambda t, g, r: ["eval", str(t / "missing.png")],
    lambda t, g, r: ["eval", str(t / "notes.txt")],
    lambda t, g, r: ["eval", str(t)],
    lambda t, g, r: ["eval", str(t / "tiny.png")],
    lambda t, g, r: ["eval", str(g), "--reference", str(t / "missing.png")],
    lambda t, g, r: ["eval", str(g), "--patch", str(P), "--exclude", "1,2,3"],
    lambda t, g, r: ["eval", str(g), "--patch", str(P), "--exclude", "0,0,5000,64"],
    lambda t, g, r: ["eval", str(g), "--patch", str(P), "--exclude", "0,0,1024,256"],
    lambda t, g, r: ["eval", str(g), "--patch", "0"],
    lambda t, g, r: ["eval", str(g), "--patch", str(P), "--json", str(t / "no" / "dir.json")],
], ids=["missing", "not-an-image", "directory", "smaller-than-a-patch", "missing-reference",
        "exclude-three-numbers", "exclude-outside", "exclude-everything", "patch-zero", "json-folder-missing"])
def test_cli_bad_inputs_exit_2_with_one_line(files, capsys, make_args):
    tmp, gen, ref = files
    (tmp / "notes.txt").write_text("not an image")
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp / "tiny.png")
    assert main(make_args(tmp, gen, ref)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nuwa-inf: error:") and "\n" not in err
