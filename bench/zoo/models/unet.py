"""The pixel U-Net (document 001): time stacked on channels, the shared U-Net at full resolution."""
from __future__ import annotations

import torch
from torch import nn

from bench.zoo.blocks import UNet
from bench.zoo.registry import register_model


class PixelUNet(nn.Module):
    """(B, 12*C_in, H, W) -> shared U-Net (GroupNorm + SiLU) -> (B, 4*C_out, H, W)."""

    def __init__(self, in_steps, out_steps, in_channels, out_channels, height, width, base=64, depth=4,
                 mults=None, periodic=True):
        super().__init__()
        if height % 2**depth or width % 2**depth:
            raise ValueError(f"a depth-{depth} U-Net needs H and W divisible by {2**depth}; got {height}x{width}")
        self.out_shape = (out_steps, out_channels, height, width)
        self.unet = UNet(in_steps * in_channels, out_steps * out_channels, base, depth, mults and tuple(mults), periodic)

    def forward(self, x: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        return self.unet(x.flatten(1, 2)).view(x.shape[0], *self.out_shape)


@register_model
def pixel_unet(**kw) -> nn.Module:
    return PixelUNet(**kw)
