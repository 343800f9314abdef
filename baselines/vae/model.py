"""Document 003's VAE, served from weights/<task>/ by the shared zoo (codec track).

Architecture: bench/zoo/codecs/vae.py (registered as ``vae``); recipe: train.yaml; retrain with
``bench train baselines/vae``.
"""
from bench.zoo.serving import build_zoo_codec as build_codec

__all__ = ["build_codec"]
