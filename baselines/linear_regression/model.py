"""Ridge regression (alpha 1) on the flattened 12 input steps (design document 001), served from weights/<task>/ by the shared zoo.

Architecture: bench/zoo/models (registered as ``ridge``); recipe: train.yaml; retrain with
``bench train baselines/linear_regression``.
"""
from bench.zoo.serving import build_zoo_forecaster as build_model

__all__ = ["build_model"]
