"""Document 003's convolutional VAE: residual blocks, GroupNorm + SiLU, a Gaussian posterior per latent cell.

Encoder: a stride-2 Conv-GroupNorm-SiLU stem, then one stride-2 residual block per further hidden
width (``len(hidden_dims)`` halvings: (64, 128, 256) -> /8); mu and logvar from 3x3 convolutions.
Decoder: a 3x3 projection, then residual block + transposed convolution (x2) per level, a 3x3
output convolution and Tanh (inputs are min-max scaled to [-1, 1], as in the document).
The S-VAE (``svae.py``) shares these encoder and decoder trunks with a von Mises-Fisher posterior.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.zoo.blocks import group_norm
from bench.zoo.codecs.base import CodecNet, DiagonalGaussian, Posterior
from bench.zoo.registry import register_model


class ResidualBlock(nn.Module):
    """Conv-GN-SiLU, Conv-GN, + shortcut (projected when the width or stride changes), SiLU (document 003)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)
        self.norm1 = group_norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.norm2 = group_norm(out_channels)
        self.shortcut = (nn.Identity() if stride == 1 and in_channels == out_channels
                         else nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride), group_norm(out_channels)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.silu(self.norm1(self.conv1(x)))
        return F.silu(self.norm2(self.conv2(h)) + self.shortcut(x))


class ConvEncoder(nn.Module):
    """Stem (stride 2) + a stride-2 residual block per further width: ``2**len(hidden_dims)`` downsampling."""

    def __init__(self, in_channels: int, hidden_dims: tuple[int, ...]):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, hidden_dims[0], 3, stride=2, padding=1),
                                   group_norm(hidden_dims[0]), nn.SiLU()]
        for a, b in zip(hidden_dims[:-1], hidden_dims[1:]):
            layers.append(ResidualBlock(a, b, stride=2))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ConvDecoder(nn.Module):
    """Projection, then (residual block, transposed conv x2, GN, SiLU) per level, output conv + Tanh."""

    def __init__(self, latent_channels: int, out_channels: int, hidden_dims: tuple[int, ...]):
        super().__init__()
        widths = list(reversed(hidden_dims))
        layers: list[nn.Module] = [nn.Conv2d(latent_channels, widths[0], 3, padding=1)]
        for a, b in zip(widths, widths[1:] + widths[-1:]):
            layers += [ResidualBlock(a, a), nn.ConvTranspose2d(a, b, 4, stride=2, padding=1), group_norm(b), nn.SiLU()]
        layers += [nn.Conv2d(widths[-1], out_channels, 3, padding=1), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z)


class ConvVAE(CodecNet):
    """Document 003's VAE with a Gaussian posterior (``distribution='normal'``)."""

    def __init__(self, in_channels: int, latent_channels: int = 4, hidden_dims: tuple[int, ...] = (64, 128, 256)):
        super().__init__()
        hidden_dims = tuple(hidden_dims)
        self.encoder = ConvEncoder(in_channels, hidden_dims)
        self.to_mu = nn.Conv2d(hidden_dims[-1], latent_channels, 3, padding=1)
        self.to_logvar = nn.Conv2d(hidden_dims[-1], latent_channels, 3, padding=1)
        self.decoder = ConvDecoder(latent_channels, in_channels, hidden_dims)

    def posterior(self, x: torch.Tensor) -> Posterior:
        h = self.encoder(x)
        return DiagonalGaussian(self.to_mu(h), self.to_logvar(h))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)


@register_model(family="codec")
def vae(in_channels: int, height: int, width: int, latent_channels: int = 4,
        hidden_dims: tuple[int, ...] = (64, 128, 256)) -> ConvVAE:
    """Document 003's Gaussian VAE (``len(hidden_dims)`` halvings; the document's (64, 128, 256, 512) is /16)."""
    return ConvVAE(in_channels, latent_channels, tuple(hidden_dims))
