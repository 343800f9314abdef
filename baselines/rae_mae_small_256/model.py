"""RAE (MAE-pretrained frozen encoder, small ViT decoder), served from weights/<task>/ by the shared zoo (codec track).

Architecture: bench/zoo/codecs/rae.py (registered as ``rae``); recipe: train.yaml; retrain with
``bench train baselines/rae_mae_small_256``.
"""
from bench.zoo.serving import build_zoo_codec as build_codec

__all__ = ["build_codec"]
