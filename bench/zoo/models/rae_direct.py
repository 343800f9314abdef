"""RAE Stage-1 direct predictor (document 001): history on channels -> 1x1 in-adapter -> the RAE codec's frozen
ViT encoder -> a trainable ViT decoder emitting the 4 future fields (no latent dynamics model in between)."""
from __future__ import annotations

import torch
from torch import nn

from bench.zoo.blocks import zero_init
from bench.zoo.registry import register_model


class RAEDirect(nn.Module):
    """(B, 12, C, H, W) z-scored -> (B, 4, C, H, W) z-scored, through a trained RAE codec's frozen encoder.

    The in-adapter starts as "the last input step" and the decoder's output layer at zero, so an
    untrained model is persistence; only the adapter and the decoder train (the encoder stays frozen).
    """

    direct = True

    def __init__(self, field_channels: int, in_steps: int = 12, out_steps: int = 4, decoder: str = "small",
                 latent_channels: int = 0, latent_height: int = 0, latent_width: int = 0, **_: object):
        super().__init__()
        self.field_channels, self.in_steps, self.out_steps, self.decoder_size = field_channels, in_steps, out_steps, decoder
        self.adapter = nn.Conv2d(in_steps * field_channels, field_channels, kernel_size=1)
        with torch.no_grad():
            self.adapter.weight.zero_()
            self.adapter.bias.zero_()
            for c in range(field_channels):
                self.adapter.weight[c, (in_steps - 1) * field_channels + c] = 1.0
        self.decoder: nn.Module | None = None

    def attach_codec(self, codec: nn.Module) -> None:
        """Size the decoder from the codec's encoder (width, patch grid, patch size); zero its output layer."""
        from bench.zoo.codecs.rae import DECODERS, ViTDecoder

        net = codec.net
        if not hasattr(net, "encoder") or not hasattr(net, "token_grid"):
            raise ValueError("rae_direct needs an RAE codec (a frozen ViT encoder with a patch grid)")
        self.decoder = ViTDecoder(net.encoder.config.hidden_size, net.token_grid, net.patch,
                                  self.out_steps * self.field_channels, **DECODERS[self.decoder_size])
        zero_init(self.decoder.head)

    def forward(self, x: torch.Tensor, codec: nn.Module) -> torch.Tensor:
        from bench.zoo.codecs.rae import patch_tokens

        b, _, c, h, w = x.shape
        adapted = codec.to_input(self.adapter(x.flatten(1, 2)))
        net = codec.net
        tokens = patch_tokens(net.encoder, net._resize(adapted, net.image_size))  # gradients reach the adapter
        out = net._resize(self.decoder(tokens.float()), (h, w))
        out = codec.from_input(out.view(b * self.out_steps, c, h, w)) - codec.from_input(torch.zeros_like(out.view(b * self.out_steps, c, h, w)))
        return x[:, -1:] + out.view(b, self.out_steps, c, h, w)


@register_model(family="latent")
def rae_direct(**kw) -> nn.Module:
    return RAEDirect(**kw)
