"""The Weather Transformer (document 001): 4x8 patches, factorised spatial/temporal attention, learnable output queries."""
from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from bench.zoo.blocks import QUERY_SOURCES, AttentionBlock, FeedForward, history_mix, sinusoidal_encoding, zero_init
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
    """Patch embedding per step, sinusoidal time + learnable space positions, factorised encoder, query decoder.

    ``query_source="history"`` adds to each learnable lead query a learnable mix over time of its own
    patch's encoded steps (initialised to the last step): a direct, linear path from a patch's history
    to its forecast, which purely learned queries must first discover through cross-attention (with
    them the trained model stayed at persistence).
    """

    def __init__(self, in_steps, out_steps, in_channels, out_channels, height, width, d_model=128, heads=4,
                 layers=4, decoder_layers=2, patch=(4, 8), dropout=0.1, query_source="learned",
                 zero_init_output=False):
        super().__init__()
        if query_source not in QUERY_SOURCES:
            raise ValueError(f"query_source must be one of {QUERY_SOURCES}, got {query_source!r}")
        self.query_source = query_source
        ph, pw = patch
        self.grid = (height // ph, width // pw)
        self.patch, self.out_steps, self.out_channels = (ph, pw), out_steps, out_channels
        n = self.grid[0] * self.grid[1]
        self.embed = nn.Conv2d(in_channels, d_model, kernel_size=(ph, pw), stride=(ph, pw))
        self.register_buffer("time_pos", sinusoidal_encoding(in_steps + out_steps, d_model), persistent=False)
        self.space_pos = nn.Parameter(torch.randn(n, d_model) * 0.02)
        self.blocks = nn.ModuleList(FactorizedBlock(d_model, heads, dropout) for _ in range(layers))
        self.queries = nn.Parameter(torch.randn(out_steps, n, d_model) * 0.02)
        if query_source == "history":  # lead k's query mixes its patch's encoded steps; starts at the last step
            self.query_mix = history_mix(out_steps, in_steps)
        layer = nn.TransformerDecoderLayer(d_model, heads, 4 * d_model, dropout, batch_first=True)
        self.decoder = nn.TransformerDecoder(layer, decoder_layers)
        self.out = nn.Linear(d_model, ph * pw * out_channels)
        if zero_init_output:  # start as persistence (with the residual option), as document 002's zero output layer
            zero_init(self.out)

    def forward(self, x: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        b, t = x.shape[:2]
        tokens = rearrange(self.embed(x.flatten(0, 1)), "(b t) d h w -> b t (h w) d", b=b)
        tokens = tokens + self.time_pos[:t, None] + self.space_pos[None]
        for block in self.blocks:
            tokens = block(tokens)
        queries = (self.queries + self.time_pos[t:, None] + self.space_pos[None])[None].expand(b, -1, -1, -1)
        if self.query_source == "history":
            queries = queries + torch.einsum("kt,btnd->bknd", self.query_mix, tokens)
        out = self.decoder(queries.flatten(1, 2), tokens.flatten(1, 2))
        gh, gw = self.grid
        return rearrange(self.out(out), "b (t h w) (ph pw c) -> b t c (h ph) (w pw)", t=self.out_steps, h=gh, w=gw,
                         ph=self.patch[0], pw=self.patch[1], c=self.out_channels)


@register_model
def weather_transformer(**kw) -> nn.Module:
    return WeatherTransformer(**kw)
