"""Latent U-Net (document 001): the 12 input latents stacked on channels -> the shared U-Net -> 4 future latents."""
from __future__ import annotations

import torch
from torch import nn

from bench.zoo.blocks import UNet, zero_init
from bench.zoo.registry import register_model


def feasible_depth(height: int, width: int, depth: int) -> int:
    """The deepest U-Net (at most ``depth``) whose max-pools divide the latent grid evenly."""
    used = 0
    while used < depth and height % 2 ** (used + 1) == 0 and width % 2 ** (used + 1) == 0:
        used += 1
    return used


class LatentUNet(nn.Module):
    """(B, 12, c, h, w) scaled latents -> (B, 4, c, h, w); zero-initialised output (starts as latent persistence).

    The design's base 128, depth 3; on a latent grid too small to pool three times (SD-VAE's 4x8 pools
    twice, to 1x2) the depth is reduced and recorded as ``depth_used``.
    """

    def __init__(self, latent_channels: int, latent_height: int, latent_width: int, in_steps: int = 12, out_steps: int = 4,
                 base: int = 128, depth: int = 3, mults: list[int] | None = None, periodic: bool = True, **_: object):
        super().__init__()
        self.depth_used = feasible_depth(latent_height, latent_width, depth)
        if self.depth_used == 0:
            raise ValueError(f"a {latent_height}x{latent_width} latent grid cannot be pooled even once; use a codec with an even latent grid")
        levels = tuple(mults[: self.depth_used]) if mults else None
        self.out_shape = (out_steps, latent_channels, latent_height, latent_width)
        self.unet = UNet(in_steps * latent_channels, out_steps * latent_channels, base, self.depth_used, levels, periodic)
        zero_init(self.unet.outc)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.unet(u.flatten(1, 2)).view(u.shape[0], *self.out_shape)


@register_model(family="latent")
def latent_unet(**kw) -> nn.Module:
    return LatentUNet(**kw)
