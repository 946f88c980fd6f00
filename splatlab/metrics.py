"""Image metrics shared by training, evaluation, compression reports and benchmarks: PSNR, SSIM
(11x11 Gaussian window, sigma 1.5, zero-padded "same" convolution as the 3DGS reference code) and
LPIPS only when its weights are already on disk. One implementation, so every number splatlab
prints is comparable.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

C1 = 0.01 ** 2
C2 = 0.03 ** 2


@functools.lru_cache(maxsize=8)
def _window_1d(size: int, sigma: float, device_str: str, dtype: torch.dtype) -> Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    g = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    return (g / g.sum()).to(device=torch.device(device_str), dtype=dtype)


@functools.lru_cache(maxsize=16)
def _band(n: int, size: int, sigma: float, device_str: str, dtype: torch.dtype) -> Tensor:
    """(n, n) matrix applying the 1D window with zero padding (a "same" convolution)."""
    w = _window_1d(size, sigma, "cpu", torch.float32)
    i = torch.arange(n)
    d = i[None, :] - i[:, None]
    inside = d.abs() <= size // 2
    m = torch.zeros(n, n)
    m[inside] = w[(d + size // 2)[inside]]
    return m.to(device=torch.device(device_str), dtype=dtype)


# up to this size two small dense matmuls beat depthwise conv2d on CPU; above it the band's zeros
# cost more (forward + backward of a (1, 15, n, n) blur, torch 2.13, 2 threads: n = 64: 1.2 vs 1.9 ms,
# 128: 6.2 vs 5.0, 256: 37 vs 18 ms; one thread alike; the SSIM was 1/3 of a 256² training step)
MATMUL_MAX = 100


def gaussian_blur(x: Tensor, size: int, sigma: float) -> Tensor:
    """Separable Gaussian blur of (B, C, H, W) with zero padding ("same" size)."""
    h, w_ = x.shape[-2:]
    if max(h, w_) <= MATMUL_MAX:
        key = (str(x.device), x.dtype)
        mh = _band(h, size, sigma, *key)
        mw = _band(w_, size, sigma, *key)
        return mh @ x @ mw.T
    c = x.shape[1]
    w = _window_1d(size, sigma, str(x.device), x.dtype)
    k = w.numel()
    x = F.conv2d(x, w.view(1, 1, 1, k).expand(c, 1, 1, k), padding=(0, k // 2), groups=c)
    return F.conv2d(x, w.view(1, 1, k, 1).expand(c, 1, k, 1), padding=(k // 2, 0), groups=c)


def _ssim_terms(p: Tensor, t: Tensor, window_size: int, sigma: float):
    """Blurred statistics of (B, C, H, W) images and the SSIM map's four factors:
    SSIM = a1·a2 / (b1·b2), a1 = 2μpμt + C1, a2 = 2σpt + C2, b1 = μp² + μt² + C1, b2 = σp² + σt² + C2."""
    mu_p, mu_t, e_pp, e_tt, e_pt = gaussian_blur(torch.cat([p, t, p * p, t * t, p * t], dim=1),
                                                 window_size, sigma).chunk(5, dim=1)
    mpt = mu_p * mu_t
    mpp = mu_p * mu_p
    mtt = mu_t * mu_t
    a1 = 2 * mpt + C1
    a2 = 2 * (e_pt - mpt) + C2
    b1 = mpp + mtt + C1
    b2 = (e_pp - mpp) + (e_tt - mtt) + C2
    return mu_p, mu_t, a1, a2, b1, b2


class _SSIMMap(torch.autograd.Function):
    """SSIM map with a hand-written gradient to the prediction. The blur is linear and symmetric,
    so dL/dp = G(dL/dμp) + 2p·G(dL/dE[p²]) + t·G(dL/dE[pt]): one blur of three maps, where
    autograd replays two convolutions' backward over all five maps and ~20 elementwise ops.
    On CPU both directions are compiled loops (`splatlab.render.cpu.ssim`)."""

    @staticmethod
    def forward(ctx, p: Tensor, t: Tensor, window_size: int, sigma: float) -> Tensor:
        ctx.window = (window_size, sigma)
        ctx.compiled = p.device.type == "cpu" and p.dtype in (torch.float32, torch.float64)
        if ctx.compiled:
            from splatlab.render.cpu.ssim import ssim_forward

            planes_p = p.detach().reshape(-1, *p.shape[-2:]).contiguous().numpy()
            planes_t = t.detach().to(p.dtype).reshape(planes_p.shape).contiguous().numpy()
            taps = _window_1d(window_size, sigma, "cpu", p.dtype).numpy()
            stats = np.empty((6, *planes_p.shape), planes_p.dtype)
            s = np.empty_like(planes_p)
            scalar = planes_p.dtype.type
            ssim_forward(planes_p, planes_t, taps, scalar(C1), scalar(C2), stats, s)
            ctx.arrays = (planes_p, planes_t, taps, stats, s)
            return torch.from_numpy(s).view(p.shape)
        mu_p, mu_t, a1, a2, b1, b2 = _ssim_terms(p, t, window_size, sigma)
        s = a1 * a2 / (b1 * b2)
        ctx.save_for_backward(p, t, mu_p, mu_t, a1, a2, b1, b2, s)
        return s

    @staticmethod
    def backward(ctx, g: Tensor):
        if ctx.compiled:
            from splatlab.render.cpu.ssim import ssim_backward

            planes_p, planes_t, taps, stats, s = ctx.arrays
            grad = np.empty_like(planes_p)
            g_np = g.detach().reshape(s.shape).contiguous().numpy().astype(s.dtype, copy=False)
            ssim_backward(g_np, planes_p, planes_t, stats, s, taps, grad)
            return torch.from_numpy(grad).view(g.shape), None, None, None
        p, t, mu_p, mu_t, a1, a2, b1, b2, s = ctx.saved_tensors
        gs = g * s
        g_over = g / (b1 * b2)
        d_mu = 2 * mu_t * (a2 - a1) * g_over - 2 * mu_p * gs * (1 / b1 - 1 / b2)  # dL/dμp
        d_pp = -gs / b2  # dL/dE[p²]
        d_pt = 2 * a1 * g_over  # dL/dE[pt]
        b_mu, b_pp, b_pt = gaussian_blur(torch.cat([d_mu, d_pp, d_pt], dim=1), *ctx.window).chunk(3, dim=1)
        return b_mu + 2 * p * b_pp + t * b_pt, None, None, None


def ssim_map(pred: Tensor, target: Tensor, window_size: int = 11, sigma: float = 1.5) -> Tensor:
    """Per-pixel SSIM of images laid out (..., H, W, C) (the renderer's layout), as (B, C, H, W)."""
    p = pred.reshape(-1, *pred.shape[-3:]).permute(0, 3, 1, 2)
    t = target.reshape(-1, *target.shape[-3:]).permute(0, 3, 1, 2)
    if t.requires_grad:  # the hand-written gradient is to the prediction only
        _, _, a1, a2, b1, b2 = _ssim_terms(p, t, window_size, sigma)
        return a1 * a2 / (b1 * b2)
    return _SSIMMap.apply(p, t.detach(), window_size, sigma)


def ssim(pred: Tensor, target: Tensor, window_size: int = 11) -> Tensor:
    return ssim_map(pred, target, window_size).mean()


LPIPS_SKIPPED = "skipped: no local LPIPS weights"


@torch.no_grad()
def psnr(pred: Tensor, target: Tensor) -> float:
    mse = torch.mean((pred.clamp(0, 1) - target) ** 2).item()
    return float("inf") if mse <= 0 else -10.0 * torch.log10(torch.tensor(mse)).item()


@torch.no_grad()
def ssim_metric(pred: Tensor, target: Tensor) -> float:
    """Mean SSIM of two (H, W, 3) images as a float (the prediction clamped to [0, 1])."""
    return float(ssim(pred.clamp(0, 1), target).item())


def local_lpips_weights() -> Path | None:
    """A local LPIPS weight file named by $SPLATLAB_LPIPS_WEIGHTS, if it exists (never downloads)."""
    path = os.environ.get("SPLATLAB_LPIPS_WEIGHTS")
    if path and Path(path).is_file():
        return Path(path)
    return None


class LPIPS:
    """LPIPS via the `lpips` package with weights loaded from disk only; `available` says if usable."""

    def __init__(self) -> None:
        self.model = None
        self.reason = LPIPS_SKIPPED
        weights = local_lpips_weights()
        if weights is None:
            return
        try:  # pragma: no cover - needs the optional package and local weights
            import lpips  # type: ignore
            model = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False)
            model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=False)
            self.model = model.eval()
            self.reason = ""
        except Exception as exc:  # pragma: no cover
            self.reason = f"skipped: LPIPS unavailable ({type(exc).__name__})"

    @property
    def available(self) -> bool:
        return self.model is not None

    @torch.no_grad()
    def __call__(self, pred: Tensor, target: Tensor) -> float:  # pragma: no cover
        p = pred.clamp(0, 1).permute(2, 0, 1)[None] * 2 - 1
        t = target.permute(2, 0, 1)[None] * 2 - 1
        return float(self.model(p, t).item())
