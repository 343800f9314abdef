"""Latent U-Net (design document 001) in the vae codec's latent space, served from weights/<task>/ by the shared zoo.

Architecture: bench/zoo/latent.py + bench/zoo/models (latent_unet); recipe: train.yaml (it names the codec
checkpoint training starts from); retrain with ``bench train baselines/latent_unet_vae``. The codec's weights
are stored inside this model's checkpoint, so the directory is self-contained.
"""
from bench.zoo.serving import build_zoo_forecaster as build_model

__all__ = ["build_model"]
