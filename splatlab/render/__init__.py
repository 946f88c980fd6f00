"""Differentiable Gaussian rasterization (CPU kernels or gsplat CUDA behind one API), and the one
render path (`render`) that draws a trained scene the way its method does."""
from .api import rasterize, select_backend
from .path import PassesMeta, RenderOutput, method_of, render
from .types import RenderMeta

__all__ = ["rasterize", "select_backend", "RenderMeta", "render", "RenderOutput", "PassesMeta", "method_of"]
