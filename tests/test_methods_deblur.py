"""Deblurring 3DGS (`splatlab.methods.deblur`): the blur kernel is off at evaluation, its training
renders are the rasterizer's renders of hand-transformed Gaussians (enlarged for defocus, the
mean of shifted copies for motion), gradients reach the MLP and the view embeddings, and the
paper's point adding / depth pruning do what they say. Tiny scenes, CPU backend."""
from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from splatlab.cameras import Cameras, intrinsics_from_fov, look_at
from splatlab.gaussians import Gaussians, rgb_to_sh0
from splatlab.methods import make_method
from splatlab.methods.deblur import add_points, depth_prune, positional_encoding
from splatlab.render import render
from splatlab.render.api import rasterize

SIZE = 24


def scene_gaussians(n: int = 40, seed: int = 0) -> Gaussians:
    g = torch.Generator().manual_seed(seed)
    means = torch.rand(n, 3, generator=g) - 0.5
    quats = F.normalize(torch.randn(n, 4, generator=g), dim=-1)
    log_scales = torch.log(0.04 + 0.08 * torch.rand(n, 3, generator=g))
    opac = torch.logit(0.3 + 0.6 * torch.rand(n, generator=g))
    sh0 = rgb_to_sh0(torch.rand(n, 3, generator=g))
    shN = 0.1 * torch.randn(n, 3, 3, generator=g)
    return Gaussians(means, quats, log_scales, opac, sh0, shN)


def cameras(n: int = 2) -> Cameras:
    eyes = [torch.tensor([2.5 * math.cos(a), 2.5 * math.sin(a), 0.8]) for a in torch.linspace(0, 2, n).tolist()]
    vms = torch.stack([look_at(e, torch.zeros(3)) for e in eyes])
    Ks = intrinsics_from_fov(0.8, SIZE, SIZE)[None].expand(n, 3, 3).clone()
    return Cameras(vms, Ks, SIZE, SIZE).with_ids(torch.tensor([3, 1][:n]))


def plain(g: Gaussians, cams: Cameras, **over) -> torch.Tensor:
    """The rasterizer itself (no method) on the Gaussians, with fields replaced by `over`."""
    args = dict(means=g.means, quats=g.params["quats"], scales=g.scales, opacities=g.opacities,
                colors=g.sh_coeffs, sh_degree=1)
    args.update(over)
    img, _, _ = rasterize(viewmats=cams.viewmats, Ks=cams.Ks, width=SIZE, height=SIZE, backend="cpu",
                          backgrounds=torch.ones(len(cams), 3), **args)
    return img


def draw(g, cams, method, training):
    return render(g, cams, method=method, training=training, step=5, background=torch.ones(3), backend="cpu").images


def make_identity(method) -> None:
    """Factor outputs -1e4 (clamped to factor 1 exactly), motion offset outputs 0."""
    with torch.no_grad():
        method.kernel.head.weight.zero_()
        method.kernel.head.bias.fill_(-1e4)
        if method.config.kernel == "motion":
            method.kernel.head.bias[7 * (method.config.copies + 1):] = 0.0
            if method.kernel.shifts is not None:
                method.kernel.shifts.zero_()


def randomize_head(method, std: float = 3.0) -> None:
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        method.kernel.head.weight.copy_(std * torch.randn(method.kernel.head.weight.shape, generator=g))
        method.kernel.head.bias.copy_(std * torch.randn(method.kernel.head.bias.shape, generator=g))


@pytest.mark.parametrize("kernel", ["defocus", "motion"])
def test_evaluation_render_is_plain_3dgs(kernel):
    g, cams = scene_gaussians(), cameras()
    m = make_method("deblur", {"kernel": kernel, "lambda_s": 0.5, "max_factor": 2.0, "lambda_p": 0.2, "conserve": False})
    randomize_head(m)
    reference = plain(g, cams)
    with torch.no_grad():
        torch.testing.assert_close(draw(g, cams, m, training=False), reference, atol=1e-6, rtol=0)
        # ...while the training render with these (non-identity) kernels does blur
        assert (draw(g, cams, m, training=True) - reference).abs().max() > 1e-2


