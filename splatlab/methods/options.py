"""`--method-option key=value` pairs -> a method's typed config dataclass, with one-line errors.

Values arrive as strings from the command line or as JSON values from checkpoints and `.ply`
headers; both are coerced by the field's annotation (int, float, bool, str, Literal[...],
Optional[...], tuple[str, ...]). A field may declare other accepted keys with
`field(metadata={"aliases": ("lambda",)})`; dashes and a `<method>_` prefix are accepted too.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, Mapping, get_args, get_origin

_NONE_WORDS = ("none", "null", "")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def option_keys(config_cls: type) -> dict[str, str]:
    """Every accepted key (field names and aliases) -> the field name."""
    keys = {}
    for f in dataclasses.fields(config_cls):
        keys[f.name] = f.name
        for alias in f.metadata.get("aliases", ()):
            keys[alias] = f.name
    return keys


def describe_options(config_cls: type) -> str:
    """`name=default` for every field, for help texts and error messages."""
    parts = []
    for f in dataclasses.fields(config_cls):
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else "?")
        parts.append(f"{f.name}={default}")
    return ", ".join(parts)


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.strip().lower() in _NONE_WORDS):
            if type(None) in args:
                return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is Literal:
        text = str(value).strip().lower() if isinstance(value, str) else value
        for choice in args:
            if text == choice or (isinstance(choice, str) and text == choice.lower()):
                return choice
        raise ValueError(f"{where} must be one of {', '.join(map(str, args))}, got {value!r}")
    if annotation is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"{where} expects true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, bool):
            raise ValueError(f"{where} expects an integer, got {value!r}")
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where} expects an integer, got {value!r}") from None
        if f != f or f in (float("inf"), float("-inf")) or f != int(f):
            raise ValueError(f"{where} expects an integer, got {value!r}")
        return int(f)
    if annotation is float:
        if isinstance(value, bool):
            raise ValueError(f"{where} expects a number, got {value!r}")
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where} expects a number, got {value!r}") from None
        if f != f or f in (float("inf"), float("-inf")):
            raise ValueError(f"{where} expects a finite number, got {value!r}")
        return f
    if annotation is str:
        if value is None:
            raise ValueError(f"{where} needs a value")
        return str(value).strip()
    if origin is tuple:
        items = value.split(",") if isinstance(value, str) else list(value)
        inner = args[0] if args else str
        return tuple(_coerce(v.strip() if isinstance(v, str) else v, inner, where) for v in items
                     if not (isinstance(v, str) and not v.strip()))
    if origin is dict or annotation is dict:
        if not isinstance(value, Mapping):
            raise ValueError(f"{where} expects a mapping, got {value!r}")
        return dict(value)
    raise TypeError(f"{where}: unsupported option type {annotation!r}")


def coerce_options(method_name: str, config_cls: type, options: Mapping[str, Any] | None):
    """A `config_cls` instance from raw options; ValueError naming the key and the valid ones."""
    hints = typing.get_type_hints(config_cls)
    keys = option_keys(config_cls)
    values: dict[str, Any] = {}
    prefix = method_name.lower() + "_"
    for raw_key, value in (options or {}).items():
        key = str(raw_key).strip().replace("-", "_")
        name = keys.get(key) or keys.get(key.lower())
        if name is None and key.lower().startswith(prefix):
            name = keys.get(key[len(prefix):]) or keys.get(key[len(prefix):].lower())
        if name is None:
            raise ValueError(f"unknown option {raw_key!r} for method {method_name!r} "
                             f"(valid: {', '.join(sorted(keys))})")
        values[name] = _coerce(value, hints[name], f"method {method_name!r} option {raw_key}")
    config = config_cls(**values)
    try:
        config.validate()
    except ValueError as exc:
        raise ValueError(f"method {method_name!r}: {' '.join(str(exc).split())}") from None
    return config
