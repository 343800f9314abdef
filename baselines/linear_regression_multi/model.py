"""Ridge regression (alpha 10), one per variable, all variables in (design document 001), served from weights/<task>/ by the shared zoo.

Architecture: bench/zoo/models (registered as ``ridge``); recipe: train.yaml; retrain with
``bench train baselines/linear_regression_multi``.
"""
from bench.zoo.serving import build_zoo_forecaster as build_model

__all__ = ["build_model"]