@pytest.mark.parametrize("kernel", ["defocus", "motion"])
def test_identity_kernel_training_render_is_plain(kernel):
    g, cams = scene_gaussians(), cameras()
    m = make_method("deblur", {"kernel": kernel})
    make_identity(m)
    with torch.no_grad():
        torch.testing.assert_close(draw(g, cams, m, training=True), plain(g, cams), atol=1e-5, rtol=0)


@pytest.mark.parametrize("form", ["clamp", "softplus"])
def test_defocus_training_render_enlarges_scales_and_quats(form):
    g, cams = scene_gaussians(), cameras()
    m = make_method("deblur", {"lambda_s": 0.3, "max_factor": 1.5, "factor_form": form, "conserve": False})
    randomize_head(m, std=1.0)
    with torch.no_grad():
        ours = draw(g, cams, m, training=True)
        for c in range(len(cams)):
            raw = m.kernel(g, cams.image_ids[c])
            if form == "softplus":
                f = (1 + 0.3 * torch.log1p(torch.exp(raw))).clamp(max=1.5)  # the documented closed form
                assert (f > 1.0 + 1e-3).all()
            else:
                f = 1 + 0.5 * torch.tanh(torch.clamp(0.3 * raw, min=0.0) / 0.5)  # the documented closed form
                assert (f == 1).any() and ((f > 1) & (f < 1.5)).any()
            assert (f >= 1).all() and (f <= 1.5).all() and (f < 1.5).any()
            ref = plain(g, cams[c:c + 1], scales=g.scales * f[:, :3], quats=g.params["quats"] * f[:, 3:])
            torch.testing.assert_close(ours[c:c + 1], ref, atol=1e-5, rtol=0)


