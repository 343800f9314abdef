"""The Weather Transformer (document 001): 4x8 patches, factorised spatial/temporal attention, learnable output queries."""
from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from bench.zoo.blocks import AttentionBlock, FeedForward, sinusoidal_encoding
from bench.zoo.registry import register_model


class FactorizedBlock(nn.Module):
    """Spatial attention (patches of one step), then temporal attention (steps of one patch), then an MLP."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.spatial = AttentionBlock(dim, heads, dropout)
        self.temporal = AttentionBlock(dim, heads, dropout)
        self.mlp = FeedForward(dim, 4 * dim, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, N, D)
        b, t = x.shape[:2]
        x = rearrange(self.spatial(rearrange(x, "b t n d -> (b t) n d")), "(b t) n d -> b t n d", b=b)
        x = rearrange(self.temporal(rearrange(x, "b t n d -> (b n) t d")), "(b n) t d -> b t n d", b=b)
        return self.mlp(x)


class WeatherTransformer(nn.Module):
    """Patch embedding per step, sinusoidal time + learnable space positions, factorised encoder, query decoder."""

    def __init__(self, in_steps, out_steps, in_channels, out_channels, height, width, d_model=128, heads=4,
                 layers=4, decoder_layers=2, patch=(4, 8), dropout=0.1):
        super().__init__()
        ph, pw = patch
        self.grid = (height // ph, width // pw)
        self.patch, self.out_steps, self.out_channels = (ph, pw), out_steps, out_channels
        n = self.grid[0] * self.grid[1]
        self.embed = nn.Conv2d(in_channels, d_model, kernel_size=(ph, pw), stride=(ph, pw))
        self.register_buffer("time_pos", sinusoidal_encoding(in_steps + out_steps, d_model), persistent=False)
        self.space_pos = nn.Parameter(torch.randn(n, d_model) * 0.02)
        self.blocks = nn.ModuleList(FactorizedBlock(d_model, heads, dropout) for _ in range(layers))
        self.queries = nn.Parameter(torch.randn(out_steps, n, d_model) * 0.02)
        layer = nn.TransformerDecoderLayer(d_model, heads, 4 * d_model, dropout, batch_first=True)
        self.decoder = nn.TransformerDecoder(layer, decoder_layers)
        self.out = nn.Linear(d_model, ph * pw * out_channels)

    def forward(self, x: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        b, t = x.shape[:2]
        tokens = rearrange(self.embed(x.flatten(0, 1)), "(b t) d h w -> b t (h w) d", b=b)
        tokens = tokens + self.time_pos[:t, None] + self.space_pos[None]
        for block in self.blocks:
            tokens = block(tokens)
        queries = self.queries + self.time_pos[t:, None] + self.space_pos[None]
        out = self.decoder(queries.flatten(0, 1)[None].expand(b, -1, -1), tokens.flatten(1, 2))
        gh, gw = self.grid
        return rearrange(self.out(out), "b (t h w) (ph pw c) -> b t c (h ph) (w pw)", t=self.out_steps, h=gh, w=gw,
                         ph=self.patch[0], pw=self.patch[1], c=self.out_channels)


@register_model
def weather_transformer(**kw) -> nn.Module:
    return WeatherTransformer(**kw)
