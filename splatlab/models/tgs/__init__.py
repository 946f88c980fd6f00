"""Triplane-Gaussian: one image -> a 3D object as Gaussians (see model.py; weights/README.md is the card)."""
from .model import TGSConfig, TriplaneGaussian

__all__ = ["TGSConfig", "TriplaneGaussian"]
