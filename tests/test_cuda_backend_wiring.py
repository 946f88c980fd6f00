"""The CUDA backend cannot run here (no GPU); check its argument mapping against a stand-in for
gsplat.rasterization that records the call and answers with our CPU backend's results."""
from __future__ import annotations

import sys
import types


from splatlab.render import rasterize
from splatlab.render.cuda import rasterize_cuda
from test_rasterizer import W, H, cameras, scene


def test_cuda_backend_maps_arguments_and_meta(monkeypatch):
    calls = {}

    def fake_rasterization(means, quats, scales, opacities, colors, viewmats, Ks, width, height, **kw):
        calls.update(kw, width=width, height=height)
        img, alpha, meta = rasterize(means, quats, scales, opacities, colors, viewmats, Ks, width, height,
                                     backend="cpu", sh_degree=kw["sh_degree"], backgrounds=kw["backgrounds"],
                                     render_mode=kw["render_mode"], rasterize_mode=kw["rasterize_mode"])
        radii = meta.radii[..., 0].clone()  # gsplat < 1.5 style: one radius per Gaussian
        return img, alpha, {"means2d": meta.means2d, "radii": radii, "depths": meta.depths,
                            "conics": meta.conics, "opacities": meta.opacities}

    module = types.ModuleType("gsplat.rendering")
    module.rasterization = fake_rasterization
    monkeypatch.setitem(sys.modules, "gsplat.rendering", module)
    params = scene(sh_degree=1)
    vm, K = cameras()
    img, alpha, meta = rasterize_cuda(*params, vm, K, W, H, near_plane=0.01, far_plane=100.0, sh_degree=1,
                                      backgrounds=None, render_mode="RGB+ED", rasterize_mode="antialiased",
                                      eps2d=0.3, radius_clip=0.0, absgrad=True, shapes=None)
    assert calls["sh_degree"] == 1 and calls["render_mode"] == "RGB+ED" and calls["absgrad"] is True
    assert calls["packed"] is False and calls["far_plane"] == 100.0
    assert meta.backend == "cuda" and meta.radii.shape == (2, params[0].shape[0], 2)
    assert img.shape == (2, H, W, 4)
