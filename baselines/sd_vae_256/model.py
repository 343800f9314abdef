"""SD-VAE layout, served from weights/<task>/ by the shared zoo (codec track).

Architecture: bench/zoo/codecs (registered as ``sd_vae``); recipe: train.yaml; retrain with
``bench train baselines/sd_vae_256``.
"""
from bench.zoo.serving import build_zoo_codec as build_codec

__all__ = ["build_codec"]