def test_motion_render_is_the_mean_of_shifted_copies():
    g, cams = scene_gaussians(), cameras()
    m = make_method("deblur", {"kernel": "motion", "copies": 3, "lambda_p": 0.05, "lambda_s": 0.1, "global_shift": False})
    m.scene_scale = 2.0
    randomize_head(m, std=1.0)
    with torch.no_grad():
        ours = draw(g, cams, m, training=True)
        for c in range(len(cams)):
            raw = m.kernel(g, cams.image_ids[c])
            assert raw.shape == (len(g), 4 * 7 + 3 * 3)
            renders = []
            for k in range(4):
                f = 1 + 0.1 * torch.tanh(torch.clamp(0.1 * raw[:, 7 * k:7 * k + 7], min=0.0) / 0.1)
                shift = 0 if k == 0 else raw[:, 28 + 3 * (k - 1):28 + 3 * k] * 0.05 * 2.0
                renders.append(plain(g, cams[c:c + 1], means=g.means + shift, scales=g.scales * f[:, :3],
                                     quats=g.params["quats"] * f[:, 3:]))
            ref = sum(renders) / 4
            assert (renders[1] - renders[0]).abs().max() > 1e-3  # the copies really differ
            torch.testing.assert_close(ours[c:c + 1], ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kernel", ["defocus", "motion"])
def test_gradients_reach_the_mlp_and_only_the_seen_view_embeddings(kernel):
    g, cams = scene_gaussians(), cameras()
    m = make_method("deblur", {"kernel": kernel})
    img = draw(g, cams[:1], m, training=True)
    ((img - 0.3) ** 2).mean().backward()
    k = m.kernel
    assert k.head.weight.grad is not None and k.head.weight.grad.abs().sum() > 0
    assert k.body[0].weight.grad.abs().sum() > 0
    rows = k.views.weight.grad.abs().sum(1)
    assert rows[3] > 0 and rows.sum() == rows[3]  # camera 0 is training image 3
    assert g.params["means"].grad is None or g.params["means"].grad.abs().sum() > 0  # inputs detached


def test_positional_encoding_closed_form():
    x = torch.tensor([[0.25, -0.5, 1.0]])
    enc = positional_encoding(x, 2)
    expect = torch.tensor([[0.25, -0.5, 1.0,
                            math.sin(math.pi / 4), math.sin(-math.pi / 2), math.sin(math.pi),
                            math.cos(math.pi / 4), math.cos(-math.pi / 2), math.cos(math.pi),
                            math.sin(math.pi / 2), math.sin(-math.pi), math.sin(2 * math.pi),
                            math.cos(math.pi / 2), math.cos(-math.pi), math.cos(2 * math.pi)]])
    torch.testing.assert_close(enc, expect, atol=1e-6, rtol=0)


def test_bad_options_and_missing_ids_are_one_line_errors():
    with pytest.raises(ValueError, match="copies"):
        make_method("deblur", {"copies": 0})
    with pytest.raises(ValueError):
        make_method("deblur", {"kernel": "gaussian"})
    m = make_method("deblur", {})
    cams = cameras()
    no_ids = Cameras(cams.viewmats, cams.Ks, SIZE, SIZE)
    with pytest.raises(ValueError, match="image_ids"):
        draw(scene_gaussians(), no_ids, m, training=True)
    small = make_method("deblur", {"max_views": 2})
    with pytest.raises(ValueError, match="max_views"):
        draw(scene_gaussians(), cams, small, training=True)  # image id 3


def test_point_adding_colours_from_neighbours_and_keeps_optimizer_rows():
    # two clusters far apart with different colours: added points take the colour of the cluster
    # they land in; points in the empty middle (farther than max_dist) are dropped
    g = torch.Generator().manual_seed(0)
    a = torch.rand(50, 3, generator=g) * 0.2
    b = torch.rand(50, 3, generator=g) * 0.2 + torch.tensor([1.0, 0.0, 0.0])
    rgb = torch.cat([torch.tensor([[1.0, 0.0, 0.0]]).expand(50, 3), torch.tensor([[0.0, 0.0, 1.0]]).expand(50, 3)])
    gs = Gaussians.from_points(torch.cat([a, b]), rgb, torch.full((100,), 0.02), sh_degree=1)
    opt = torch.optim.Adam(gs.param_groups({k: 1e-3 for k in gs.params}), eps=1e-15)
    gs.params["means"].grad = torch.ones_like(gs.params["means"])
    for group in opt.param_groups:
        for p in group["params"]:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
    opt.step()
    n = add_points(gs, {"gaussians": opt}, 400, max_dist=0.08, seed=1)
    assert 0 < n < 400 and len(gs) == 100 + n
    new = gs.params["means"][100:].detach()
    assert ((new >= -1e-6) & (new <= torch.tensor([1.2, 0.2, 0.2]) + 1e-6)).all()  # inside the bbox
    assert not ((new[:, 0] > 0.3) & (new[:, 0] < 0.9)).any()  # nothing in the empty gap
    colour = gs.params["sh0"][100:, 0].detach()
    left = new[:, 0] < 0.5
    torch.testing.assert_close(colour[left], rgb_to_sh0(torch.tensor([[1.0, 0.0, 0.0]])).expand(int(left.sum()), 3))
    torch.testing.assert_close(colour[~left], rgb_to_sh0(torch.tensor([[0.0, 0.0, 1.0]])).expand(int((~left).sum()), 3))
    torch.testing.assert_close(gs.opacities[100:], torch.full((n,), 0.1))
    state = opt.state[gs.params["means"]]
    assert state["exp_avg"].shape == (100 + n, 3) and (state["exp_avg"][100:] == 0).all()


def test_depth_prune_threshold_falls_with_distance():
    # same opacity 0.04 at distances 0 .. 1: threshold 0.09 / (1 + 2d) prunes d < 0.625 only
    d = torch.linspace(0, 1, 9)
    means = torch.stack([d, torch.zeros(9), torch.zeros(9)], 1)
    gs = Gaussians.from_points(means, torch.rand(9, 3), torch.full((9,), 0.1), opacity=0.04, sh_degree=0)
    removed = depth_prune(gs, None, 0.09, torch.zeros(3))
    kept = gs.params["means"][:, 0].detach()
    expect = d[0.04 >= 0.09 / (1 + 2 * d)]
    assert removed == 9 - len(expect)
    torch.testing.assert_close(kept, expect)


def test_motion_global_shift_moves_every_gaussian_by_the_views_row():
    # MLP silent (factors 1, offsets 0): the training image is the mean of the plain render and the
    # renders of the whole scene translated by each copy's row of the view's shift table
    g, cams = scene_gaussians(), cameras()
    m = make_method("deblur", {"kernel": "motion", "copies": 2, "global_shift": True, "motion_init": 1.0,
                               "lambda_p": 0.3, "lambda_g": 0.05})
    m.scene_scale = 2.0
    make_identity(m)
    with torch.no_grad():
        m.kernel.shifts[3] = torch.tensor([[0.5, 0.0], [0.0, -0.4]])  # camera x, camera y
        ours = draw(g, cams[:1], m, training=True)  # camera 0 is training image 3
        right, down = cams.viewmats[0, 0, :3], cams.viewmats[0, 1, :3]  # camera axes in world (rows of R)
        ref = (plain(g, cams[:1]) + plain(g, cams[:1], means=g.means + 0.05 * right)
               + plain(g, cams[:1], means=g.means - 0.04 * down)) / 3
        torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)
        assert (ours - plain(g, cams[:1])).abs().max() > 1e-2
    fresh = make_method("deblur", {"kernel": "motion", "copies": 2, "global_shift": True, "motion_init": 1.0})
    s = fresh.kernel.shifts.detach()
    # initial spread: copies at t = -1, +1 along one unit direction per view, different between views
    torch.testing.assert_close(s[:, 0], -s[:, 1])
    torch.testing.assert_close(s[:, 1].norm(dim=-1), torch.ones(len(s)))
    assert (s[0, 1] - s[1, 1]).abs().max() > 1e-2


