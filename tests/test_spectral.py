"""The texture losses (tokenizer/spectral.py): where power lands, what it ignores, where it pushes."""
import math

import pytest
import torch
import torch.nn.functional as F

from nuwa_inf.config import from_preset
from nuwa_inf.errors import UserError
from nuwa_inf.tokenizer.config import TOKENIZER_PRESETS, TokenizerConfig
from nuwa_inf.tokenizer.losses import reconstruction_loss
from nuwa_inf.tokenizer.objective import config_loss
from nuwa_inf.tokenizer.spectral import LOWEST_CYCLES, band_power_loss, gradient_profile, grid_loss, log_band_power


def grey_stripes(size: int, cycles_per_px: float) -> torch.Tensor:
    """(1, 3, size, size) vertical grey stripes at one frequency."""
    x = torch.arange(size, dtype=torch.float32)
    row = 0.5 * torch.sin(2 * math.pi * cycles_per_px * x)
    return row.expand(size, size)[None, None].expand(1, 3, size, size).clone()


@pytest.mark.parametrize("frequency", [0.03, 0.1, 0.3])
def test_stripes_put_their_power_in_their_band(frequency):
    bands, size = 8, 128
    edges = torch.logspace(math.log10(LOWEST_CYCLES / size), math.log10(0.5), bands + 1)
    expected = int(torch.bucketize(torch.tensor(frequency), edges, right=True)) - 1
    power = log_band_power(grey_stripes(size, frequency), bands)[0]
    assert int(power.argmax()) == expected
    assert power[expected] > power.median() + 3  # > e³ times a typical band (the window leaks into neighbours)


def test_stripes_one_way_do_not_pass_for_stripes_the_other_way():
    vertical = grey_stripes(128, 0.2)
    horizontal = vertical.transpose(-1, -2)
    turned = band_power_loss(vertical, horizontal)
    assert turned > 3                                                    # four orientation sectors see it
    assert band_power_loss(vertical, horizontal, orientations=1) < turned / 10  # radial bands alone barely do


def test_identical_and_turned_images_cost_nothing_blurred_ones_do():
    torch.manual_seed(0)
    texture = torch.rand(2, 3, 64, 64) * 2 - 1
    turned = texture.flip(-1, -2)  # turned 180°: every frequency keeps its direction
    assert band_power_loss(texture, texture) == 0
    # phase-blind: the same texture elsewhere is as good as in place (pixel L1 says otherwise)
    assert band_power_loss(turned, texture) < 1e-4
    assert (turned - texture).abs().mean() > 0.5
    once = F.avg_pool2d(texture, 3, 1, 1)
    twice = F.avg_pool2d(once, 3, 1, 1)
    assert 0.5 < band_power_loss(once, texture) < band_power_loss(twice, texture)


def test_its_gradient_puts_fine_texture_back_into_a_blurred_image():
    torch.manual_seed(0)
    texture = torch.rand(1, 3, 64, 64) * 2 - 1
    image = F.avg_pool2d(texture, 5, 1, 2).requires_grad_()
    finest_before = log_band_power(image, 8)[0, -1].item()
    opt = torch.optim.Adam([image], lr=0.01)
    for _ in range(30):
        opt.zero_grad()
        band_power_loss(image, texture).backward()
        opt.step()
    finest_after = log_band_power(image, 8)[0, -1].item()
    assert finest_after > finest_before + 1
    assert band_power_loss(image, texture) < band_power_loss(F.avg_pool2d(texture, 5, 1, 2), texture) / 2


def blocky(images: torch.Tensor, period: int, step: float) -> torch.Tensor:
    """`images` with every other period-wide column band raised by `step`: edges on the grid's x-lines."""
    bands = (torch.arange(images.shape[-1]) // period % 2).to(images)
    return images + step * bands


def test_gradient_profile_finds_edges_on_the_grid_and_nothing_on_a_grid_free_image():
    torch.manual_seed(0)
    noise = torch.rand(2, 3, 128, 96)
    flat = gradient_profile(noise, 16)
    assert flat.shape == (2, 16) and (flat - 1).abs().max() < 0.05
    edged = gradient_profile(blocky(noise, 16, 0.5), 16)
    assert edged[0, 0] > 1.5 and (edged[0, 1:] < 1).all()   # x: the token edge stands out
    assert (edged[1] - 1).abs().max() < 0.05                 # y: no horizontal edges were added
    shifted = gradient_profile(blocky(noise, 16, 0.5).roll(3, -1), 16)
    assert int(shifted[0].argmax()) == 3


def test_grid_loss_charges_grid_edges_and_its_gradient_removes_them():
    torch.manual_seed(0)
    texture = torch.rand(1, 3, 64, 64)
    assert grid_loss(texture, texture, 16) == 0
    image = blocky(texture, 16, 0.3).requires_grad_()
    before = grid_loss(image, texture, 16).item()
    opt = torch.optim.Adam([image], lr=0.01)
    for _ in range(40):
        opt.zero_grad()
        grid_loss(image, texture, 16).backward()
        opt.step()
    assert grid_loss(image, texture, 16) < before / 3
    edge_before = gradient_profile(blocky(texture, 16, 0.3), 16)[0, 0]
    edge_after = gradient_profile(image.detach(), 16)[0, 0]
    assert edge_before > 1.1 and abs(edge_after - 1) < (edge_before - 1) / 2


def test_config_loss_adds_the_weighted_band_term_only_when_asked():
    torch.manual_seed(0)
    target = torch.rand(2, 3, 64, 64) * 2 - 1
    recon = F.avg_pool2d(target, 3, 1, 1)
    plain = from_preset(TokenizerConfig, TOKENIZER_PRESETS, "tiny", {})
    spectral = from_preset(TokenizerConfig, TOKENIZER_PRESETS, "tiny", {"spectral_weight": 0.5})
    gridded = from_preset(TokenizerConfig, TOKENIZER_PRESETS, "tiny", {"grid_weight": 2.0})
    pixel = reconstruction_loss(recon, target, plain.l1_weight, plain.l2_weight, plain.grad_weight)
    assert config_loss(recon, target, plain) == pixel
    assert config_loss(recon, target, spectral) == pytest.approx(pixel + 0.5 * band_power_loss(recon, target))
    assert config_loss(recon, target, gridded) == pytest.approx(pixel + 2.0 * grid_loss(recon, target, 16))


@pytest.mark.parametrize("name", ["spectral_weight", "grid_weight"])
def test_negative_texture_weights_are_refused(name):
    with pytest.raises(UserError, match=name):
        from_preset(TokenizerConfig, TOKENIZER_PRESETS, "tiny", {name: -0.1})


def test_a_crop_too_small_for_the_bands_is_a_config_error():
    with pytest.raises(UserError, match="at least 32 px"):
        from_preset(TokenizerConfig, TOKENIZER_PRESETS, "tiny", {"spectral_weight": 0.01, "crop": 16})
    from_preset(TokenizerConfig, TOKENIZER_PRESETS, "tiny", {"spectral_weight": 0.01, "crop": 32})


def test_crops_too_small_for_the_bands_are_refused():
    with pytest.raises(ValueError, match="too small"):
        log_band_power(torch.zeros(1, 3, 8, 8), 8)
