"""Differentiable Gaussian rasterization (CPU kernels or gsplat CUDA behind one API)."""
from .api import rasterize, select_backend
from .types import RenderMeta

__all__ = ["rasterize", "select_backend", "RenderMeta"]
