"""Document 003's S-VAE: a von Mises-Fisher posterior per latent cell, KL to the uniform prior on the sphere.

The sampler and KL follow the s-vae-pytorch formulation (Davidson et al., UAI 2018): Wood's (1994)
rejection sampler for the component along the mean direction, a uniform direction on the tangent
sphere, a Householder reflection onto the mean; the gradient reaches kappa through the accepted
``w`` (the reparameterised part; the small correction term is dropped, as s-vae-pytorch does).
KL(vMF(mu, kappa) || U(S^{m-1})) = kappa A_m(kappa) + log C_m(kappa) + log |S^{m-1}|, with
A_m = I_{m/2} / I_{m/2-1} and the exponentially scaled Bessel function from scipy (its kappa
derivative, I'_v = I_{v-1} - (v / kappa) I_v, written as an autograd function as s-vae-pytorch does).
"""
from __future__ import annotations

import math

import numpy as np
import scipy.special
import torch
import torch.nn.functional as F
from torch import nn

from bench.zoo.codecs.base import CodecNet, Posterior
from bench.zoo.codecs.vae import ConvDecoder, ConvEncoder
from bench.zoo.registry import register_model


class _Ive(torch.autograd.Function):
    """Exponentially scaled modified Bessel function of the first kind, ive(v, kappa), differentiable in kappa."""

    @staticmethod
    def forward(ctx, v: float, kappa: torch.Tensor) -> torch.Tensor:
        ctx.v = v
        ctx.save_for_backward(kappa)
        k = kappa.detach().double().cpu().numpy()
        return torch.from_numpy(np.asarray(scipy.special.ive(v, k))).to(kappa)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (kappa,) = ctx.saved_tensors
        # d/dk [I_v(k) e^{-k}] = (I_{v-1} - (v/k) I_v - I_v) e^{-k}
        k = kappa.detach().double().cpu().numpy()
        d = scipy.special.ive(ctx.v - 1, k) - scipy.special.ive(ctx.v, k) * (ctx.v + k) / k
        return None, grad * torch.from_numpy(np.asarray(d)).to(kappa)


def ive(v: float, kappa: torch.Tensor) -> torch.Tensor:
    """ive(v, kappa) = I_v(kappa) exp(-kappa), with a gradient in kappa."""
    return _Ive.apply(v, kappa)


def log_sphere_area(m: int) -> float:
    """log of the surface area of the unit sphere S^{m-1} in R^m."""
    return math.log(2.0) + (m / 2) * math.log(math.pi) - math.lgamma(m / 2)


def vmf_kl_to_uniform(kappa: torch.Tensor, m: int) -> torch.Tensor:
    """KL(vMF(., kappa) || uniform on S^{m-1}) for each kappa (>= 0, -> 0 as kappa -> 0)."""
    kappa = kappa.double()
    i_m2, i_m21 = ive(m / 2, kappa), ive(m / 2 - 1, kappa)
    entropy_term = kappa * i_m2 / i_m21  # kappa A_m(kappa)
    log_c = (m / 2 - 1) * torch.log(kappa) - (m / 2) * math.log(2 * math.pi) - (torch.log(i_m21) + kappa)
    return (entropy_term + log_c + log_sphere_area(m)).float()


def mean_resultant_length(kappa: torch.Tensor, m: int) -> torch.Tensor:
    """A_m(kappa) = E[mu . z]: the length of the vMF mean (the concentration a sample mean should show)."""
    kappa = kappa.double()
    return (ive(m / 2, kappa) / ive(m / 2 - 1, kappa)).float()


