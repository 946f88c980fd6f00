"""EWA projection of 3D Gaussians to screen-space conics, vectorised in torch.

The rasterizer's CPU backend runs this in torch (autograd supplies the backward) and hands the
screen-space Gaussians to the compiled compositing kernels.  The same function is the projection
of the dense reference renderer, and is tested against gsplat's `_torch_impl`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

ALPHA_MIN = 1.0 / 255.0


def quat_to_rotmat(quats: Tensor) -> Tensor:
    """(N,4) wxyz (normalised here) -> (N,3,3)."""
    w, x, y, z = torch.nn.functional.normalize(quats, dim=-1).unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], dim=-1).reshape(quats.shape[:-1] + (3, 3))


def quat_multiply(a: Tensor, b: Tensor) -> Tensor:
    """Hamilton product of wxyz quaternions (rotation b, then a)."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack([aw * bw - ax * bx - ay * by - az * bz,
                        aw * bx + ax * bw + ay * bz - az * by,
                        aw * by - ax * bz + ay * bw + az * bx,
                        aw * bz + ax * by - ay * bx + az * bw], dim=-1)


def rotation_from_vector(v: Tensor) -> tuple[Tensor, Tensor]:
    """Rotation by |v| radians about v (3,): the (3, 3) matrix (Rodrigues) and the wxyz quaternion.
    Differentiable at v = 0, where both are the identity and the derivative is the skew matrix."""
    theta = torch.sqrt((v * v).sum() + 1e-20)
    k = v / theta
    zero = v.new_zeros(())
    skew = torch.stack([zero, -k[2], k[1], k[2], zero, -k[0], -k[1], k[0], zero]).reshape(3, 3)
    matrix = torch.eye(3, dtype=v.dtype) + torch.sin(theta) * skew + (1.0 - torch.cos(theta)) * (skew @ skew)
    quat = torch.cat([torch.cos(theta / 2).reshape(1), torch.sin(theta / 2) * k])
    return matrix, quat


def covariance_3d(quats: Tensor, scales: Tensor) -> Tensor:
    """Σ = R S Sᵀ Rᵀ for activated scales (N,3)."""
    M = quat_to_rotmat(quats) * scales[..., None, :]
    return M @ M.transpose(-1, -2)


def kernel_extent(opacities: Tensor, shapes: Tensor | None) -> Tensor:
    """Mahalanobis radius k beyond which opacity·kernel < 1/255 (0 where the Gaussian is invisible).

    Gaussian kernel exp(-σ): σ < ln(255·o).  Generalized exponential exp(-σ^(β/2)):
    σ < ln(255·o)^(2/β).  With σ = k²/2 this gives the screen-space bounding box exactly, so
    the tiled renderer skips nothing the dense definition would draw.
    """
    budget = torch.log(opacities.clamp_min(1e-30) * 255.0)
    visible = budget > 0
    budget = budget.clamp_min(1e-12)
    if shapes is not None:
        budget = budget ** (2.0 / shapes)
    return torch.where(visible, torch.sqrt(2.0 * budget), torch.zeros_like(budget))


@dataclass
class Projected:
    means2d: Tensor  # (C,N,2) pixel coordinates (pixel centres at +0.5)
    conics: Tensor  # (C,N,3) inverse 2D covariance (a, b, c)
    depths: Tensor  # (C,N) camera z
    opacities: Tensor  # (C,N) after antialiasing compensation
    radii: Tensor  # (C,N,2) int32 half extents of the screen bbox, 0 = culled
    cov2d: Tensor  # (C,N,2,2) with the eps2d blur added


def project(
    means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, viewmats: Tensor, Ks: Tensor,
    width: int, height: int, near_plane: float = 0.01, far_plane: float = 1e10, eps2d: float = 0.3,
    antialiased: bool = False, shapes: Tensor | None = None, radius_clip: float = 0.0,
) -> Projected:
    R = viewmats[:, :3, :3]
    t = viewmats[:, :3, 3]
    means_c = torch.einsum("cij,nj->cni", R, means) + t[:, None, :]
    cov_c = R[:, None] @ covariance_3d(quats, scales)[None] @ R[:, None].transpose(-1, -2)

    tx, ty, tz = means_c.unbind(-1)
    fx, fy = Ks[:, 0, 0, None], Ks[:, 1, 1, None]
    cx, cy = Ks[:, 0, 2, None], Ks[:, 1, 2, None]
    valid_depth = (tz > near_plane) & (tz < far_plane)
    tz_safe = torch.where(valid_depth, tz, torch.ones_like(tz))
    # Clamp the Jacobian's evaluation point just outside the frustum (as the INRIA code does)
    # so huge off-screen Gaussians don't get absurd footprints.
    lim_xp = (width - cx) / fx + 0.3 * (0.5 * width / fx)
    lim_xn = cx / fx + 0.3 * (0.5 * width / fx)
    lim_yp = (height - cy) / fy + 0.3 * (0.5 * height / fy)
    lim_yn = cy / fy + 0.3 * (0.5 * height / fy)
    u = tz_safe * torch.minimum(torch.maximum(tx / tz_safe, -lim_xn), lim_xp)
    v = tz_safe * torch.minimum(torch.maximum(ty / tz_safe, -lim_yn), lim_yp)
    zeros = torch.zeros_like(tz)
    J = torch.stack([fx / tz_safe, zeros, -fx * u / tz_safe**2,
                     zeros, fy / tz_safe, -fy * v / tz_safe**2], dim=-1).reshape(tz.shape + (2, 3))
    cov2d = J @ cov_c @ J.transpose(-1, -2)
    a0, b0, c0 = cov2d[..., 0, 0], 0.5 * (cov2d[..., 0, 1] + cov2d[..., 1, 0]), cov2d[..., 1, 1]
    det_orig = a0 * c0 - b0 * b0
    a, c = a0 + eps2d, c0 + eps2d
    det = (a * c - b0 * b0)
    valid = valid_depth & (det > 0)
    det = det.clamp_min(1e-10)
    conics = torch.stack([c / det, -b0 / det, a / det], dim=-1)
    means2d = torch.stack([fx * tx / tz_safe + cx, fy * ty / tz_safe + cy], dim=-1)

    opac = opacities[None].expand_as(tz)
    if antialiased:
        opac = opac * torch.sqrt((det_orig / det).clamp_min(0.0))

    with torch.no_grad():
        shp = None if shapes is None else shapes[None].expand_as(tz)
        k = kernel_extent(opac.detach(), shp)
        rx = torch.ceil(k * torch.sqrt(a.detach().clamp_min(0)))
        ry = torch.ceil(k * torch.sqrt(c.detach().clamp_min(0)))
        m = means2d.detach()
        inside = (m[..., 0] + rx > 0) & (m[..., 0] - rx < width) & (m[..., 1] + ry > 0) & (m[..., 1] - ry < height)
        keep = valid & inside & (k > 0) & (torch.maximum(rx, ry) > radius_clip)
        radii = torch.stack([rx, ry], dim=-1) * keep[..., None]
        radii = radii.to(torch.int32)
    cov2d_eps = cov2d + eps2d * torch.eye(2, dtype=cov2d.dtype)
    return Projected(means2d, conics, tz, opac, radii, cov2d_eps)
