"""Stable Diffusion's autoencoder layout through diffusers' ``AutoencoderKL``.

The SD layout: 4 DownEncoderBlock2D (3 downsamplings: /8), 4 latent channels, a mid block with
attention, GroupNorm + SiLU, a diagonal Gaussian posterior, ``scaling_factor`` 0.18215 in the
config. SD's widths (128, 256, 512, 512) with 2 ResNet layers per block are too heavy for the CPU
here; ``block_out_channels`` and ``layers_per_block`` are arguments (the recipe names what it used).
Pretrained SD weights load with ``from_pretrained(local_dir)`` (``sd_vae_pretrained``); nothing is
downloaded. ``va_vae.py`` reuses this wrapper with document 004's f16d32 layout.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from bench.zoo.codecs.base import CodecNet, DiagonalGaussian, Posterior
from bench.zoo.registry import register_model

SD_SCALING_FACTOR = 0.18215
SD_BLOCK_OUT_CHANNELS = (128, 256, 512, 512)  # Stable Diffusion v1/v2's VAE, 2 layers per block


def sd_layout(in_channels: int, latent_channels: int = 4, block_out_channels: tuple[int, ...] = SD_BLOCK_OUT_CHANNELS,
              layers_per_block: int = 2, norm_num_groups: int = 32, sample_size: int = 256,
              scaling_factor: float = SD_SCALING_FACTOR, mid_block_add_attention: bool = True) -> dict[str, Any]:
    """AutoencoderKL config of the SD layout (``len(block_out_channels) - 1`` downsamplings)."""
    n = len(block_out_channels)
    return {"in_channels": in_channels, "out_channels": in_channels, "latent_channels": latent_channels,
            "down_block_types": ["DownEncoderBlock2D"] * n, "up_block_types": ["UpDecoderBlock2D"] * n,
            "block_out_channels": list(block_out_channels), "layers_per_block": layers_per_block,
            "norm_num_groups": norm_num_groups, "sample_size": sample_size, "scaling_factor": scaling_factor,
            "mid_block_add_attention": mid_block_add_attention}


class DiffusersAutoencoder(CodecNet):
    """diffusers AutoencoderKL behind the codec-network interface (posterior / decode)."""

    def __init__(self, vae_config: dict[str, Any] | None = None, pretrained_path: str | None = None):
        super().__init__()
        from diffusers import AutoencoderKL  # heavy import: only when a diffusers codec is built

        if pretrained_path:
            self.vae = AutoencoderKL.from_pretrained(str(Path(pretrained_path)), local_files_only=True)
        else:
            self.vae = AutoencoderKL(**vae_config)

    def posterior(self, x: torch.Tensor) -> Posterior:
        dist = self.vae.encode(x).latent_dist
        return DiagonalGaussian(dist.mean, dist.logvar)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(z).sample

    def portable_args(self, model_args: dict) -> dict:
        """Arguments that rebuild this network without the pretrained directory (the weights come from the checkpoint)."""
        keep = {k: v for k, v in model_args.items() if k not in ("pretrained_path",)}
        return {**keep, "vae_config": {k: v for k, v in dict(self.vae.config).items() if not k.startswith("_")}}


@register_model(family="codec")
def sd_vae(in_channels: int, height: int, width: int, latent_channels: int = 4,
           block_out_channels: tuple[int, ...] = SD_BLOCK_OUT_CHANNELS, layers_per_block: int = 2,
           norm_num_groups: int = 32, vae_config: dict | None = None) -> DiffusersAutoencoder:
    """The SD AutoencoderKL layout (/8, 4 latent channels), trained from scratch on the fields."""
    config = vae_config or sd_layout(in_channels, latent_channels, tuple(block_out_channels), layers_per_block,
                                     norm_num_groups, sample_size=max(height, width))
    return DiffusersAutoencoder(config)


@register_model(family="codec")
def sd_vae_pretrained(in_channels: int, height: int, width: int, pretrained_path: str | None = None,
                      vae_config: dict | None = None) -> DiffusersAutoencoder:
    """An AutoencoderKL from a local diffusers directory (e.g. stabilityai/sd-vae-ft-mse saved on disk)."""
    if pretrained_path:
        return DiffusersAutoencoder(pretrained_path=pretrained_path)
    if vae_config is None:
        raise ValueError("sd_vae_pretrained needs pretrained_path (a local diffusers directory) or its saved vae_config")
    return DiffusersAutoencoder(vae_config)
