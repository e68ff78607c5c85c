"""Tokenizer (VQGAN) configuration and its presets.

`small` is sized for the main job's decode budget on a 2-core CPU (SPEC: ~250 kFLOP
per output pixel): thin at full resolution, wide at low resolution. `base` is
paper-like (ch 128, mult 1,1,2,2,4, 16384 codes) for GPUs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..config import require_positive
from ..errors import UserError


@dataclass
class TokenizerConfig:
    preset: str = "custom"
    ch: int = 32                     # channels at full resolution
    ch_mult: tuple = (1, 2, 2, 4, 4)  # per level; len(ch_mult) - 1 downsamplings
    num_res_blocks: int = 1
    z_channels: int = 128            # latent width at the token resolution
    fsq_levels: tuple = (8, 8, 8, 8)  # finite scalar quantisation: codebook = prod(levels)
    shortcuts: bool = False          # parameter-free residual paths around down/upsampling (DC-AE)
    # losses
    l1_weight: float = 1.0
    l2_weight: float = 1.0
    grad_weight: float = 0.5         # L1 on image gradients (sharpness without a pretrained net)
    chroma_weight: float = 0.0       # extra L1 on Cb/Cr (hue errors cost more than RGB L1 makes them)
    spectral_weight: float = 0.0     # L1 on log luma power per frequency band (texture; spectral.py)
    grid_weight: float = 0.0         # L1 on |gradient| by phase on the token grid (block edges; spectral.py)
    entropy_weight: float = 0.1     # code-usage regulariser on the FSQ dims (keeps usage high)
    disc_weight: float = 0.1
    disc_start: int = 2000           # steps before the PatchGAN loss is switched on
    disc_ch: int = 32
    # optimisation
    lr: float = 2e-4
    crop: int = 128
    batch_size: int = 8
    freeze: str = "none"             # "none" | "encoder" (encoder + quantiser fixed: codes stay valid)
    channel_shuffle: float = 0.0     # share of crops with their RGB channels permuted (codes must carry hue)

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)

    @property
    def codebook_size(self) -> int:
        return math.prod(self.fsq_levels)

    def validate(self) -> None:
        if len(self.ch_mult) < 2 or any(m <= 0 for m in self.ch_mult):
            raise UserError(f"ch_mult must have at least two positive entries, got {self.ch_mult}")
        if self.ch <= 0 or self.num_res_blocks < 0 or self.z_channels <= 0:
            raise UserError("ch, z_channels must be positive and num_res_blocks >= 0")
        if not self.fsq_levels or any(level < 2 for level in self.fsq_levels):
            raise UserError(f"fsq_levels must all be >= 2, got {self.fsq_levels}")
        for name in ("chroma_weight", "spectral_weight", "grid_weight"):
            if getattr(self, name) < 0:
                raise UserError(f"{name} must be >= 0, got {getattr(self, name)}")
        require_positive("tokenizer", lr=self.lr, crop=self.crop, batch_size=self.batch_size,
                         disc_ch=self.disc_ch)
        if not 0 <= self.channel_shuffle <= 1:
            raise UserError(f"channel_shuffle must be in [0, 1], got {self.channel_shuffle}")
        if self.freeze not in ("none", "encoder"):
            raise UserError(f"freeze must be 'none' or 'encoder', got {self.freeze!r}")
        if self.spectral_weight and self.crop < 32:
            raise UserError("spectral_weight needs crops of at least 32 px for its frequency bands, "
                            f"got crop {self.crop}")
        if self.crop % self.downsample:
            raise UserError(f"crop {self.crop} must be a multiple of the downsampling {self.downsample}")


TOKENIZER_PRESETS = {
    # seconds on CPU, for tests: f=16 still, few channels
    "tiny": dict(ch=8, ch_mult=(1, 1, 2, 2, 2), num_res_blocks=1, z_channels=16,
                 fsq_levels=(4, 4), crop=64, batch_size=4, disc_start=50, disc_ch=8),
    # the CPU default and the bundled model's tokenizer
    "small": dict(ch=32, ch_mult=(1, 2, 2, 4, 4), num_res_blocks=1, z_channels=128,
                  fsq_levels=(8, 8, 8, 8), crop=128, batch_size=8, channel_shuffle=0.5, shortcuts=True, lr=4e-4),
    # paper-like, for GPUs: 16384 codes (4^7)
    "base": dict(ch=128, ch_mult=(1, 1, 2, 2, 4), num_res_blocks=2, z_channels=256,
                 fsq_levels=(4, 4, 4, 4, 4, 4, 4), crop=256, batch_size=16, disc_start=20000, disc_ch=64, lr=1e-4,
                 channel_shuffle=0.5, shortcuts=True),
}
