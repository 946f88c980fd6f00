"""Compiled per-Gaussian preprocessing: EWA projection and SH colours, forward and backward.

Mirrors `splatlab.render.projection.project` and `splatlab.render.sh.eval_sh` (the torch
versions are the reference the tests hold these kernels to), but runs fused and multi-threaded
over Gaussians, because at 100k Gaussians torch's per-op overhead dominated the whole render.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

C0 = 0.28209479177387814
C1 = 0.4886025119029199
C20, C21, C22, C23, C24 = 1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396
C30, C31, C32, C33, C34, C35, C36 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
                                     -0.4570457994644658, 1.445305721320277, -0.5900435899266435)


CHUNK = 512


@njit(cache=True, nogil=True, inline="always")
def _sh_add(g, k, bk, sh_coeffs, s0, s1, s2):
    return s0 + bk * sh_coeffs[g, k, 0], s1 + bk * sh_coeffs[g, k, 1], s2 + bk * sh_coeffs[g, k, 2]


@njit(cache=True, parallel=True, nogil=True)
def project_forward(means, quats, scales, opacities, shapes, use_shape, viewmat, K, width, height, near, far,
                    eps2d, antialiased, radius_clip, sh_coeffs, sh_degree,
                    out_means2d, out_conics, out_depths, out_opac, out_radii, out_colors, rows):
    """One camera. Writes screen-space Gaussians; radii 0 marks culled ones. sh_degree < 0: no colours.
    `rows` (k,) int64: only these rows are projected (the others' outputs are not written; the
    caller zeroes them); empty: every row. Parallel over chunks of rows, each `_project_forward_chunk`."""
    n = means.shape[0]
    use_rows = rows.shape[0] > 0
    n_items = rows.shape[0] if use_rows else n
    n_chunks = (n_items + CHUNK - 1) // CHUNK
    for chunk in prange(n_chunks):
        _project_forward_chunk(chunk * CHUNK, min(n_items, (chunk + 1) * CHUNK), use_rows, means, quats, scales,
                               opacities, shapes, use_shape, viewmat, K, width, height, near, far, eps2d,
                               antialiased, radius_clip, sh_coeffs, sh_degree, out_means2d, out_conics, out_depths,
                               out_opac, out_radii, out_colors, rows)


@njit(cache=True, nogil=True)
def _project_forward_chunk(start, stop, use_rows, means, quats, scales, opacities, shapes, use_shape, viewmat, K,
                           width, height, near, far, eps2d, antialiased, radius_clip, sh_coeffs, sh_degree,
                           out_means2d, out_conics, out_depths, out_opac, out_radii, out_colors, rows):
    """Items start..stop of `project_forward`. Straight-line scalar code (rotation, covariance and
    SH basis in named locals); serial, so numba's parallel passes see only the chunk loop (they
    re-type a parallel loop's whole body, seconds of compile time for this one)."""
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    lim_xp = (width - cx) / fx + 0.15 * width / fx
    lim_xn = cx / fx + 0.15 * width / fx
    lim_yp = (height - cy) / fy + 0.15 * height / fy
    lim_yn = cy / fy + 0.15 * height / fy
    r00, r01, r02, t0 = viewmat[0, 0], viewmat[0, 1], viewmat[0, 2], viewmat[0, 3]
    r10, r11, r12, t1 = viewmat[1, 0], viewmat[1, 1], viewmat[1, 2], viewmat[1, 3]
    r20, r21, r22, t2 = viewmat[2, 0], viewmat[2, 1], viewmat[2, 2], viewmat[2, 3]
    # camera centre for SH view directions: -Rᵀ t
    camx = -(r00 * t0 + r10 * t1 + r20 * t2)
    camy = -(r01 * t0 + r11 * t1 + r21 * t2)
    camz = -(r02 * t0 + r12 * t1 + r22 * t2)
    for j in range(start, stop):
        g = rows[j] if use_rows else np.int64(j)
        out_radii[g, 0] = 0
        out_radii[g, 1] = 0
        mx, my, mz = means[g, 0], means[g, 1], means[g, 2]
        tx = r00 * mx + r01 * my + r02 * mz + t0
        ty = r10 * mx + r11 * my + r12 * mz + t1
        tz = r20 * mx + r21 * my + r22 * mz + t2
        out_depths[g] = tz
        if sh_degree >= 0:
            dx, dy, dz = mx - camx, my - camy, mz - camz
            inv_norm = 1.0 / max(np.sqrt(dx * dx + dy * dy + dz * dz), 1e-12)
            x, y, z = dx * inv_norm, dy * inv_norm, dz * inv_norm
            s0, s1, s2 = _sh_add(g, 0, C0, sh_coeffs, 0.5, 0.5, 0.5)
            if sh_degree >= 1:
                s0, s1, s2 = _sh_add(g, 1, -C1 * y, sh_coeffs, s0, s1, s2)
                s0, s1, s2 = _sh_add(g, 2, C1 * z, sh_coeffs, s0, s1, s2)
                s0, s1, s2 = _sh_add(g, 3, -C1 * x, sh_coeffs, s0, s1, s2)
            if sh_degree >= 2:
                xx, yy, zz = x * x, y * y, z * z
                s0, s1, s2 = _sh_add(g, 4, C20 * x * y, sh_coeffs, s0, s1, s2)
                s0, s1, s2 = _sh_add(g, 5, C21 * y * z, sh_coeffs, s0, s1, s2)
                s0, s1, s2 = _sh_add(g, 6, C22 * (2.0 * zz - xx - yy), sh_coeffs, s0, s1, s2)
                s0, s1, s2 = _sh_add(g, 7, C23 * x * z, sh_coeffs, s0, s1, s2)
                s0, s1, s2 = _sh_add(g, 8, C24 * (xx - yy), sh_coeffs, s0, s1, s2)
                if sh_degree >= 3:
                    s0, s1, s2 = _sh_add(g, 9, C30 * y * (3.0 * xx - yy), sh_coeffs, s0, s1, s2)
                    s0, s1, s2 = _sh_add(g, 10, C31 * x * y * z, sh_coeffs, s0, s1, s2)
                    s0, s1, s2 = _sh_add(g, 11, C32 * y * (4.0 * zz - xx - yy), sh_coeffs, s0, s1, s2)
                    s0, s1, s2 = _sh_add(g, 12, C33 * z * (2.0 * zz - 3.0 * xx - 3.0 * yy), sh_coeffs, s0, s1, s2)
                    s0, s1, s2 = _sh_add(g, 13, C34 * x * (4.0 * zz - xx - yy), sh_coeffs, s0, s1, s2)
                    s0, s1, s2 = _sh_add(g, 14, C35 * z * (xx - yy), sh_coeffs, s0, s1, s2)
                    s0, s1, s2 = _sh_add(g, 15, C36 * x * (xx - 3.0 * yy), sh_coeffs, s0, s1, s2)
            out_colors[g, 0] = max(s0, 0.0)
            out_colors[g, 1] = max(s1, 0.0)
            out_colors[g, 2] = max(s2, 0.0)
        if not (tz > near and tz < far):
            out_means2d[g, 0] = 0.0; out_means2d[g, 1] = 0.0
            out_conics[g, 0] = 0.0; out_conics[g, 1] = 0.0; out_conics[g, 2] = 0.0
            out_opac[g] = 0.0
            continue
        qw, qx, qy, qz = quats[g, 0], quats[g, 1], quats[g, 2], quats[g, 3]
        qinv = 1.0 / np.sqrt(qw * qw + qx * qx + qy * qy + qz * qz)
        w, x, y, z = qw * qinv, qx * qinv, qy * qinv, qz * qinv
        R00 = 1.0 - 2.0 * (y * y + z * z); R01 = 2.0 * (x * y - w * z); R02 = 2.0 * (x * z + w * y)
        R10 = 2.0 * (x * y + w * z); R11 = 1.0 - 2.0 * (x * x + z * z); R12 = 2.0 * (y * z - w * x)
        R20 = 2.0 * (x * z - w * y); R21 = 2.0 * (y * z + w * x); R22 = 1.0 - 2.0 * (x * x + y * y)
        # T = Rv R diag(s), so Σ_c = T Tᵀ
        sx, sy, sz = scales[g, 0], scales[g, 1], scales[g, 2]
        T00 = (r00 * R00 + r01 * R10 + r02 * R20) * sx
        T01 = (r00 * R01 + r01 * R11 + r02 * R21) * sy
        T02 = (r00 * R02 + r01 * R12 + r02 * R22) * sz
        T10 = (r10 * R00 + r11 * R10 + r12 * R20) * sx
        T11 = (r10 * R01 + r11 * R11 + r12 * R21) * sy
        T12 = (r10 * R02 + r11 * R12 + r12 * R22) * sz
        T20 = (r20 * R00 + r21 * R10 + r22 * R20) * sx
        T21 = (r20 * R01 + r21 * R11 + r22 * R21) * sy
        T22 = (r20 * R02 + r21 * R12 + r22 * R22) * sz
        u = tz * min(max(tx / tz, -lim_xn), lim_xp)
        v = tz * min(max(ty / tz, -lim_yn), lim_yp)
        j00 = fx / tz; j02 = -fx * u / (tz * tz)
        j11 = fy / tz; j12 = -fy * v / (tz * tz)
        # rows of J T (2x3)
        p0 = j00 * T00 + j02 * T20; p1 = j00 * T01 + j02 * T21; p2 = j00 * T02 + j02 * T22
        q0 = j11 * T10 + j12 * T20; q1 = j11 * T11 + j12 * T21; q2 = j11 * T12 + j12 * T22
        a0 = p0 * p0 + p1 * p1 + p2 * p2
        b0 = p0 * q0 + p1 * q1 + p2 * q2
        c0 = q0 * q0 + q1 * q1 + q2 * q2
        a = a0 + eps2d
        c = c0 + eps2d
        det = a * c - b0 * b0
        out_means2d[g, 0] = fx * tx / tz + cx
        out_means2d[g, 1] = fy * ty / tz + cy
        if det <= 0.0:
            det = 1e-10
            valid = False
        else:
            valid = True
        out_conics[g, 0] = c / det
        out_conics[g, 1] = -b0 / det
        out_conics[g, 2] = a / det
        o = opacities[g]
        if antialiased:
            o *= np.sqrt(max((a0 * c0 - b0 * b0) / det, 0.0))
        out_opac[g] = o
        if not valid or o * 255.0 <= 1.0:
            continue
        budget = np.log(o * 255.0)
        if use_shape:
            budget = budget ** (2.0 / shapes[g])
        k = np.sqrt(2.0 * budget)
        rx = np.ceil(k * np.sqrt(a))
        ry = np.ceil(k * np.sqrt(c))
        m0, m1 = out_means2d[g, 0], out_means2d[g, 1]
        if m0 + rx <= 0 or m0 - rx >= width or m1 + ry <= 0 or m1 - ry >= height:
            continue
        if max(rx, ry) <= radius_clip:
            continue
        out_radii[g, 0] = np.int32(rx)
        out_radii[g, 1] = np.int32(ry)


