"""Which methods exist: the built-ins plus any package that declares an entry point

    [project.entry-points."splatlab.methods"]
    mymethod = "my_package.module:MyMethod"

(the entry point's name is the method's name; the class must subclass `splatlab.methods.Method`).
Entry points are read once, the first time a method is looked up.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from splatlab.plugins import Registry

from .base import Method
from .options import coerce_options, describe_options

ENTRY_POINT_GROUP = "splatlab.methods"
BUILTIN_MODULES = ("splatlab.methods.gs3d", "splatlab.methods.sog", "splatlab.methods.ges", "splatlab.methods.deblur",
                   "splatlab.methods.hierarchical", "splatlab.methods.temporal")

_REGISTRY: Registry[type[Method]] = Registry("method", Method, ENTRY_POINT_GROUP, BUILTIN_MODULES)


def register_method(name: str, aliases: tuple[str, ...] = ()) -> Callable[[type[Method]], type[Method]]:
    """Class decorator: make a `Method` subclass available as `--method name`."""
    return _REGISTRY.register(name, aliases)


def reload_entry_points() -> None:
    """Look at the installed entry points again (after installing a plug-in in this process)."""
    _REGISTRY.reload()


def available_methods() -> list[str]:
    return _REGISTRY.names()


def method_class(name: str) -> type[Method]:
    """The registered class for `name` (or an alias); ValueError listing the choices otherwise."""
    return _REGISTRY.get(name)


def canonical_name(name: str) -> str:
    return method_class(name).name


def make_method(name: str, options: Mapping[str, Any] | None = None) -> Method:
    """A method instance with its typed config coerced from raw options (one-line ValueError)."""
    cls = method_class(name)
    return cls(coerce_options(cls.name, cls.Config, options))


def methods_help() -> str:
    """One line per method: name, first docstring line and its options."""
    lines = []
    for name in available_methods():
        cls = method_class(name)
        doc = (cls.__doc__ or "").strip().splitlines()
        opts = describe_options(cls.Config)
        lines.append(f"{name}: {doc[0] if doc else ''}" + (f" [options: {opts}]" if opts else ""))
    return "\n".join(lines)
