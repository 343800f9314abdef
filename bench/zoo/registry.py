"""A name -> factory table and one door to build any zoo model (as timm's ``create_model``)."""
from __future__ import annotations

import importlib
from typing import Any, Callable

from torch import nn

from bench.errors import BenchError

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
# Family modules whose import fills the registry (imported lazily by create_model).
FAMILIES = ("sequence", "cnn", "convlstm", "weather_transformer", "unet", "linear")


def register_model(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Decorator: register ``factory`` under its function name."""
    if factory.__name__ in _REGISTRY:
        raise BenchError(f"model {factory.__name__!r} is registered twice")
    _REGISTRY[factory.__name__] = factory
    return factory


def _load_families() -> None:
    for family in FAMILIES:
        importlib.import_module(f"bench.zoo.models.{family}")


def list_models() -> list[str]:
    """Every registered model name."""
    _load_families()
    return sorted(_REGISTRY)


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name``; its arguments are recorded on ``model.config``."""
    _load_families()
    if name not in _REGISTRY:
        raise BenchError(f"unknown model {name!r}; registered: {', '.join(sorted(_REGISTRY))}")
    model = _REGISTRY[name](**kwargs)
    model.config = {"name": name, **kwargs}
    return model
