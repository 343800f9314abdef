"""Document 003's S-VAE, served from weights/<task>/ by the shared zoo (codec track).

Architecture: bench/zoo/codecs (registered as ``svae``); recipe: train.yaml; retrain with
``bench train baselines/svae``.
"""
from bench.zoo.serving import build_zoo_codec as build_codec

__all__ = ["build_codec"]
