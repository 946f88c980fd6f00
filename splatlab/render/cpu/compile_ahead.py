"""Compile the CPU kernels ahead of their first use, in two child processes.

A fresh install spends about a minute of CPU compiling the numba kernels on first use
(each child alone on a core: the forward pass ~30 s, the backward pass with the SSIM loss ~36 s),
on one core while the other idles. They are cached on
disk afterwards (numba `cache=True`), so any process that compiles them saves the work for all
later ones. `splatlab train` starts two children (`warmup.py`), one per pass, before it reads the
images and builds its initial points; the compile then runs on both cores beside that work instead
of after it. The first kernel call waits for the children (`wait_ready`), then loads the cache.

Nothing depends on the children succeeding: if one fails, or the cache is not writable, the
kernels compile in-process on first use as before. This module imports only the kernel modules
(not the render path), so the backend can call `wait_ready` without an import cycle.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

PASSES = ("forward", "backward")
WAIT_LIMIT_S = 600.0  # a child still compiling after this is stopped; the caller compiles itself

_children: list[subprocess.Popen] = []


def kernels_cached() -> bool:
    """Whether numba's disk cache holds every entry kernel of both passes for the current source:
    then there is nothing to compile ahead (children would only cost their start-up, seconds of
    CPU per training run). Reads numba's cache index (a private API: any failure counts as not
    cached, which only means compiling ahead once more)."""
    from . import kernels, preprocess, ssim

    entries = (kernels.rasterize_forward, kernels.rasterize_backward, preprocess.project_forward,
               preprocess.project_backward, ssim.ssim_forward, ssim.ssim_backward)
    try:
        return all(fn._cache._cache_file._load_index() for fn in entries)
    except Exception:  # noqa: BLE001 - another numba version's internals
        return False


def start(force: bool = False) -> None:
    """Start compiling both passes in child processes, unless the kernels are cached already
    (once per process; no-op if started)."""
    if _children or os.environ.get("NUMBA_DISABLE_JIT") == "1" or (not force and kernels_cached()):
        return
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1", MKL_NUM_THREADS="1")
    for name in PASSES:
        try:
            _children.append(subprocess.Popen([sys.executable, "-m", "splatlab.render.cpu.warmup", name], env=env,
                                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL))
        except OSError:  # cannot spawn: the kernels compile on first use
            return


def wait_ready() -> None:
    """Block until the children have finished (cheap once they have, or if none were started)."""
    deadline = time.monotonic() + WAIT_LIMIT_S
    while _children:
        child = _children.pop()
        try:
            child.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
