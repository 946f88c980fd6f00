"""Checks that an output path can be written, made before any work starts.

A render, export or training run that fails on its `--out` only at the end wastes the whole run;
these checks fail in a moment with one line naming the path. Whether a folder is writable is
found out by creating (and removing) a probe file in it: permission bits say nothing for root or
for read-only mounts, which is where `os.access` would answer "yes" and the write still fail.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["OutputPathError", "check_output_file", "check_output_dir", "check_splat_output"]


class OutputPathError(ValueError):
    """An output path that cannot be written; the message is one line naming the path."""


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _probe(folder: Path, target: Path) -> None:
    """Create and remove a file in `folder`; OutputPathError (naming `target`) if that fails."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".splatlab-probe-", dir=folder)
    except OSError as err:
        reason = err.strerror or str(err)
        where = "" if folder == target else f" ({folder} is not writable)"
        raise OutputPathError(f"{target}: cannot write here: {reason}{where}") from None
    os.close(fd)
    os.unlink(probe)


def check_output_file(path: str | os.PathLike) -> Path:
    """`path` can be created or replaced as a file: it is not a folder and the nearest existing
    folder above it is a writable folder (missing folders in between are created by the writers)."""
    target = Path(os.path.abspath(os.fspath(path)))
    if target.is_dir():
        raise OutputPathError(f"{path}: is a folder; give a file name")
    above = _nearest_existing(target.parent)
    if not above.is_dir():
        raise OutputPathError(f"{path}: cannot write here: {above} is a file, not a folder")
    _probe(above, Path(path))
    return target


def check_output_dir(path: str | os.PathLike) -> Path:
    """`path` is (or can be created as) a writable folder."""
    target = Path(os.path.abspath(os.fspath(path)))
    if target.exists() and not target.is_dir():
        raise OutputPathError(f"{path}: exists and is not a folder")
    above = _nearest_existing(target)
    if not above.is_dir():
        raise OutputPathError(f"{path}: cannot create a folder here: {above} is a file, not a folder")
    _probe(above, Path(path))
    return target


def check_splat_output(path: str | os.PathLike) -> Path:
    """A splat output as the writers take it: a file (`.ply`, `.sog`, `.spz`, ...) or, for loose
    SOG files, a folder or its `meta.json`."""
    p = os.fspath(path)
    if os.path.basename(p) == "meta.json":
        return check_output_dir(os.path.dirname(os.path.abspath(p)))
    if os.path.isdir(p) or not os.path.splitext(p)[1]:
        return check_output_dir(p)
    return check_output_file(p)
