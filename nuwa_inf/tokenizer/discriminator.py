"""PatchGAN discriminator: a few strided convs, one real/fake logit per patch of pixels."""
from __future__ import annotations

import torch
from torch import nn


class PatchDiscriminator(nn.Module):
    def __init__(self, ch: int = 32, layers: int = 3):
        super().__init__()
        blocks: list[nn.Module] = [nn.Conv2d(3, ch, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        width = ch
        for _ in range(layers - 1):
            blocks += [nn.Conv2d(width, width * 2, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            width *= 2
        blocks += [nn.Conv2d(width, width, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(width, 1, 3, padding=1)]
        self.net = nn.Sequential(*blocks)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) → (B, 1, H/2^layers, W/2^layers) logits."""
        return self.net(pixels)


def hinge_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return 0.5 * (torch.relu(1 - real_logits).mean() + torch.relu(1 + fake_logits).mean())
