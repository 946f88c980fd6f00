"""Which learned models exist: the built-in packages plus entry points in the group
`splatlab.models` (`name = "package.module:ModelClass"`, a `FeedForwardModel` subclass)."""
from __future__ import annotations

from typing import Callable

from splatlab.plugins import Registry

from .base import FeedForwardModel

ENTRY_POINT_GROUP = "splatlab.models"
BUILTIN_MODULES = ("splatlab.models.tgs", "splatlab.models.splatformer", "splatlab.models.catsplat")

_REGISTRY: Registry[type[FeedForwardModel]] = Registry("model", FeedForwardModel, ENTRY_POINT_GROUP, BUILTIN_MODULES)


def register_model(name: str) -> Callable[[type[FeedForwardModel]], type[FeedForwardModel]]:
    """Class decorator: make a `FeedForwardModel` subclass available as `splatlab predict name`."""
    return _REGISTRY.register(name)


def available_models() -> list[str]:
    return _REGISTRY.names()


def model_class(name: str) -> type[FeedForwardModel]:
    """The registered class for `name`; ValueError listing the choices otherwise."""
    return _REGISTRY.get(name)


def load_model(name: str, weights: str | None = None, device: str = "cpu") -> FeedForwardModel:
    """The named model with its shipped weights (or those in the folder `weights`)."""
    return model_class(name).from_pretrained(weights, device=device)
