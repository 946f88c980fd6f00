"""Grid-smoothness loss, SortedGrid and the SOGTraining config."""
import torch

from splatlab.compress.smoothness import SOGTraining, SortedGrid, blur_grid, smoothness_loss
from splatlab.gaussians import Gaussians


def make(n, seed=0, constant=False):
    gen = torch.Generator().manual_seed(seed)
    g = Gaussians.from_points(torch.randn(n, 3, generator=gen), torch.rand(n, 3, generator=gen),
                              torch.full((n,), 0.02), sh_degree=1)
    if not constant:
        g.params["quats"].data = torch.randn(n, 4, generator=gen)
        g.params["opacities"].data = torch.randn(n, generator=gen)
    return g


def test_blur_preserves_constants():
    img = torch.full((1, 3, 7, 9), 2.5)
    assert torch.allclose(blur_grid(img), img)


def test_zero_for_constant_grid_positive_for_noise_and_grad_flows():
    cfg = SOGTraining(grid_side=8)
    const = make(64, constant=True)
    grid = SortedGrid.build(const, cfg)
    assert (grid.width, grid.height) == (8, 8)
    assert smoothness_loss(const, grid).item() < 1e-10
    noisy = make(64)
    grid = SortedGrid(torch.randperm(64), 8, 8, cfg)
    loss = smoothness_loss(noisy, grid)
    assert loss.item() > 0
    loss.backward()
    assert noisy.params["quats"].grad.abs().sum() > 0
    assert noisy.params["opacities"].grad.abs().sum() > 0
    assert noisy.params["means"].grad is None or noisy.params["means"].grad.abs().sum() == 0


def test_sorting_lowers_the_loss_and_weights():
    g = make(256, seed=1)
    cfg = SOGTraining(grid_side=16, sort_keys=("quats", "opacities"))
    rand = SortedGrid(torch.randperm(256, generator=torch.Generator().manual_seed(0)), 16, 16, cfg)
    sorted_ = SortedGrid.build(g, cfg)
    assert smoothness_loss(g, sorted_).item() < smoothness_loss(g, rand).item()
    assert smoothness_loss(g, rand, weights={"quats": 0.0, "opacities": 0.0}).item() == 0.0
    two = smoothness_loss(g, rand, weights={"opacities": 2.0}).item()
    one = smoothness_loss(g, rand, weights={"opacities": 1.0}).item()
    assert abs(two - 2 * one) < 1e-6


def test_partial_grid_resort_and_pruning():
    cfg = SOGTraining(sort_every=100, sort_start=0, sort_stop=250)
    g = make(50)
    grid = SortedGrid.build(g, cfg)  # no grid_side: SOG texture size, partially used
    assert grid.width * grid.height >= 50 and len(grid) == 50
    loss = smoothness_loss(g, grid)
    assert torch.isfinite(loss) and loss.item() > 0
    res = grid.resort(g)  # warm, same count
    assert sorted(grid.order.tolist()) == list(range(50)) and res.radii >= 1
    g2 = make(70, seed=3)
    grid.resort(g2)  # count changed -> new grid
    assert len(grid) == 70 and grid.width * grid.height >= 70
    assert [cfg.should_resort(s) for s in (0, 50, 100, 200, 300)] == [True, False, True, True, False]
    cfg2 = SOGTraining(grid_side=5)
    keep = cfg2.prune_index(g2)
    assert keep.numel() == 25
    top = torch.topk(g2.params["opacities"].detach(), 25).indices
    assert set(keep.tolist()) == set(top.tolist())
    assert SOGTraining(grid_side=10).prune_index(g2) is None
