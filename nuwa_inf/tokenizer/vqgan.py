"""The tokenizer: encoder → FSQ → decoder, with checkpoint save/load.

Pixels are float (B, 3, H, W) in [-1, 1]; tokens are int64 (B, H/f, W/f).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from ..checkpoint import load_state_into, load_tensors, read_config, save_checkpoint
from ..config import from_dict, to_dict
from .codec import Decoder, Encoder, decoder_radius_latents, encoder_radius_px
from .config import TokenizerConfig
from .precision import inference_precision
from .quantizer import FSQ

KIND = "tokenizer"


class VQGAN(nn.Module):
    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.quantizer = FSQ(cfg.fsq_levels, cfg.z_channels)
        self.decoder = Decoder(cfg)

    @property
    def downsample(self) -> int:
        return self.cfg.downsample

    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    @property
    def encoder_margin(self) -> int:
        """Tile margin in latents that makes tiled encoding exact."""
        return -(-encoder_radius_px(self.cfg) // self.downsample)

    @property
    def decoder_margin(self) -> int:
        """Tile margin in latents that makes tiled decoding exact."""
        return decoder_radius_latents(self.cfg)

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, H, W) → (reconstruction (B, 3, H, W), indices (B, H/f, W/f))."""
        quantised, indices = self.quantizer(self.encoder(pixels))
        return self.decoder(quantised), indices

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.quantizer(self.encoder(pixels))[1]

    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        latents = self.quantizer.indices_to_latents(indices)
        with inference_precision(latents):  # bfloat16 convolutions where fast (precision.py)
            return self.decoder(latents).float()

    def save(self, directory: str | os.PathLike, dtype: torch.dtype | None = None, extra: dict | None = None) -> Path:
        return save_checkpoint(directory, KIND, to_dict(self.cfg), self, dtype=dtype, extra=extra)

    @classmethod
    def load(cls, directory: str | os.PathLike, device: str | torch.device = "cpu") -> "VQGAN":
        meta = read_config(directory, KIND)
        model = cls(from_dict(TokenizerConfig, meta["config"]))
        load_state_into(model, load_tensors(Path(directory) / "model.safetensors"), str(directory))
        # channels-last convolutions are ~20% faster on CPU and let the norms fuse
        return model.to(device).to(memory_format=torch.channels_last).eval()