@njit(cache=True, nogil=True, inline="always")
def _sh_grad(g, k, bk, v0, v1, v2, sh_coeffs, g_sh):
    """g_sh[g, k] += b_k v; returns w_k = Σ_ch coeff[k, ch] v_ch (the basis function's weight)."""
    g_sh[g, k, 0] += bk * v0
    g_sh[g, k, 1] += bk * v1
    g_sh[g, k, 2] += bk * v2
    return sh_coeffs[g, k, 0] * v0 + sh_coeffs[g, k, 1] * v1 + sh_coeffs[g, k, 2] * v2


@njit(cache=True, parallel=True, nogil=True)
def project_backward(means, quats, scales, opacities, viewmat, K, width, height, eps2d, antialiased,
                     sh_coeffs, sh_degree, radii, colors_out,
                     v_means2d, v_conics, v_depths, v_opac, v_colors,
                     g_means, g_quats, g_scales, g_opacities, g_sh):
    """Accumulates (+=) gradients of one camera's screen-space outputs into the 3D parameters,
    in parallel chunks of Gaussians (the per-Gaussian body is `_project_backward_chunk`)."""
    n = means.shape[0]
    n_chunks = (n + CHUNK - 1) // CHUNK
    for chunk in prange(n_chunks):
        _project_backward_chunk(chunk * CHUNK, min(n, (chunk + 1) * CHUNK), means, quats, scales, opacities,
                                viewmat, K, width, height, eps2d, antialiased, sh_coeffs, sh_degree, radii,
                                colors_out, v_means2d, v_conics, v_depths, v_opac, v_colors,
                                g_means, g_quats, g_scales, g_opacities, g_sh)