def test_init_factor_and_kernel_start():
    # head weights zero: every scale factor is init_factor exactly (quaternions untouched); before
    # kernel_start the training render is plain 3DGS
    g, cams = scene_gaussians(), cameras(1)
    m = make_method("deblur", {"lambda_s": 0.1, "max_factor": 2.0, "init_factor": 1.25, "kernel_start": 0.5,
                               "conserve": False})
    m.iterations = 100
    with torch.no_grad():
        m.kernel.head.weight.zero_()
        on = render(g, cams, method=m, training=True, step=50, background=torch.ones(3), backend="cpu").images
        off = render(g, cams, method=m, training=True, step=49, background=torch.ones(3), backend="cpu").images
    torch.testing.assert_close(on, plain(g, cams, scales=g.scales * 1.25), atol=1e-5, rtol=0)
    torch.testing.assert_close(off, plain(g, cams), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="init_factor"):
        make_method("deblur", {"init_factor": 1.5, "max_factor": 1.1})


def test_row_adam_matches_adam_on_seen_rows_and_leaves_unseen_rows():
    # rows 0 and 2 get gradients on different steps: each must follow torch's Adam fed only the
    # steps it was seen on; row 1 (never seen) must not move
    from splatlab.methods.deblur import RowAdam
    g = torch.Generator().manual_seed(0)
    w0 = torch.randn(3, 4, generator=g)
    grads = [torch.randn(4, generator=g) for _ in range(6)]
    seen = [0, 2, 0, 0, 2, 0]
    w = torch.nn.Parameter(w0.clone())
    opt = RowAdam([w], lr=0.1)
    for gr, r in zip(grads, seen):
        w.grad = torch.zeros_like(w)
        w.grad[r] = gr
        opt.step()
    for r in (0, 2):
        ref = torch.nn.Parameter(w0[r].clone())
        ref_opt = torch.optim.Adam([ref], lr=0.1, eps=1e-15)
        for gr, rr in zip(grads, seen):
            if rr == r:
                ref.grad = gr.clone()
                ref_opt.step()
        torch.testing.assert_close(w[r].detach(), ref.detach(), atol=2e-5, rtol=0)  # float32 rounding
    torch.testing.assert_close(w[1].detach(), w0[1])


