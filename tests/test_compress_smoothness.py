"""Grid-smoothness loss, SortedGrid and the SOGTraining config."""
import numpy as np
import torch
import torch.nn.functional as F

from splatlab.compress.smoothness import SOGTraining, SortedGrid, blur_grid, encoded_values, smoothness_loss
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


# --- space="encoded": smooth what the SOG file stores, in code steps -------------------------

def _np_blur(img, sigma=3.0, taps=5):
    """Hand-written separable blur of (C, H, W): x circular, y reflect (no torch)."""
    r = taps // 2
    t = np.arange(-r, r + 1)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    k /= k.sum()
    C, H, W = img.shape
    out = np.zeros_like(img)
    for dx, kx in zip(t, k):
        out += kx * img[:, :, (np.arange(W) + dx) % W]
    res = np.zeros_like(img)
    for dy, ky in zip(t, k):
        y = np.arange(H) + dy
        y = np.where(y < 0, -y, np.where(y >= H, 2 * (H - 1) - y, y))
        res += ky * out[:, y, :]
    return res


def _np_huber(d, delta):
    a = np.abs(d)
    return np.where(a <= delta, 0.5 * d * d, delta * (a - 0.5 * delta))


def test_encoded_loss_matches_a_hand_computation():
    """Loss value of every encoded term (full 8x8 grid, random order) against numpy, including the
    encoder's quaternion sign and the min over q / -q; opacity gradient against its closed form."""
    n, side, delta = 64, 8, 1.5
    g = make(n, seed=5)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(1))
    weights = {"quats": 0.7, "opacities": 1.3, "scales": 0.5, "sh0": 2.0}
    cfg = SOGTraining(grid_side=side, space="encoded", loss_weights=weights, smoothness_lambda=0.25,
                      huber_delta=delta)
    loss = smoothness_loss(g, SortedGrid(order, side, side, cfg))
    loss.backward()

    P = {k: v.detach().double().numpy().reshape(n, -1) for k, v in g.params.items()}
    o = order.numpy()
    q = P["quats"] / np.linalg.norm(P["quats"], axis=1, keepdims=True)
    q *= np.sign(q[np.arange(n), np.abs(q).argmax(1)])[:, None]
    vals = {"quats": q / (np.sqrt(2) / 255), "opacities": 255 / (1 + np.exp(-P["opacities"])),
            "scales": P["scales"] / 0.02, "sh0": P["sh0"] / 0.02}
    expect = 0.0
    for name, w in weights.items():
        img = vals[name][o].T.reshape(-1, side, side)
        tgt = _np_blur(img)
        h = _np_huber(img - tgt, delta)
        if name == "quats":
            h = np.minimum(h.sum(0), _np_huber(-img - tgt, delta).sum(0))
        expect += w * h.sum() / (n * img.shape[0])
    assert abs(loss.item() - 0.25 * expect) < 1e-4 * max(1.0, abs(expect))

    img = vals["opacities"][o].T.reshape(1, side, side)
    d = np.clip(img - _np_blur(img), -delta, delta).reshape(-1)  # dHuber/dx, target detached
    s = 1 / (1 + np.exp(-P["opacities"][o, 0]))
    grad = np.zeros(n)
    grad[o] = 0.25 * 1.3 * d * 255 * s * (1 - s) / n
    np.testing.assert_allclose(g.params["opacities"].grad.double().numpy().reshape(-1), grad, rtol=1e-3, atol=1e-7)


def test_encoded_quats_are_sign_and_scale_invariant():
    """q, -q and 3q are the same rotation: same loss; raw-space smoothing is not sign-invariant."""
    n = 64
    g = make(n, seed=2)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    enc = SOGTraining(grid_side=8, space="encoded", loss_weights={"quats": 1.0})
    raw = SOGTraining(grid_side=8, loss_weights={"quats": 1.0})
    flip = torch.ones(n, 1)
    flip[::3] = -1
    flip[1::5] = 3
    before = {k: smoothness_loss(g, SortedGrid(order, 8, 8, c)).item() for k, c in (("enc", enc), ("raw", raw))}
    g.params["quats"].data *= flip
    after = {k: smoothness_loss(g, SortedGrid(order, 8, 8, c)).item() for k, c in (("enc", enc), ("raw", raw))}
    assert abs(after["enc"] - before["enc"]) < 1e-4 * before["enc"]
    assert abs(after["raw"] - before["raw"]) > 0.05 * before["raw"]
    # the quaternion gradient is tangent to the unit sphere: no pull toward q = 0
    loss = smoothness_loss(g, SortedGrid(order, 8, 8, enc))
    loss.backward()
    radial = (g.params["quats"].grad * g.params["quats"].detach()).sum(1)
    assert radial.abs().max() < 1e-4 * g.params["quats"].grad.abs().max()


def test_isotropy_weighting_of_the_quaternion_term():
    """iso: each texel's quaternion term is scaled by s_min / s_max of its splat (hand computation),
    so a needle-like splat's rotation gets (almost) no smoothness gradient."""
    n = 64
    g = make(n, seed=4)
    ls = torch.randn(n, 3, generator=torch.Generator().manual_seed(7))
    ls[::2] = torch.tensor([-3.0, -3.0, -15.0])  # needles: s_min / s_max = e^-12
    g.params["scales"].data = ls
    order = torch.randperm(n, generator=torch.Generator().manual_seed(2))
    base = dict(grid_side=8, space="encoded", loss_weights={"quats": 1.0})
    iso = SOGTraining(**base, quat_isotropy=True)
    loss = smoothness_loss(g, SortedGrid(order, 8, 8, iso))
    loss.backward()
    w = torch.exp(ls.min(1).values - ls.max(1).values)
    uni = SortedGrid(order, 8, 8, SOGTraining(**base))
    enc = uni.image(encoded_values("quats", g.params["quats"].detach()))
    tgt = blur_grid(enc)
    h = torch.minimum(F.huber_loss(enc, tgt, reduction="none").sum(1), F.huber_loss(-enc, tgt, reduction="none").sum(1))
    wimg = uni.image(w[:, None])[:, 0]
    assert abs(loss.item() - (h * wimg).sum().item() / (n * 4)) < 1e-5 * loss.item()
    gq = g.params["quats"].grad.norm(dim=1)
    assert gq[::2].max() < 1e-4 * gq[1::2].max()
