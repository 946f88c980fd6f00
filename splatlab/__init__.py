"""splatlab: train, refine, compress and view 3D Gaussian splatting scenes, on CPU or CUDA."""
import os

# torch and numba each keep an OpenMP pool whose idle threads spin by default. With anything else
# running on the cores (a second process, the viewer, a browser) the spinning pools starve each
# other: measured on 2 cores, a 20k-Gaussian forward took 230 ms spinning vs 36 ms sleeping.
# Must be set before torch / numba load libgomp; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .cameras import Cameras
from .gaussians import Gaussians
from .render import RenderMeta, rasterize

__all__ = ["Cameras", "Gaussians", "RenderMeta", "rasterize"]
__version__ = "0.1.0"
