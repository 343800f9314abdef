"""Convolutional forecasters (document 001): the encoder/decoder CNN and the residual DeepCNN.

Time is stacked on channels: (B, T_in*C_in, H, W) in, (B, T_out*C_out, H, W) out.
"""
from __future__ import annotations

import torch
from torch import nn

from bench.zoo.blocks import conv2d
from bench.zoo.registry import register_model


def _conv_bn_relu(cin: int, cout: int, stride: int, periodic: bool) -> nn.Sequential:
    return nn.Sequential(conv2d(cin, cout, 3, stride, periodic), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class CNNForecaster(nn.Module):
    """The document's encoder (64, 128, 128/2, 256) and decoder (ConvT 128, 64, out) with BatchNorm + ReLU."""

    def __init__(self, in_steps, out_steps, in_channels, out_channels, height, width, hidden=64, periodic=True):
        super().__init__()
        self.out_shape = (out_steps, out_channels, height, width)
        h = hidden
        self.encoder = nn.Sequential(
            _conv_bn_relu(in_steps * in_channels, h, 1, periodic), _conv_bn_relu(h, 2 * h, 1, periodic),
            _conv_bn_relu(2 * h, 2 * h, 2, periodic), _conv_bn_relu(2 * h, 4 * h, 1, periodic),
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(4 * h, 2 * h, kernel_size=4, stride=2, padding=1), nn.BatchNorm2d(2 * h), nn.ReLU(inplace=True),
            _conv_bn_relu(2 * h, h, 1, periodic), conv2d(h, out_steps * out_channels, 3, 1, periodic),
        )

    def forward(self, x: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(self.encoder(x.flatten(1, 2))).view(x.shape[0], *self.out_shape)


class ResidualBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus the input, then ReLU."""

    def __init__(self, channels: int, periodic: bool):
        super().__init__()
        self.body = nn.Sequential(
            conv2d(channels, channels, 3, 1, periodic), nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
            conv2d(channels, channels, 3, 1, periodic), nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


class DeepCNN(nn.Module):
    """Input projection -> ``blocks`` residual blocks -> output projection, at full resolution."""

    def __init__(self, in_steps, out_steps, in_channels, out_channels, height, width, hidden=64, blocks=3, periodic=True):
        super().__init__()
        self.out_shape = (out_steps, out_channels, height, width)
        self.net = nn.Sequential(
            _conv_bn_relu(in_steps * in_channels, hidden, 1, periodic),
            *[ResidualBlock(hidden, periodic) for _ in range(blocks)],
            conv2d(hidden, out_steps * out_channels, 3, 1, periodic),
        )

    def forward(self, x: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x.flatten(1, 2)).view(x.shape[0], *self.out_shape)


@register_model
def cnn(**kw) -> nn.Module:
    return CNNForecaster(**kw)


@register_model
def deep_cnn(**kw) -> nn.Module:
    return DeepCNN(**kw)
