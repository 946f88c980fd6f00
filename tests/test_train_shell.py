"""The far background shell (splatlab/train/shell.py): it hides every direction, unseen Gaussians
take their seen neighbours' colour, the strategies leave pinned rows alone, and training moves
nothing of the shell but its colour."""
from __future__ import annotations

import math

import torch

from splatlab.cameras import Cameras, intrinsics, look_at
from splatlab.densify import DefaultStrategy, MCMCStrategy
from splatlab.gaussians import Gaussians, rgb_to_sh0
from splatlab.render import render
from splatlab.train.shell import fibonacci_sphere, fill_unseen, shell_geometry


def shell_model(n: int, radius: float = 100.0, sh0_rgb: float = 1.0) -> Gaussians:
    fields = shell_geometry(n, torch.zeros(3), radius)
    fields["sh0"] = rgb_to_sh0(torch.full((n, 1, 3), sh0_rgb))
    fields["shN"] = torch.zeros(n, 0, 3)
    return Gaussians.from_fields(fields)


def test_shell_hides_every_direction_from_inside_the_rig():
    model = shell_model(1024)
    g = torch.Generator().manual_seed(0)
    targets = torch.nn.functional.normalize(torch.randn(12, 3, generator=g), dim=1) * 50.0
    # cameras at the centre and up to 5 % of the radius away from it (inside the capture rig)
    eyes = torch.randn(12, 3, generator=g) * torch.linspace(0, 5.0, 12)[:, None] / math.sqrt(3)
    viewmats = torch.stack([look_at(e, t + e) for e, t in zip(eyes, targets)])
    Ks = intrinsics(40.0, 40.0, 32.0, 32.0)[None].repeat(12, 1, 1)  # ~77 degrees wide
    with torch.no_grad():
        out = render(model, Cameras(viewmats, Ks, 64, 64), background=torch.zeros(3))
    alpha = out.alphas[..., 0]
    assert alpha.min().item() > 0.95, alpha.min().item()
    # and the shell is opaque white: no black training background shows through anywhere
    assert out.images[..., :3].min().item() > 0.9


def test_fibonacci_sphere_is_even():
    d = fibonacci_sphere(2000)
    assert torch.allclose(d.norm(dim=1), torch.ones(2000), atol=1e-5)
    assert d.mean(0).abs().max() < 1e-3
    # nearest-neighbour angles all close to the ideal spacing sqrt(4 pi / n)
    ang = torch.acos((d @ d.T).clamp(-1, 1)) + torch.eye(2000) * 10
    nn = ang.min(dim=1).values
    ideal = math.sqrt(4 * math.pi / 2000)
    assert 0.6 * ideal < nn.min() and nn.max() < 1.3 * ideal


def test_fill_unseen_is_inverse_square_distance_average():
    dirs = torch.nn.functional.normalize(torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [1.0, 1.0, 0], [1.0, 0.2, 0]]), dim=1)
    colors = torch.tensor([[1.0, 0, 0], [0, 0, 1.0], [0.3, 0.3, 0.3], [0.5, 0.5, 0.5]])
    seen = torch.tensor([True, True, False, False])
    out = fill_unseen(dirs, colors, seen, k=2)
    assert torch.equal(out[:2], colors[:2])
    assert torch.allclose(out[2], torch.tensor([0.5, 0, 0.5]), atol=1e-6)  # midway: equal weights
    d0 = (dirs[3] - dirs[0]).norm() ** 2
    d1 = (dirs[3] - dirs[1]).norm() ** 2
    w0 = (1 / d0) / (1 / d0 + 1 / d1)
    assert torch.allclose(out[3], torch.tensor([w0, 0.0, 1 - w0]), atol=1e-5)


def mixed_model(n_pinned: int, n_free: int) -> Gaussians:
    """`n_pinned` shell rows first (nearly transparent and huge, so any strategy would remove them),
    then free Gaussians."""
    g = torch.Generator().manual_seed(1)
    shell = shell_geometry(n_pinned, torch.zeros(3), 100.0)
    shell["opacities"] = torch.full((n_pinned,), -8.0)  # opacity 3e-4: below every prune threshold
    free = {"means": torch.randn(n_free, 3, generator=g), "quats": torch.randn(n_free, 4, generator=g),
            "scales": torch.full((n_free, 3), -2.0), "opacities": torch.full((n_free,), -8.0)}
    fields = {k: torch.cat([shell[k], free[k]]) for k in shell}
    n = n_pinned + n_free
    fields["sh0"] = torch.zeros(n, 1, 3)
    fields["shN"] = torch.zeros(n, 0, 3)
    return Gaussians.from_fields(fields)