def _sample_w(kappa: torch.Tensor, m: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Wood's rejection sampler for w = mu . z, one per kappa (float64 for the large-kappa branch)."""
    k = kappa.double()
    c = torch.sqrt(4 * k ** 2 + (m - 1) ** 2)
    b_true = (-2 * k + c) / (m - 1)
    b_app = (m - 1) / (4 * k)  # cancellation-free for large kappa
    s = torch.clamp(k - 10, 0, 1)
    b = b_app * s + b_true * (1 - s)
    a = (m - 1 + 2 * k + c) / 4
    d = (4 * a * b) / (1 + b) - (m - 1) * math.log(m - 1)
    beta = torch.distributions.Beta(torch.tensor((m - 1) / 2, dtype=torch.float64), torch.tensor((m - 1) / 2, dtype=torch.float64))
    w = torch.zeros_like(k)
    todo = torch.ones_like(k, dtype=torch.bool)
    for _ in range(1000):
        if not todo.any():
            break
        shape = k.shape
        eps = beta.sample(shape).to(k.device)
        u = torch.rand(shape, dtype=torch.float64, device=k.device, generator=generator)
        w_new = (1 - (1 + b) * eps) / (1 - (1 - b) * eps)
        t = 2 * a * b / (1 - (1 - b) * eps)
        accept = ((m - 1) * torch.log(t) - t + d) >= torch.log(u)
        take = accept & todo
        w = torch.where(take, w_new, w)
        todo = todo & ~accept
    return w.to(kappa.dtype)


def sample_vmf(mu: torch.Tensor, kappa: torch.Tensor) -> torch.Tensor:
    """Reparameterised samples of vMF(mu, kappa): mu (..., m) unit vectors, kappa (...) or (..., 1)."""
    m = mu.shape[-1]
    kappa = kappa.reshape(mu.shape[:-1])
    w = _sample_w(kappa, m)[..., None]
    v = torch.randn_like(mu)[..., 1:]
    v = v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    x = torch.cat([w, torch.sqrt((1 - w ** 2).clamp_min(1e-12)) * v], dim=-1)  # around e1
    e1 = torch.zeros_like(mu)
    e1[..., 0] = 1.0
    u = e1 - mu
    u = u / u.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    return x - 2 * (x * u).sum(-1, keepdim=True) * u  # Householder reflection e1 -> mu


class VonMisesFisher(Posterior):
    """vMF(mean direction, kappa) over the channel axis of each latent cell; KL to the uniform prior."""

    def __init__(self, mu: torch.Tensor, kappa: torch.Tensor):
        self.mu, self.kappa = mu, kappa  # (B, m, h, w), (B, 1, h, w)

    def mode(self) -> torch.Tensor:
        return self.mu

    def sample(self) -> torch.Tensor:
        mu = self.mu.float().permute(0, 2, 3, 1)
        z = sample_vmf(mu, self.kappa.float().permute(0, 2, 3, 1))
        return z.permute(0, 3, 1, 2)

    def kl(self) -> torch.Tensor:
        return vmf_kl_to_uniform(self.kappa.float(), self.mu.shape[1]).mean()


class ConvSVAE(CodecNet):
    """Document 003's S-VAE: unit mean direction per cell (3x3 conv, normalised), kappa = softplus + 1."""

    def __init__(self, in_channels: int, latent_channels: int = 4, hidden_dims: tuple[int, ...] = (64, 128, 256)):
        super().__init__()
        hidden_dims = tuple(hidden_dims)
        self.encoder = ConvEncoder(in_channels, hidden_dims)
        self.to_mean = nn.Conv2d(hidden_dims[-1], latent_channels, 3, padding=1)
        self.to_kappa = nn.Conv2d(hidden_dims[-1], 1, 3, padding=1)
        self.decoder = ConvDecoder(latent_channels, in_channels, hidden_dims)

    def posterior(self, x: torch.Tensor) -> Posterior:
        h = self.encoder(x)
        mean = self.to_mean(h).float()
        mean = mean / (mean.norm(dim=1, keepdim=True) + 1e-8)
        kappa = F.softplus(self.to_kappa(h).float()) + 1.0
        return VonMisesFisher(mean, kappa)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)


@register_model(family="codec")
def svae(in_channels: int, height: int, width: int, latent_channels: int = 4,
         hidden_dims: tuple[int, ...] = (64, 128, 256)) -> ConvSVAE:
    """Document 003's S-VAE (vMF posterior per latent cell on S^{latent_channels - 1})."""
    return ConvSVAE(in_channels, latent_channels, tuple(hidden_dims))
