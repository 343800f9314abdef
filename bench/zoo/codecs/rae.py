"""RAE (representation autoencoder): a frozen ViT representation encoder + a trainable ViT decoder.

The RAE recipe (Zheng et al. 2025, nyu-visionx/RAE): the input is resized to the encoder's size,
patch tokens of a frozen pretrained encoder (DINOv2-B/14, MAE-B/16, SigLIP2-B/16) are the latent
(channels = encoder width, grid = patch grid; class and register tokens dropped), and a ViT decoder
(linear in, learned positions, pre-norm transformer layers, linear to patch pixels) is trained to
reconstruct. Encoders come from HF ``transformers`` (timm needs torchvision, which has no CPU build
here); weights load from a local directory (``from_pretrained``), never from the hub. Since hub
weights are unreachable, the committed rows pretrain a small ViT encoder here with the MAE
objective on the train split (``rae_mae_pretrain``: transformers' ViTMAEForPreTraining, 75% masking)
and then freeze it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.zoo.codecs.base import CodecNet, Posterior
from bench.zoo.registry import register_model

# The documents' encoder architectures (RAE's released encoders), as transformers configs.
ENCODERS: dict[str, dict[str, Any]] = {
    "dinov2_b14": {"model_type": "dinov2", "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                   "intermediate_size": 3072, "patch_size": 14, "image_size": 224},
    "mae_b16": {"model_type": "vit_mae", "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                "intermediate_size": 3072, "patch_size": 16, "image_size": 224, "mask_ratio": 0.0},
    "siglip2_b16": {"model_type": "siglip2_vision_model", "hidden_size": 768, "num_hidden_layers": 12,
                    "num_attention_heads": 12, "intermediate_size": 3072, "patch_size": 16, "num_patches": 256},
    # Trained here (MAE on the train split): a CPU-sized ViT on a 64x64 resize of the field, patch 8.
    "mae_small": {"model_type": "vit_mae", "hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4,
                  "intermediate_size": 256, "patch_size": 8, "image_size": 64, "mask_ratio": 0.0,
                  "decoder_hidden_size": 64, "decoder_num_hidden_layers": 2, "decoder_num_attention_heads": 4,
                  "decoder_intermediate_size": 256},
    # The documents' way on the same small ViT: a 256x256 resize, patch 16 -> a 16x16 token grid (as MAE-B/16's).
    "mae_small_256": {"model_type": "vit_mae", "hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4,
                      "intermediate_size": 256, "patch_size": 16, "image_size": 256, "mask_ratio": 0.0,
                      "decoder_hidden_size": 64, "decoder_num_hidden_layers": 2, "decoder_num_attention_heads": 4,
                      "decoder_intermediate_size": 256},
}
# Decoder sizes. RAE's released decoders are ViT-B (768 x 12), ViT-L (1024 x 24) and ViT-XL (1152 x 28);
# the CPU here trains scaled-down "small" and "xl" decoders (the card names the sizes used).
DECODERS: dict[str, dict[str, int]] = {
    "small": {"hidden_size": 96, "num_layers": 2, "num_heads": 4},
    "xl": {"hidden_size": 128, "num_layers": 6, "num_heads": 4},
    "paper_xl": {"hidden_size": 1152, "num_layers": 28, "num_heads": 16},
}


def named_encoder_config(name: str, in_channels: int, **overrides: Any):
    """The transformers config of the named encoder architecture with ``in_channels`` input channels."""
    from transformers import AutoConfig

    raw = {**ENCODERS[name], "num_channels": in_channels, **overrides}
    return AutoConfig.for_model(**raw)


def build_encoder(config=None, path: str | None = None) -> nn.Module:
    """A transformers vision encoder: from a local directory when given (no hub), else freshly initialised."""
    from transformers import AutoModel

    if path:
        return AutoModel.from_pretrained(str(Path(path)), local_files_only=True)
    return init_mae_positions(AutoModel.from_config(config))


@torch.no_grad()
def init_mae_positions(model: nn.Module) -> nn.Module:
    """Fill ViTMAE's fixed sin-cos position embeddings (encoder and decoder) on a fresh model.

    transformers 5 leaves them at zero unless weights are loaded (pretrained checkpoints carry them);
    a fresh MAE would then see no positions at all and cannot learn to fill masked patches."""
    from transformers.models.vit_mae.modeling_vit_mae import ViTMAEDecoder, ViTMAEEmbeddings

    num_patches = None
    for module in model.modules():
        if isinstance(module, ViTMAEEmbeddings):
            module.patch_embeddings.projection._is_hf_initialized = False
            module.initialize_weights()
            num_patches = module.patch_embeddings.num_patches
    for module in model.modules():
        if isinstance(module, ViTMAEDecoder) and num_patches:
            module.initialize_weights(num_patches)
    return model


def encoder_image_size(config) -> tuple[int, int]:
    """The (H, W) an encoder expects (its position embeddings' grid)."""
    if config.model_type == "siglip2_vision_model":
        side = int(round(config.num_patches ** 0.5)) * config.patch_size
        return side, side
    size = config.image_size
    return (size, size) if isinstance(size, int) else tuple(size)


def patch_tokens(encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Patch tokens (B, N, D) of ``x`` (B, C, H, W), class/register tokens dropped, patch order kept."""
    config = encoder.config
    b = x.shape[0]
    if config.model_type == "vit_mae":
        n = (x.shape[-2] // config.patch_size) * (x.shape[-1] // config.patch_size)
        noise = torch.arange(n, device=x.device, dtype=torch.float32).expand(b, n)  # identity order
        ratio, config.mask_ratio = config.mask_ratio, 0.0
        try:
            return encoder(pixel_values=x, noise=noise).last_hidden_state[:, 1:]
        finally:
            config.mask_ratio = ratio
    if config.model_type == "siglip2_vision_model":
        p = config.patch_size
        gh, gw = x.shape[-2] // p, x.shape[-1] // p
        patches = x.reshape(b, x.shape[1], gh, p, gw, p).permute(0, 2, 4, 3, 5, 1).reshape(b, gh * gw, -1)
        mask = torch.ones(b, gh * gw, dtype=torch.long, device=x.device)
        shapes = torch.tensor([[gh, gw]] * b, dtype=torch.long, device=x.device)
        return encoder(pixel_values=patches, pixel_attention_mask=mask, spatial_shapes=shapes).last_hidden_state
    skip = 1 + int(getattr(config, "num_register_tokens", 0) or 0)  # DINOv2 (with registers)
    return encoder(pixel_values=x).last_hidden_state[:, skip:]


class ViTDecoder(nn.Module):
    """RAE's decoder: linear in, learned positions, pre-norm transformer layers, LayerNorm, linear to patch pixels."""

    def __init__(self, latent_dim: int, grid: tuple[int, int], patch: int, out_channels: int,
                 hidden_size: int, num_layers: int, num_heads: int):
        super().__init__()
        self.grid, self.patch, self.out_channels = grid, patch, out_channels
        self.embed = nn.Linear(latent_dim, hidden_size)
        self.position = nn.Parameter(torch.zeros(1, grid[0] * grid[1], hidden_size))
        nn.init.trunc_normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(hidden_size, num_heads, 4 * hidden_size, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden_size)
        self.head = nn.Linear(hidden_size, patch * patch * out_channels)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.head(self.norm(self.layers(self.embed(tokens) + self.position)))
        b, (gh, gw), p, c = h.shape[0], self.grid, self.patch, self.out_channels
        return h.reshape(b, gh, gw, p, p, c).permute(0, 5, 1, 3, 2, 4).reshape(b, c, gh * p, gw * p)


def tokens_to_grid(tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(B, N, D) -> (B, D, gh, gw): the latent as a channels-first map (RAE: 768 x 16 x 16)."""
    return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], *grid)


def grid_to_tokens(z: torch.Tensor) -> torch.Tensor:
    return z.flatten(2).transpose(1, 2)


class RAE(CodecNet):
    """Frozen representation encoder + trainable ViT decoder; input resized to the encoder's size inside."""

    def __init__(self, encoder: nn.Module, in_channels: int, decoder: dict[str, int]):
        super().__init__()
        self.encoder = encoder.eval()
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        config = encoder.config
        self.image_size = encoder_image_size(config)
        self.patch = config.patch_size
        self.token_grid = (self.image_size[0] // self.patch, self.image_size[1] // self.patch)
        self.decoder = ViTDecoder(config.hidden_size, self.token_grid, self.patch, in_channels, **decoder)

    def train(self, mode: bool = True) -> "RAE":
        super().train(mode)
        self.encoder.eval()  # frozen: no dropout, whatever the trainer asks
        return self

    def _resize(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if tuple(x.shape[-2:]) == tuple(size):
            return x
        return nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False)

    def posterior(self, x: torch.Tensor) -> Posterior:
        self.input_size = tuple(x.shape[-2:])
        with torch.no_grad():
            tokens = patch_tokens(self.encoder, self._resize(x, self.image_size))
        return Posterior(tokens_to_grid(tokens.float(), self.token_grid))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        out = self.decoder(grid_to_tokens(z))
        return self._resize(out, getattr(self, "input_size", out.shape[-2:]))

    def portable_args(self, model_args: dict) -> dict:
        """Rebuild without the pretrained directory: the encoder's config is saved, its weights are in the checkpoint."""
        keep = {k: v for k, v in model_args.items() if k != "encoder_path"}
        return {**keep, "encoder_config": self.encoder.config.to_dict()}


def _encoder_from_args(in_channels: int, encoder: str, encoder_path: str | None, encoder_config: dict | None,
                       encoder_overrides: dict | None) -> nn.Module:
    if encoder_path:
        return build_encoder(path=encoder_path)
    if encoder_config is not None:
        from transformers import AutoConfig

        raw = {k: v for k, v in encoder_config.items() if k not in ("transformers_version", "architectures")}
        return build_encoder(AutoConfig.for_model(**raw))
    return build_encoder(named_encoder_config(encoder, in_channels, **(encoder_overrides or {})))


@register_model(family="codec")
def rae(in_channels: int, height: int, width: int, encoder: str = "mae_small", decoder: str = "small",
        encoder_path: str | None = None, encoder_config: dict | None = None, encoder_overrides: dict | None = None,
        decoder_overrides: dict | None = None) -> RAE:
    """RAE with a named encoder (``ENCODERS``; pretrained weights from ``encoder_path``) and a named decoder size."""
    enc = _encoder_from_args(in_channels, encoder, encoder_path, encoder_config, encoder_overrides)
    return RAE(enc, in_channels, {**DECODERS[decoder], **(decoder_overrides or {})})


class MAEPretraining(CodecNet):
    """Stage 1 of the committed RAE rows: transformers' ViTMAEForPreTraining on the fields (75% masking).

    As a codec it encodes all patches (no masking) and decodes with the MAE decoder, so the shared
    trainer's validation RMSE is the full-token reconstruction; its objective is MAE's masked loss."""

    def __init__(self, config, mask_ratio: float = 0.75):
        super().__init__()
        from transformers import ViTMAEForPreTraining

        self.mae, self.mask_ratio = init_mae_positions(ViTMAEForPreTraining(config)), mask_ratio
        self.image_size = encoder_image_size(config)
        self.token_grid = (self.image_size[0] // config.patch_size, self.image_size[1] // config.patch_size)

    def _resize(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if tuple(x.shape[-2:]) == tuple(size):
            return x
        return nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False)

    def objective(self, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """MAE's loss: MSE on the masked patches of the resized field."""
        config = self.mae.config
        config.mask_ratio = self.mask_ratio
        try:
            loss = self.mae(pixel_values=self._resize(x, self.image_size)).loss
        finally:
            config.mask_ratio = 0.0
        return loss.float(), {}

    def evaluation_pair(self, x: torch.Tensor) -> torch.Tensor:
        """MAE's validation view: masked patches predicted, visible ones copied (fixed masks, so epochs compare)."""
        xr = self._resize(x, self.image_size)
        n = self.token_grid[0] * self.token_grid[1]
        noise = torch.rand(x.shape[0], n, generator=torch.Generator().manual_seed(0)).to(x.device)
        config = self.mae.config
        config.mask_ratio = self.mask_ratio
        try:
            out = self.mae(pixel_values=xr, noise=noise)
        finally:
            config.mask_ratio = 0.0
        pred = self.mae.unpatchify(out.logits.float(), self.image_size)
        p = config.patch_size
        mask = out.mask.reshape(x.shape[0], 1, *self.token_grid).repeat_interleave(p, dim=2).repeat_interleave(p, dim=3)
        return self._resize(pred * mask + xr * (1 - mask), tuple(x.shape[-2:]))

    def posterior(self, x: torch.Tensor) -> Posterior:
        self.input_size = tuple(x.shape[-2:])
        return Posterior(tokens_to_grid(patch_tokens(self.mae.vit, self._resize(x, self.image_size)).float(), self.token_grid))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        tokens = grid_to_tokens(z)
        b, n = tokens.shape[:2]
        cls = torch.zeros(b, 1, tokens.shape[-1], dtype=tokens.dtype, device=tokens.device)
        ids = torch.arange(n, device=z.device).expand(b, n)
        logits = self.mae.decoder(torch.cat([cls, tokens], dim=1), ids).logits
        out = self.mae.unpatchify(logits, self.image_size)
        return self._resize(out, getattr(self, "input_size", out.shape[-2:]))

    def save_encoder(self, directory: Path) -> Path:
        """The pretrained encoder alone (transformers ViTMAEModel) as a local directory for ``rae(encoder_path=...)``."""
        self.mae.vit.save_pretrained(str(directory))
        return Path(directory)


@register_model(family="codec")
def rae_mae_pretrain(in_channels: int, height: int, width: int, encoder: str = "mae_small", mask_ratio: float = 0.75,
                     encoder_config: dict | None = None, encoder_overrides: dict | None = None) -> MAEPretraining:
    """MAE pretraining of a named ViT encoder on the fields (stage 1 of the committed RAE rows)."""
    from transformers import ViTMAEConfig

    if encoder_config is not None:
        config = ViTMAEConfig(**{k: v for k, v in encoder_config.items() if k not in ("transformers_version", "architectures", "model_type")})
    else:
        config = encoder_config_of(encoder, in_channels, encoder_overrides)
    return MAEPretraining(config, mask_ratio)


def encoder_config_of(name: str, in_channels: int, overrides: dict | None = None):
    return named_encoder_config(name, in_channels, **(overrides or {}))