@pytest.mark.parametrize("conserve", [True, False])
def test_conserve_keeps_the_ink_of_an_enlarged_gaussian(conserve):
    # one black Gaussian on white, every scale doubled by the kernel: a blur keeps the total darkness
    # sum(1 - image) (one layer: the integral of alpha, opacity x footprint area); plain enlargement
    # multiplies it by ~4 (a 2x wider footprint). Opacity 0.5 so that the rasterizer's 1/255 alpha
    # cut-off trims under 3% of the tails after the opacity drops to ~1/8.
    g = Gaussians(torch.zeros(1, 3), torch.tensor([[1.0, 0.0, 0.0, 0.0]]), torch.log(torch.full((1, 3), 0.08)),
                  torch.logit(torch.tensor([0.5])), rgb_to_sh0(torch.zeros(1, 3)), torch.zeros(1, 3, 3))
    size = 64
    cams = Cameras(look_at(torch.tensor([0.0, 0.0, 2.5]), torch.zeros(3))[None],
                   intrinsics_from_fov(0.8, size, size)[None], size, size).with_ids(torch.tensor([0]))
    m = make_method("deblur", {"lambda_s": 0.1, "max_factor": 3.0, "init_factor": 2.0, "conserve": conserve})
    with torch.no_grad():
        m.kernel.head.weight.zero_()
        sharp = render(g, cams, method=m, training=False, background=torch.ones(3), backend="cpu").images
        blurred = render(g, cams, method=m, training=True, step=1, background=torch.ones(3), backend="cpu").images
    ratio = float((1 - blurred).sum() / (1 - sharp).sum())
    if conserve:
        assert abs(ratio - 1.0) < 0.04, ratio
        assert (1 - blurred).max() < 0.5 * (1 - sharp).max()  # the same ink, spread thinner
    else:
        assert 3.5 < ratio < 4.1, ratio


def test_blur_regulariser_is_the_mean_excess_scale_factor():
    # one training render of two cameras: the extra loss term is lambda_reg x the mean over both
    # cameras of mean(scale factor - 1), recomputed here from the kernel's raw outputs
    from splatlab.methods.base import LossInputs
    from splatlab.train.config import TrainConfig
    g, cams = scene_gaussians(), cameras()
    m = make_method("deblur", {"lambda_s": 0.3, "max_factor": 1.5, "lambda_reg": 0.2})
    randomize_head(m, std=1.0)
    out = render(g, cams, method=m, training=True, step=5, background=torch.ones(3), backend="cpu")
    terms = m.loss_terms(LossInputs(out.images, out.alphas, out.images.detach(), g, 5, out.meta, cams),
                         TrainConfig(scene="x"))
    with torch.no_grad():
        ref = []
        for c in range(len(cams)):
            raw = m.kernel(g, cams.image_ids[c])[:, :3]
            ref.append((0.5 * torch.tanh(torch.clamp(0.3 * raw, min=0.0) / 0.5)).mean())
    torch.testing.assert_close(terms["blur_reg"].detach(), 0.2 * torch.stack(ref).mean())
    assert float(terms["blur_reg"].detach()) > 0.01
    terms["blur_reg"].backward()
    assert m.kernel.head.weight.grad.abs().sum() > 0
    assert "blur_reg" not in m.loss_terms(LossInputs(out.images, out.alphas, out.images.detach(), g, 5, out.meta,
                                                     cams), TrainConfig(scene="x"))  # consumed once


