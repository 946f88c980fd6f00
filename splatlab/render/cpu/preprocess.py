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


@njit(cache=True, nogil=True)
def _sh_basis(degree, x, y, z, b, dbx, dby, dbz):
    """Basis values and their partial derivatives w.r.t. the (unit) direction components."""
    b[0] = C0
    dbx[0] = dby[0] = dbz[0] = 0.0
    if degree < 1:
        return
    b[1] = -C1 * y
    b[2] = C1 * z
    b[3] = -C1 * x
    dbx[1] = 0.0; dby[1] = -C1; dbz[1] = 0.0
    dbx[2] = 0.0; dby[2] = 0.0; dbz[2] = C1
    dbx[3] = -C1; dby[3] = 0.0; dbz[3] = 0.0
    if degree < 2:
        return
    xx, yy, zz = x * x, y * y, z * z
    b[4] = C20 * x * y
    b[5] = C21 * y * z
    b[6] = C22 * (2.0 * zz - xx - yy)
    b[7] = C23 * x * z
    b[8] = C24 * (xx - yy)
    dbx[4] = C20 * y; dby[4] = C20 * x; dbz[4] = 0.0
    dbx[5] = 0.0; dby[5] = C21 * z; dbz[5] = C21 * y
    dbx[6] = -2.0 * C22 * x; dby[6] = -2.0 * C22 * y; dbz[6] = 4.0 * C22 * z
    dbx[7] = C23 * z; dby[7] = 0.0; dbz[7] = C23 * x
    dbx[8] = 2.0 * C24 * x; dby[8] = -2.0 * C24 * y; dbz[8] = 0.0
    if degree < 3:
        return
    b[9] = C30 * y * (3.0 * xx - yy)
    b[10] = C31 * x * y * z
    b[11] = C32 * y * (4.0 * zz - xx - yy)
    b[12] = C33 * z * (2.0 * zz - 3.0 * xx - 3.0 * yy)
    b[13] = C34 * x * (4.0 * zz - xx - yy)
    b[14] = C35 * z * (xx - yy)
    b[15] = C36 * x * (xx - 3.0 * yy)
    dbx[9] = 6.0 * C30 * x * y; dby[9] = C30 * (3.0 * xx - 3.0 * yy); dbz[9] = 0.0
    dbx[10] = C31 * y * z; dby[10] = C31 * x * z; dbz[10] = C31 * x * y
    dbx[11] = -2.0 * C32 * x * y; dby[11] = C32 * (4.0 * zz - xx - 3.0 * yy); dbz[11] = 8.0 * C32 * y * z
    dbx[12] = -6.0 * C33 * x * z; dby[12] = -6.0 * C33 * y * z; dbz[12] = C33 * (6.0 * zz - 3.0 * xx - 3.0 * yy)
    dbx[13] = C34 * (4.0 * zz - 3.0 * xx - yy); dby[13] = -2.0 * C34 * x * y; dbz[13] = 8.0 * C34 * x * z
    dbx[14] = 2.0 * C35 * x * z; dby[14] = -2.0 * C35 * y * z; dbz[14] = C35 * (xx - yy)
    dbx[15] = C36 * (3.0 * xx - 3.0 * yy); dby[15] = -6.0 * C36 * x * y; dbz[15] = 0.0


@njit(cache=True, nogil=True)
def _matmul(A, B, out):
    for i in range(A.shape[0]):
        for j in range(B.shape[1]):
            acc = 0.0
            for k in range(A.shape[1]):
                acc += A[i, k] * B[k, j]
            out[i, j] = acc


@njit(cache=True, nogil=True)
def _matmul_tn(A, B, out):
    """out = Aᵀ B"""
    for i in range(A.shape[1]):
        for j in range(B.shape[1]):
            acc = 0.0
            for k in range(A.shape[0]):
                acc += A[k, i] * B[k, j]
            out[i, j] = acc


