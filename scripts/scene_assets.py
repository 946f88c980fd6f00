"""Procedural geometry and textures for splatlab's bundled ground-truth scenes.

Everything here is deterministic: every random draw comes from a
``numpy.random.Generator`` that the caller seeds.  Geometry is built from
parametric surfaces with explicit UVs, so textures (procedural noise or
public-domain/CC0 photos shipped inside scikit-image) map without repeats.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# ---------------------------------------------------------------------------
# Textures
# ---------------------------------------------------------------------------


def fractal_noise(
    rng: np.random.Generator,
    h: int,
    w: int,
    base: int = 4,
    octaves: int = 6,
    persistence: float = 0.55,
    wrap_x: bool = True,
    wrap_y: bool = True,
) -> np.ndarray:
    """Fractal (1/f-like) noise in [0, 1], shape (h, w), by spectral synthesis.

    Features start at about ``base`` cycles per image and each octave (frequency
    doubling) has ``persistence`` times the amplitude, up to ``base * 2**octaves``
    cycles.  The result tiles seamlessly in both axes (wrap_* kept for API clarity).
    """
    del wrap_x, wrap_y
    white = rng.standard_normal((h, w))
    F = np.fft.rfft2(white)
    fy = np.fft.fftfreq(h)[:, None] * h
    fx = np.fft.rfftfreq(w)[None, :] * w
    f = np.sqrt(fx**2 + (fy * w / h) ** 2) + 1e-9
    # per-mode amplitude ~ f^(log2(p) - 1): each octave then carries p times the amplitude of the one
    # below, as in classic octave-summed value noise (the 2D mode count grows like f)
    expo = np.log2(persistence) - 1.0
    amp = (f / base) ** expo
    amp *= (f / base) ** 4 / (1.0 + (f / base) ** 4)  # fade out below the base frequency
    amp *= np.exp(-((f / (base * 2.0**octaves)) ** 2))  # fade out above the finest octave
    amp[0, 0] = 0.0
    out = np.fft.irfft2(F * amp, s=(h, w))
    lo, hi = np.percentile(out, [0.5, 99.5])
    return np.clip((out - lo) / (hi - lo + 1e-12), 0.0, 1.0)


def colormap(x: np.ndarray, stops: list[tuple[float, tuple[int, int, int]]]) -> np.ndarray:
    """Map x in [0,1] through piecewise-linear colour stops -> float RGB in [0,1]."""
    pos = np.array([s[0] for s in stops])
    cols = np.array([s[1] for s in stops], np.float64) / 255.0
    return np.stack([np.interp(x, pos, cols[:, c]) for c in range(3)], axis=-1)


def to_u8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)


def noise_texture(rng, size, stops, base=4, octaves=7, persistence=0.55, detail=0.25, wrap_x=False):
    """A coloured noise texture with a second, finer noise modulating brightness."""
    n = fractal_noise(rng, size, size, base=base, octaves=octaves, persistence=persistence, wrap_x=wrap_x)
    d = fractal_noise(rng, size, size, base=base * 8, octaves=4, persistence=0.6, wrap_x=wrap_x)
    rgb = colormap(n, stops) * (1.0 - detail + 2 * detail * d)[..., None]
    return to_u8(rgb)


def marble_texture(rng, size, c1, c2, veins=(40, 40, 50), wrap_x=True):
    n = fractal_noise(rng, size, size, base=4, octaves=7, wrap_x=wrap_x)
    x = np.linspace(0, 1, size, endpoint=False)[None, :]
    y = np.linspace(0, 1, size)[:, None]
    t = np.sin(2 * np.pi * (3 * x + 2 * y) + 9.0 * n)
    v = np.abs(t) ** 0.3
    c1 = np.array(c1, float) / 255
    c2 = np.array(c2, float) / 255
    cv = np.array(veins, float) / 255
    base = c1 * (1 - n[..., None]) + c2 * n[..., None]
    rgb = base * v[..., None] + cv * (1 - v[..., None])
    return to_u8(rgb)


def wood_texture(rng, size):
    n = fractal_noise(rng, size, size, base=4, octaves=6)
    y, x = np.mgrid[0:size, 0:size] / size
    r = np.sqrt((x - 0.37) ** 2 + (y - 0.58) ** 2) * 8 + 1.2 * n
    ring = 0.5 + 0.5 * np.sin(2 * np.pi * r)
    grain = fractal_noise(rng, size, size, base=32, octaves=3)
    t = 0.8 * ring + 0.2 * grain
    return to_u8(colormap(t, [(0, (92, 52, 24)), (0.5, (150, 96, 52)), (1, (196, 146, 90))]))


def tint_gray(gray: np.ndarray, color, rng, strength=0.35):
    """Colourise a grayscale photo and break its tiling with low-frequency colour noise."""
    g = gray.astype(np.float64) / 255.0
    h, w = g.shape
    size = 1 << int(np.ceil(np.log2(max(h, w))))
    n = fractal_noise(rng, size, size, base=2, octaves=4)[:h, :w]
    c = np.array(color, float) / 255.0
    rgb = g[..., None] * c * (1 - strength + 2 * strength * n[..., None])
    return to_u8(rgb / max(1e-6, rgb.max()) * 0.95)


def fit_texture(img: np.ndarray, size: int) -> np.ndarray:
    """Resize an RGB uint8 image to (size, size) with PIL's Lanczos filter."""
    from PIL import Image

    return np.asarray(Image.fromarray(img).convert("RGB").resize((size, size), Image.LANCZOS))


