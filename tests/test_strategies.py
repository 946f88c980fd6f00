"""Densification strategies and optimizer-state surgery on hand-made Gaussians and statistics."""
from __future__ import annotations

import math

import torch

from splatlab.densify import DefaultStrategy, MCMCStrategy, Strategy, ops, relocation_update
from splatlab.gaussians import Gaussians
from splatlab.render.types import RenderMeta


def make_model(n=12, seed=0, extra=True):
    g = torch.Generator().manual_seed(seed)
    fields = {
        "means": torch.randn(n, 3, generator=g),
        "quats": torch.randn(n, 4, generator=g),
        "scales": torch.log(torch.full((n, 3), 0.005)),
        "opacities": torch.full((n,), 0.0),
        "sh0": torch.randn(n, 1, 3, generator=g),
        "shN": torch.randn(n, 3, 3, generator=g),
    }
    if extra:
        fields["shape"] = torch.randn(n, generator=g)  # a method extra
    model = Gaussians.from_fields(fields)
    lrs = {k: 1e-2 for k in model.params.keys()}
    opt = torch.optim.Adam(model.param_groups(lrs), eps=1e-15)
    take_step(model, opt, seed)
    return model, {"gaussians": opt}


def take_step(model, opt, seed=0):
    g = torch.Generator().manual_seed(seed + 100)
    for p in model.params.values():
        p.grad = torch.randn(p.shape, generator=g)
    opt.step()
    opt.zero_grad(set_to_none=True)


def states(model, optimizers):
    opt = optimizers["gaussians"]
    return {name: {k: v.clone() for k, v in opt.state[p].items() if v.ndim > 0} for name, p in model.params.items()}


def assert_aligned(model, optimizers):
    ops.check_aligned(model, optimizers)
    opt = optimizers["gaussians"]
    for name, p in model.params.items():
        group = next(gr for gr in opt.param_groups if gr["name"] == name)
        assert group["params"][0] is p
        for key in ("exp_avg", "exp_avg_sq"):
            assert opt.state[p][key].shape == p.shape, (name, key)
    take_step(model, opt, 7)  # the optimizer still works on the new rows


def test_protocol():
    assert isinstance(DefaultStrategy(), Strategy)
    assert isinstance(MCMCStrategy(), Strategy)


def test_duplicate_copies_rows_and_zero_state():
    model, opts = make_model()
    before = model.detached_fields()
    st = states(model, opts)
    mask = torch.zeros(12, dtype=torch.bool)
    mask[[1, 4, 9]] = True
    ops.duplicate(model, opts, mask)
    assert len(model) == 15
    for name, v in model.detached_fields().items():
        assert torch.equal(v[:12], before[name])
        assert torch.equal(v[12:], before[name][[1, 4, 9]])
        p = model.params[name]
        for key, old in st[name].items():
            new = opts["gaussians"].state[p][key]
            assert torch.equal(new[:12], old)
            assert torch.all(new[12:] == 0)
    assert_aligned(model, opts)


def test_remove_drops_rows_and_state():
    model, opts = make_model()
    before = model.detached_fields()
    st = states(model, opts)
    mask = torch.zeros(12, dtype=torch.bool)
    mask[[0, 5, 11]] = True
    ops.remove(model, opts, mask)
    assert len(model) == 9
    for name, v in model.detached_fields().items():
        assert torch.equal(v, before[name][~mask])
        for key, old in st[name].items():
            assert torch.equal(opts["gaussians"].state[model.params[name]][key], old[~mask])
    assert_aligned(model, opts)


def test_split_replaces_with_two_smaller_children():
    model, opts = make_model()
    before = model.detached_fields()
    st = states(model, opts)
    mask = torch.zeros(12, dtype=torch.bool)
    mask[[2, 3]] = True
    ops.split(model, opts, mask, generator=torch.Generator().manual_seed(0))
    assert len(model) == 12 - 2 + 4
    after = model.detached_fields()
    for name in before:
        assert torch.equal(after[name][:10], before[name][~mask])
        for key, old in st[name].items():
            new = opts["gaussians"].state[model.params[name]][key]
            assert torch.equal(new[:10], old[~mask])
            assert torch.all(new[10:] == 0)
    parents = torch.tensor([2, 3, 2, 3])
    assert torch.allclose(after["scales"][10:], before["scales"][parents] - math.log(1.6))
    for name in ("quats", "opacities", "sh0", "shN", "shape"):
        assert torch.equal(after[name][10:], before[name][parents])
    offset = (after["means"][10:] - before["means"][parents]).norm(dim=1)
    assert torch.all(offset < 0.005 * 6) and torch.all(offset > 0)
    assert_aligned(model, opts)


