"""The method registry, typed options and the one render path's multi-pass merging."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest
import torch

from splatlab.cameras import Cameras, intrinsics_from_fov, look_at
from splatlab.gaussians import Gaussians
from splatlab.methods import Method, MethodConfig, RenderPass, available_methods, coerce_options, make_method
from splatlab.render import PassesMeta, rasterize, render
from splatlab.train import train_main
from test_train_scene import make_scene


@dataclass
class DemoConfig(MethodConfig):
    count: int = 2
    rate: float = 0.5
    flag: bool = False
    mode: Literal["a", "b"] = "a"
    limit: int | None = None
    keys: tuple[str, ...] = ("x", "y")
    weight: float = field(default=1.0, metadata={"aliases": ("lambda",)})

    def validate(self) -> None:
        if self.count < 1:
            raise ValueError(f"count must be >= 1, got {self.count}")


def test_options_are_coerced_by_annotation():
    c = coerce_options("demo", DemoConfig, {"count": "3", "rate": "1e-3", "flag": "yes", "mode": "B",
                                            "limit": "none", "keys": "p, q", "lambda": 2, "demo-count": 4})
    assert (c.count, c.rate, c.flag, c.mode, c.limit, c.keys, c.weight) == (4, 1e-3, True, "b", None, ("p", "q"), 2.0)
    assert coerce_options("demo", DemoConfig, {"limit": 7}).limit == 7
    assert coerce_options("demo", DemoConfig, {}) == DemoConfig()


@pytest.mark.parametrize("options, words", [
    ({"cnt": 1}, ["unknown option 'cnt'", "count", "rate", "mode"]),
    ({"count": "2.5"}, ["count", "integer"]),
    ({"rate": "fast"}, ["rate", "number"]),
    ({"rate": "nan"}, ["rate", "finite"]),
    ({"flag": "maybe"}, ["flag", "true or false"]),
    ({"mode": "c"}, ["mode", "one of a, b"]),
    ({"count": 0}, ["count must be >= 1"]),
])
def test_bad_options_name_the_problem(options, words):
    with pytest.raises(ValueError) as err:
        coerce_options("demo", DemoConfig, options)
    msg = str(err.value)
    assert "\n" not in msg and all(w in msg for w in words), msg


def test_registry_lists_and_rejects():
    assert {"gs3d", "sog"} <= set(available_methods())
    assert make_method("3dgs").name == "gs3d"  # old runs said 3dgs
    with pytest.raises(ValueError, match="unknown method 'nope' .*gs3d"):
        make_method("nope")


def test_cli_errors_are_one_line(tmp_path, capsys):
    scene = make_scene(tmp_path / "s", size=12, n_train=3, n_test=1)
    assert train_main([str(scene), "--out", str(tmp_path / "a"), "--method", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown method 'nope'" in err and "gs3d" in err and len(err.strip().splitlines()) == 1
    assert train_main([str(scene), "--out", str(tmp_path / "b"), "--method-option", "grid=8"]) == 2
    err = capsys.readouterr().err
    assert "unknown option 'grid' for method 'gs3d'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert train_main(["--list-methods"]) == 0
    out = capsys.readouterr().out
    assert "gs3d:" in out and "sog:" in out and "sort_every=100" in out


# ---------------------------------------------------------------------------------- render path

def scene_gaussians(n=30, seed=0) -> Gaussians:
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=g) - 0.5)
    return Gaussians(means, torch.randn(n, 4, generator=g), torch.log(0.05 + 0.1 * torch.rand(n, 3, generator=g)),
                     torch.randn(n, generator=g), torch.rand(n, 1, 3, generator=g), torch.zeros(n, 3, 3))


def cameras(n=3, size=24) -> Cameras:
    vms = torch.stack([look_at(torch.tensor([2.5, 0.4 * i - 0.4, 0.8]), torch.zeros(3)) for i in range(n)])
    K = intrinsics_from_fov(0.9, size, size)
    return Cameras(vms, K[None].expand(n, 3, 3), size, size)


class TwoPasses(Method):
    """Renders the average of the scene and a shifted copy; camera 0 additionally only half of the rows."""

    name = "twopasses"

    def render_passes(self, g, cams, ctx):
        base = self.raster_args(g, cams, ctx)
        shifted = dict(base, means=base["means"] + torch.tensor([0.0, 0.05, 0.0]))
        half = torch.arange(0, len(g), 2)
        sub = {k: (v[half] if torch.is_tensor(v) and v.shape[:1] == (len(g),) else v) for k, v in base.items()}
        rest = torch.arange(1, len(cams))
        return [RenderPass(base, weight=0.5), RenderPass(shifted, weight=0.5, cameras=rest),
                RenderPass(sub, weight=0.5, cameras=torch.tensor([0]), index=half)]


def test_multi_pass_render_matches_its_definition():
    g, cams = scene_gaussians(), cameras()
    bg = torch.tensor([0.2, 0.3, 0.4])
    out = render(g, cams, method=TwoPasses(), background=bg)
    args = dict(colors=g.sh_coeffs, sh_degree=0, width=cams.width, height=cams.height, backgrounds=bg)
    a, _, _ = rasterize(g.means, g.params["quats"], g.scales, g.opacities, viewmats=cams.viewmats, Ks=cams.Ks, **args)
    b, _, _ = rasterize(g.means + torch.tensor([0.0, 0.05, 0.0]), g.params["quats"], g.scales, g.opacities,
                        viewmats=cams.viewmats[1:], Ks=cams.Ks[1:], **args)
    h = torch.arange(0, len(g), 2)
    args["colors"] = g.sh_coeffs[h]
    c, _, _ = rasterize(g.means[h], g.params["quats"][h], g.scales[h], g.opacities[h], viewmats=cams.viewmats[:1],
                        Ks=cams.Ks[:1], **args)
    expect = 0.5 * a + 0.5 * torch.cat([c, b])
    torch.testing.assert_close(out.images, expect, atol=1e-6, rtol=0)

    # densification sees every (pass, camera) pair, scattered back to the model's rows
    out.images.sum().backward()
    meta = out.meta
    assert isinstance(meta, PassesMeta) and meta.n_cameras == 3 + 2 + 1
    grad = meta.grad2d
    assert grad.shape == (6, len(g), 2)
    torch.testing.assert_close(grad[:3], meta.metas[0].means2d.grad)
    odd = torch.arange(1, len(g), 2)
    assert torch.all(grad[5, odd] == 0) and torch.all(~meta.visible[5, odd])
    torch.testing.assert_close(grad[5, h], meta.metas[2].means2d.grad[0])


def test_single_pass_is_plain_rasterize():
    g, cams = scene_gaussians(seed=1), cameras(2)
    out = render(g, cams, sh_degree=0)
    img, alpha, _ = rasterize(g.means, g.params["quats"], g.scales, g.opacities, g.sh_coeffs, cams.viewmats,
                              cams.Ks, cams.width, cams.height, sh_degree=0)
    assert torch.equal(out.images, img) and torch.equal(out.alphas, alpha)