def test_rotation_from_vector_matches_scipy_and_finite_differences():
    from scipy.spatial.transform import Rotation

    from splatlab.render.projection import quat_to_rotmat, rotation_from_vector

    for v in ([0.3, -0.2, 0.5], [0.0, 0.0, 1e-3], [-1.2, 0.4, 0.1]):
        matrix, quat = rotation_from_vector(torch.tensor(v, dtype=torch.float64))
        ref = Rotation.from_rotvec(v)
        torch.testing.assert_close(matrix, torch.tensor(ref.as_matrix()), atol=1e-12, rtol=0)
        x, y, z, w = ref.as_quat()
        torch.testing.assert_close(quat, torch.tensor([w, x, y, z], dtype=torch.float64), atol=1e-12, rtol=0)
        torch.testing.assert_close(quat_to_rotmat(quat[None].float())[0], matrix.float(), atol=1e-6, rtol=0)
    # smooth through zero, where the derivative of the matrix is the skew matrix of the direction
    for v in (torch.zeros(3, dtype=torch.float64), torch.tensor([0.2, 0.1, -0.3], dtype=torch.float64)):
        assert torch.autograd.gradcheck(lambda t: rotation_from_vector(t)[0], (v.clone().requires_grad_(),))
        assert torch.autograd.gradcheck(lambda t: rotation_from_vector(t)[1], (v.clone().requires_grad_(),))


def test_motion_rotation_renders_each_copy_from_a_turned_camera():
    # MLP silent and no shifts: each copy is what the camera sees after turning about its centre by
    # λrot·row (camera frame), i.e. the rasterizer's render through viewmat' = diag(R_dᵀ, 1)·viewmat
    from scipy.spatial.transform import Rotation

    g, cams = scene_gaussians(), cameras()
    with torch.no_grad():
        g.params["shN"].zero_()  # view-independent colour: the turned Gaussians see the camera from a turned direction
    m = make_method("deblur", {"kernel": "motion", "copies": 2, "global_shift": False, "rotation": True,
                               "lambda_rot": 0.1})
    make_identity(m)
    rows = torch.tensor([[0.4, -0.3, 0.2], [-0.2, 0.5, -0.6]])
    with torch.no_grad():
        m.kernel.rotations[3] = rows  # camera 0 is training image 3
        ours = draw(g, cams[:1], m, training=True)
        refs = [plain(g, cams[:1])]
        for row in rows:
            r_d = torch.tensor(Rotation.from_rotvec((0.1 * row).double().numpy()).as_matrix(), dtype=torch.float32)
            turn = torch.eye(4)
            turn[:3, :3] = r_d.T
            turned = Cameras(turn @ cams.viewmats[:1], cams.Ks[:1], SIZE, SIZE)
            refs.append(plain(g, turned))
        ref = sum(refs) / 3
        assert (refs[1] - refs[0]).abs().max() > 0.05  # the turns really move the image
        torch.testing.assert_close(ours, ref, atol=2e-4, rtol=0)
    # gradients reach the view's rotation rows and no other view's
    m2 = make_method("deblur", {"kernel": "motion", "copies": 2, "rotation": True})
    draw(g, cams[:1], m2, training=True).sum().backward()
    grad = m2.kernel.rotations.grad
    assert grad[3].abs().sum() > 0 and grad[torch.arange(len(grad)) != 3].abs().sum() == 0


