"""Transformer on flattened fields (design document 001), served from weights/<task>/ by the shared zoo.

Architecture: bench/zoo/models (registered as ``transformer``); recipe: train.yaml; retrain with
``bench train baselines/transformer``.
"""
from bench.zoo.serving import build_zoo_forecaster as build_model

__all__ = ["build_model"]
