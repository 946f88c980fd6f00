"""The one render path: a trained scene (Gaussians + its method) seen by a batch of cameras.

    out = render(gaussians, cameras, training=False)      # evaluation, viewer, `splatlab render`
    out = render(g, cams, method=m, training=True, step=s, absgrad=...)   # the trainer

The method (by default the one `gaussians.method` names) turns the Gaussians into one or more
`rasterize` calls (`Method.render_passes`); this function makes them, adds their images with the
passes' weights and merges what densification needs from them. Every caller outside the
rasterizer's own tests renders through here, so a method's scene looks the same everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Sequence

import torch
from torch import Tensor

from splatlab.cameras import Cameras
from splatlab.gaussians import Gaussians

from .api import rasterize, select_backend
from .types import RenderMeta, RenderMode

if TYPE_CHECKING:  # pragma: no cover
    from splatlab.methods import Method, RenderPass


@dataclass
class RenderOutput:
    images: Tensor  # (C, H, W, D) colour (and depth) channels
    alphas: Tensor  # (C, H, W, 1)
    meta: "RenderMeta | PassesMeta"


class PassesMeta:
    """`RenderMeta`'s interface over several rasterize passes, in the model's Gaussian rows.

    Each (pass, camera) pair counts as one observation: tensors are (sum of pass cameras, N, ...)
    with zeros / invisible where a pass did not draw a row. Densification reads `grad2d`,
    `absgrad`, `visible`, `radii`, `n_cameras`, `width`, `height`.
    """

    def __init__(self, metas: Sequence[RenderMeta], passes: Sequence["RenderPass"], n: int) -> None:
        self.metas, self.passes, self.n = list(metas), list(passes), int(n)
        self.width, self.height, self.backend = metas[0].width, metas[0].height, metas[0].backend

    def _scatter(self, values: list[Tensor | None], fill: float = 0.0) -> Tensor | None:
        if any(v is None for v in values):
            return None
        out = []
        for v, p in zip(values, self.passes):
            if p.index is None:
                out.append(v)
                continue
            full = v.new_full((v.shape[0], self.n, *v.shape[2:]), fill)
            full[:, p.index] = v
            out.append(full)
        return torch.cat(out, dim=0)

    @property
    def n_cameras(self) -> int:
        return sum(m.n_cameras for m in self.metas)

    @property
    def means2d(self) -> Tensor:
        return self._scatter([m.means2d.detach() for m in self.metas])

    @property
    def radii(self) -> Tensor:
        return self._scatter([m.radii for m in self.metas])

    @property
    def depths(self) -> Tensor:
        return self._scatter([m.depths.detach() for m in self.metas])

    @property
    def visible(self) -> Tensor:
        return (self.radii > 0).all(dim=-1)

    @property
    def grad2d(self) -> Tensor | None:
        return self._scatter([m.grad2d for m in self.metas])

    @property
    def absgrad(self) -> Tensor | None:
        return self._scatter([m.absgrad for m in self.metas])


@lru_cache(maxsize=32)
def _method_for_spec(name: str, options_key: str) -> "Method":
    import json

    from splatlab.methods import make_method

    return make_method(name, json.loads(options_key))


def method_of(gaussians: Gaussians) -> "Method":
    """The method a scene was made with (plain 3DGS when it does not say), built from its options."""
    import json

    spec = gaussians.method
    if spec is None:
        from splatlab.methods import make_method
        return make_method("gs3d", {})
    return _method_for_spec(spec.name, json.dumps(spec.options, sort_keys=True))


def _background_for(background: Tensor | None, cams: Tensor | None, n_cameras: int) -> Tensor | None:
    if background is None:
        return None
    bg = torch.as_tensor(background, dtype=torch.float32)
    if bg.ndim == 1:
        return bg
    return bg if cams is None else bg[cams]


def render(gaussians: Gaussians, cameras: Cameras, *, method: "Method | None" = None, training: bool = False,
           step: int | None = None, sh_degree: int | None = None, background: Tensor | None = None,
           backend: str = "auto", absgrad: bool = False, render_mode: RenderMode = "RGB",
           colors: Tensor | None = None) -> RenderOutput:
    """Render `gaussians` into every camera of `cameras` the way its method does.

    `training` enables training-only effects (e.g. deblurring's blur kernels); evaluation renders
    (the default) depend only on the Gaussians' fields and the method's options. `sh_degree`
    defaults to all the bands the Gaussians carry; `background` is (3,) or (C, 3). `colors`
    (N, D) replaces the Gaussians' own colours in every pass (e.g. a constant 1 per splat measures
    its blending weight).
    """
    from splatlab.methods import RenderContext

    if method is None:
        method = method_of(gaussians)
    degree = gaussians.sh_degree if sh_degree is None else min(int(sh_degree), gaussians.sh_degree)
    backend = select_backend(backend)
    ctx = RenderContext(training=training, step=step, sh_degree=degree, backend=backend)
    passes = method.render_passes(gaussians, cameras, ctx)
    if not passes:
        raise ValueError(f"method {method.name!r} returned no render passes")
    if colors is not None:
        for p in passes:
            p.args = {**p.args, "colors": colors if p.index is None else colors[p.index], "sh_degree": None}
    common = dict(width=cameras.width, height=cameras.height, absgrad=absgrad, backend=backend,
                  render_mode=render_mode)
    single = passes[0]
    if len(passes) == 1 and single.cameras is None and single.weight == 1.0 and single.index is None:
        images, alphas, meta = rasterize(viewmats=cameras.viewmats, Ks=cameras.Ks,
                                         backgrounds=_background_for(background, None, len(cameras)),
                                         **common, **single.args)
        return RenderOutput(images, alphas, meta)

    images = alphas = None
    metas = []
    for p in passes:
        cams = p.cameras
        vm = cameras.viewmats if cams is None else cameras.viewmats[cams]
        Ks = cameras.Ks if cams is None else cameras.Ks[cams]
        img, alpha, meta = rasterize(viewmats=vm, Ks=Ks, backgrounds=_background_for(background, cams, len(cameras)),
                                     **common, **p.args)
        if images is None:
            images = img.new_zeros((len(cameras), *img.shape[1:]))
            alphas = alpha.new_zeros((len(cameras), *alpha.shape[1:]))
        if cams is None:
            images = images + p.weight * img
            alphas = alphas + p.weight * alpha
        else:
            images = images.index_add(0, cams, p.weight * img)
            alphas = alphas.index_add(0, cams, p.weight * alpha)
        metas.append(meta)
    return RenderOutput(images, alphas, PassesMeta(metas, passes, len(gaussians)))
