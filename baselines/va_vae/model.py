"""VA-VAE layout, served from weights/<task>/ by the shared zoo (codec track).

Architecture: bench/zoo/codecs (registered as ``va_vae``); recipe: train.yaml; retrain with
``bench train baselines/va_vae``.
"""
from bench.zoo.serving import build_zoo_codec as build_codec

__all__ = ["build_codec"]
