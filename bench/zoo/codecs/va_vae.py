"""Document 004's VA-VAE (LightningDiT tokenizer) layout: f16, 32 latent channels, ch_mult (1, 1, 2, 2, 4).

The LDM/LightningDiT autoencoder is the same network family as diffusers' ``AutoencoderKL``:
5 resolution levels (4 downsamplings: /16), widths ``base * ch_mult``, ``embed_dim`` 32. Its latents
are normalised by per-channel mean/std (document 004's ``latents_stats.pt``); here those statistics
are computed on the train split after training (``Codec.after_training``). The vision-foundation
alignment loss of VA-VAE needs a pretrained DINOv2, which cannot be downloaded here: it is left out.
"""
from __future__ import annotations

from bench.zoo.codecs.sd_vae import DiffusersAutoencoder, sd_layout
from bench.zoo.registry import register_model

VA_VAE_CH_MULT = (1, 1, 2, 2, 4)


@register_model(family="codec")
def va_vae(in_channels: int, height: int, width: int, latent_channels: int = 32, base_channels: int = 128,
           ch_mult: tuple[int, ...] = VA_VAE_CH_MULT, layers_per_block: int = 2, norm_num_groups: int = 32,
           vae_config: dict | None = None) -> DiffusersAutoencoder:
    """VA-VAE f16d32 layout (LightningDiT uses base 128, 2 layers per block); narrower bases train on CPU."""
    config = vae_config or sd_layout(in_channels, latent_channels, tuple(base_channels * m for m in ch_mult),
                                     layers_per_block, norm_num_groups, sample_size=max(height, width), scaling_factor=1.0)
    return DiffusersAutoencoder(config)
