"""The CPU rasterizer against independent references: gsplat's torch projection/SH helpers, the
dense every-Gaussian-at-every-pixel compositor with autograd, and finite differences."""
from __future__ import annotations


import pytest
import torch

from splatlab.cameras import intrinsics, look_at
from splatlab.render import rasterize, select_backend
from splatlab.render.projection import covariance_3d, project
from splatlab.render.sh import eval_sh

W, H = 40, 32


def scene(n=120, seed=0, sh_degree=None, spread=0.7):
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=g) * spread
    quats = torch.randn(n, 4, generator=g)
    scales = torch.rand(n, 3, generator=g) * 0.12 + 0.02
    opacities = torch.rand(n, generator=g) * 0.9 + 0.05
    if sh_degree is None:
        colors = torch.rand(n, 3, generator=g)
    else:
        colors = torch.randn(n, (sh_degree + 1) ** 2, 3, generator=g) * 0.3
    return [means, quats, scales, opacities, colors]


def cameras():
    vm = torch.stack([look_at(torch.tensor([0.0, -3.0, 0.5]), torch.zeros(3)),
                      look_at(torch.tensor([2.0, -2.0, 1.5]), torch.tensor([0.1, 0.0, 0.0]))])
    K = torch.stack([intrinsics(34.0, 34.0, 20.0, 16.0), intrinsics(28.0, 31.0, 18.5, 17.0)])
    return vm, K


def render_both(params, vm, K, w=W, h=H, **kw):
    leaves = [p.clone().requires_grad_(True) for p in params]
    out_cpu = rasterize(*leaves, vm, K, w, h, backend="cpu", **kw)
    leaves_ref = [p.clone().requires_grad_(True) for p in params]
    out_ref = rasterize(*leaves_ref, vm, K, w, h, backend="reference", **kw)
    return leaves, out_cpu, leaves_ref, out_ref


def assert_grads_match(leaves, out_cpu, leaves_ref, out_ref, shapes_pair=None, seed=1):
    g = torch.Generator().manual_seed(seed)
    img, alpha, meta = out_cpu
    img_r, alpha_r, meta_r = out_ref
    w_img = torch.rand(img.shape, generator=g)
    w_alpha = torch.rand(alpha.shape, generator=g)
    ((img * w_img).sum() + (alpha * w_alpha).sum()).backward()
    ((img_r * w_img).sum() + (alpha_r * w_alpha).sum()).backward()
    for name, a, b in zip(["means", "quats", "scales", "opacities", "colors"], leaves, leaves_ref):
        if b.grad is None:  # e.g. colours in depth-only modes
            assert a.grad is None or a.grad.abs().max() == 0, name
            continue
        scale = b.grad.abs().max().clamp_min(1e-12)
        assert (a.grad - b.grad).abs().max() / scale <= 1e-4, name
    scale = meta_r.means2d.grad.abs().max()
    assert (meta.means2d.grad - meta_r.means2d.grad).abs().max() / scale <= 1e-4


