"""`describe(path)`: a summary of a splat file for `splatlab info`."""
from __future__ import annotations

import os

import numpy as np

from . import detect_format
from ._common import SplatFormatError


def _size_on_disk(path: str) -> int:
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path)
                   if os.path.isfile(os.path.join(path, f)))
    if path.lower().endswith(".json"):
        return _size_on_disk(os.path.dirname(os.path.abspath(path)))
    return os.path.getsize(path)


def describe(path) -> dict:
    """{path, format, file_size, count, sh_degree, bounds {min, max}, bytes_per_splat, extras, details}."""
    p = os.fspath(path)
    fmt = detect_format(p)
    g = fmt.read(p)
    f = g.detached_fields()
    means = f["means"].numpy().astype(np.float64)
    details: dict = {}
    if fmt.name == "spz":
        from .spz import read_spz_header
        h = read_spz_header(p)
        details = {"version": h["version"], "fractional_bits": h["fractional_bits"], "antialiased": h["antialiased"]}
    elif fmt.name == "sog":
        from .sog import read_sog_meta
        m = read_sog_meta(p)
        details = {"version": m.get("version"), "bundle": not (os.path.isdir(p) or p.lower().endswith(".json"))}
        if m.get("shN"):
            details["sh_palette"] = m["shN"].get("count")
    elif fmt.name == "compressed-ply":
        details = {"chunks": -(-len(g) // 256)}
    size = _size_on_disk(p)
    return {
        "path": p,
        "format": fmt.name,
        "description": fmt.description,
        "file_size": size,
        "count": len(g),
        "bytes_per_splat": size / max(1, len(g)),
        "sh_degree": g.sh_degree,
        "bounds": {"min": means.min(0).tolist(), "max": means.max(0).tolist()},
        "opacity_mean": float(g.opacities.detach().mean()),
        "extras": {k: list(v.shape[1:]) for k, v in f.items() if k in g.extra_names()},
        "details": details,
    }


__all__ = ["describe", "SplatFormatError"]