def test_reset_opacity_clamps_and_zeroes_only_opacity_state():
    model, opts = make_model()
    with torch.no_grad():
        model.params["opacities"][:6] = -8.0
    st = states(model, opts)
    ops.reset_opacity(model, opts, 0.01)
    o = torch.sigmoid(model.params["opacities"].detach())
    assert torch.all(o <= 0.01 + 1e-6)
    assert torch.allclose(o[:6], torch.sigmoid(torch.tensor(-8.0)))
    assert torch.all(opts["gaussians"].state[model.params["opacities"]]["exp_avg"] == 0)
    assert torch.equal(opts["gaussians"].state[model.params["means"]]["exp_avg"], st["means"]["exp_avg"])
    assert_aligned(model, opts)


def fake_meta(grad, radii, width=32, height=24):
    C, N = grad.shape[:2]
    means2d = torch.zeros(C, N, 2, requires_grad=True)
    means2d.grad = grad
    z = torch.zeros(C, N)
    return RenderMeta(means2d=means2d, radii=radii, depths=z, conics=torch.zeros(C, N, 3), opacities=z,
                      width=width, height=height, backend="test")


def test_default_accumulates_normalised_gradient_over_visible_views():
    model, _ = make_model(n=4)
    strat = DefaultStrategy()
    state = strat.initialize_state(scene_scale=1.0)
    grad = torch.tensor([[[1e-5, 0.0], [0.0, 2e-5], [1.0, 1.0], [3e-5, 4e-5]],
                         [[2e-5, 0.0], [0.0, 0.0], [1.0, 1.0], [0.0, 1e-5]]])
    radii = torch.ones(2, 4, 2, dtype=torch.int32)
    radii[0, 2] = 0  # Gaussian 2 culled in both views: no statistics
    radii[1, 2] = 0
    radii[1, 1] = 0
    strat.accumulate(model, state, 10, fake_meta(grad, radii))
    sx, sy = 32 / 2 * 2, 24 / 2 * 2  # [W/2, H/2] * n_cameras
    expect = torch.tensor([1e-5 * sx + 2e-5 * sx, 2e-5 * sy, 0.0,
                           math.hypot(3e-5 * sx, 4e-5 * sy) + 1e-5 * sy])
    assert torch.allclose(state["grad2d"], expect)
    assert torch.equal(state["count"], torch.tensor([2.0, 1.0, 0.0, 2.0]))


def test_default_refine_follows_the_rules():
    n = 10
    model, opts = make_model(n=n)
    with torch.no_grad():
        model.params["opacities"][:] = 2.0
        model.params["scales"][:] = math.log(0.005)  # small: <= 0.01 * extent
        model.params["scales"][[3, 4, 5], 0] = math.log(0.05)  # large
        model.params["scales"][6, 1] = math.log(0.5)  # too large (> 0.1 * extent)
        model.params["opacities"][[7, 8]] = -6.0  # transparent (< 0.005)
    strat = DefaultStrategy()
    state = strat.initialize_state(scene_scale=1.0)
    state["grad2d"] = torch.zeros(n)
    state["count"] = torch.full((n,), 2.0)
    state["radii2d"] = torch.zeros(n)
    state["grad2d"][[0, 1, 3, 4]] = 2 * 3e-4  # mean 3e-4 > 2e-4
    state["grad2d"][2] = 2 * 1e-4  # below threshold
    before = model.detached_fields()
    assert strat.refine_due(3100) and not strat.refine_due(3150) and not strat.refine_due(400)
    report = strat.refine(model, opts, state, 3100)
    assert report == {"cloned": 2, "split": 2, "pruned": 3}  # 6 too large, 7 and 8 transparent
    assert len(model) == n + 2 + 2 - 3
    after = model.detached_fields()
    # survivors in order: unsplit originals except pruned, clones of 0 and 1, children of 3 and 4
    kept = [0, 1, 2, 5, 9]
    for name in before:
        assert torch.equal(after[name][:5], before[name][kept])
        assert torch.equal(after[name][5:7], before[name][[0, 1]])
    assert torch.allclose(after["scales"][7:], before["scales"][[3, 4, 3, 4]] - math.log(1.6))
    assert torch.equal(state["grad2d"], torch.zeros(len(model)))
    assert_aligned(model, opts)


def test_default_opacity_reset_step():
    model, opts = make_model(n=6)
    with torch.no_grad():
        model.params["opacities"][:] = 3.0
    strat = DefaultStrategy()
    state = strat.initialize_state(1.0)
    strat.refine(model, opts, state, 3000)
    assert torch.all(torch.sigmoid(model.params["opacities"].detach()) <= 0.0100001)
    assert_aligned(model, opts)


def test_relocation_update_formula():
    o = torch.tensor([0.3, 0.8, 0.5])
    s = torch.ones(3, 3)
    new_o, new_s = relocation_update(o, s, torch.tensor([1, 2, 3]))
    assert torch.allclose(new_o[0], o[0]) and torch.allclose(new_s[0], s[0])
    # n copies composite back to the original opacity: 1 - (1 - o_new)^n = o
    n = torch.tensor([1.0, 2.0, 3.0])
    assert torch.allclose(1 - (1 - new_o) ** n, o, atol=1e-6)
    on = new_o[1]
    assert torch.allclose(new_s[1], s[1] * o[1] / (2 * on - on ** 2 / math.sqrt(2)))


