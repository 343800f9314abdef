"""Encoder-decoder CNN (design document 001), served from weights/<task>/ by the shared zoo.

Architecture: bench/zoo/models (registered as ``cnn``); recipe: train.yaml; retrain with
``bench train baselines/cnn``.
"""
from bench.zoo.serving import build_zoo_forecaster as build_model

__all__ = ["build_model"]