CHUNK = 512


@njit(cache=True, nogil=True)
def _rotmat(qw, qx, qy, qz, R):
    inv = 1.0 / np.sqrt(qw * qw + qx * qx + qy * qy + qz * qz)
    w, x, y, z = qw * inv, qx * inv, qy * inv, qz * inv
    R[0, 0] = 1 - 2 * (y * y + z * z); R[0, 1] = 2 * (x * y - w * z); R[0, 2] = 2 * (x * z + w * y)
    R[1, 0] = 2 * (x * y + w * z); R[1, 1] = 1 - 2 * (x * x + z * z); R[1, 2] = 2 * (y * z - w * x)
    R[2, 0] = 2 * (x * z - w * y); R[2, 1] = 2 * (y * z + w * x); R[2, 2] = 1 - 2 * (x * x + y * y)
    return w, x, y, z, inv


@njit(cache=True, parallel=True, nogil=True)
def project_forward(means, quats, scales, opacities, shapes, use_shape, viewmat, K, width, height, near, far,
                    eps2d, antialiased, radius_clip, sh_coeffs, sh_degree,
                    out_means2d, out_conics, out_depths, out_opac, out_radii, out_colors):
    """One camera. Writes screen-space Gaussians; radii 0 marks culled ones. sh_degree < 0: no colours."""
    n = means.shape[0]
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    lim_xp = (width - cx) / fx + 0.15 * width / fx
    lim_xn = cx / fx + 0.15 * width / fx
    lim_yp = (height - cy) / fy + 0.15 * height / fy
    lim_yn = cy / fy + 0.15 * height / fy
    Rv = viewmat[:3, :3]
    # camera centre for SH view directions: -Rᵀ t
    cam = np.zeros(3)
    for i in range(3):
        for k in range(3):
            cam[i] -= viewmat[k, i] * viewmat[k, 3]
    n_chunks = (n + CHUNK - 1) // CHUNK
    for chunk in prange(n_chunks):
        b = np.empty(16); dbx = np.empty(16); dby = np.empty(16); dbz = np.empty(16)
        R = np.empty((3, 3))
        T = np.empty((3, 3))
        for g in range(chunk * CHUNK, min(n, (chunk + 1) * CHUNK)):
            out_radii[g, 0] = 0
            out_radii[g, 1] = 0
            mx, my, mz = means[g, 0], means[g, 1], means[g, 2]
            tx = Rv[0, 0] * mx + Rv[0, 1] * my + Rv[0, 2] * mz + viewmat[0, 3]
            ty = Rv[1, 0] * mx + Rv[1, 1] * my + Rv[1, 2] * mz + viewmat[1, 3]
            tz = Rv[2, 0] * mx + Rv[2, 1] * my + Rv[2, 2] * mz + viewmat[2, 3]
            out_depths[g] = tz
            if sh_degree >= 0:
                dx, dy, dz = mx - cam[0], my - cam[1], mz - cam[2]
                inv_norm = 1.0 / max(np.sqrt(dx * dx + dy * dy + dz * dz), 1e-12)
                _sh_basis(sh_degree, dx * inv_norm, dy * inv_norm, dz * inv_norm, b, dbx, dby, dbz)
                nb = (sh_degree + 1) * (sh_degree + 1)
                for ch in range(3):
                    s = 0.5
                    for k in range(nb):
                        s += b[k] * sh_coeffs[g, k, ch]
                    out_colors[g, ch] = max(s, 0.0)
            if not (tz > near and tz < far):
                out_means2d[g, 0] = 0.0; out_means2d[g, 1] = 0.0
                out_conics[g, 0] = 0.0; out_conics[g, 1] = 0.0; out_conics[g, 2] = 0.0
                out_opac[g] = 0.0
                continue
            _rotmat(quats[g, 0], quats[g, 1], quats[g, 2], quats[g, 3], R)
            # Σ_c = (Rv R S)(Rv R S)ᵀ
            for i in range(3):
                for j in range(3):
                    T[i, j] = (Rv[i, 0] * R[0, j] + Rv[i, 1] * R[1, j] + Rv[i, 2] * R[2, j]) * scales[g, j]
            u = tz * min(max(tx / tz, -lim_xn), lim_xp)
            v = tz * min(max(ty / tz, -lim_yn), lim_yp)
            j00 = fx / tz; j02 = -fx * u / (tz * tz)
            j11 = fy / tz; j12 = -fy * v / (tz * tz)
            # rows of J T (2x3)
            a0 = 0.0; b0 = 0.0; c0 = 0.0
            for k in range(3):
                r0 = j00 * T[0, k] + j02 * T[2, k]
                r1 = j11 * T[1, k] + j12 * T[2, k]
                a0 += r0 * r0
                b0 += r0 * r1
                c0 += r1 * r1
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



