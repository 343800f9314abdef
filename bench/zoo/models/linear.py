"""Ridge regression (document 001) as a module: flattened 12 steps -> flattened 4 steps, in low-rank form.

The document's ridge maps 12*C*2048 inputs to 4*C*2048 outputs: 201 M weights for one channel,
5 G for five. Fitted exactly (dual form, see bench.zoo.ridge), it is stored as the best rank-r
factorisation W = U V^T of the exact solution; the card records r and the validation RMSE change.
"""
from __future__ import annotations

import torch
from torch import nn

from bench.zoo.registry import register_model


class LowRankLinear(nn.Module):
    """y = ((x - x_mean) U) V^T + y_mean on flattened fields; U, V filled by the closed-form fit."""

    def __init__(self, in_steps, out_steps, in_channels, out_channels, height, width, rank=128, alpha=1.0):
        super().__init__()
        self.out_shape = (out_steps, out_channels, height, width)
        n_in, n_out = in_steps * in_channels * height * width, out_steps * out_channels * height * width
        self.u = nn.Parameter(torch.zeros(n_in, rank))
        self.v = nn.Parameter(torch.zeros(n_out, rank))
        self.x_mean = nn.Parameter(torch.zeros(n_in))
        self.y_mean = nn.Parameter(torch.zeros(n_out))

    def forward(self, x: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        z = (x.flatten(1) - self.x_mean) @ self.u
        return (z @ self.v.T + self.y_mean).view(x.shape[0], *self.out_shape)


@register_model
def ridge(**kw) -> nn.Module:
    return LowRankLinear(**kw)