def photo(name: str) -> np.ndarray:
    """Load a photo bundled with scikit-image (CC0 / public domain; see scenes/README.md)."""
    from skimage import data

    img = getattr(data, name)()
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    return np.ascontiguousarray(img[..., :3])


# ---------------------------------------------------------------------------
# Geometry
# ---------------------------------------------------------------------------


@dataclass
class Material:
    texture: np.ndarray | None = None  # uint8 HxWx3
    color: tuple = (1.0, 1.0, 1.0)
    metallic: float = 0.0
    roughness: float = 0.7
    emissive: bool = False  # unlit: the texture is the emitted colour


@dataclass
class Part:
    positions: np.ndarray
    normals: np.ndarray
    uvs: np.ndarray
    faces: np.ndarray
    material: Material = field(default_factory=Material)

    def transformed(self, T: np.ndarray) -> "Part":
        R = T[:3, :3]
        p = self.positions @ R.T + T[:3, 3]
        nm = np.linalg.inv(R).T
        n = self.normals @ nm.T
        n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
        return Part(p, n, self.uvs, self.faces, self.material)


def _vertex_normals(P: np.ndarray, F: np.ndarray, merge: bool) -> np.ndarray:
    fn = np.cross(P[F[:, 1]] - P[F[:, 0]], P[F[:, 2]] - P[F[:, 0]])  # area weighted
    N = np.zeros_like(P)
    for k in range(3):
        np.add.at(N, F[:, k], fn)
    if merge:  # share normals across UV seams and poles (coincident vertices)
        key = np.round(P / 1e-6).astype(np.int64)
        _, inv = np.unique(key, axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        acc = np.zeros((inv.max() + 1, 3))
        np.add.at(acc, inv, N)
        N = acc[inv]
    N /= np.linalg.norm(N, axis=1, keepdims=True) + 1e-12
    return N


def surface(fn, nu: int, nv: int, material: Material, uv_scale=(1.0, 1.0), flip=False, smooth=True) -> Part:
    """Parametric surface P = fn(U, V) on [0,1]^2; outward normal = dP/du x dP/dv (unless flip).

    fn may return P (…,3) or (P, UV) with custom UVs.
    """
    u = np.linspace(0.0, 1.0, nu + 1)
    v = np.linspace(0.0, 1.0, nv + 1)
    U, V = np.meshgrid(u, v, indexing="ij")
    res = fn(U, V)
    if isinstance(res, tuple):
        P, UV = res
    else:
        P = res
        UV = np.stack([U * uv_scale[0], V * uv_scale[1]], axis=-1)
    P = P.reshape(-1, 3).astype(np.float64)
    UV = UV.reshape(-1, 2).astype(np.float64)
    idx = np.arange((nu + 1) * (nv + 1)).reshape(nu + 1, nv + 1)
    a, b, c, d = idx[:-1, :-1], idx[1:, :-1], idx[1:, 1:], idx[:-1, 1:]
    F = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
    if flip:
        F = F[:, ::-1]
    N = _vertex_normals(P, F, merge=smooth)
    return Part(P, N, UV, F.astype(np.uint32), material)


def translate(x, y, z) -> np.ndarray:
    T = np.eye(4)
    T[:3, 3] = (x, y, z)
    return T


def rotate(axis, angle_deg) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    T = np.eye(4)
    T[:3, :3] = Rotation.from_rotvec(np.radians(angle_deg) * np.asarray(axis, float) / np.linalg.norm(axis)).as_matrix()
    return T


def ellipsoid(radii, material, n=64, bumps=None) -> Part:
    """Ellipsoid centred at the origin; bumps(dirs)->scale factor gives rocks."""
    rx, ry, rz = radii

    def fn(U, V):
        th = 2 * np.pi * U
        el = -np.pi / 2 + np.pi * V
        d = np.stack([np.cos(el) * np.cos(th), np.cos(el) * np.sin(th), np.sin(el)], -1)
        s = bumps(d)[..., None] if bumps is not None else 1.0
        return d * s * np.array([rx, ry, rz])

    return surface(fn, 2 * n, n, material)


def lathe(profile, material, n=96, m=64) -> Part:
    """Surface of revolution about z; profile(t) -> (r, z), t in [0,1] from bottom to top (outside)."""

    def fn(U, V):
        r, z = profile(V)
        th = 2 * np.pi * U
        return np.stack([r * np.cos(th), r * np.sin(th), z], -1)

    return surface(fn, n, m, material)


def disk(radius, z, material, up=True, n=64) -> Part:
    def fn(U, V):
        th = 2 * np.pi * V
        r = radius * U
        P = np.stack([r * np.cos(th), r * np.sin(th), np.full_like(r, z)], -1)
        UV = np.stack([0.5 + 0.5 * P[..., 0] / radius, 0.5 + 0.5 * P[..., 1] / radius], -1)
        return P, UV

    # dP/du = radial, dP/dv = tangential -> radial x tangential = +z
    return surface(fn, 8, n, material, flip=not up)


def cylinder(radius, z0, z1, material, n=64, caps=True, cap_material=None) -> list[Part]:
    parts = [lathe(lambda t: (np.full_like(t, radius), z0 + (z1 - z0) * t), material, n=n, m=4)]
    if caps:
        cm = cap_material or material
        parts += [disk(radius, z1, cm, up=True, n=n), disk(radius, z0, cm, up=False, n=n)]
    return parts


def torus(R, r, material, n=96, m=48) -> Part:
    def fn(U, V):
        th = 2 * np.pi * U
        ph = 2 * np.pi * V
        return np.stack([(R + r * np.cos(ph)) * np.cos(th), (R + r * np.cos(ph)) * np.sin(th), r * np.sin(ph)], -1)

    return surface(fn, n, m, material, uv_scale=(1, 1))


def quad(origin, e1, e2, material, uv_rect=(0, 0, 1, 1), n=1) -> Part:
    """Planar rectangle origin + u*e1 + v*e2; normal e1 x e2."""
    o, e1, e2 = (np.asarray(a, float) for a in (origin, e1, e2))
    u0, v0, u1, v1 = uv_rect

    def fn(U, V):
        P = o + U[..., None] * e1 + V[..., None] * e2
        UV = np.stack([u0 + (u1 - u0) * U, v0 + (v1 - v0) * V], -1)
        return P, UV

    return surface(fn, n, n, material, smooth=False)


def box(size, materials, center=(0, 0, 0)) -> list[Part]:
    """Axis-aligned box; materials: dict face->Material for +x,-x,+y,-y,+z,-z (or one Material)."""
    sx, sy, sz = (s / 2 for s in size)
    cx, cy, cz = center
    if isinstance(materials, Material):
        materials = {k: materials for k in ("+x", "-x", "+y", "-y", "+z", "-z")}
    faces = {
        "+x": ((sx, -sy, -sz), (0, 2 * sy, 0), (0, 0, 2 * sz)),
        "-x": ((-sx, sy, -sz), (0, -2 * sy, 0), (0, 0, 2 * sz)),
        "+y": ((sx, sy, -sz), (-2 * sx, 0, 0), (0, 0, 2 * sz)),
        "-y": ((-sx, -sy, -sz), (2 * sx, 0, 0), (0, 0, 2 * sz)),
        "+z": ((-sx, -sy, sz), (2 * sx, 0, 0), (0, 2 * sy, 0)),
        "-z": ((-sx, sy, -sz), (2 * sx, 0, 0), (0, -2 * sy, 0)),
    }
    parts = []
    for k, (o, e1, e2) in faces.items():
        o = np.array(o) + (cx, cy, cz)
        parts.append(quad(o, e1, e2, materials[k]))
    return parts


def random_bumps(rng, amp=0.15, k=12, freq=(1.0, 4.0)):
    """Smooth random radial perturbation for rocks: 1 + sum a sin(w.d + phi)."""
    W = rng.normal(size=(k, 3))
    W /= np.linalg.norm(W, axis=1, keepdims=True)
    W *= rng.uniform(*freq, size=(k, 1))
    ph = rng.uniform(0, 2 * np.pi, size=k)
    a = amp / np.sqrt(k) * rng.uniform(0.5, 1.5, size=k) / (np.linalg.norm(W, axis=1) / freq[0]) ** 0.5

    def f(d):
        return 1.0 + np.sum(a * np.sin(d @ W.T + ph), axis=-1)

    return f
