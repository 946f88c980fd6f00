"""SplatFormer: a point transformer that refines a trained splat set in one pass (`model.py`),
built on serialised attention over space-filling curves (`network.py`, `serialization.py`)."""
from .model import SplatFormer, SplatFormerConfig

__all__ = ["SplatFormer", "SplatFormerConfig"]
