"""What every codec network provides: a posterior over latents for a field, and a decoder.

``CodecNet.posterior(x)`` takes fields in the codec's input scaling (B, C, H, W) and returns a
``Posterior`` (mode for encoding, a sample and a KL term for training); ``decode(z)`` maps latents
back. The wrapper ``bench.zoo.codec.Codec`` adds statistics, scalings and the training loss.
"""
from __future__ import annotations

import torch
from torch import nn


class Posterior:
    """A deterministic latent: the mode is the sample, no KL (RAE encoders)."""

    def __init__(self, z: torch.Tensor):
        self.z = z

    def mode(self) -> torch.Tensor:
        return self.z

    def sample(self) -> torch.Tensor:
        return self.z

    def kl(self) -> torch.Tensor:
        """KL to the prior, averaged over samples and latent positions."""
        return self.z.new_zeros(())


class DiagonalGaussian(Posterior):
    """N(mean, exp(logvar)) per latent element, KL to N(0, 1) (the VAE of document 003 / SD)."""

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor):
        self.mean, self.logvar = mean, logvar.clamp(-30.0, 20.0)

    def mode(self) -> torch.Tensor:
        return self.mean

    def sample(self) -> torch.Tensor:
        return self.mean + torch.exp(0.5 * self.logvar) * torch.randn_like(self.mean)

    def kl(self) -> torch.Tensor:
        per_position = 0.5 * (self.mean ** 2 + self.logvar.exp() - 1.0 - self.logvar).sum(dim=1)
        return per_position.mean()


class CodecNet(nn.Module):
    """Base of codec networks: ``posterior(x) -> Posterior`` and ``decode(z) -> x`` in the codec's input scaling."""

    def posterior(self, x: torch.Tensor) -> Posterior:  # pragma: no cover - abstract
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters the optimiser updates (an RAE keeps its encoder frozen)."""
        return [p for p in self.parameters() if p.requires_grad]