@njit(cache=True, parallel=True, nogil=True)
def project_backward(means, quats, scales, opacities, viewmat, K, width, height, eps2d, antialiased,
                     sh_coeffs, sh_degree, radii, colors_out,
                     v_means2d, v_conics, v_depths, v_opac, v_colors,
                     g_means, g_quats, g_scales, g_opacities, g_sh):
    """Accumulates (+=) gradients of one camera's screen-space outputs into the 3D parameters."""
    n = means.shape[0]
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    lim_xp = (width - cx) / fx + 0.15 * width / fx
    lim_xn = cx / fx + 0.15 * width / fx
    lim_yp = (height - cy) / fy + 0.15 * height / fy
    lim_yn = cy / fy + 0.15 * height / fy
    Rv = viewmat[:3, :3]
    cam = np.zeros(3)
    for i in range(3):
        for k in range(3):
            cam[i] -= viewmat[k, i] * viewmat[k, 3]
    n_chunks = (n + CHUNK - 1) // CHUNK
    for chunk in prange(n_chunks):
        sc = np.empty((18, 16))  # scratch: rows used as small matrices / vectors
        b = sc[0]; dbx = sc[1]; dby = sc[2]; dbz = sc[3]
        R = sc[4, :9].reshape(3, 3)
        VR = sc[5, :9].reshape(3, 3)
        Sc = sc[6, :9].reshape(3, 3)
        J = sc[7, :6].reshape(2, 3)
        JS = sc[8, :6].reshape(2, 3)
        G = sc[9, :4].reshape(2, 2)
        GJ = sc[10, :6].reshape(2, 3)
        G_Sc = sc[11, :9].reshape(3, 3)
        G_J = sc[12, :6].reshape(2, 3)
        G_S = sc[13, :9].reshape(3, 3)
        M = sc[14, :9].reshape(3, 3)
        G_M = sc[15, :9].reshape(3, 3)
        tmp = sc[16, :9].reshape(3, 3)
        GR = sc[17, :9].reshape(3, 3)
        for g in range(chunk * CHUNK, min(n, (chunk + 1) * CHUNK)):
            mx, my, mz = means[g, 0], means[g, 1], means[g, 2]
            gmx = 0.0; gmy = 0.0; gmz = 0.0
            if sh_degree >= 0:
                dx, dy, dz = mx - cam[0], my - cam[1], mz - cam[2]
                norm = max(np.sqrt(dx * dx + dy * dy + dz * dz), 1e-12)
                ux, uy, uz = dx / norm, dy / norm, dz / norm
                _sh_basis(sh_degree, ux, uy, uz, b, dbx, dby, dbz)
                nb = (sh_degree + 1) * (sh_degree + 1)
                vux = 0.0; vuy = 0.0; vuz = 0.0
                for ch in range(3):
                    vc = v_colors[g, ch]
                    if colors_out[g, ch] <= 0.0 or vc == 0.0:
                        continue
                    for k in range(nb):
                        coef = sh_coeffs[g, k, ch]
                        g_sh[g, k, ch] += b[k] * vc
                        vux += dbx[k] * coef * vc
                        vuy += dby[k] * coef * vc
                        vuz += dbz[k] * coef * vc
                dot = ux * vux + uy * vuy + uz * vuz
                gmx += (vux - ux * dot) / norm
                gmy += (vuy - uy * dot) / norm
                gmz += (vuz - uz * dot) / norm
            if radii[g, 0] <= 0 or radii[g, 1] <= 0:
                g_means[g, 0] += gmx; g_means[g, 1] += gmy; g_means[g, 2] += gmz
                continue
            tx = Rv[0, 0] * mx + Rv[0, 1] * my + Rv[0, 2] * mz + viewmat[0, 3]
            ty = Rv[1, 0] * mx + Rv[1, 1] * my + Rv[1, 2] * mz + viewmat[1, 3]
            tz = Rv[2, 0] * mx + Rv[2, 1] * my + Rv[2, 2] * mz + viewmat[2, 3]
            qw, qx, qy, qz, qinv = _rotmat(quats[g, 0], quats[g, 1], quats[g, 2], quats[g, 3], R)
            for i in range(3):
                for j in range(3):
                    VR[i, j] = Rv[i, 0] * R[0, j] + Rv[i, 1] * R[1, j] + Rv[i, 2] * R[2, j]
            s0, s1, s2 = scales[g, 0], scales[g, 1], scales[g, 2]
            # Σ_c = VR diag(s²) VRᵀ
            for i in range(3):
                for j in range(3):
                    Sc[i, j] = VR[i, 0] * VR[j, 0] * s0 * s0 + VR[i, 1] * VR[j, 1] * s1 * s1 + VR[i, 2] * VR[j, 2] * s2 * s2
            rx_ = tx / tz
            ry_ = ty / tz
            clamped_x = rx_ < -lim_xn or rx_ > lim_xp
            clamped_y = ry_ < -lim_yn or ry_ > lim_yp
            u = tz * min(max(rx_, -lim_xn), lim_xp)
            v = tz * min(max(ry_, -lim_yn), lim_yp)
            J[0, 1] = 0.0; J[1, 0] = 0.0
            J[0, 0] = fx / tz; J[0, 2] = -fx * u / (tz * tz)
            J[1, 1] = fy / tz; J[1, 2] = -fy * v / (tz * tz)
            _matmul(J, Sc, JS)
            a0 = JS[0, 0] * J[0, 0] + JS[0, 1] * J[0, 1] + JS[0, 2] * J[0, 2]
            b0 = JS[0, 0] * J[1, 0] + JS[0, 1] * J[1, 1] + JS[0, 2] * J[1, 2]
            c0 = JS[1, 0] * J[1, 0] + JS[1, 1] * J[1, 1] + JS[1, 2] * J[1, 2]
            a = a0 + eps2d
            c = c0 + eps2d
            det = a * c - b0 * b0
            q00, q01, q11 = c / det, -b0 / det, a / det
            # conic = Cov⁻¹: G_cov = -Q G_Q Q with G_Q = [[vA, vB/2], [vB/2, vC]]
            vA, vB, vC = v_conics[g, 0], v_conics[g, 1] * 0.5, v_conics[g, 2]
            t00 = vA * q00 + vB * q01
            t01 = vA * q01 + vB * q11
            t10 = vB * q00 + vC * q01
            t11 = vB * q01 + vC * q11
            gc00 = -(q00 * t00 + q01 * t10)
            gc01 = -(q00 * t01 + q01 * t11)
            gc11 = -(q01 * t01 + q11 * t11)
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
            G[0, 0] = gc00; G[0, 1] = gc01; G[1, 0] = gc01; G[1, 1] = gc11
            # cov2d = J Σc Jᵀ: G_Σc = Jᵀ G J, G_J = 2 G J Σc
            _matmul(G, J, GJ)
            _matmul_tn(J, GJ, G_Sc)
            _matmul(GJ, Sc, G_J)
            for i in range(2):
                for j in range(3):
                    G_J[i, j] *= 2.0
            # back to camera-space mean
            gtx = fx / tz * v_means2d[g, 0]
            gty = fy / tz * v_means2d[g, 1]
            gtz = -fx * tx / (tz * tz) * v_means2d[g, 0] - fy * ty / (tz * tz) * v_means2d[g, 1] + v_depths[g]
            gtz += -fx / (tz * tz) * G_J[0, 0] - fy / (tz * tz) * G_J[1, 1]
            if clamped_x:
                gtz += fx * u / (tz * tz * tz) * G_J[0, 2]
            else:
                gtx += -fx / (tz * tz) * G_J[0, 2]
                gtz += 2.0 * fx * tx / (tz * tz * tz) * G_J[0, 2]
            if clamped_y:
                gtz += fy * v / (tz * tz * tz) * G_J[1, 2]
            else:
                gty += -fy / (tz * tz) * G_J[1, 2]
                gtz += 2.0 * fy * ty / (tz * tz * tz) * G_J[1, 2]
            for i in range(3):
                g_means[g, i] += Rv[0, i] * gtx + Rv[1, i] * gty + Rv[2, i] * gtz
            g_means[g, 0] += gmx; g_means[g, 1] += gmy; g_means[g, 2] += gmz
            # Σc = Rv Σ Rvᵀ -> G_Σ = Rvᵀ G_Σc Rv; Σ = M Mᵀ, M = R S -> G_M = 2 G_Σ M
            _matmul_tn(Rv, G_Sc, tmp)
            _matmul(tmp, Rv, G_S)
            for i in range(3):
                M[i, 0] = R[i, 0] * s0; M[i, 1] = R[i, 1] * s1; M[i, 2] = R[i, 2] * s2
            _matmul(G_S, M, G_M)
            for i in range(3):
                for j in range(3):
                    G_M[i, j] *= 2.0
            for i in range(3):
                GR[i, 0] = G_M[i, 0] * s0; GR[i, 1] = G_M[i, 1] * s1; GR[i, 2] = G_M[i, 2] * s2
            for j in range(3):
                g_scales[g, j] += G_M[0, j] * R[0, j] + G_M[1, j] * R[1, j] + G_M[2, j] * R[2, j]
            w, x, y, z = qw, qx, qy, qz
            vw = 2.0 * (-z * GR[0, 1] + y * GR[0, 2] + z * GR[1, 0] - x * GR[1, 2] - y * GR[2, 0] + x * GR[2, 1])
            vx = 2.0 * (y * GR[0, 1] + z * GR[0, 2] + y * GR[1, 0] - 2 * x * GR[1, 1] - w * GR[1, 2]
                        + z * GR[2, 0] + w * GR[2, 1] - 2 * x * GR[2, 2])
            vy = 2.0 * (-2 * y * GR[0, 0] + x * GR[0, 1] + w * GR[0, 2] + x * GR[1, 0] + z * GR[1, 2]
                        - w * GR[2, 0] + z * GR[2, 1] - 2 * y * GR[2, 2])
            vz = 2.0 * (-2 * z * GR[0, 0] - w * GR[0, 1] + x * GR[0, 2] + w * GR[1, 0] - 2 * z * GR[1, 1]
                        + y * GR[1, 2] + x * GR[2, 0] + y * GR[2, 1])
            dot = w * vw + x * vx + y * vy + z * vz
            g_quats[g, 0] += (vw - w * dot) * qinv
            g_quats[g, 1] += (vx - x * dot) * qinv
            g_quats[g, 2] += (vy - y * dot) * qinv
            g_quats[g, 3] += (vz - z * dot) * qinv


