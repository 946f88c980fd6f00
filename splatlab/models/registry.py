"""Which learned models exist: the built-in packages plus entry points in the group
`splatlab.models` (`name = "package.module:ModelClass"`, a `FeedForwardModel` subclass)."""
from __future__ import annotations

import importlib
from importlib import metadata
from typing import Callable

from .base import FeedForwardModel

ENTRY_POINT_GROUP = "splatlab.models"
BUILTIN_MODULES = ("splatlab.models.tgs", "splatlab.models.splatformer", "splatlab.models.catsplat")

_MODELS: dict[str, type[FeedForwardModel]] = {}
_loaded = False


def register_model(name: str) -> Callable[[type[FeedForwardModel]], type[FeedForwardModel]]:
    def deco(cls: type[FeedForwardModel]) -> type[FeedForwardModel]:
        if not (isinstance(cls, type) and issubclass(cls, FeedForwardModel)):
            raise TypeError(f"register_model({name!r}): {cls!r} is not a FeedForwardModel subclass")
        cls.name = name
        _MODELS[name] = cls
        return cls

    return deco


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in _MODELS:
            register_model(ep.name)(ep.load())


def available_models() -> list[str]:
    _load_all()
    return sorted(_MODELS)


def model_class(name: str) -> type[FeedForwardModel]:
    _load_all()
    if name not in _MODELS:
        choices = ", ".join(available_models()) or "none installed"
        raise ValueError(f"unknown model {name!r} (choose {choices})")
    return _MODELS[name]


def load_model(name: str, weights: str | None = None, device: str = "cpu") -> FeedForwardModel:
    """The named model with its shipped weights (or those in the folder `weights`)."""
    return model_class(name).from_pretrained(weights, device=device)