def test_default_strategy_never_grows_prunes_or_resets_pinned_rows():
    model = mixed_model(20, 30)
    opt = torch.optim.Adam(model.param_groups({k: 1e-3 for k in model.params}))
    before = {k: v.detach()[:20].clone() for k, v in model.params.items()}
    strat = DefaultStrategy(refine_start=0, refine_every=10, reset_every=10, refine_stop=1000)
    state = strat.initialize_state(1.0)
    state["pinned"] = 20
    state["grad2d"] = torch.full((50,), 1.0)  # every row wants to grow
    state["count"] = torch.ones(50)
    state["radii2d"] = torch.zeros(50)
    strat.refine(model, opt, state, 20)
    after = model.detached_fields()
    for k, v in before.items():
        assert torch.equal(after[k][:20], v), k
    # the free rows (all nearly transparent) were pruned, the pinned ones stayed
    assert len(model) == 20


def test_mcmc_never_relocates_or_samples_pinned_rows():
    model = mixed_model(20, 30)
    with torch.no_grad():
        model.params["opacities"][20:25] = 3.0  # five live free rows; the other free rows are dead
        model.params["opacities"][10:20] = 3.0  # half the pinned rows opaque (a real shell is): never a source
    opt = torch.optim.Adam(model.param_groups({k: 1e-3 for k in model.params}))
    before = {k: v.detach()[:20].clone() for k, v in model.params.items()}
    strat = MCMCStrategy(refine_start=0, refine_every=10, cap_max=60)
    state = strat.initialize_state(1.0)
    state["pinned"] = 20
    strat.refine(model, opt, state, 20)
    strat.after_step(model, opt, state, 21)
    after = model.detached_fields()
    for k, v in before.items():
        assert torch.equal(after[k][:20], v), k
    # every new or relocated row is a copy of a live free row, none of a shell row
    far = after["means"][20:].norm(dim=1) > 50
    assert not bool(far.any())


def test_training_moves_only_the_shell_colour_and_fills_unseen_rows(tmp_path):
    from splatlab.train import TrainConfig
    from splatlab.train.shell import fill_unseen
    from splatlab.train.trainer import Trainer, prepare_scene
    from test_train_scene import make_scene

    scene_dir = make_scene(tmp_path / "synth", size=24, n_train=6, n_test=2)
    cfg = TrainConfig(scene=str(scene_dir), iterations=40, init_num_points=300, refine_start=5, refine_every=5,
                      reset_every=15, grad_threshold=1e-6, sh_degree=1, eval_every=0, save_every=0,
                      progress=False, max_eval_views=1, background_shell=300)
    trainer = Trainer(cfg, prepare_scene(cfg))
    seen = trainer.strategy_state["shell_seen"].bool()
    assert trainer.strategy_state["pinned"] == 300 and 0 < int(seen.sum()) < 300  # the views see part of the sky
    start = {k: v.detach()[:300].clone() for k, v in trainer.gaussians.params.items()}
    assert trainer.run()["status"] == "finished"
    end = {k: v.detach()[:300] for k, v in trainer.gaussians.params.items()}
    assert len(trainer.gaussians) > 600  # densification ran around the pinned rows
    for k in ("means", "quats", "scales", "opacities", "shN"):
        assert torch.equal(start[k], end[k]), k
    assert (end["sh0"][seen] - start["sh0"][seen]).abs().max() > 1e-3  # the seen shell trained
    # the unseen ones were recoloured from the trained seen ones at the end
    dirs = torch.nn.functional.normalize(end["means"] - torch.tensor(trainer.strategy_state["scene_center"]), dim=1)
    rgb = end["sh0"][:, 0] * 0.28209479177387814 + 0.5
    assert torch.allclose(rgb, fill_unseen(dirs, rgb, seen), atol=1e-5)


def test_shell_only_where_the_method_keeps_pinned_rows(tmp_path):
    import pytest

    from splatlab.data import load_scene
    from splatlab.methods import make_method
    from splatlab.train import TrainConfig
    from splatlab.train.init import shell_size
    from test_train_scene import make_scene

    opaque = load_scene(make_scene(tmp_path / "synth", size=16, n_train=4, n_test=1))
    cfg = TrainConfig(scene="x").resolve_budget(4 * 16 * 16)
    assert shell_size(opaque, cfg, make_method("gs3d")) == 1250  # 1/8 of the 10k minimum budget
    assert shell_size(opaque, cfg, make_method("ges")) == 1250
    # hierarchical keeps the shell as pinned childless level-0 roots (tests/test_hierarchical.py)
    assert shell_size(opaque, cfg, make_method("hierarchical")) == 1250
    # temporal rows carry a moment, SOG permutes rows into a grid (and deblur is not measured
    # with a shell): no pinned rows there
    for name in ("temporal", "sog", "deblur"):
        assert shell_size(opaque, cfg, make_method(name)) == 0, name
    with pytest.raises(ValueError, match="background-shell"):
        TrainConfig(scene="x", method="temporal", background_shell=100).validate()
    TrainConfig(scene="x", method="temporal", background_shell=0).validate()
