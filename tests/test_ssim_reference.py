"""The one SSIM (`splatlab.metrics`) against scikit-image's and its gradient against finite
differences: the compiled CPU path (`splatlab.render.cpu.ssim`) and the torch path (dense band
matrices for small images, depthwise convolution for large ones, used off CPU and when the target
needs a gradient too)."""
from __future__ import annotations

import pytest
import torch

from splatlab import metrics


@pytest.mark.parametrize("size", [48, metrics.MATMUL_MAX + 60])
def test_ssim_map_matches_scikit_image_away_from_the_border(size):
    skm = pytest.importorskip("skimage.metrics")
    g = torch.Generator().manual_seed(size)
    a = torch.rand(size, size, 3, generator=g)
    b = (a + 0.2 * torch.randn(size, size, 3, generator=g)).clamp(0, 1)
    # scikit-image: 11-tap Gaussian window (sigma 1.5, truncate 3.5), population covariance, and the
    # mean over the image without a 5-pixel border (where the two pad differently)
    ref = skm.structural_similarity(a.double().numpy(), b.double().numpy(), gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, data_range=1.0, channel_axis=-1)
    compiled = metrics.ssim_map(a.double(), b.double())[..., 5:-5, 5:-5].mean().item()
    # a target that needs a gradient takes the torch path (band matrices or conv2d, by size)
    torch_path = metrics.ssim_map(a.double(), b.double().requires_grad_(True))[..., 5:-5, 5:-5].mean().item()
    assert compiled == pytest.approx(ref, abs=1e-6)
    assert torch_path == pytest.approx(ref, abs=1e-6)


def test_ssim_gradient_matches_finite_differences():
    """The hand-written SSIM gradient (to the prediction) against central differences, float64."""
    g = torch.Generator().manual_seed(7)
    a = torch.rand(2, 13, 15, 3, generator=g, dtype=torch.float64)
    b = (a + 0.3 * torch.randn(a.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    weights = torch.rand(2, 3, 13, 15, generator=g, dtype=torch.float64)  # a non-uniform upstream gradient
    torch.autograd.gradcheck(lambda x: (metrics.ssim_map(x, b) * weights).sum(), (a.clone().requires_grad_(True),),
                             eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("size", [40, metrics.MATMUL_MAX + 28])
def test_ssim_gradient_matches_autograd_of_the_formula(size):
    """Both blur paths, against autograd through the same formula (taken when the target needs a
    gradient too)."""
    g = torch.Generator().manual_seed(size)
    a = torch.rand(size, size, 3, generator=g)
    b = (a + 0.2 * torch.randn(size, size, 3, generator=g)).clamp(0, 1)
    x = a.clone().requires_grad_(True)
    metrics.ssim(x, b).backward()
    y = a.clone().requires_grad_(True)
    metrics.ssim(y, b.clone().requires_grad_(True)).backward()
    assert torch.allclose(x.grad, y.grad, rtol=1e-4, atol=1e-9)
    assert x.grad.abs().max() > 0


@pytest.mark.parametrize("shape", [(3, 4), (1, 9), (6, 2)])
def test_ssim_on_images_smaller_than_the_window(shape):
    """Images narrower than the 11-tap window: the compiled path against the torch path, value
    and gradient."""
    g = torch.Generator().manual_seed(sum(shape))
    a = torch.rand(*shape, 3, generator=g, dtype=torch.float64)
    b = torch.rand(*shape, 3, generator=g, dtype=torch.float64)
    x = a.clone().requires_grad_(True)
    metrics.ssim(x, b).backward()
    y = a.clone().requires_grad_(True)
    ref = metrics.ssim(y, b.clone().requires_grad_(True))
    ref.backward()
    # (the torch path's band matrices carry float32 taps, hence not closer)
    assert metrics.ssim(a, b).item() == pytest.approx(ref.item(), abs=1e-7)
    assert torch.allclose(x.grad, y.grad, atol=1e-7)
