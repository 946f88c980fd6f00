"""`gs3d`: plain 3D Gaussian splatting (Kerbl et al. 2023), the baseline every method extends."""
from __future__ import annotations

from .base import Method
from .registry import register_method


@register_method("gs3d", aliases=("3dgs",))
class GaussianSplatting(Method):
    """3D Gaussian splatting: Gaussian kernels, (1-λ)·L1 + λ·D-SSIM, no extra fields."""