# ---- projection and SH against gsplat's own torch implementation ---------------------------------
def test_projection_matches_gsplat_torch_impl():
    gs = pytest.importorskip("gsplat.cuda._torch_impl")
    means, quats, scales, opacities, _ = scene(200)
    vm, K = cameras()
    ours = project(means, quats, scales, opacities, vm, K, W, H, antialiased=True)
    covars, _ = gs._quat_scale_to_covar_preci(quats, scales, compute_preci=False, triu=False)
    assert torch.allclose(covariance_3d(quats, scales), covars, atol=1e-6)
    radii, means2d, depths, conics, comp = gs._fully_fused_projection(
        means, covars, vm, K, W, H, eps2d=0.3, calc_compensations=True)
    valid = (ours.radii > 0).all(-1) & (radii > 0).all(-1)
    assert valid.sum() > 50
    assert torch.allclose(ours.means2d[valid], means2d[valid], atol=1e-4)
    assert torch.allclose(ours.depths, depths, atol=1e-5)
    assert torch.allclose(ours.conics[valid], conics[valid], rtol=1e-4, atol=1e-6)
    assert torch.allclose(ours.opacities[valid], (opacities[None] * comp)[valid], atol=1e-6)
    # our radius is opacity-aware (where α drops below 1/255), so never larger than gsplat's 3.33σ box
    assert (ours.radii[valid] <= radii[valid]).all()


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_sh_matches_gsplat_torch_impl(degree):
    gs = pytest.importorskip("gsplat.cuda._torch_impl")
    g = torch.Generator().manual_seed(degree)
    dirs = torch.randn(500, 3, generator=g)
    coeffs = torch.randn(500, 16, 3, generator=g)
    assert torch.allclose(eval_sh(degree, coeffs, dirs), gs._spherical_harmonics(degree, dirs, coeffs), atol=1e-5)


# ---- CPU backend against the dense reference ------------------------------------------------------
@pytest.mark.parametrize("sh_degree", [None, 0, 1, 3])
@pytest.mark.parametrize("rasterize_mode", ["classic", "antialiased"])
def test_rgb_image_and_gradients_match_reference(sh_degree, rasterize_mode):
    params = scene(sh_degree=sh_degree, seed=3)
    vm, K = cameras()
    bg = torch.tensor([[0.2, 0.5, 0.9], [1.0, 1.0, 1.0]])
    leaves, out, leaves_r, out_r = render_both(params, vm, K, sh_degree=sh_degree, backgrounds=bg,
                                               rasterize_mode=rasterize_mode)
    assert (out[0] - out_r[0]).abs().max() <= 1e-5
    assert (out[1] - out_r[1]).abs().max() <= 1e-5
    assert out[1].max() > 0.5  # the scene is actually drawn
    assert_grads_match(leaves, out, leaves_r, out_r)


@pytest.mark.parametrize("render_mode", ["D", "ED", "RGB+D", "RGB+ED"])
def test_depth_modes_match_reference(render_mode):
    params = scene(seed=4)
    vm, K = cameras()
    leaves, out, leaves_r, out_r = render_both(params, vm, K, render_mode=render_mode)
    channels = 1 if render_mode in ("D", "ED") else 4
    assert out[0].shape == (2, H, W, channels)
    depth_scale = out_r[0][..., -1].abs().max()
    assert (out[0] - out_r[0]).abs().max() <= 1e-5 * max(1.0, depth_scale)
    assert_grads_match(leaves, out, leaves_r, out_r)


def test_generalized_exponential_kernel_matches_reference():
    params = scene(seed=5)
    g = torch.Generator().manual_seed(9)
    shapes = 0.8 + 2.5 * torch.rand(params[0].shape[0], generator=g)
    vm, K = cameras()
    s_cpu = shapes.clone().requires_grad_(True)
    s_ref = shapes.clone().requires_grad_(True)
    leaves = [p.clone().requires_grad_(True) for p in params]
    leaves_r = [p.clone().requires_grad_(True) for p in params]
    out = rasterize(*leaves, vm, K, W, H, shapes=s_cpu, backend="cpu")
    out_r = rasterize(*leaves_r, vm, K, W, H, shapes=s_ref, backend="reference")
    assert (out[0] - out_r[0]).abs().max() <= 1e-5
    assert_grads_match(leaves, out, leaves_r, out_r)
    assert (s_cpu.grad - s_ref.grad).abs().max() <= 1e-4 * s_ref.grad.abs().max()
    # β = 2 is exactly the Gaussian kernel
    two = rasterize(*params, vm, K, W, H, shapes=torch.full_like(shapes, 2.0), backend="cpu")[0]
    plain = rasterize(*params, vm, K, W, H, backend="cpu")[0]
    assert (two - plain).abs().max() <= 1e-6


