"""Conditional latent diffusion (documents 001/002): diffusers' UNet2DModel and schedulers in a codec's latent space.

The denoiser sees the 12 conditioning latents concatenated on channels with the noisy target: the 4
future latents' change from the last input latent, divided by its train-split spread per lead and
channel (so the diffusion target has about unit variance, as DDPM assumes). Timesteps enter through
UNet2DModel's sinusoidal embedding; the output convolution starts at zero. Training uses
DDPMScheduler's forward process and the noise-prediction (epsilon) MSE; sampling uses DDIM (eta 0,
"trailing" spacing for few steps), so the members depend only on the seeded initial noise. The
sampler clips each step's predicted clean target to +-``clip_sample_range`` (3 target standard
deviations): near t = T the cosine schedule's alpha_bar is ~1e-8, and x0 = (x_t - sqrt(1 - ab) eps) /
sqrt(ab) turns any error in eps into a huge x0 (measured: ensemble-mean RMSE 0.82 sigma unclipped,
0.11 clipped at 3, after 2 epochs).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.zoo.blocks import zero_init
from bench.zoo.models.latent_unet import feasible_depth
from bench.zoo.registry import register_model


class LatentDiffusion(nn.Module):
    """Epsilon-prediction denoiser over (4 c, h, w) latent changes, conditioned on (12 c, h, w) input latents."""

    probabilistic = True

    def __init__(self, latent_channels: int, latent_height: int, latent_width: int, in_steps: int = 12, out_steps: int = 4,
                 block_out_channels: list[int] = (64, 128, 128), layers_per_block: int = 1, norm_num_groups: int = 16,
                 train_timesteps: int = 1000, beta_schedule: str = "squaredcos_cap_v2", clip_sample_range: float = 3.0,
                 **_: object):
        super().__init__()
        from diffusers import DDPMScheduler, UNet2DModel

        levels = min(len(block_out_channels), feasible_depth(latent_height, latent_width, len(block_out_channels) - 1) + 1)
        widths = tuple(block_out_channels[:levels])
        self.levels_used = levels
        self.shape = (out_steps, latent_channels, latent_height, latent_width)
        target = out_steps * latent_channels
        self.unet = UNet2DModel(
            sample_size=(latent_height, latent_width), in_channels=in_steps * latent_channels + target, out_channels=target,
            block_out_channels=widths, layers_per_block=layers_per_block, norm_num_groups=norm_num_groups,
            down_block_types=("DownBlock2D",) * levels, up_block_types=("UpBlock2D",) * levels,
        )
        zero_init(self.unet.conv_out)
        self.scheduler_config = {"num_train_timesteps": train_timesteps, "beta_schedule": beta_schedule,
                                 "prediction_type": "epsilon", "clip_sample": False}
        self.train_scheduler = DDPMScheduler(**self.scheduler_config)
        self.clip_sample_range = clip_sample_range
        self.register_buffer("target_scale", torch.ones(out_steps, latent_channels))

    # --- the target: scaled change of the latents -----------------------------------------------
    def fit_target_scale(self, u_last: torch.Tensor, u_future: torch.Tensor) -> None:
        """std per (lead, channel) of u_future - u_last over windows and positions (train split)."""
        change = u_future - u_last
        self.target_scale.copy_(change.std(dim=(0, 3, 4)).clamp_min(1e-4))

    def _scale(self) -> torch.Tensor:
        return self.target_scale[None, :, :, None, None]

    def to_target(self, u_in: torch.Tensor, u_future: torch.Tensor) -> torch.Tensor:
        return ((u_future - u_in[:, -1:]) / self._scale()).flatten(1, 2)

    def from_target(self, u_in: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        return u_in[:, -1:] + x0.view(x0.shape[0], *self.shape) * self._scale()

    # --- training and sampling ------------------------------------------------------------------
    def denoise(self, cond: torch.Tensor, noisy: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.unet(torch.cat([cond, noisy], dim=1), t).sample

    def noise_loss(self, u_in: torch.Tensor, u_future: torch.Tensor) -> torch.Tensor:
        """The DDPM noise-prediction MSE at uniformly drawn timesteps."""
        x0 = self.to_target(u_in, u_future)
        noise = torch.randn_like(x0)
        t = torch.randint(0, self.train_scheduler.config.num_train_timesteps, (x0.shape[0],), device=x0.device)
        noisy = self.train_scheduler.add_noise(x0, noise, t)
        return F.mse_loss(self.denoise(u_in.flatten(1, 2), noisy, t).float(), noise)

    def sampler(self, steps: int):
        """A DDIM scheduler on this model's noise schedule with ``steps`` steps."""
        from diffusers import DDIMScheduler

        config = {**self.scheduler_config, "clip_sample": bool(self.clip_sample_range),
                  "clip_sample_range": float(self.clip_sample_range or 1.0)}
        scheduler = DDIMScheduler(**config, timestep_spacing="trailing", set_alpha_to_one=False)
        scheduler.set_timesteps(steps)
        return scheduler

    @torch.no_grad()
    def sample(self, u_in: torch.Tensor, members: int, generator: torch.Generator, steps: int) -> torch.Tensor:
        """(B, members, 4, c, h, w) scaled latents: DDIM (eta 0) from noise drawn with ``generator``."""
        b = u_in.shape[0]
        cond = u_in.flatten(1, 2).repeat_interleave(members, dim=0)
        x = torch.randn((b * members, self.shape[0] * self.shape[1], *self.shape[2:]), generator=generator,
                        device=u_in.device, dtype=u_in.dtype)
        scheduler = self.sampler(steps)
        for t in scheduler.timesteps:
            eps = self.denoise(cond, x, t.expand(x.shape[0]).to(x.device))
            x = scheduler.step(eps, t, x, eta=0.0).prev_sample
        u = self.from_target(u_in.repeat_interleave(members, dim=0), x)
        return u.view(b, members, *self.shape)


@register_model(family="latent")
def latent_diffusion(**kw) -> nn.Module:
    return LatentDiffusion(**kw)
