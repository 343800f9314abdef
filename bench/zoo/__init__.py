"""The model zoo: torch models, one training loop and checkpoints for the baselines.

Needs the ``models`` extra (torch). The harness core (``bench``) never imports this package, so
``import bench.cli`` stays torch-free; only ``bench train`` and neural submissions load it.
"""
from __future__ import annotations

try:
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    from bench.errors import BenchError

    raise BenchError("the model zoo needs PyTorch: pip install -e '.[models]'") from exc

from bench.zoo.registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