def test_dense_scene_with_early_termination_matches_reference():
    # many opaque layers: pixels stop at T < 1e-4, exercising the stop rule in both passes
    params = scene(n=400, seed=6, spread=0.4)
    params[3] = torch.full_like(params[3], 0.95)
    params[2] = params[2] * 2.5
    vm, K = cameras()
    leaves, out, leaves_r, out_r = render_both(params, vm, K)
    assert (out[1] > 0.999).float().mean() > 0.2
    assert (out[0] - out_r[0]).abs().max() <= 1e-5
    assert_grads_match(leaves, out, leaves_r, out_r)


def test_image_larger_than_one_tile_and_not_tile_aligned():
    params = scene(n=300, seed=7, spread=1.0)
    vm, K = cameras()
    K = K.clone()
    K[:, :2] *= 1.9
    leaves, out, leaves_r, out_r = render_both(params, vm, K, w=75, h=53)
    assert (out[0] - out_r[0]).abs().max() <= 1e-5
    assert_grads_match(leaves, out, leaves_r, out_r)


def test_finite_differences_spot_check():
    """Gradients of the CPU backend against central differences in float64 of the dense reference
    of the same loss, so the reference's autograd is itself checked independently."""
    params = [p.double() for p in scene(n=40, seed=8)]
    vm, K = cameras()
    vm, K = vm[:1].double(), K[:1].double()
    g = torch.Generator().manual_seed(2)
    weights = torch.rand(1, H, W, 3, generator=g, dtype=torch.float64)

    def loss_ref(ps):
        img, _, _ = rasterize(*ps, vm, K, W, H, backend="reference")
        return (img * weights).sum()

    leaves = [p.float().clone().requires_grad_(True) for p in params]
    img, _, _ = rasterize(*leaves, vm.float(), K.float(), W, H, backend="cpu")
    (img * weights.float()).sum().backward()
    eps = 1e-5
    checked = 0
    for which in range(5):
        grad = leaves[which].grad.reshape(-1)
        for idx in torch.argsort(grad.abs(), descending=True)[:3].tolist():
            plus = [p.clone() for p in params]
            minus = [p.clone() for p in params]
            plus[which].view(-1)[idx] += eps
            minus[which].view(-1)[idx] -= eps
            fd = (loss_ref(plus) - loss_ref(minus)) / (2 * eps)
            assert abs(fd.item() - grad[idx].item()) <= 2e-3 * max(1.0, abs(fd.item())), (which, idx)
            checked += 1
    assert checked == 15


# ---- edge cases -------------------------------------------------------------------------------------
def test_behind_camera_and_off_screen_are_culled_with_zero_gradients():
    vm, K = cameras()
    vm, K = vm[:1], K[:1]
    cam_center = torch.linalg.inv(vm[0])[:3, 3]
    forward = torch.linalg.inv(vm[0])[:3, 2]
    means = torch.stack([cam_center - 2 * forward, cam_center + 3 * forward + 50 * torch.linalg.inv(vm[0])[:3, 0]])
    params = [means, torch.tensor([[1.0, 0, 0, 0]] * 2), torch.full((2, 3), 0.3), torch.full((2,), 0.9),
              torch.rand(2, 3)]
    leaves = [p.clone().requires_grad_(True) for p in params]
    img, alpha, meta = rasterize(*leaves, vm, K, W, H, backend="cpu")
    assert alpha.max() == 0
    assert not meta.visible.any()
    (img.sum() + alpha.sum()).backward()
    for leaf in leaves:
        assert leaf.grad.abs().max() == 0


def test_zero_opacity_draws_nothing():
    params = scene(seed=10)
    params[3] = torch.zeros_like(params[3])
    vm, K = cameras()
    img, alpha, meta = rasterize(*params, vm, K, W, H, backend="cpu",
                                 backgrounds=torch.tensor([0.3, 0.4, 0.5]))
    assert alpha.max() == 0
    assert torch.allclose(img, torch.tensor([0.3, 0.4, 0.5]).expand_as(img))


