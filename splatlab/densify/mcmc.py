"""3DGS as Markov-chain Monte Carlo (Kheradmand et al. 2024), written from the paper.

* Every `refine_every` steps in (`refine_start`, `refine_stop`): Gaussians with opacity <=
  `min_opacity` are *relocated* onto live ones sampled with probability proportional to opacity;
  then `growth - 1` (5 %) new Gaussians are added, up to `cap_max`, by sampling live ones the
  same way. A Gaussian sampled n-1 times becomes n copies that together render like the original:
      o_new = 1 - (1 - o)^(1/n)
      s_new = s · o / Σ_{i=1..n} Σ_{k=0..i-1} C(i-1, k) (-1)^k o_new^(k+1) / √(k+1)
  (the scale factor is the square root of the paper's covariance factor). Optimizer state of the
  affected rows is zeroed.
* After every optimizer step the means receive noise Σ·ε·σ(-k(o - t))·lr_means·`noise_lr`
  (ε ~ N(0, I), Σ the 3D covariance, k = 100, t = 1 - 0.995 gate on 1 - o): nearly transparent
  Gaussians explore, opaque ones stay.
* Pinned rows (`state["pinned"]`, the trainer's background shell) are never relocated, sampled or moved.
* The loss gets `opacity_reg`·mean(opacity) + `scale_reg`·mean(scale) (`loss_terms`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from . import ops
from .base import BaseStrategy, means_lr, step_generator
from .floaters import regulariser_terms

N_MAX = 51


@dataclass
class MCMCStrategy(BaseStrategy):
    cap_max: int = 1_000_000
    noise_lr: float = 5e5
    refine_start: int = 500
    refine_stop: int = 25_000
    refine_every: int = 100
    min_opacity: float = 0.005
    growth: float = 1.05
    opacity_reg: float = 0.01
    scale_reg: float = 0.01
    verbose: bool = False

    def refine_due(self, step: int) -> bool:
        return self.refine_start < step < self.refine_stop and step % self.refine_every == 0

    def refine(self, gaussians, optimizers, state, step) -> dict:
        report = {"relocated": self.relocate(gaussians, optimizers, state, step),
                  "added": self.add(gaussians, optimizers, state, step)}
        if self.verbose:
            print(f"step {step}: {report}, now {len(gaussians)} Gaussians")
        return report

    def after_step(self, gaussians, optimizers, state, step) -> None:
        lr = means_lr(optimizers, gaussians)
        if lr > 0 and self.noise_lr > 0:
            inject_noise(gaussians, lr * self.noise_lr, step_generator(state, step, salt=3),
                         skip_first=int(state.get("pinned", 0)))

    def loss_terms(self, gaussians, state, step) -> dict[str, Tensor]:
        return regulariser_terms(gaussians, self.opacity_reg, self.scale_reg)

    # -- moves --------------------------------------------------------------------------------
    def relocate(self, gaussians, optimizers, state, step) -> int:
        with torch.no_grad():
            opac = torch.sigmoid(gaussians.params["opacities"])
            free = ~ops.pinned_mask(state, len(gaussians), opac.device)
            dead = (opac <= self.min_opacity) & free
            n_dead = int(dead.sum())
            alive = torch.nonzero(~dead & free).squeeze(1)  # pinned rows are never a source either
            if n_dead == 0 or len(alive) == 0:
                return 0
            g = step_generator(state, step, salt=5)
            pick = torch.multinomial(opac[alive].cpu(), n_dead, replacement=True, generator=g).to(alive.device)
            sampled = alive[pick]
            values = self._copies(gaussians, sampled, len(gaussians))
        dead_idx = torch.nonzero(dead).squeeze(1)
        # the sampled rows get the shrunken opacity/scale; the dead rows become copies of them
        index = torch.cat([sampled, dead_idx])
        full = {}
        for name, v in gaussians.detached_fields().items():
            rows = values[name] if name in values else v[sampled]
            full[name] = torch.cat([rows, rows])
        ops.set_rows(gaussians, optimizers, index, full, reset_state=True)
        return n_dead

    def add(self, gaussians, optimizers, state, step) -> int:
        n = len(gaussians)
        target = min(self.cap_max, int(self.growth * n))
        n_new = max(0, target - n)
        if n_new == 0:
            return 0
        with torch.no_grad():
            opac = torch.sigmoid(gaussians.params["opacities"])
            opac = torch.where(ops.pinned_mask(state, n, opac.device), torch.zeros_like(opac), opac)
            g = step_generator(state, step, salt=7)
            sampled = torch.multinomial(opac.cpu(), n_new, replacement=True, generator=g).to(opac.device)
            values = self._copies(gaussians, sampled, n)
            fields = gaussians.detached_fields()
            upd = {name: values[name] for name in ("opacities", "scales")}
        ops.set_rows(gaussians, optimizers, sampled, upd, reset_state=True)
        new_rows = {name: (values[name] if name in values else v[sampled]) for name, v in fields.items()}
        ops.append(gaussians, optimizers, new_rows)
        return n_new

    def _copies(self, gaussians, sampled: Tensor, n: int) -> dict[str, Tensor]:
        """New opacity logits / log scales for the rows `sampled` (with repeats)."""
        opac = torch.sigmoid(gaussians.params["opacities"].detach()[sampled])
        scales = torch.exp(gaussians.params["scales"].detach()[sampled])
        ratios = torch.bincount(sampled, minlength=n)[sampled] + 1
        new_opac, new_scales = relocation_update(opac, scales, ratios, self.min_opacity)
        return {"opacities": torch.logit(new_opac), "scales": torch.log(new_scales)}


def relocation_update(opac: Tensor, scales: Tensor, ratios: Tensor, min_opacity: float = 0.005
                      ) -> tuple[Tensor, Tensor]:
    """Opacity and scale of each of n = `ratios` copies replacing a Gaussian (see module doc)."""
    n = ratios.clamp(1, N_MAX).to(opac.dtype)
    new_opac = 1.0 - torch.pow(1.0 - opac, 1.0 / n)
    new_opac = new_opac.clamp(min_opacity, 1.0 - torch.finfo(opac.dtype).eps)
    denom = torch.zeros_like(opac)
    for i in range(1, int(n.max().item()) + 1):
        inner = torch.zeros_like(opac)
        for k in range(i):
            inner = inner + math.comb(i - 1, k) * (-1.0) ** k * new_opac ** (k + 1) / math.sqrt(k + 1)
        denom = denom + torch.where(n >= i, inner, torch.zeros_like(inner))
    coeff = opac / denom
    return new_opac, scales * coeff[:, None]


def inject_noise(gaussians, scale: float, generator: torch.Generator, skip_first: int = 0) -> None:
    """Move the means by the module doc's noise; the first `skip_first` rows (pinned) stay."""
    with torch.no_grad():
        p = gaussians.params
        opac = torch.sigmoid(p["opacities"])
        gate = torch.sigmoid(100.0 * ((1.0 - opac) - 0.995))
        R = ops.quat_to_rotmat(p["quats"])
        s2 = torch.exp(2.0 * p["scales"])
        cov = (R * s2[:, None, :]) @ R.transpose(1, 2)
        eps = torch.randn(p["means"].shape, generator=generator).to(p["means"].device)
        noise = torch.einsum("nij,nj->ni", cov, eps) * (gate * scale)[:, None]
        noise[:skip_first] = 0
        p["means"].add_(noise)
