"""The one SSIM (`splatlab.metrics`) against scikit-image's, on both of its blur paths (dense band
matrices for small images, depthwise convolution for large ones)."""
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
    ours = metrics.ssim_map(a.double(), b.double())[..., 5:-5, 5:-5].mean().item()
    assert ours == pytest.approx(ref, abs=1e-6)