def test_one_pixel_image_matches_reference():
    params = scene(seed=11)
    vm, K = cameras()
    K = K.clone()
    K[:, :2, :] /= 32
    leaves, out, leaves_r, out_r = render_both(params, vm, K, w=1, h=1)
    assert out[0].shape == (2, 1, 1, 3)
    assert (out[0] - out_r[0]).abs().max() <= 1e-5
    assert_grads_match(leaves, out, leaves_r, out_r)


def test_empty_scene_renders_background():
    vm, K = cameras()
    empty = [torch.zeros(0, 3), torch.zeros(0, 4), torch.zeros(0, 3), torch.zeros(0), torch.zeros(0, 3)]
    leaves = [p.clone().requires_grad_(True) for p in empty]
    img, alpha, meta = rasterize(*leaves, vm, K, W, H, backend="cpu", backgrounds=torch.ones(3))
    assert img.shape == (2, H, W, 3) and torch.all(img == 1) and torch.all(alpha == 0)
    img.sum().backward()
    assert leaves[0].grad.shape == (0, 3)


@pytest.mark.parametrize("field", [0, 1, 2, 3, 4])
def test_nan_input_is_a_clear_error(field):
    params = scene(seed=12)
    params[field] = params[field].clone()
    params[field].view(-1)[5] = float("nan")
    vm, K = cameras()
    with pytest.raises(ValueError, match="NaN"):
        rasterize(*params, vm, K, W, H, backend="cpu")


def test_finite_check_survives_an_overflowing_sum():
    """The NaN/inf check sums each tensor first; finite values whose sum overflows must still pass,
    and an inf hidden among them must still be caught."""
    params = scene(seed=12)
    vm, K = cameras()
    params[4] = params[4].clone()
    params[4][:4] = 3e38  # sum overflows to inf, every value is finite
    rasterize(*params, vm, K, W, H, backend="cpu")
    params[4][4, 0] = float("inf")
    with pytest.raises(ValueError, match="colors"):
        rasterize(*params, vm, K, W, H, backend="cpu")


def test_bad_arguments_are_clear_errors():
    params = scene()
    vm, K = cameras()
    with pytest.raises(ValueError, match="render_mode"):
        rasterize(*params, vm, K, W, H, render_mode="RGBD")
    with pytest.raises(ValueError, match="quats"):
        rasterize(params[0], params[1][:-1], *params[2:], vm, K, W, H)
    with pytest.raises(ValueError, match="sh_degree"):
        rasterize(*params, vm, K, W, H, sh_degree=2)
    with pytest.raises(ValueError, match="backend"):
        rasterize(*params, vm, K, W, H, backend="metal")


def test_backend_selection(monkeypatch):
    monkeypatch.delenv("SPLATLAB_BACKEND", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert select_backend("auto") == expected
    monkeypatch.setenv("SPLATLAB_BACKEND", "reference")
    assert select_backend("auto") == "reference"
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="cuda"):
            select_backend("cuda")


# ---- what densification reads ------------------------------------------------------------------------
def test_absgrad_bounds_grad_and_equals_it_for_a_single_pixel():
    params = scene(seed=13)
    vm, K = cameras()
    leaves = [p.clone().requires_grad_(True) for p in params]
    img, alpha, meta = rasterize(*leaves, vm, K, W, H, backend="cpu", absgrad=True)
    (img * torch.randn_like(img)).sum().backward()
    assert meta.absgrad.shape == meta.means2d.grad.shape
    assert torch.all(meta.absgrad + 1e-7 >= meta.means2d.grad.abs())
    assert (meta.absgrad - meta.means2d.grad.abs()).abs().max() > 1e-6  # pixel terms of both signs
    K1 = K.clone()
    K1[:, :2, :] /= 32
    leaves = [p.clone().requires_grad_(True) for p in params]
    img, alpha, meta = rasterize(*leaves, vm, K1, 1, 1, backend="cpu", absgrad=True)
    (img * torch.randn_like(img)).sum().backward()
    assert torch.allclose(meta.absgrad, meta.means2d.grad.abs(), atol=1e-7)


