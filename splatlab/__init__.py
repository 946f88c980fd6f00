"""splatlab: train, refine, compress and view 3D Gaussian splatting scenes, on CPU or CUDA."""
from .cameras import Cameras
from .gaussians import Gaussians
from .render import RenderMeta, rasterize

__all__ = ["Cameras", "Gaussians", "RenderMeta", "rasterize"]
__version__ = "0.1.0"
