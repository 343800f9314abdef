"""Sequence models on flattened fields (document 001): LSTM, LSTM seq2seq, Transformer, Transformer seq2seq.

Each step's field is flattened to one feature vector, so these models see time but not space.
All forward(x) take (B, T_in, C_in, H, W) and return (B, T_out, C_out, H, W).
"""
from __future__ import annotations

import torch
from torch import nn

from bench.zoo.blocks import QUERY_SOURCES, history_mix, sinusoidal_encoding, zero_init
from bench.zoo.registry import register_model


class LSTMForecaster(nn.Module):
    """LSTM over the 12 flattened steps; the last hidden state -> a linear map to all 4 future fields."""

    def __init__(self, in_steps, out_steps, in_channels, out_channels, height, width, hidden=128, layers=2, dropout=0.2):
        super().__init__()
        self.out_shape = (out_steps, out_channels, height, width)
        self.lstm = nn.LSTM(in_channels * height * width, hidden, layers, batch_first=True, dropout=dropout)
        self.head = nn.Linear(hidden, out_steps * out_channels * height * width)

    def forward(self, x: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        out, _ = self.lstm(x.flatten(2))
        return self.head(out[:, -1]).view(x.shape[0], *self.out_shape)


class LSTMSeq2Seq(nn.Module):
    """Encoder LSTM over the inputs; decoder LSTM emits one future field per step, fed its previous output."""

    def __init__(self, in_steps, out_steps, in_channels, out_channels, height, width, hidden=128, layers=2,
                 dropout=0.2, teacher_forcing=0.0):
        super().__init__()
        self.out_steps, self.frame = out_steps, (out_channels, height, width)
        frame_size = out_channels * height * width
        self.encoder = nn.LSTM(in_channels * height * width, hidden, layers, batch_first=True, dropout=dropout)
        self.decoder = nn.LSTM(frame_size, hidden, layers, batch_first=True, dropout=dropout)
        self.head = nn.Linear(hidden, frame_size)
        self.teacher_forcing = teacher_forcing

    def forward(self, x: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        _, state = self.encoder(x.flatten(2))
        step = x.new_zeros(x.shape[0], 1, self.head.out_features)  # the "go" frame: no change yet
        frames = []
        for k in range(self.out_steps):
            out, state = self.decoder(step, state)
            frame = self.head(out)
            frames.append(frame)
            teach = target is not None and self.training and torch.rand(()) < self.teacher_forcing
            step = target[:, k].flatten(1)[:, None] if teach else frame
        return torch.cat(frames, dim=1).view(x.shape[0], self.out_steps, *self.frame)


class TransformerForecaster(nn.Module):
    """Input projection + sinusoidal positions + a Transformer encoder; the last token -> MLP head -> 4 fields."""

    def __init__(self, in_steps, out_steps, in_channels, out_channels, height, width, d_model=128, heads=4,
                 layers=3, dropout=0.2, zero_init_output=False):
        super().__init__()
        self.out_shape = (out_steps, out_channels, height, width)
        self.proj = nn.Linear(in_channels * height * width, d_model)
        self.register_buffer("positions", sinusoidal_encoding(in_steps, d_model), persistent=False)
        layer = nn.TransformerEncoderLayer(d_model, heads, 4 * d_model, dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Sequential(
            nn.LayerNorm(d_model), nn.Dropout(dropout), nn.Linear(d_model, d_model // 2), nn.ReLU(),
            nn.Dropout(dropout), nn.Linear(d_model // 2, out_steps * out_channels * height * width),
        )
        if zero_init_output:
            zero_init(self.head[-1])

    def forward(self, x: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        tokens = self.encoder(self.proj(x.flatten(2)) + self.positions)
        return self.head(tokens[:, -1]).view(x.shape[0], *self.out_shape)


class TransformerSeq2Seq(nn.Module):
    """Encoder over the inputs, decoder with learnable query tokens (one per lead) -> one field per lead.

    ``query_source="history"`` adds to each lead's query a learnable mix over time of the encoded input
    steps (initialised to the last step), as the Weather Transformer does: with purely learned queries the
    decoder must first find the history through cross-attention, and the trained model stayed at persistence.
    ``norm_first`` puts LayerNorm before each sublayer (pre-LN) instead of after it (the document's post-LN).
    """

    def __init__(self, in_steps, out_steps, in_channels, out_channels, height, width, d_model=256, heads=8,
                 encoder_layers=4, decoder_layers=4, dropout=0.1, zero_init_output=False, query_source="learned",
                 norm_first=False):
        super().__init__()
        if query_source not in QUERY_SOURCES:
            raise ValueError(f"query_source must be one of {QUERY_SOURCES}, got {query_source!r}")
        self.query_source = query_source
        self.out_steps, self.frame = out_steps, (out_channels, height, width)
        self.proj = nn.Linear(in_channels * height * width, d_model)
        self.register_buffer("positions", sinusoidal_encoding(in_steps + out_steps, d_model), persistent=False)
        self.queries = nn.Parameter(torch.randn(out_steps, d_model) * 0.02)
        if query_source == "history":
            self.query_mix = history_mix(out_steps, in_steps)
        self.transformer = nn.Transformer(d_model, heads, encoder_layers, decoder_layers, 4 * d_model, dropout,
                                          batch_first=True, norm_first=norm_first)
        self.head = nn.Linear(d_model, out_channels * height * width)
        if zero_init_output:
            zero_init(self.head)

    def forward(self, x: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        n_in = x.shape[1]
        src = self.proj(x.flatten(2)) + self.positions[:n_in]
        tgt = (self.queries + self.positions[n_in:])[None].expand(x.shape[0], -1, -1)
        memory = self.transformer.encoder(src)  # nn.Transformer's own forward, split to reach the memory
        if self.query_source == "history":
            tgt = tgt + torch.einsum("kt,btd->bkd", self.query_mix, memory)
        out = self.transformer.decoder(tgt, memory)
        return self.head(out).view(x.shape[0], self.out_steps, *self.frame)


@register_model
def lstm(**kw) -> nn.Module:
    return LSTMForecaster(**kw)


@register_model
def lstm_seq2seq(**kw) -> nn.Module:
    return LSTMSeq2Seq(**kw)


@register_model
def transformer(**kw) -> nn.Module:
    return TransformerForecaster(**kw)


@register_model
def transformer_seq2seq(**kw) -> nn.Module:
    return TransformerSeq2Seq(**kw)