def test_lens_blurs_by_depth_from_the_focus_and_keeps_the_ink():
    from splatlab.methods.deblur import lens_args

    cam = cameras(1)
    rot, trans = cam.viewmats[0, :3, :3], cam.viewmats[0, :3, 3]
    center = torch.zeros(3)
    center_depth = float(center @ rot[2] + trans[2])  # 2.5-ish: the camera looks at the origin
    forward = rot[2]  # the optical axis in world
    eye = -rot.T @ trans
    depths = torch.tensor([0.5, 1.0, 1.5]) * center_depth
    means = eye[None] + depths[:, None] * forward[None]
    scales = torch.full((3, 3), 0.02)
    args = dict(means=means, quats=torch.tensor([[1.0, 0, 0, 0]]).repeat(3, 1), scales=scales,
                opacities=torch.full((3,), 0.5), colors=torch.ones(3, 3), sh_degree=None)
    out = lens_args(args, cam, torch.tensor(0.1), torch.tensor(0.0), center)  # focused on the centre
    sigma = 0.1 * (1 - depths / center_depth).abs()  # 0.05, 0, 0.05
    torch.testing.assert_close(out["scales"], torch.sqrt(scales ** 2 + sigma[:, None] ** 2), atol=1e-6, rtol=0)
    assert abs(out["opacities"][1].item() - 0.5) < 1e-6  # in focus: unchanged
    assert out["opacities"][0] < 0.5 * 0.5 and out["opacities"][2] < 0.5 * 0.8
    # the splat's ink (its alpha summed over the image) stays: a blur spreads it, does not add any
    # (up to the rasterizer's cut-off at alpha 1/255, which trims the fainter blurred splat a little more)
    for i in (0, 2):
        one = {k: (v[i:i + 1] if torch.is_tensor(v) else v) for k, v in args.items()}
        blurred = {k: (v[i:i + 1] if torch.is_tensor(v) else v) for k, v in out.items()}
        sharp_alpha = rasterize(viewmats=cam.viewmats, Ks=cam.Ks, width=SIZE, height=SIZE, backend="cpu", **one)[1]
        blur_alpha = rasterize(viewmats=cam.viewmats, Ks=cam.Ks, width=SIZE, height=SIZE, backend="cpu", **blurred)[1]
        ys, xs = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")

        def spread(a):  # alpha-weighted variance of the pixel positions
            w = a[0, ..., 0] / a.sum()
            mx, my = (w * xs).sum(), (w * ys).sum()
            return (w * ((xs - mx) ** 2 + (ys - my) ** 2)).sum()

        # the blur adds its screen variance, (σ·f/z)² per axis (measured ~20 % less: the cut-off
        # trims the tails, which hold much of a Gaussian's variance)
        # (the near splat: the far one is about a pixel wide, where pixel sampling blurs the measure)
        added = 2 * (sigma[i] * cam.Ks[0, 0, 0] / depths[i]) ** 2
        assert i == 2 or abs((spread(blur_alpha) - spread(sharp_alpha)) / added - 1.0) < 0.25
        assert spread(blur_alpha) > 1.2 * spread(sharp_alpha)
        assert abs(blur_alpha.sum().item() / sharp_alpha.sum().item() - 1.0) < 0.04
    # focus farther away (log 0.5): the near Gaussian blurs more, the far one less
    far = lens_args(args, cam, torch.tensor(0.1), torch.tensor(0.5), center)
    assert far["scales"][0, 0] > out["scales"][0, 0] and far["scales"][2, 0] < out["scales"][2, 0]


def test_lens_rows_train_from_their_view_only():
    g, cams = scene_gaussians(), cameras()
    m = make_method("deblur", {"kernel": "defocus", "lens": True})
    draw(g, cams[:1], m, training=True).sum().backward()
    grad = m.kernel.lens.grad
    assert grad[3].abs().min() > 0  # aperture and focus of training image 3
    assert grad[torch.arange(len(grad)) != 3].abs().sum() == 0
    with torch.no_grad():
        torch.testing.assert_close(draw(g, cams, m, training=False), plain(g, cams), atol=1e-6, rtol=0)


def test_checkpoint_with_other_tables_names_the_option_to_resume_with():
    old = make_method("deblur", {"kernel": "motion", "rotation": False})
    new = make_method("deblur", {"kernel": "motion", "rotation": True})
    with pytest.raises(ValueError, match="rotation=false"):
        new.kernel.load_state_dict(old.kernel.state_dict())
    with pytest.raises(ValueError, match="rotation=true"):
        old.kernel.load_state_dict(new.kernel.state_dict())
    same = make_method("deblur", {"kernel": "motion", "rotation": True, "seed": 3})
    same.kernel.load_state_dict(new.kernel.state_dict())
    torch.testing.assert_close(same.kernel.rotations, new.kernel.rotations)
