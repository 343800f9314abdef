"""ConvLSTM forecasters (document 001): a stacked ConvLSTM with a convolutional head, and its seq2seq form."""
from __future__ import annotations

import torch
from torch import nn

from bench.zoo.blocks import ConvLSTM, ConvLSTMCell, conv2d
from bench.zoo.registry import register_model


class ConvLSTMForecaster(nn.Module):
    """Stacked ConvLSTM over the 12 inputs; the top layer's last hidden state -> two convs -> 4 future fields."""

    def __init__(self, in_steps, out_steps, in_channels, out_channels, height, width, hidden=64, layers=2,
                 kernel_size=3, periodic=True):
        super().__init__()
        self.out_shape = (out_steps, out_channels, height, width)
        self.encoder = ConvLSTM(in_channels, hidden, layers, kernel_size, periodic)
        self.head = nn.Sequential(
            conv2d(hidden, hidden // 2, kernel_size, periodic=periodic), nn.ReLU(inplace=True),
            conv2d(hidden // 2, out_steps * out_channels, kernel_size, periodic=periodic),
        )

    def forward(self, x: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        h, _ = self.encoder(x)[-1]
        return self.head(h).view(x.shape[0], *self.out_shape)


class ConvLSTMSeq2Seq(nn.Module):
    """ConvLSTM encoder; an autoregressive ConvLSTM decoder fed its previous output (or the truth, teacher forcing)."""

    def __init__(self, in_steps, out_steps, in_channels, out_channels, height, width, hidden=64, layers=2,
                 kernel_size=3, periodic=True, teacher_forcing=0.0):
        super().__init__()
        self.out_steps, self.out_channels = out_steps, out_channels
        self.encoder = ConvLSTM(in_channels, hidden, layers, kernel_size, periodic)
        self.decoder = ConvLSTMCell(out_channels, hidden, kernel_size, periodic)
        self.head = conv2d(hidden, out_channels, kernel_size, periodic=periodic)
        self.teacher_forcing = teacher_forcing

    def forward(self, x: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        state = self.encoder(x)[-1]
        step = x.new_zeros(x.shape[0], self.out_channels, x.shape[-2], x.shape[-1])  # "go" frame: no change yet
        frames = []
        for k in range(self.out_steps):
            state = self.decoder(step, state)
            frame = self.head(state[0])
            frames.append(frame)
            teach = target is not None and self.training and torch.rand(()) < self.teacher_forcing
            step = target[:, k] if teach else frame
        return torch.stack(frames, dim=1)


@register_model
def convlstm(**kw) -> nn.Module:
    return ConvLSTMForecaster(**kw)


@register_model
def convlstm_seq2seq(**kw) -> nn.Module:
    return ConvLSTMSeq2Seq(**kw)
