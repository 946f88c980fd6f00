"""Compiling the CPU kernels ahead (`splatlab.render.cpu.compile_ahead` and its children,
`splatlab.render.cpu.warmup`): the backward pass is compiled
from synthetic arguments, which only helps if they have exactly the types a real backward passes
(otherwise numba compiles a second, unused specialisation and the real one still compiles late)."""
from __future__ import annotations

import os
import subprocess
import sys

import numba
import torch

from splatlab.render import rasterize
from splatlab.render.cpu import compile_ahead, warmup


def _real_forward_backward() -> None:
    g = torch.Generator().manual_seed(3)
    n = 300
    means = (torch.rand(n, 3, generator=g) - 0.5 + torch.tensor([0.0, 0.0, 3.0])).requires_grad_(True)
    quats = torch.randn(n, 4, generator=g).requires_grad_(True)
    scales = torch.full((n, 3), 0.05).requires_grad_(True)
    opacities = torch.full((n,), 0.6).requires_grad_(True)
    colors = torch.rand(n, 4, 3, generator=g).requires_grad_(True)
    K = torch.tensor([[40.0, 0.0, 20.0], [0.0, 40.0, 18.0], [0.0, 0.0, 1.0]])[None]
    img, alpha, _ = rasterize(means, quats, scales, opacities, colors, torch.eye(4)[None], K, 40, 36,
                              sh_degree=1, backend="cpu")
    (img.square().sum() + alpha.sum()).backward()
    assert means.grad is not None and means.grad.abs().sum() > 0


def test_backward_warmup_uses_the_real_argument_types():
    _real_forward_backward()
    calls = warmup.backward_calls()
    assert len(calls) == 3
    for kernel, args in calls:
        sig = tuple(numba.typeof(a) for a in args)
        assert sig in kernel.signatures, f"{kernel.py_func.__name__}: warm-up types {sig} not in {kernel.signatures}"


def test_warmup_module_runs_and_refuses_unknown_passes():
    _real_forward_backward()  # compiled or loaded here first, so the child only loads the cache
    run = subprocess.run([sys.executable, "-m", "splatlab.render.cpu.warmup", "forward", "backward"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    bad = subprocess.run([sys.executable, "-m", "splatlab.render.cpu.warmup", "sideways"],
                         capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and "usage" in bad.stderr


def test_start_then_wait_leaves_no_children(monkeypatch):
    monkeypatch.setattr(compile_ahead, "_children", [])
    compile_ahead.start(force=True)
    assert len(compile_ahead._children) == len(compile_ahead.PASSES)
    procs = list(compile_ahead._children)
    compile_ahead.wait_ready()
    assert compile_ahead._children == [] and all(p.returncode == 0 for p in procs)


def test_no_children_when_the_kernels_are_cached(monkeypatch):
    _real_forward_backward()
    _ssim_both_ways()
    assert compile_ahead.kernels_cached()
    monkeypatch.setattr(compile_ahead, "_children", [])
    compile_ahead.start()
    assert compile_ahead._children == []


def test_an_empty_cache_is_not_cached(tmp_path):
    """In a process whose numba cache directory is empty, nothing counts as compiled."""
    code = "from splatlab.render.cpu import compile_ahead; print(compile_ahead.kernels_cached())"
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"


def _ssim_both_ways() -> None:
    from splatlab.metrics import ssim

    x = torch.rand(12, 12, 3).requires_grad_(True)
    ssim(x, torch.rand(12, 12, 3)).backward()
