"""Which methods exist: the built-ins plus any package that declares an entry point

    [project.entry-points."splatlab.methods"]
    mymethod = "my_package.module:MyMethod"

(the entry point's name is the method's name; the class must subclass `splatlab.methods.Method`).
Entry points are read once, the first time a method is looked up.
"""
from __future__ import annotations

import importlib
from importlib import metadata
from typing import Any, Callable, Mapping

from .base import Method
from .options import coerce_options, describe_options

ENTRY_POINT_GROUP = "splatlab.methods"
BUILTIN_MODULES = ("splatlab.methods.gs3d", "splatlab.methods.sog", "splatlab.methods.ges", "splatlab.methods.deblur", "splatlab.methods.hierarchical", "splatlab.methods.temporal")

_METHODS: dict[str, type[Method]] = {}
_ALIASES: dict[str, str] = {}
_loaded = False
_entry_point_errors: dict[str, str] = {}


def register_method(name: str, aliases: tuple[str, ...] = ()) -> Callable[[type[Method]], type[Method]]:
    """Class decorator: make a `Method` subclass available as `--method name`."""

    def deco(cls: type[Method]) -> type[Method]:
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise TypeError(f"register_method({name!r}): {cls!r} is not a splatlab.methods.Method subclass")
        cls.name = name
        _METHODS[name] = cls
        for alias in aliases:
            _ALIASES[alias] = name
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
        if ep.name in _METHODS:
            continue
        try:
            cls = ep.load()
        except Exception as exc:  # a broken plug-in is reported when asked for, not at import
            _entry_point_errors[ep.name] = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
            continue
        register_method(ep.name)(cls)


def reload_entry_points() -> None:
    """Look at the installed entry points again (after installing a plug-in in this process)."""
    global _loaded
    _loaded = False
    _load_all()


def available_methods() -> list[str]:
    _load_all()
    return sorted(_METHODS)


def method_class(name: str) -> type[Method]:
    """The registered class for `name` (or an alias); ValueError listing the choices otherwise."""
    _load_all()
    key = _ALIASES.get(name, name)
    if key in _METHODS:
        return _METHODS[key]
    if key in _entry_point_errors:
        raise ValueError(f"method {name!r} failed to load from its package: {_entry_point_errors[key]}")
    raise ValueError(f"unknown method {name!r} (choose {', '.join(available_methods())})")


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
        cls = _METHODS[name]
        doc = (cls.__doc__ or "").strip().splitlines()
        opts = describe_options(cls.Config)
        lines.append(f"{name}: {doc[0] if doc else ''}" + (f" [options: {opts}]" if opts else ""))
    return "\n".join(lines)
