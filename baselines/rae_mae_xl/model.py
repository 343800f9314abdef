"""RAE (MAE-pretrained frozen encoder, xl ViT decoder), served from weights/<task>/ by the shared zoo (codec track).

Architecture: bench/zoo/codecs/rae.py (registered as ``rae``); recipe: train.yaml; retrain with
``bench train baselines/rae_mae_xl``.
"""
from bench.zoo.serving import build_zoo_codec as build_codec

__all__ = ["build_codec"]
