"""Building blocks shared by every zoo model, written once: periodic convolution, the U-Net,
the ConvLSTM cell and stack, attention blocks and sinusoidal encodings."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class PeriodicConv2d(nn.Conv2d):
    """Conv2d padded circularly in longitude (the globe wraps) and with zeros in latitude."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, bias=bias)
        self.pad = kernel_size // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad:
            x = F.pad(x, (self.pad, self.pad, 0, 0), mode="circular")
            x = F.pad(x, (0, 0, self.pad, self.pad))
        return super().forward(x)


def conv2d(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, periodic: bool = True) -> nn.Conv2d:
    """A 'same' convolution, periodic in longitude when asked (the trainer's ``periodic_lon`` option)."""
    if periodic and kernel_size > 1:
        return PeriodicConv2d(in_channels, out_channels, kernel_size, stride)
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2)


def group_norm(channels: int, groups: int = 8) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(groups, channels), channels)


class ConvBlock(nn.Module):
    """Conv -> GroupNorm -> SiLU, twice; an optional embedding (e.g. a diffusion timestep) is added in between."""

    def __init__(self, in_channels: int, out_channels: int, periodic: bool = True, embed_dim: int | None = None):
        super().__init__()
        self.conv1, self.norm1 = conv2d(in_channels, out_channels, periodic=periodic), group_norm(out_channels)
        self.conv2, self.norm2 = conv2d(out_channels, out_channels, periodic=periodic), group_norm(out_channels)
        self.embed = nn.Linear(embed_dim, out_channels) if embed_dim else None

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        x = F.silu(self.norm1(self.conv1(x)))
        if self.embed is not None and emb is not None:
            x = x + self.embed(emb)[:, :, None, None]
        return F.silu(self.norm2(self.conv2(x)))


class UNet(nn.Module):
    """The design's U-Net: ConvBlock + MaxPool down ``depth`` times, a bottleneck, ConvTranspose up with skips.

    Channels grow as ``base * mult`` per level. Used by the pixel U-Net and, on latent grids, by latent models.
    """

    def __init__(self, in_channels: int, out_channels: int, base: int = 64, depth: int = 4,
                 mults: tuple[int, ...] | None = None, periodic: bool = True, embed_dim: int | None = None):
        super().__init__()
        mults = tuple(mults or [2 ** min(i, 3) for i in range(depth)])
        if len(mults) != depth:
            raise ValueError(f"mults {mults} must have one entry per level (depth {depth})")
        widths = [base * m for m in mults]
        self.inc = conv2d(in_channels, base, periodic=periodic)
        self.down = nn.ModuleList()
        prev = base
        for width in widths:
            self.down.append(ConvBlock(prev, width, periodic, embed_dim))
            prev = width
        self.mid = ConvBlock(prev, prev, periodic, embed_dim)
        self.up, self.up_blocks = nn.ModuleList(), nn.ModuleList()
        for width in reversed(widths):
            self.up.append(nn.ConvTranspose2d(prev, prev // 2, kernel_size=2, stride=2))
            self.up_blocks.append(ConvBlock(prev // 2 + width, width, periodic, embed_dim))
            prev = width
        self.outc = nn.Conv2d(prev, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        x = self.inc(x)
        skips = []
        for block in self.down:
            x = block(x, emb)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.mid(x, emb)
        for up, block in zip(self.up, self.up_blocks):
            x = block(torch.cat([up(x), skips.pop()], dim=1), emb)
        return self.outc(x)


class ConvLSTMCell(nn.Module):
    """One ConvLSTM step: the LSTM gates (i, f, g, o) computed by one convolution over [input, hidden]."""

    def __init__(self, in_channels: int, hidden: int, kernel_size: int = 3, periodic: bool = True):
        super().__init__()
        self.hidden = hidden
        self.gates = conv2d(in_channels + hidden, 4 * hidden, kernel_size, periodic=periodic)

    def init_state(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = x.new_zeros(x.shape[0], self.hidden, x.shape[-2], x.shape[-1])
        return zeros, zeros.clone()

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        h, c = state
        i, f, g, o = self.gates(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class ConvLSTM(nn.Module):
    """Stacked ConvLSTM cells over a sequence (B, T, C, H, W); returns the top layer's last state and every layer's state."""

    def __init__(self, in_channels: int, hidden: int, layers: int, kernel_size: int = 3, periodic: bool = True):
        super().__init__()
        self.cells = nn.ModuleList(
            ConvLSTMCell(in_channels if k == 0 else hidden, hidden, kernel_size, periodic) for k in range(layers)
        )

    def forward(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        states = [cell.init_state(x[:, 0]) for cell in self.cells]
        for t in range(x.shape[1]):
            inp = x[:, t]
            for k, cell in enumerate(self.cells):
                states[k] = cell(inp, states[k])
                inp = states[k][0]
        return states


def sinusoidal_encoding(length: int, dim: int, base: float = 10000.0) -> torch.Tensor:
    """The Transformer's fixed sine/cosine position encoding, (length, dim)."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(base) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq[: dim // 2])
    return table


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) diffusion timesteps, (B, dim)."""
    half = dim // 2
    freq = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = t.float()[:, None] * freq[None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


QUERY_SOURCES = ("learned", "history")  # what an output query of a query decoder starts from


def history_mix(out_steps: int, in_steps: int) -> nn.Parameter:
    """Learnable (out_steps, in_steps) weights mixing encoded input steps into each lead's query; starts at the last step."""
    mix = torch.zeros(out_steps, in_steps)
    mix[:, -1] = 1.0
    return nn.Parameter(mix)


def zero_init(layer: nn.Module) -> nn.Module:
    """Zero a layer's weight and bias: an output layer that starts the forecast at persistence (document 002)."""
    nn.init.zeros_(layer.weight)
    if getattr(layer, "bias", None) is not None:
        nn.init.zeros_(layer.bias)
    return layer


class AttentionBlock(nn.Module):
    """Post-LN self-attention over the token axis: x = LN(x + MHA(x))."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.attn(x, x, x, need_weights=False)[0])


class FeedForward(nn.Module):
    """Post-LN MLP block: x = LN(x + W2 GELU(W1 x))."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.net(x))
