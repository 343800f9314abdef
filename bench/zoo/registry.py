"""A name -> factory table and one door to build any zoo model (as timm's ``create_model``)."""
from __future__ import annotations

import importlib
from typing import Any, Callable

from torch import nn

from bench.errors import BenchError

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_FAMILY: dict[str, str] = {}
# Modules whose import fills the registry (imported lazily by create_model); heavy libraries
# (diffusers, transformers) are imported inside the codec factories, not at module import.
FAMILIES = ("sequence", "cnn", "convlstm", "weather_transformer", "unet", "linear",
            "latent_unet", "rae_direct", "diffusion")  # the last three: family "latent" (models over a trained codec)
CODEC_FAMILIES = ("vae", "svae", "sd_vae", "va_vae", "rae")


def register_model(factory: Callable[..., nn.Module] | None = None, *, family: str = "forecaster"):
    """Decorator: register ``factory`` under its function name (``@register_model(family="codec")`` for codecs)."""

    def add(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if fn.__name__ in _REGISTRY:
            raise BenchError(f"model {fn.__name__!r} is registered twice")
        _REGISTRY[fn.__name__], _FAMILY[fn.__name__] = fn, family
        return fn

    return add(factory) if factory is not None else add


def _load_families() -> None:
    for family in FAMILIES:
        importlib.import_module(f"bench.zoo.models.{family}")
    for family in CODEC_FAMILIES:
        importlib.import_module(f"bench.zoo.codecs.{family}")


def list_models(family: str | None = None) -> list[str]:
    """Every registered model name (of ``family`` if given: "forecaster", "codec", "codec-pretrain")."""
    _load_families()
    return sorted(n for n in _REGISTRY if family is None or _FAMILY[n] == family)


def model_family(name: str) -> str:
    """The family a registered model belongs to; a named error for an unknown name."""
    _load_families()
    if name not in _REGISTRY:
        raise BenchError(f"unknown model {name!r}; registered: {', '.join(sorted(_REGISTRY))}")
    return _FAMILY[name]


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name``; its arguments are recorded on ``model.config``."""
    model_family(name)
    model = _REGISTRY[name](**kwargs)
    model.config = {"name": name, **kwargs}
    return model
