"""Photometric training losses: (1 - λ)·L1 + λ·(1 - SSIM), with the SSIM of `splatlab.metrics`."""
from __future__ import annotations

from torch import Tensor

from splatlab.metrics import ssim


def l1_loss(pred: Tensor, target: Tensor) -> Tensor:
    return (pred - target).abs().mean()


def photometric_loss(pred: Tensor, target: Tensor, ssim_lambda: float = 0.2) -> dict[str, Tensor]:
    """The recipe's (1 - λ)·L1 + λ·(1 - SSIM) as named terms."""
    terms = {"l1": (1.0 - ssim_lambda) * l1_loss(pred, target)}
    if ssim_lambda > 0:
        terms["dssim"] = ssim_lambda * (1.0 - ssim(pred, target))
    return terms
