"""The contract between the rasterizer and its users (trainer, densification, viewer)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import Tensor

RenderMode = Literal["RGB", "D", "ED", "RGB+D", "RGB+ED"]
RasterizeMode = Literal["classic", "antialiased"]
Backend = Literal["auto", "cpu", "cuda", "reference"]


@dataclass
class RenderMeta:
    """What densification and viewers need from a render.

    `means2d` keeps its gradient after `backward()` (`means2d.grad`, shape (C,N,2)); the summed
    per-pixel absolute gradient is in `absgrad` when requested. `radii` (C,N,2) is 0 for culled
    Gaussians; `visible` is `radii > 0` on both axes.
    """

    means2d: Tensor
    radii: Tensor
    depths: Tensor
    conics: Tensor
    opacities: Tensor
    width: int
    height: int
    backend: str
    absgrad_buffer: Tensor | None = None

    @property
    def visible(self) -> Tensor:
        return (self.radii > 0).all(dim=-1)

    @property
    def grad2d(self) -> Tensor | None:
        """∂L/∂means2d (C,N,2) after backward (None before)."""
        return self.means2d.grad

    @property
    def n_cameras(self) -> int:
        return self.means2d.shape[0]

    @property
    def absgrad(self) -> Tensor | None:
        """Σ over pixels of |∂L/∂mean2d| (AbsGS), available after backward with absgrad=True."""
        if self.absgrad_buffer is not None:
            return self.absgrad_buffer
        return getattr(self.means2d, "absgrad", None)