def test_mcmc_relocates_dead_and_adds_up_to_growth():
    n = 20
    model, opts = make_model(n=n)
    with torch.no_grad():
        model.params["opacities"][:] = 1.0
        model.params["opacities"][[2, 5, 7]] = -8.0  # dead
    strat = MCMCStrategy()
    state = strat.initialize_state(1.0, seed=3)
    before = model.detached_fields()
    assert strat.refine_due(600) and not strat.refine_due(500)
    report = strat.refine(model, opts, state, 600)
    assert report == {"relocated": 3, "added": int(1.05 * n) - n}
    assert len(model) == int(1.05 * n)
    after = model.detached_fields()
    assert torch.all(torch.sigmoid(after["opacities"]) > 0.005)
    # dead rows now sit exactly on live Gaussians
    live_means = before["means"][[i for i in range(n) if i not in (2, 5, 7)]]
    for i in (2, 5, 7):
        assert torch.min((live_means - after["means"][i]).norm(dim=1)) == 0
        assert torch.equal(after["shape"][i], before["shape"][(before["means"] == after["means"][i]).all(1)][0])
    for i in (2, 5, 7):
        for key in ("exp_avg", "exp_avg_sq"):
            assert torch.all(opts["gaussians"].state[model.params["means"]][key][i] == 0)
    assert_aligned(model, opts)


def test_mcmc_cap_and_noise_and_regularisers():
    model, opts = make_model(n=10)
    strat = MCMCStrategy(cap_max=10)
    state = strat.initialize_state(1.0)
    assert strat.add(model, opts, state, 600) == 0
    with torch.no_grad():
        model.params["opacities"][:5] = 6.0  # opaque
        model.params["opacities"][5:] = -6.0  # almost transparent
        model.params["scales"][:] = math.log(0.1)
    before = model.params["means"].detach().clone()
    opts["gaussians"].param_groups[0]["lr"] = 1e-4
    strat.after_step(model, opts, state, 601)
    moved = (model.params["means"].detach() - before).norm(dim=1)
    assert torch.all(moved[:5] < 1e-6) and torch.all(moved[5:] > 1e-4)
    terms = strat.loss_terms(model, state, 601)
    assert set(terms) == {"opacity_reg", "scale_reg"}
    assert terms["scale_reg"].requires_grad


def test_size_pruning_grows_with_distance_from_the_scene_centre():
    """After the first reset, "too big" is prune_scale3d x max(extent, distance from the centre):
    a 3 m wide Gaussian 100 m away survives, the same one at the centre is pruned."""
    from splatlab.densify import DefaultStrategy
    from splatlab.densify.default import size_reference

    means = torch.tensor([[0.0, 0.0, 0.0], [100.0, 0.0, 0.0], [0.5, 0.0, 0.0]])
    g = Gaussians.from_points(means, torch.full((3, 3), 0.5), torch.tensor([3.0, 3.0, 0.05]), opacity=0.5,
                              sh_degree=0)
    strat = DefaultStrategy(prune_scale3d=0.1, reset_every=10, refine_start=0, refine_every=1, refine_stop=100)
    state = strat.initialize_state(scene_scale=1.0, scene_center=(0.0, 0.0, 0.0))
    ref = size_reference(g, state)
    torch.testing.assert_close(ref, torch.tensor([1.0, 100.0, 1.0]))
    opt = {"gaussians": torch.optim.Adam(g.param_groups({k: 1e-3 for k in g.params}), eps=1e-15)}
    strat.prune(g, opt, state, step=20)
    assert len(g) == 2 and torch.allclose(g.params["means"][:, 0], torch.tensor([100.0, 0.5]))
    # without a centre (old checkpoints) the extent alone decides, as in the original recipe
    assert size_reference(g, strat.initialize_state(scene_scale=1.0)) == 1.0


def test_default_growth_stops_at_cap_keeping_the_largest_gradients():
    n = 10
    model, opts = make_model(n=n)
    with torch.no_grad():
        model.params["opacities"][:] = 2.0
        model.params["scales"][:] = math.log(0.005)  # all small: clones
    strat = DefaultStrategy(cap_max=13)
    state = strat.initialize_state(scene_scale=1.0)
    state["grad2d"] = torch.tensor([5e-4, 9e-4, 1e-5, 7e-4, 6e-4, 1e-5, 8e-4, 1e-5, 3e-4, 1e-5])
    state["count"] = torch.ones(n)
    before = model.params["means"].detach().clone()
    report = strat.grow(model, opts, state, step=600)
    assert report == {"cloned": 3, "split": 0} and len(model) == 13
    # the three largest averages (indices 1, 6, 3) were cloned
    assert torch.equal(model.params["means"][n:].detach(), before[[1, 3, 6]])
    assert strat.grow(model, opts, {**state, "grad2d": torch.full((13,), 1e-3), "count": torch.ones(13)},
                      step=700) == {"cloned": 0, "split": 0}
