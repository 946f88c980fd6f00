"""Named plug-in classes: splatlab's built-ins plus any installed package's entry points.

Methods (`splatlab.methods`) and learned models (`splatlab.models`) are looked up the same way:

    [project.entry-points."splatlab.methods"]      # or "splatlab.models"
    mymethod = "my_package.module:MyMethod"

The entry point's name is the plug-in's name. Entry points are read once, on the first lookup. A
plug-in that fails to import is reported when it is asked for, in one line, and does not break the
others.
"""
from __future__ import annotations

import importlib
from importlib import metadata
from typing import Callable, Generic, TypeVar

T = TypeVar("T", bound=type)


class Registry(Generic[T]):
    """Classes of one kind (subclasses of `base`) by name, with aliases."""

    def __init__(self, kind: str, base: type, group: str, builtin_modules: tuple[str, ...]) -> None:
        self.kind, self.base, self.group, self.builtin_modules = kind, base, group, builtin_modules
        self._classes: dict[str, T] = {}
        self._aliases: dict[str, str] = {}
        self._errors: dict[str, str] = {}
        self._loaded = False

    def register(self, name: str, aliases: tuple[str, ...] = ()) -> Callable[[T], T]:
        """Class decorator: make a subclass of `base` available under `name` (and its aliases)."""

        def deco(cls: T) -> T:
            if not (isinstance(cls, type) and issubclass(cls, self.base)):
                raise TypeError(f"register {self.kind} {name!r}: {cls!r} is not a "
                                f"{self.base.__module__}.{self.base.__name__} subclass")
            cls.name = name
            self._classes[name] = cls
            for alias in aliases:
                self._aliases[alias] = name
            return cls

        return deco

    def _load_all(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for module in self.builtin_modules:
            importlib.import_module(module)
        for ep in metadata.entry_points(group=self.group):
            if ep.name in self._classes:
                continue
            try:
                cls = ep.load()
                self.register(ep.name)(cls)
            except Exception as exc:  # a broken plug-in is reported when asked for, not at import
                self._errors[ep.name] = f"{type(exc).__name__}: {' '.join(str(exc).split())}"

    def reload(self) -> None:
        """Look at the installed entry points again (after installing a plug-in in this process)."""
        self._loaded = False
        self._load_all()

    def names(self) -> list[str]:
        self._load_all()
        return sorted(self._classes)

    def get(self, name: str) -> T:
        """The class registered as `name` (or an alias); one-line ValueError listing the choices otherwise."""
        self._load_all()
        key = self._aliases.get(name, name)
        if key in self._classes:
            return self._classes[key]
        if key in self._errors:
            raise ValueError(f"{self.kind} {name!r} failed to load from its package: {self._errors[key]}")
        raise ValueError(f"unknown {self.kind} {name!r} (choose {', '.join(self.names()) or 'none installed'})")
