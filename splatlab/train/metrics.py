"""Image-quality metrics: PSNR, SSIM, and LPIPS only when its weights are already on disk."""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor

from .losses import ssim

LPIPS_SKIPPED = "skipped: no local LPIPS weights"


@torch.no_grad()
def psnr(pred: Tensor, target: Tensor) -> float:
    mse = torch.mean((pred.clamp(0, 1) - target) ** 2).item()
    return float("inf") if mse <= 0 else -10.0 * torch.log10(torch.tensor(mse)).item()


@torch.no_grad()
def ssim_metric(pred: Tensor, target: Tensor) -> float:
    return float(ssim(pred.clamp(0, 1), target).item())


def local_lpips_weights() -> Path | None:
    """A local LPIPS weight file named by $SPLATLAB_LPIPS_WEIGHTS, if it exists (never downloads)."""
    path = os.environ.get("SPLATLAB_LPIPS_WEIGHTS")
    if path and Path(path).is_file():
        return Path(path)
    return None


class LPIPS:
    """LPIPS via the `lpips` package with weights loaded from disk only; `available` says if usable."""

    def __init__(self) -> None:
        self.model = None
        self.reason = LPIPS_SKIPPED
        weights = local_lpips_weights()
        if weights is None:
            return
        try:  # pragma: no cover - needs the optional package and local weights
            import lpips  # type: ignore
            model = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False)
            model.load_state_dict(torch.load(weights, map_location="cpu"), strict=False)
            self.model = model.eval()
            self.reason = ""
        except Exception as exc:  # pragma: no cover
            self.reason = f"skipped: LPIPS unavailable ({type(exc).__name__})"

    @property
    def available(self) -> bool:
        return self.model is not None

    @torch.no_grad()
    def __call__(self, pred: Tensor, target: Tensor) -> float:  # pragma: no cover
        p = pred.clamp(0, 1).permute(2, 0, 1)[None] * 2 - 1
        t = target.permute(2, 0, 1)[None] * 2 - 1
        return float(self.model(p, t).item())
