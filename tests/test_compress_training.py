"""`splatlab train --method sog`: prune to a k x k grid, PLAS-sort, smoothness loss, re-sorts that
move rows and Adam state together, grid-ordered output, exact resume, `compress --order keep`."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from splatlab.compress.pipeline import CompressOptions, compress
from splatlab.compress.smoothness import SOGTraining, SortedGrid, smoothness_loss
from splatlab.methods import coerce_options
from splatlab.methods.sog import SOGConfig, grid_side_for, reorder_rows
from splatlab.densify.ops import check_aligned
from splatlab.gaussians import Gaussians
from splatlab.io import read_splats
from splatlab.io._common import morton_order
from splatlab.train import train_main
from splatlab.train.checkpoint import find_checkpoint, load_checkpoint
from splatlab.train.cli import build_parser, config_from_args
from splatlab.train.outputs import create_run_dir
from splatlab.train.trainer import Trainer, prepare_scene
from test_train_scene import make_scene

ITERS = 100
GRID_STEP = 40  # = --refine-stop: prune + first sort after this step
SORT_EVERY = 20  # re-sorts after steps 60 and 80
STOP_AT = 50  # between the grid step and the first re-sort


def parse_options(options: dict) -> SOGConfig:
    return coerce_options("sog", SOGConfig, options)


def args(scene_dir, out, *extra):
    return [str(scene_dir), "--out", str(out), "--iterations", str(ITERS), "--method", "sog",
            "--method-option", f"sort_every={SORT_EVERY}", "--method-option", "sog-w-opacities=1",
            "--method-option", "layout=plas",  # these tests check the PLAS grid; Morton: see below
            "--init-points", "300", "--grad-threshold", "1e-3", "--refine-start", "10", "--refine-every", "10",
            "--refine-stop", str(GRID_STEP), "--reset-every", "1000", "--sh-degree", "1", "--eval-every", "0",
            "--save-every", "0", "--max-eval-views", "2", "--seed", "3", "--no-progress",
            "--init-sweep", "off", *extra]  # 300 random points: the grid tests below are sized for them


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory):
    return make_scene(tmp_path_factory.mktemp("sogscene") / "synth", size=20, n_train=6, n_test=2)


@pytest.fixture(scope="module")
def straight(scene_dir, tmp_path_factory):
    """One uninterrupted run, through the CLI parser but keeping the Trainer to inspect."""
    out = tmp_path_factory.mktemp("sogrun") / "straight"
    cfg, _ = config_from_args(build_parser().parse_args(args(scene_dir, out)))
    cfg.validate()
    create_run_dir(out)
    trainer = Trainer(cfg, prepare_scene(cfg), out)
    assert trainer.run()["status"] == "finished"
    return trainer, out


def test_options_parse():
    o = parse_options({"sog-grid": "64", "sort_every": 500, "w_scales": "0.5", "lambda": 2})
    assert (o.grid, o.sort_every, o.smoothness_lambda) == (64, 500, 2.0)
    assert o.weights == {"quats": 1.0, "scales": 0.5}
    d = parse_options({})
    assert (d.weights, d.layout, d.space, d.sort_every) == ({"quats": 1.0}, "morton", "encoded", 100)
    with pytest.raises(ValueError):
        parse_options({"gird": 3})
    with pytest.raises(ValueError):
        parse_options({"w_bogus": 1})
    assert grid_side_for(300) == 16 and grid_side_for(300, multiple=1) == 17 and grid_side_for(300, 10) == 10
    assert grid_side_for(100, 12) == 8  # 12^2 does not fit: derived
    o = parse_options({"layout": "Morton", "space": "encoded", "delta": "2", "w_sh0": 1})
    assert (o.layout, o.space, o.huber_delta, o.weights["sh0"]) == ("morton", "encoded", 2.0, 1.0)
    for bad in ({"layout": "hilbert"}, {"space": "log"}, {"delta": 0}, {"space": "encoded", "w_means": 1}):
        with pytest.raises(ValueError):
            parse_options(bad)


def test_bad_method_option_is_a_usage_error(scene_dir, tmp_path, capsys):
    assert train_main(args(scene_dir, tmp_path / "bad", "--method-option", "nonsense=1")) == 2
    err = capsys.readouterr().err
    assert "unknown option 'nonsense' for method 'sog'" in err and "sort_every" in err and len(err.splitlines()) == 1
    assert train_main(args(scene_dir, tmp_path / "bad2", "--method-option", "novalue")) == 2


def test_grid_count_and_grid_order_output(straight):
    trainer, out = straight
    g = trainer.gaussians
    n = len(g)
    k = math.isqrt(n)
    assert k * k == n and k % 4 == 0
    assert trainer.method.controller.state.side == k
    events = [r["event"] for r in trainer.method.controller.reports]
    assert events == ["grid", "resort", "resort"], trainer.method.controller.reports
    assert trainer.method.controller.reports[0]["step"] == GRID_STEP
    assert any(r["moved"] > 0 for r in trainer.method.controller.reports[1:])  # re-sorts did permute rows
    ply = read_splats(out / "point_cloud.ply")
    assert len(ply) == n
    torch.testing.assert_close(ply.params["means"], g.params["means"].detach())  # written in grid order
    ck = load_checkpoint(find_checkpoint(out))
    assert int(ck["method_modules"]["sog"]["grid_side"]) == k


def test_optimizer_state_follows_rows(straight):
    trainer, _ = straight
    g, opts = trainer.gaussians, trainer.optimizers
    check_aligned(g, opts)
    adam = opts["gaussians"]
    for name, p in g.params.items():
        st = adam.state[p]
        assert st["exp_avg"].shape == p.shape and st["exp_avg_sq"].shape == p.shape, name
    # a reorder moves every field's Adam rows with the parameter rows (values, not just shapes)
    before = {name: (p.detach().clone(), adam.state[p]["exp_avg"].clone(), adam.state[p]["exp_avg_sq"].clone(),
                     adam.state[p]["step"].clone()) for name, p in g.params.items()}
    assert before["means"][1].abs().sum() > 0  # real, non-zero state
    perm = torch.randperm(len(g), generator=torch.Generator().manual_seed(0))
    reorder_rows(g, opts, perm)
    check_aligned(g, opts)
    for name, p in g.params.items():
        p0, m0, v0, s0 = before[name]
        st = adam.state[p]
        assert torch.equal(p.detach(), p0[perm]), name
        assert torch.equal(st["exp_avg"], m0[perm]) and torch.equal(st["exp_avg_sq"], v0[perm]), name
        assert torch.equal(st["step"], s0), name
    # the method's own (warm) re-sort returns the order it applied, and state went with it
    shuffled = {name: (p.detach().clone(), adam.state[p]["exp_avg"].clone()) for name, p in g.params.items()}
    rep = trainer.method.controller.sort(g, opts, ITERS, trainer.cfg, warm=True, report=False)
    order = torch.as_tensor(rep["order"])
    assert rep["moved"] > 0
    check_aligned(g, opts)
    for name, p in g.params.items():
        assert torch.equal(p.detach(), shuffled[name][0][order]), name
        assert torch.equal(adam.state[p]["exp_avg"], shuffled[name][1][order]), name


def test_morton_layout_puts_rows_in_morton_order(straight):
    trainer, _ = straight
    g, opts = trainer.gaussians, trainer.optimizers
    reorder_rows(g, opts, torch.randperm(len(g), generator=torch.Generator().manual_seed(1)))
    rep = trainer.method.controller.sort(g, opts, ITERS, trainer.cfg, parse_options({"layout": "morton"}),
                                         report=False)
    assert rep["moved"] > 0
    check_aligned(g, opts)
    np.testing.assert_array_equal(morton_order(g.params["means"]), np.arange(len(g)))


def test_final_grid_is_smoother_than_random(straight):
    _, out = straight
    ck = load_checkpoint(find_checkpoint(out))
    g = Gaussians.from_fields(ck["params"])
    n = len(g)
    k = math.isqrt(n)
    cfg = SOGTraining(grid_side=k)
    with torch.no_grad():
        sorted_loss = smoothness_loss(g, SortedGrid(torch.arange(n), k, k, cfg)).item()
        rand = [smoothness_loss(g, SortedGrid(torch.randperm(n, generator=torch.Generator().manual_seed(s)),
                                              k, k, cfg)).item() for s in range(3)]
    assert sorted_loss < 0.8 * min(rand), (sorted_loss, rand)


def test_resume_is_exact(straight, scene_dir, tmp_path):
    _, full = straight
    split = tmp_path / "split"
    assert train_main(args(scene_dir, split, "--stop-at", str(STOP_AT))) == 0
    mid = load_checkpoint(find_checkpoint(split))
    assert mid["step"] == STOP_AT and int(mid["method_modules"]["sog"]["grid_side"]) > 0
    assert train_main(["--resume", str(split), "--no-progress"]) == 0
    a, b = load_checkpoint(find_checkpoint(full)), load_checkpoint(find_checkpoint(split))
    assert a["step"] == b["step"] == ITERS
    assert a["params"].keys() == b["params"].keys()
    for key in a["params"]:
        assert torch.equal(a["params"][key], b["params"][key]), key
    for (ka, sa), (kb, sb) in zip(a["optimizers"]["gaussians"]["state"].items(),
                                  b["optimizers"]["gaussians"]["state"].items()):
        for key in sa:
            assert torch.equal(sa[key], sb[key]), (ka, key)
    assert torch.equal(a["method_modules"]["sog"]["grid_side"], b["method_modules"]["sog"]["grid_side"])
    assert [h["loss"] for h in a["history"]] == [h["loss"] for h in b["history"]]


def test_compress_keeps_the_trained_order(straight, tmp_path):
    _, out = straight
    ply = read_splats(out / "point_cloud.ply")
    rep = compress(out / "point_cloud.ply", tmp_path / "grid.sog", CompressOptions(order="keep", sh_iterations=2))
    k = math.isqrt(len(ply))
    assert rep["grid"] == [k, k] and not any("texels wide" in s for s in rep["notes"])
    assert rep["sort_seconds"] < 1.0
    dec = read_splats(tmp_path / "grid.sog")
    err = (dec.params["means"] - ply.params["means"]).abs().max().item()
    span = (ply.params["means"].max(0).values - ply.params["means"].min(0).values).max().item()
    assert err < 1e-2 * max(span, 1.0)  # texel i holds row i: decoded rows line up with the .ply rows
    # and the trained layout is already as smooth as a fresh PLAS sort would make it (roughly)
    plas = compress(out / "point_cloud.ply", tmp_path / "plas.sog", CompressOptions(order="plas", sh_iterations=2))
    assert rep["neighbour_distance"] < plas["neighbour_distance_morton"]
    assert np.isfinite(plas["neighbour_distance"])