def test_meta_shapes_and_radii():
    params = scene(seed=14)
    vm, K = cameras()
    _, _, meta = rasterize(*params, vm, K, W, H, backend="cpu")
    n = params[0].shape[0]
    assert meta.means2d.shape == (2, n, 2) and meta.radii.shape == (2, n, 2)
    assert meta.depths.shape == (2, n) and meta.visible.shape == (2, n)
    ref = project(params[0], params[1], params[2], params[3], vm, K, W, H)
    assert torch.equal(meta.radii, ref.radii)


@pytest.mark.parametrize("n", [50, 20_000])  # one chunk on the calling thread / parallel chunks
def test_tile_binning_matches_a_plain_sort(n):
    import numpy as np

    from splatlab.render.cpu.kernels import TILE, bin_gaussians

    rng = np.random.default_rng(n)
    width, height = 150, 90  # not tile-aligned
    means2d = rng.uniform(-30, 180, (n, 2)).astype(np.float32)
    radii = rng.integers(0, 25, (n, 2)).astype(np.int32)
    depths = rng.uniform(0.5, 5.0, n).astype(np.float32)
    depths[::7] = depths[3]  # ties keep id order
    offsets, ids = bin_gaussians(means2d, radii, depths, width, height)
    tiles_x = (width + TILE - 1) // TILE
    order = np.lexsort((np.arange(n), depths))
    expected = [[] for _ in range(len(offsets) - 1)]
    px = np.arange(width) + 0.5
    py = np.arange(height) + 0.5
    for g in order:
        if radii[g, 0] <= 0 or radii[g, 1] <= 0:
            continue
        xs = np.nonzero(np.abs(px - means2d[g, 0]) <= radii[g, 0])[0]
        ys = np.nonzero(np.abs(py - means2d[g, 1]) <= radii[g, 1])[0]
        if xs.size == 0 or ys.size == 0:
            continue
        for ty in range(ys[0] // TILE, ys[-1] // TILE + 1):
            for tx in range(xs[0] // TILE, xs[-1] // TILE + 1):
                expected[ty * tiles_x + tx].append(g)
    for t, lst in enumerate(expected):
        assert ids[offsets[t]:offsets[t + 1]].tolist() == lst, t


def test_float32_log_and_pow_match_float64():
    """The GES falloff's vectorised σ^(β/2) (`kernels.pow_f32`, via `log_f32`) against numpy in
    float64, over the σ and β a render meets; 0 for σ = 0."""
    import numpy as np
    from numba import njit

    from splatlab.render.cpu.kernels import exp_neg_f32, log_f32, pow_f32

    @njit
    def evaluate(x, y):
        out = np.empty((3, x.shape[0]), np.float32)
        for i in range(x.shape[0]):
            out[0, i] = log_f32(x[i])
            out[1, i] = pow_f32(x[i], y[i])
            out[2, i] = exp_neg_f32(out[1, i])
        return out

    x = np.logspace(-6, 2.5, 20001).astype(np.float32)
    y = np.random.default_rng(0).uniform(0.25, 4.0, x.shape[0]).astype(np.float32)
    log_, pow_, falloff = evaluate(x, y)
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    assert np.max(np.abs(log_ - np.log(x64)) / np.maximum(np.abs(np.log(x64)), 1e-3)) < 1e-6
    assert np.max(np.abs(pow_ - x64 ** y64) / (x64 ** y64)) < 2e-5
    assert np.max(np.abs(falloff - np.exp(-(x64 ** y64)))) < 1e-6
    assert evaluate(np.zeros(1, np.float32), np.ones(1, np.float32))[1, 0] == 0.0