@njit(cache=True, nogil=True)
def _project_backward_chunk(start, stop, means, quats, scales, opacities, viewmat, K, width, height, eps2d,
                            antialiased, sh_coeffs, sh_degree, radii, colors_out,
                            v_means2d, v_conics, v_depths, v_opac, v_colors,
                            g_means, g_quats, g_scales, g_opacities, g_sh):
    """The gradients of Gaussians start..stop.

    Straight-line scalar code: every small matrix (R, Rv R, Σ_c, J, their gradients) lives in
    named locals, so the per-Gaussian body compiles to registers with no scratch arrays. A serial
    function of its own, so numba's parallel passes see only the chunk loop (a third of the
    compile time for this body)."""
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    lim_xp = (width - cx) / fx + 0.15 * width / fx
    lim_xn = cx / fx + 0.15 * width / fx
    lim_yp = (height - cy) / fy + 0.15 * height / fy
    lim_yn = cy / fy + 0.15 * height / fy
    r00, r01, r02, t0 = viewmat[0, 0], viewmat[0, 1], viewmat[0, 2], viewmat[0, 3]
    r10, r11, r12, t1 = viewmat[1, 0], viewmat[1, 1], viewmat[1, 2], viewmat[1, 3]
    r20, r21, r22, t2 = viewmat[2, 0], viewmat[2, 1], viewmat[2, 2], viewmat[2, 3]
    # camera centre for SH view directions: -Rᵀ t
    camx = -(r00 * t0 + r10 * t1 + r20 * t2)
    camy = -(r01 * t0 + r11 * t1 + r21 * t2)
    camz = -(r02 * t0 + r12 * t1 + r22 * t2)
    for g in range(start, stop):
        mx, my, mz = means[g, 0], means[g, 1], means[g, 2]
        gmx = 0.0; gmy = 0.0; gmz = 0.0
        if sh_degree >= 0:
            dx, dy, dz = mx - camx, my - camy, mz - camz
            norm = max(np.sqrt(dx * dx + dy * dy + dz * dz), 1e-12)
            x, y, z = dx / norm, dy / norm, dz / norm
            # colours clamped at 0 pass no gradient
            v0 = v_colors[g, 0] if colors_out[g, 0] > 0.0 else 0.0
            v1 = v_colors[g, 1] if colors_out[g, 1] > 0.0 else 0.0
            v2 = v_colors[g, 2] if colors_out[g, 2] > 0.0 else 0.0
            _sh_grad(g, 0, C0, v0, v1, v2, sh_coeffs, g_sh)
            vux = 0.0; vuy = 0.0; vuz = 0.0
            if sh_degree >= 1:
                w1 = _sh_grad(g, 1, -C1 * y, v0, v1, v2, sh_coeffs, g_sh)
                w2 = _sh_grad(g, 2, C1 * z, v0, v1, v2, sh_coeffs, g_sh)
                w3 = _sh_grad(g, 3, -C1 * x, v0, v1, v2, sh_coeffs, g_sh)
                vux += -C1 * w3
                vuy += -C1 * w1
                vuz += C1 * w2
            if sh_degree >= 2:
                xx, yy, zz = x * x, y * y, z * z
                w4 = _sh_grad(g, 4, C20 * x * y, v0, v1, v2, sh_coeffs, g_sh)
                w5 = _sh_grad(g, 5, C21 * y * z, v0, v1, v2, sh_coeffs, g_sh)
                w6 = _sh_grad(g, 6, C22 * (2.0 * zz - xx - yy), v0, v1, v2, sh_coeffs, g_sh)
                w7 = _sh_grad(g, 7, C23 * x * z, v0, v1, v2, sh_coeffs, g_sh)
                w8 = _sh_grad(g, 8, C24 * (xx - yy), v0, v1, v2, sh_coeffs, g_sh)
                vux += C20 * y * w4 - 2.0 * C22 * x * w6 + C23 * z * w7 + 2.0 * C24 * x * w8
                vuy += C20 * x * w4 + C21 * z * w5 - 2.0 * C22 * y * w6 - 2.0 * C24 * y * w8
                vuz += C21 * y * w5 + 4.0 * C22 * z * w6 + C23 * x * w7
                if sh_degree >= 3:
                    w9 = _sh_grad(g, 9, C30 * y * (3.0 * xx - yy), v0, v1, v2, sh_coeffs, g_sh)
                    w10 = _sh_grad(g, 10, C31 * x * y * z, v0, v1, v2, sh_coeffs, g_sh)
                    w11 = _sh_grad(g, 11, C32 * y * (4.0 * zz - xx - yy), v0, v1, v2, sh_coeffs, g_sh)
                    w12 = _sh_grad(g, 12, C33 * z * (2.0 * zz - 3.0 * xx - 3.0 * yy), v0, v1, v2, sh_coeffs,
                                   g_sh)
                    w13 = _sh_grad(g, 13, C34 * x * (4.0 * zz - xx - yy), v0, v1, v2, sh_coeffs, g_sh)
                    w14 = _sh_grad(g, 14, C35 * z * (xx - yy), v0, v1, v2, sh_coeffs, g_sh)
                    w15 = _sh_grad(g, 15, C36 * x * (xx - 3.0 * yy), v0, v1, v2, sh_coeffs, g_sh)
                    vux += (6.0 * C30 * x * y * w9 + C31 * y * z * w10 - 2.0 * C32 * x * y * w11
                            - 6.0 * C33 * x * z * w12 + C34 * (4.0 * zz - 3.0 * xx - yy) * w13
                            + 2.0 * C35 * x * z * w14 + C36 * (3.0 * xx - 3.0 * yy) * w15)
                    vuy += (C30 * (3.0 * xx - 3.0 * yy) * w9 + C31 * x * z * w10
                            + C32 * (4.0 * zz - xx - 3.0 * yy) * w11 - 6.0 * C33 * y * z * w12
                            - 2.0 * C34 * x * y * w13 - 2.0 * C35 * y * z * w14 - 6.0 * C36 * x * y * w15)
                    vuz += (C31 * x * y * w10 + 8.0 * C32 * y * z * w11
                            + C33 * (6.0 * zz - 3.0 * xx - 3.0 * yy) * w12 + 8.0 * C34 * x * z * w13
                            + C35 * (xx - yy) * w14)
            # through the normalisation u = d / |d|
            dot = x * vux + y * vuy + z * vuz
            gmx += (vux - x * dot) / norm
            gmy += (vuy - y * dot) / norm
            gmz += (vuz - z * dot) / norm
        if radii[g, 0] <= 0 or radii[g, 1] <= 0:
            g_means[g, 0] += gmx; g_means[g, 1] += gmy; g_means[g, 2] += gmz
            continue
        tx = r00 * mx + r01 * my + r02 * mz + t0
        ty = r10 * mx + r11 * my + r12 * mz + t1
        tz = r20 * mx + r21 * my + r22 * mz + t2
        # rotation from the (normalised) quaternion
        qw, qx, qy, qz = quats[g, 0], quats[g, 1], quats[g, 2], quats[g, 3]
        qinv = 1.0 / np.sqrt(qw * qw + qx * qx + qy * qy + qz * qz)
        w, x, y, z = qw * qinv, qx * qinv, qy * qinv, qz * qinv
        R00 = 1.0 - 2.0 * (y * y + z * z); R01 = 2.0 * (x * y - w * z); R02 = 2.0 * (x * z + w * y)
        R10 = 2.0 * (x * y + w * z); R11 = 1.0 - 2.0 * (x * x + z * z); R12 = 2.0 * (y * z - w * x)
        R20 = 2.0 * (x * z - w * y); R21 = 2.0 * (y * z + w * x); R22 = 1.0 - 2.0 * (x * x + y * y)
        # V = Rv R (camera-space rotation)
        V00 = r00 * R00 + r01 * R10 + r02 * R20
        V01 = r00 * R01 + r01 * R11 + r02 * R21
        V02 = r00 * R02 + r01 * R12 + r02 * R22
        V10 = r10 * R00 + r11 * R10 + r12 * R20
        V11 = r10 * R01 + r11 * R11 + r12 * R21
        V12 = r10 * R02 + r11 * R12 + r12 * R22
        V20 = r20 * R00 + r21 * R10 + r22 * R20
        V21 = r20 * R01 + r21 * R11 + r22 * R21
        V22 = r20 * R02 + r21 * R12 + r22 * R22
        s0, s1, s2 = scales[g, 0], scales[g, 1], scales[g, 2]
        e0, e1, e2 = s0 * s0, s1 * s1, s2 * s2
        # Σ_c = V diag(s²) Vᵀ (symmetric)
        S00 = V00 * V00 * e0 + V01 * V01 * e1 + V02 * V02 * e2
        S01 = V00 * V10 * e0 + V01 * V11 * e1 + V02 * V12 * e2
        S02 = V00 * V20 * e0 + V01 * V21 * e1 + V02 * V22 * e2
        S11 = V10 * V10 * e0 + V11 * V11 * e1 + V12 * V12 * e2
        S12 = V10 * V20 * e0 + V11 * V21 * e1 + V12 * V22 * e2
        S22 = V20 * V20 * e0 + V21 * V21 * e1 + V22 * V22 * e2
        rx_ = tx / tz
        ry_ = ty / tz
        clamped_x = rx_ < -lim_xn or rx_ > lim_xp
        clamped_y = ry_ < -lim_yn or ry_ > lim_yp
        u = tz * min(max(rx_, -lim_xn), lim_xp)
        v = tz * min(max(ry_, -lim_yn), lim_yp)
        tz2 = tz * tz
        tz3 = tz2 * tz
        # J = [[j00, 0, j02], [0, j11, j12]]
        j00 = fx / tz; j02 = -fx * u / tz2
        j11 = fy / tz; j12 = -fy * v / tz2
        # cov2d = J Σ_c Jᵀ = [[a0, b0], [b0, c0]]
        A0 = j00 * S00 + j02 * S02; A1 = j00 * S01 + j02 * S12; A2 = j00 * S02 + j02 * S22
        B1 = j11 * S11 + j12 * S12; B2 = j11 * S12 + j12 * S22
        a0 = A0 * j00 + A2 * j02
        b0 = A1 * j11 + A2 * j12
        c0 = B1 * j11 + B2 * j12
        a = a0 + eps2d
        c = c0 + eps2d
        det = a * c - b0 * b0
        q00, q01, q11 = c / det, -b0 / det, a / det
        # conic = Cov⁻¹: G_cov = -Q G_Q Q with G_Q = [[vA, vB/2], [vB/2, vC]]
        vA, vB, vC = v_conics[g, 0], v_conics[g, 1] * 0.5, v_conics[g, 2]
        p00 = vA * q00 + vB * q01
        p01 = vA * q01 + vB * q11
        p10 = vB * q00 + vC * q01
        p11 = vB * q01 + vC * q11
        gc00 = -(q00 * p00 + q01 * p10)
        gc01 = -(q00 * p01 + q01 * p11)
        gc11 = -(q01 * p01 + q11 * p11)
        o = opacities[g]
        if antialiased:
            det0 = a0 * c0 - b0 * b0
            ratio = det0 / det
            if ratio > 0.0:
                comp = np.sqrt(ratio)
                g_opacities[g] += comp * v_opac[g]
                v_ratio = o * v_opac[g] * 0.5 / comp
                # ratio = det0/det; d/da0, d/dc0, d/db0
                gc00 += v_ratio * (c0 * det - det0 * c) / (det * det)
                gc11 += v_ratio * (a0 * det - det0 * a) / (det * det)
                gc01 += 0.5 * v_ratio * (-2.0 * b0 * det + det0 * 2.0 * b0) / (det * det)
        else:
            g_opacities[g] += v_opac[g]
        # cov2d = J Σ_c Jᵀ: G_Σc = Jᵀ G J (symmetric H), G_J = 2 G J Σ_c
        GJ00 = gc00 * j00; GJ01 = gc01 * j11; GJ02 = gc00 * j02 + gc01 * j12
        GJ10 = gc01 * j00; GJ11 = gc11 * j11; GJ12 = gc01 * j02 + gc11 * j12
        H00 = j00 * GJ00; H01 = j00 * GJ01; H02 = j00 * GJ02
        H11 = j11 * GJ11; H12 = j11 * GJ12
        H22 = j02 * GJ02 + j12 * GJ12
        gJ00 = 2.0 * (GJ00 * S00 + GJ01 * S01 + GJ02 * S02)
        gJ02 = 2.0 * (GJ00 * S02 + GJ01 * S12 + GJ02 * S22)
        gJ11 = 2.0 * (GJ10 * S01 + GJ11 * S11 + GJ12 * S12)
        gJ12 = 2.0 * (GJ10 * S02 + GJ11 * S12 + GJ12 * S22)
        # back to the camera-space mean
        vm0 = v_means2d[g, 0]
        vm1 = v_means2d[g, 1]
        gtx = fx / tz * vm0
        gty = fy / tz * vm1
        gtz = -fx * tx / tz2 * vm0 - fy * ty / tz2 * vm1 + v_depths[g]
        gtz += -fx / tz2 * gJ00 - fy / tz2 * gJ11
        if clamped_x:
            gtz += fx * u / tz3 * gJ02
        else:
            gtx += -fx / tz2 * gJ02
            gtz += 2.0 * fx * tx / tz3 * gJ02
        if clamped_y:
            gtz += fy * v / tz3 * gJ12
        else:
            gty += -fy / tz2 * gJ12
            gtz += 2.0 * fy * ty / tz3 * gJ12
        g_means[g, 0] += r00 * gtx + r10 * gty + r20 * gtz + gmx
        g_means[g, 1] += r01 * gtx + r11 * gty + r21 * gtz + gmy
        g_means[g, 2] += r02 * gtx + r12 * gty + r22 * gtz + gmz
        # Σ_c = V diag(s²) Vᵀ with V = Rv R: E = H V (camera space), F = Rvᵀ E = G_Σ R (world);
        # G_M = 2 F diag(s) for M = R diag(s), so G_s_j = 2 s_j Σ_i E_ij V_ij, G_R = 2 F diag(s²)
        E00 = H00 * V00 + H01 * V10 + H02 * V20
        E01 = H00 * V01 + H01 * V11 + H02 * V21
        E02 = H00 * V02 + H01 * V12 + H02 * V22
        E10 = H01 * V00 + H11 * V10 + H12 * V20
        E11 = H01 * V01 + H11 * V11 + H12 * V21
        E12 = H01 * V02 + H11 * V12 + H12 * V22
        E20 = H02 * V00 + H12 * V10 + H22 * V20
        E21 = H02 * V01 + H12 * V11 + H22 * V21
        E22 = H02 * V02 + H12 * V12 + H22 * V22
        g_scales[g, 0] += 2.0 * s0 * (E00 * V00 + E10 * V10 + E20 * V20)
        g_scales[g, 1] += 2.0 * s1 * (E01 * V01 + E11 * V11 + E21 * V21)
        g_scales[g, 2] += 2.0 * s2 * (E02 * V02 + E12 * V12 + E22 * V22)
        f0, f1, f2 = 2.0 * e0, 2.0 * e1, 2.0 * e2
        GR00 = (r00 * E00 + r10 * E10 + r20 * E20) * f0
        GR01 = (r00 * E01 + r10 * E11 + r20 * E21) * f1
        GR02 = (r00 * E02 + r10 * E12 + r20 * E22) * f2
        GR10 = (r01 * E00 + r11 * E10 + r21 * E20) * f0
        GR11 = (r01 * E01 + r11 * E11 + r21 * E21) * f1
        GR12 = (r01 * E02 + r11 * E12 + r21 * E22) * f2
        GR20 = (r02 * E00 + r12 * E10 + r22 * E20) * f0
        GR21 = (r02 * E01 + r12 * E11 + r22 * E21) * f1
        GR22 = (r02 * E02 + r12 * E12 + r22 * E22) * f2
        vw = 2.0 * (-z * GR01 + y * GR02 + z * GR10 - x * GR12 - y * GR20 + x * GR21)
        vx = 2.0 * (y * GR01 + z * GR02 + y * GR10 - 2.0 * x * GR11 - w * GR12
                    + z * GR20 + w * GR21 - 2.0 * x * GR22)
        vy = 2.0 * (-2.0 * y * GR00 + x * GR01 + w * GR02 + x * GR10 + z * GR12
                    - w * GR20 + z * GR21 - 2.0 * y * GR22)
        vz = 2.0 * (-2.0 * z * GR00 - w * GR01 + x * GR02 + w * GR10 - 2.0 * z * GR11
                    + y * GR12 + x * GR20 + y * GR21)
        dot = w * vw + x * vx + y * vy + z * vz
        g_quats[g, 0] += (vw - w * dot) * qinv
        g_quats[g, 1] += (vx - x * dot) * qinv
        g_quats[g, 2] += (vy - y * dot) * qinv
        g_quats[g, 3] += (vz - z * dot) * qinv
