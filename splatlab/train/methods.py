"""Method registry: what a training method adds on top of the 3DGS baseline.

A method supplies extra per-Gaussian fields (with their learning rates), may transform the
Gaussians before rendering (e.g. GES's shape-scaled kernels), may add loss terms and extra
modules/optimizers. The trainer only talks to these hooks, so a new method is one registered
subclass::

    @register_method("ges")
    class GES(Method):
        def extra_fields(self, n, cfg): return {"shape": torch.zeros(n)}
        def extra_lrs(self, cfg): return {"shape": 1e-3}
        def render_inputs(self, gaussians, step, cfg): ...
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from torch import Tensor, nn
from torch.optim import Optimizer

from splatlab.gaussians import Gaussians

from .losses import photometric_loss

METHODS: dict[str, type["Method"]] = {}


def register_method(name: str) -> Callable[[type], type]:
    def deco(cls):
        cls.name = name
        METHODS[name] = cls
        return cls
    return deco


def get_method(name: str) -> "Method":
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r} (choose {', '.join(sorted(METHODS))})")
    return METHODS[name]()


@dataclass
class LossInputs:
    render: Tensor  # (C, H, W, 3)
    alpha: Tensor  # (C, H, W, 1)
    target: Tensor  # (C, H, W, 3)
    gaussians: Gaussians
    step: int
    meta: Any


class Method:
    name = "base"

    def extra_fields(self, n: int, cfg) -> dict[str, Tensor]:
        """Initial values of the method's per-Gaussian fields (rows = n)."""
        return {}

    def extra_lrs(self, cfg) -> dict[str, float]:
        return {}

    def render_inputs(self, gaussians: Gaussians, step: int, cfg) -> dict[str, Tensor]:
        """Keyword arguments for `rasterize` (means, quats, scales, opacities, plus e.g. shapes)."""
        return {"means": gaussians.means, "quats": gaussians.params["quats"], "scales": gaussians.scales,
                "opacities": gaussians.opacities}

    def loss_terms(self, x: LossInputs, cfg) -> dict[str, Tensor]:
        return photometric_loss(x.render, x.target, cfg.ssim_lambda)

    def modules(self) -> dict[str, nn.Module]:
        """Learned modules besides the Gaussians (saved in checkpoints)."""
        return {}

    def extra_optimizers(self, cfg) -> dict[str, Optimizer]:
        return {}

    def after_step(self, gaussians: Gaussians, optimizers, step: int, cfg) -> None:
        """Per-step hook after the optimizer step (e.g. periodic field resets)."""
        return None

    def validate_options(self, cfg) -> None:
        """Raise ValueError on bad `cfg.method_options` (called by the CLI before training)."""
        return None


@register_method("3dgs")
class GaussianSplatting(Method):
    """The baseline: no extra fields, (1-λ)·L1 + λ·D-SSIM."""


@register_method("sog")
class SelfOrganizingGaussians(Method):
    """Self-Organizing Gaussians: the 3DGS recipe, then (at the grid step, default when densification
    stops) prune to k^2 Gaussians, lay them out on a k x k grid (default Morton order of the
    positions; `layout=plas` for the paper's PLAS sort; rows and Adam state permuted into grid
    order), add the grid-smoothness loss every step and re-sort every `sort_every` steps.
    Options (`--method-option key=value`) and details: `splatlab.compress.training`."""

    def __init__(self) -> None:
        from splatlab.compress.training import SOGController

        self.controller = SOGController()

    def validate_options(self, cfg) -> None:
        from splatlab.compress.training import parse_options

        parse_options(cfg.method_options)

    def extra_lrs(self, cfg) -> dict[str, float]:
        self.controller.options(cfg)  # bad options fail before training starts
        return {}

    def loss_terms(self, x: LossInputs, cfg) -> dict[str, Tensor]:
        terms = super().loss_terms(x, cfg)
        smooth = self.controller.loss(x.gaussians, cfg)
        if smooth is not None:
            terms["sog_smoothness"] = smooth
        return terms

    def modules(self) -> dict[str, nn.Module]:
        return {"sog": self.controller.state}

    def after_step(self, gaussians: Gaussians, optimizers, step: int, cfg) -> None:
        self.controller.after_step(gaussians, optimizers, step, cfg)
