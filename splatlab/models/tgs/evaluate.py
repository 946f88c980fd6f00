"""Novel-view evaluation of Triplane-Gaussian against ground-truth renders of an object, and the
trivial baseline it must beat (shared by scripts/train_tgs.py, the model card and the tests)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from splatlab.cameras import Cameras
from splatlab.metrics import psnr, ssim_metric


def canonical_transform(model, viewmat_in: Tensor, elevation: float) -> Tensor:
    """World -> canonical frame (4,4): maps the object's input camera onto the model's input camera
    at the same elevation (for the dataset's upright orbit cameras: a rotation about z)."""
    return torch.linalg.inv(model.input_camera(elevation=elevation).viewmats[0]) @ viewmat_in


def sphere_baseline(image: Tensor, n: int = 2000) -> dict[str, Tensor]:
    """A trivial prior: an opaque sphere (radius 0.6) in the mean foreground colour of `image`
    ((H, W, 4): RGB over white + alpha), as a batch-of-one model output."""
    a = image[..., 3:]
    colour = ((image[..., :3] - (1 - a)).sum((0, 1)) / a.sum().clamp_min(1e-6)).clamp(0, 1)
    d = F.normalize(torch.randn(n, 3, generator=torch.Generator().manual_seed(0)), dim=1) * 0.6
    return {"means": d[None], "scales": torch.full((1, n, 3), 0.05),
            "quats": torch.tensor([[1.0, 0.0, 0.0, 0.0]]).expand(n, 4)[None],
            "opacities": torch.full((1, n), 0.95), "rgb": colour.expand(n, 3)[None]}


@torch.no_grad()
def novel_view_metrics(model, input_image: Tensor, input_elevation: float, input_viewmat: Tensor,
                       targets: Tensor, viewmats: Tensor, Ks: Tensor) -> dict[str, float]:
    """PSNR / SSIM / alpha IoU of the model and of the sphere baseline on target views.

    `input_image` (S, S, 4) at the model's input size (RGB over white + alpha); `targets`
    (V, H, W, 4) the same layout at any size with their world `viewmats` and pixel `Ks`."""
    model.eval()
    T = canonical_transform(model, input_viewmat, float(input_elevation))
    h, w = targets.shape[1:3]
    cams = Cameras(viewmats @ torch.linalg.inv(T), Ks, w, h)
    out = model(input_image.permute(2, 0, 1)[None], torch.tensor([float(input_elevation)]))
    row: dict[str, float] = {}
    for name, o in (("tgs", out), ("sphere", sphere_baseline(input_image))):
        img, alpha = model.render_views(o, 0, cams)
        gt, gta = targets[..., :3], targets[..., 3]
        row[f"{name}_psnr"] = float(np.mean([psnr(img[i], gt[i]) for i in range(len(gt))]))
        row[f"{name}_ssim"] = float(np.mean([ssim_metric(img[i], gt[i]) for i in range(len(gt))]))
        inter = ((alpha[..., 0] > 0.5) & (gta > 0.5)).sum().item()
        union = ((alpha[..., 0] > 0.5) | (gta > 0.5)).sum().item()
        row[f"{name}_iou"] = inter / max(union, 1)
    return row


def fixture_metrics(model, d: dict) -> list[dict]:
    """Per-object metrics of `model` on the arrays of a fixture file (the shipped-weights test's
    protocol: the card's held-out protocol on a subset of the novel views)."""
    rows = []
    for o in range(len(d["ids"])):
        inp = torch.from_numpy(d["input"][o]).float() / 255.0
        tgt = torch.from_numpy(d["targets"][o]).float() / 255.0
        row = novel_view_metrics(model, inp, float(d["input_elevation"][o]), torch.from_numpy(d["input_viewmat"][o]),
                                 tgt, torch.from_numpy(d["viewmats"][o]), torch.from_numpy(d["Ks"][o]))
        rows.append({"id": str(d["ids"][o]), **row})
    return rows
