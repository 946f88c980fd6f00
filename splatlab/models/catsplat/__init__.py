"""CATSplat: one photo (+ caption) -> a 3D scene as Gaussians (see model.py; weights/README.md is the card)."""
from .model import CATSplat, CATSplatConfig

__all__ = ["CATSplat", "CATSplatConfig"]
