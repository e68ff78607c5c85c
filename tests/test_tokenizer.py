"""Tokenizer: shapes, FSQ round trip and usage, exact tiling, checkpoints, training CLI, reconstruct CLI."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import smooth_image
from nuwa_inf.cli import main
from nuwa_inf.config import from_preset
from nuwa_inf.errors import UserError
from nuwa_inf.tokenizer.config import TOKENIZER_PRESETS, TokenizerConfig
from nuwa_inf.tokenizer.quantizer import FSQ, code_usage
from nuwa_inf.tokenizer.tiled import decode_tiled, encode_tiled
from nuwa_inf.tokenizer.vqgan import VQGAN


def test_every_preset_downsamples_by_16():
    for name in ("tiny", "small", "base"):
        cfg = from_preset(TokenizerConfig, TOKENIZER_PRESETS, name)
        assert cfg.downsample == 16


def test_base_preset_is_paper_like():
    cfg = from_preset(TokenizerConfig, TOKENIZER_PRESETS, "base")
    assert cfg.codebook_size == 16384 and cfg.ch == 128 and cfg.ch_mult == (1, 1, 2, 2, 4)


def test_fsq_indices_round_trip_every_code():
    fsq = FSQ((8, 5, 3), in_channels=4)
    indices = torch.arange(fsq.codebook_size).view(1, 1, -1)
    latents = fsq.indices_to_latents(indices)
    # feeding the decoded code's pre-projection value back must give the same index:
    # check through the digit arithmetic directly
    digits = torch.div(indices.unsqueeze(1), fsq.basis, rounding_mode="floor") % fsq.levels_t.long()
    assert torch.equal((digits * fsq.basis).sum(1), indices)
    assert latents.shape == (1, 4, 1, fsq.codebook_size)


def test_fsq_quantise_then_lookup_matches_forward():
    torch.manual_seed(0)
    fsq = FSQ((8, 8, 5), in_channels=6)
    z = torch.randn(2, 6, 5, 7) * 3
    quantised, indices = fsq(z)
    assert torch.allclose(fsq.indices_to_latents(indices), quantised, atol=1e-6)
    assert indices.min() >= 0 and indices.max() < fsq.codebook_size


def test_fsq_at_init_spreads_latents_over_most_codes():
    """Regression: a narrow initial projection rounded everything to a few codes (collapse)."""
    torch.manual_seed(0)
    fsq = FSQ((8, 8, 8, 8), in_channels=32)
    _, indices = fsq(torch.randn(1, 32, 64, 64) * 0.1)  # the scale of an untrained encoder's output
    _, perplexity = code_usage(indices, fsq.codebook_size)
    assert perplexity > 500  # 4096 samples over 4096 codes; collapse gave < 10


def test_code_usage_counts_collapse():
    usage, perplexity = code_usage(torch.zeros(100, dtype=torch.long), 16)
    assert usage == pytest.approx(1 / 16) and perplexity == pytest.approx(1.0)


def whole_decode_u8(tokenizer, tokens: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        whole = tokenizer.decode(torch.from_numpy(tokens).unsqueeze(0))
    return ((whole[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()


def test_tiled_decode_equals_whole_decode(tiny_tokenizer, monkeypatch):
    monkeypatch.setenv("NUWA_INF_BF16", "0")  # the tiling's exactness, in float32
    tokens = np.random.default_rng(0).integers(0, tiny_tokenizer.codebook_size, (20, 27))
    whole_u8 = whole_decode_u8(tiny_tokenizer, tokens)
    tiled = decode_tiled(tiny_tokenizer, tokens, tile=8)
    assert tiled.shape == (320, 432, 3)
    # float tolerance on the uint8 image: rounding may flip by one level at most
    assert np.abs(tiled.astype(int) - whole_u8.astype(int)).max() <= 1


def test_bfloat16_decoding_stays_within_rounding_of_float32(tiny_tokenizer, monkeypatch):
    """The decoder's bfloat16 path (tokenizer/precision.py, on by default on AMX CPUs) draws the
    same image as float32 up to rounding: an untrained decoder amplifies it most, and still stays
    within a few levels."""
    tokens = np.random.default_rng(2).integers(0, tiny_tokenizer.codebook_size, (20, 27))
    monkeypatch.setenv("NUWA_INF_BF16", "0")
    exact = whole_decode_u8(tiny_tokenizer, tokens).astype(int)
    monkeypatch.setenv("NUWA_INF_BF16", "1")
    fast = decode_tiled(tiny_tokenizer, tokens, tile=8).astype(int)
    assert fast.shape == exact.shape and not np.array_equal(fast, exact)  # it did run in bfloat16
    assert np.abs(fast - exact).mean() < 0.5 and np.abs(fast - exact).max() <= 8


def test_tiled_decode_with_too_small_margin_differs(tiny_tokenizer):
    """The margin is what makes tiling exact: without it, tile borders show."""
    tokens = np.random.default_rng(1).integers(0, tiny_tokenizer.codebook_size, (16, 24))
    exact = decode_tiled(tiny_tokenizer, tokens, tile=8)
    seamy = decode_tiled(tiny_tokenizer, tokens, tile=8, margin=0)
    assert np.abs(exact.astype(int) - seamy.astype(int)).max() > 1


def test_decoder_margin_covers_its_receptive_field(tiny_tokenizer):
    """Changing a token changes no pixel farther than the reported margin."""
    model = tiny_tokenizer
    tokens = torch.zeros(1, 24, 24, dtype=torch.long)
    changed = tokens.clone()
    changed[0, 12, 12] = model.codebook_size - 1
    with torch.no_grad():
        diff = (model.decode(tokens) - model.decode(changed)).abs().amax(dim=(0, 1))
    rows, cols = torch.nonzero(diff > 1e-6, as_tuple=True)
    f, m = model.downsample, model.decoder_margin
    assert rows.min() >= (12 - m) * f and rows.max() < (13 + m) * f
    assert cols.min() >= (12 - m) * f and cols.max() < (13 + m) * f


def test_tiled_encode_equals_whole_encode(tiny_tokenizer):
    image = smooth_image(16 * 13, 16 * 18, seed=3)
    whole = encode_tiled(tiny_tokenizer, image, tile=1000)
    tiled = encode_tiled(tiny_tokenizer, image, tile=5)
    # continuous latents agree to float precision; a code can flip only at an exact rounding tie
    assert (whole != tiled).mean() < 0.01


def test_checkpoint_round_trip(tmp_path, tiny_tokenizer):
    tiny_tokenizer.save(tmp_path / "tok")
    loaded = VQGAN.load(tmp_path / "tok")
    for name, tensor in tiny_tokenizer.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name])


def test_checkpoint_shape_mismatch_names_the_tensor(tmp_path, tiny_tokenizer):
    tiny_tokenizer.save(tmp_path / "tok")
    config_path = tmp_path / "tok" / "config.json"
    meta = json.loads(config_path.read_text())
    meta["config"]["ch"] = 12
    config_path.write_text(json.dumps(meta))
    with pytest.raises(UserError, match=r"tensor \S+ has shape \(\d+,.*expects \(\d+,"):
        VQGAN.load(tmp_path / "tok")


def test_pickle_disguised_as_safetensors_is_refused(tmp_path, tiny_tokenizer):
    tiny_tokenizer.save(tmp_path / "tok")
    torch.save({"x": torch.zeros(1)}, tmp_path / "tok" / "model.safetensors")
    with pytest.raises(UserError, match="not safetensors|pickle"):
        VQGAN.load(tmp_path / "tok")


def test_train_tokenizer_reduces_loss_and_resumes_exactly(tmp_path, image_folder):
    args = ["train", "tokenizer", "--data", str(image_folder), "--config", "tiny", "--save-every", "20",
            "--steps", "40"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    log = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert np.mean([r["loss"] for r in log[-10:]]) < np.mean([r["loss"] for r in log[:10]])
    # a run stopped after its step-20 checkpoint and resumed equals the straight run
    stopped = tmp_path / "b" / "checkpoints"
    shutil.copytree(tmp_path / "a" / "checkpoints" / "step_00000020", stopped / "step_00000020")
    (stopped / "latest.json").write_text(json.dumps({"step": 20, "dir": "step_00000020"}))
    assert main(args + ["--out", str(tmp_path / "b"), "--resume"]) == 0
    a, b = VQGAN.load(tmp_path / "a"), VQGAN.load(tmp_path / "b")
    for name, tensor in a.state_dict().items():
        assert torch.equal(tensor, b.state_dict()[name]), name


def test_train_refuses_to_clobber_an_existing_run(tmp_path, image_folder, capsys):
    args = ["train", "tokenizer", "--data", str(image_folder), "--config", "tiny", "--out", str(tmp_path / "a")]
    assert main(args + ["--steps", "2"]) == 0
    assert main(args + ["--steps", "4"]) == 2
    assert "--resume" in capsys.readouterr().err


def test_reconstruct_any_size_and_mode(tmp_path, tiny_tokenizer, capsys):
    tiny_tokenizer.save(tmp_path / "tok")
    rgba = np.dstack([smooth_image(37, 53), np.full((37, 53), 200, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "in.png")
    assert main(["reconstruct", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"),
                 "--model", str(tmp_path / "tok")]) == 0
    assert Image.open(tmp_path / "out.png").size == (53, 37)
    assert "PSNR" in capsys.readouterr().out


def test_reconstruct_unreadable_input_is_one_line_exit_2(tmp_path, tiny_tokenizer, capsys):
    tiny_tokenizer.save(tmp_path / "tok")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    code = main(["reconstruct", str(tmp_path / "broken.png"), "-o", str(tmp_path / "o.png"),
                 "--model", str(tmp_path / "tok")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "broken.png" in err
    assert not (tmp_path / "o.png").exists()


def test_channel_shuffle_permutes_whole_crops(tmp_path):
    """With channel_shuffle the crops are the same pixels with their RGB channels reordered;
    over many crops every other order turns up, and without it none does."""
    from PIL import Image

    from nuwa_inf.data.datasets import CHANNEL_ORDERS, CropSampler

    rgb = np.zeros((32, 32, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 10, 120, 250                      # three distinct planes
    Image.fromarray(rgb).save(tmp_path / "flat.png")
    seen = set()
    for crop in CropSampler(tmp_path, 16, flip=False, seed=0, channel_shuffle=0.9).sample(200):
        values = tuple(int(round((float(crop[c, 0, 0]) + 1) * 127.5)) for c in range(3))
        assert sorted(values) == [10, 120, 250] and (crop == crop[:, :1, :1]).all()
        seen.add(values)
    assert seen == {(10, 120, 250)} | {tuple(rgb[0, 0, order].tolist()) for order in CHANNEL_ORDERS}
    plain = CropSampler(tmp_path, 16, flip=False, seed=0).sample(20)
    assert torch.allclose(plain[:, :, 0, 0], torch.tensor([10, 120, 250]) / 127.5 - 1.0)


def test_chroma_weight_charges_hue_errors_not_luma_errors():
    """The chroma term is zero for a grey shift (same change in R, G, B), positive for a hue
    shift of the same RGB L1 size, and chroma_weight=0 leaves the loss as it was."""
    from nuwa_inf.tokenizer.losses import reconstruction_loss

    target = torch.rand(2, 3, 8, 8) * 0.5 - 0.25
    grey_shift = target + 0.1                                                  # luma only
    hue_shift = target + torch.tensor([0.3, 0.0, 0.0]).view(1, 3, 1, 1)        # same mean |ΔRGB|
    for recon in (grey_shift, hue_shift):
        plain = reconstruction_loss(recon, target, 1.0, 0.0, 0.0)
        assert plain == pytest.approx(0.1)
        assert reconstruction_loss(recon, target, 1.0, 0.0, 0.0, chroma_l1=0.0) == plain
    assert reconstruction_loss(grey_shift, target, 1.0, 0.0, 0.0, chroma_l1=2.0) == pytest.approx(0.1, abs=1e-6)
    expected_chroma = 2.0 * 0.3 * (0.168736 + 0.5) / 2                         # mean |ΔCb|, |ΔCr| for ΔR
    assert reconstruction_loss(hue_shift, target, 1.0, 0.0, 0.0, chroma_l1=2.0) == pytest.approx(0.1 + expected_chroma)


def test_negative_chroma_weight_is_refused():
    with pytest.raises(UserError, match="chroma_weight"):
        from_preset(TokenizerConfig, TOKENIZER_PRESETS, "tiny", {"chroma_weight": -1.0})


def test_match_channels_averages_groups_and_repeats():
    from nuwa_inf.tokenizer.layers import match_channels

    x = torch.arange(8.0).view(1, 8, 1, 1)
    assert match_channels(x, 2).flatten().tolist() == [1.5, 5.5]                # means of 0..3 and 4..7
    assert match_channels(x[:, :2], 6).flatten().tolist() == [0, 0, 0, 1, 1, 1]
    assert match_channels(x, 8) is x
    with pytest.raises(ValueError):
        match_channels(x, 3)


def test_shortcuts_pass_features_through_when_the_convs_are_zero():
    """With the shortcuts and every conv zeroed, Downsample averages pixels of each 2×2
    neighbourhood into channels and Upsample hands each channel back to its 2×2 pixels: the
    parameter-free path DC-AE's residual autoencoding adds around resampling."""
    from nuwa_inf.tokenizer.layers import Downsample, Upsample

    down, up = Downsample(4, 8, shortcut=True), Upsample(8, 4, shortcut=True)
    for conv in (down.conv, up.conv):
        torch.nn.init.zeros_(conv.weight)
        torch.nn.init.zeros_(conv.bias)
    x = torch.randn(1, 4, 6, 6)
    folded = down(x)                                                           # (1, 8, 3, 3)
    for k in range(8):  # channel k: input channel k // 2, row k % 2 of each 2×2 neighbourhood
        expected = x[0, k // 2, k % 2::2, :].reshape(3, 3, 2).mean(-1)
        assert torch.allclose(folded[0, k], expected)
    unfolded = up(folded)                                                      # (1, 4, 6, 6)
    for c in range(4):
        for dy in range(2):
            for dx in range(2):
                assert torch.allclose(unfolded[0, c, dy::2, dx::2], folded[0, (4 * c + 2 * dy + dx) // 2])
    assert not torch.allclose(Downsample(4, 8)(x), folded)                     # without: just the conv


def test_configs_without_shortcuts_key_load_as_before():
    """Checkpoints written before the option existed have no `shortcuts` key: they load without
    the shortcuts, so the bundled weights decode exactly as they were trained."""
    from nuwa_inf.config import from_dict, to_dict

    old = {k: v for k, v in to_dict(TokenizerConfig()).items() if k != "shortcuts"}
    assert from_dict(TokenizerConfig, old).shortcuts is False


@pytest.mark.parametrize("c, c_out", [(4, 8), (4, 16), (8, 8), (8, 2)])
def test_add_channels_equals_adding_match_channels(c, c_out):
    """The broadcast (and, without gradients, in-place) add matches the plain definition, in
    either memory format."""
    from nuwa_inf.tokenizer.layers import add_channels, match_channels

    x, out = torch.randn(2, c, 5, 7), torch.randn(2, c_out, 5, 7)
    expected = out + match_channels(x, c_out)
    assert torch.allclose(add_channels(out.clone(), x), expected, atol=1e-6)
    with torch.no_grad():
        channels_last = out.clone().contiguous(memory_format=torch.channels_last)
        assert torch.allclose(add_channels(channels_last, x.contiguous(memory_format=torch.channels_last)),
                              expected, atol=1e-6)
