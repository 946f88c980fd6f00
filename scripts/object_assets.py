"""Procedural objects for the object dataset (scripts/make_objects.py).

Three sources, each a function of an id and a seeded ``numpy.random.Generator``:

- ``proc``: compositions of the parametric primitives in scene_assets.py (vases, mugs, tables,
  creatures, mushrooms, stacks, crystals, clusters …), each part with its own random material;
- ``urdf``: pybullet_data's 1000 ``random_urdfs`` shapes (untextured convex pieces) with procedural
  materials, box-projected UVs and flat shading;
- ``real``: the few textured meshes that ship inside pybullet_data (out-of-distribution set).

Objects are returned as a list of ``Part`` (procedural) or trimesh meshes (real), z-up, not yet
normalised; make_objects.py centres and scales them into the unit sphere.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from scene_assets import (
    Material,
    Part,
    box,
    colormap,
    cylinder,
    disk,
    ellipsoid,
    fit_texture,
    fractal_noise,
    lathe,
    marble_texture,
    noise_texture,
    photo,
    random_bumps,
    rotate,
    tint_gray,
    to_u8,
    torus,
    translate,
    wood_texture,
)

TEX = 256  # texture size: objects cover at most ~250 px of a 256² supersampled render

# ---------------------------------------------------------------------------
# Materials
# ---------------------------------------------------------------------------

PHOTOS_RGB = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "cat")
PHOTOS_GRAY = ("brick", "grass", "gravel", "camera")


@functools.lru_cache(maxsize=None)
def _photo(name: str) -> np.ndarray:
    return fit_texture(photo(name), TEX)


def random_color(rng: np.random.Generator, sat=(0.35, 1.0), val=(0.35, 1.0)) -> np.ndarray:
    """An RGB colour in [0,1] drawn in HSV space (more even hue coverage than uniform RGB)."""
    import colorsys

    h = rng.uniform()
    s = rng.uniform(*sat)
    v = rng.uniform(*val)
    return np.array(colorsys.hsv_to_rgb(h, s, v))


def _palette(rng, k):
    return [(i / (k - 1), tuple(int(255 * c) for c in random_color(rng))) for i in range(k)]


def stripes_texture(rng, size):
    n = fractal_noise(rng, size, size, base=4, octaves=5)
    y, x = np.mgrid[0:size, 0:size] / size
    freq = rng.integers(2, 12)
    ang = rng.uniform(0, np.pi)
    t = np.sin(2 * np.pi * freq * (np.cos(ang) * x + np.sin(ang) * y) + rng.uniform(0, 3) * n)
    t = (t > rng.uniform(-0.5, 0.5)).astype(float) * 0.85 + 0.15 * n
    return to_u8(colormap(t, _palette(rng, 2)))


def checker_texture(rng, size):
    k = int(rng.integers(2, 10))
    y, x = np.mgrid[0:size, 0:size] * k // size
    c = np.array([random_color(rng) for _ in range(2)])
    img = c[(x + y) % 2]
    n = fractal_noise(rng, size, size, base=8, octaves=4)
    return to_u8(img * (0.8 + 0.4 * n[..., None]))


def dots_texture(rng, size):
    k = int(rng.integers(3, 12))
    y, x = np.mgrid[0:size, 0:size] / size * k
    r = np.hypot(x % 1 - 0.5, y % 1 - 0.5)
    bg, fg = random_color(rng), random_color(rng)
    m = (r < rng.uniform(0.15, 0.4))[..., None]
    n = fractal_noise(rng, size, size, base=4, octaves=5)
    return to_u8((fg * m + bg * (1 - m)) * (0.85 + 0.3 * n[..., None]))


def random_material(rng: np.random.Generator) -> Material:
    """One of: palette noise, marble, wood, stripes, checker, dots, tinted photo, plain colour."""
    kind = rng.choice(["noise", "noise", "marble", "wood", "stripes", "checker", "dots", "photo", "gray", "plain"])
    rough = float(rng.uniform(0.45, 0.95))
    metal = float(rng.choice([0.0, 0.0, 0.0, rng.uniform(0.1, 0.5)]))
    if kind == "noise":
        tex = noise_texture(rng, TEX, _palette(rng, int(rng.integers(2, 5))), base=int(rng.choice([2, 4, 8])), octaves=5)
    elif kind == "marble":
        tex = marble_texture(rng, TEX, tuple(int(255 * c) for c in random_color(rng, val=(0.6, 1))),
                             tuple(int(255 * c) for c in random_color(rng)))
    elif kind == "wood":
        tex = wood_texture(rng, TEX)
    elif kind == "stripes":
        tex = stripes_texture(rng, TEX)
    elif kind == "checker":
        tex = checker_texture(rng, TEX)
    elif kind == "dots":
        tex = dots_texture(rng, TEX)
    elif kind == "photo":
        img = _photo(str(rng.choice(PHOTOS_RGB)))
        # a random crop-and-flip so the same photo does not look identical on every object
        k = int(rng.integers(0, 4))
        tex = np.ascontiguousarray(np.rot90(img, k))
    elif kind == "gray":
        g = _photo(str(rng.choice(PHOTOS_GRAY)))[..., 0]
        tex = tint_gray(g, tuple(int(255 * c) for c in random_color(rng, val=(0.7, 1))), rng)
    else:
        return Material(color=tuple(random_color(rng)), metallic=metal, roughness=rough)
    return Material(tex, roughness=rough, metallic=metal)


# ---------------------------------------------------------------------------
# Flat-shaded meshes (convex pieces, crystals) with box-projected UVs
# ---------------------------------------------------------------------------


def flat_part(P: np.ndarray, F: np.ndarray, material: Material, outward_from=None, uv_scale=0.5) -> Part:
    """Triangles with per-face normals (vertices duplicated) and UVs projected on the plane of each
    face's dominant axis.  If `outward_from` is given, faces are flipped to point away from it."""
    P = np.asarray(P, np.float64)
    F = np.asarray(F, np.int64)
    tri = P[F]  # (T,3,3)
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    if outward_from is not None:
        flip = np.einsum("ij,ij->i", n, tri.mean(1) - np.asarray(outward_from)) < 0
        tri[flip] = tri[flip][:, ::-1]
        n[flip] = -n[flip]
    n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
    axis = np.abs(n).argmax(1)
    pos = tri.reshape(-1, 3)
    ax = np.repeat(axis, 3)
    u = np.where(ax == 0, pos[:, 1], pos[:, 0])
    v = np.where(ax == 2, pos[:, 1], pos[:, 2])
    uv = np.stack([u, v], -1) * uv_scale + 0.5
    faces = np.arange(len(pos), dtype=np.uint32).reshape(-1, 3)
    return Part(pos, np.repeat(n, 3, axis=0), uv, faces, material)


def crystal(rng, radii, material, n_points=None) -> Part:
    """Convex hull of random points on an ellipsoid: gems, rocks with facets, pyramids."""
    from scipy.spatial import ConvexHull

    k = int(n_points or rng.integers(5, 24))
    d = rng.normal(size=(k, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    pts = d * np.asarray(radii)
    hull = ConvexHull(pts)
    return flat_part(pts, hull.simplices, material, outward_from=pts.mean(0))


def prism(rng, sides, radius, z0, z1, material, top_scale=1.0) -> Part:
    """A flat-shaded n-gon prism / frustum / pyramid (top_scale 0) along z."""
    from scipy.spatial import ConvexHull

    th = np.linspace(0, 2 * np.pi, sides, endpoint=False) + rng.uniform(0, np.pi)
    ring = np.stack([np.cos(th), np.sin(th)], -1) * radius
    bottom = np.concatenate([ring, np.full((sides, 1), z0)], 1)
    if top_scale <= 1e-3:
        top = np.array([[0.0, 0.0, z1]])
    else:
        top = np.concatenate([ring * top_scale, np.full((sides, 1), z1)], 1)
    pts = np.concatenate([bottom, top])
    hull = ConvexHull(pts)
    return flat_part(pts, hull.simplices, material, outward_from=pts.mean(0))


# ---------------------------------------------------------------------------
# Procedural compositions
# ---------------------------------------------------------------------------


def _profile(rng, r0=(0.2, 0.6), n_knots=5):
    """A smooth random radius profile r(t), t in [0,1], for lathe objects."""
    knots = rng.uniform(*r0, size=n_knots)
    ts = np.linspace(0, 1, n_knots)
    return lambda t: np.interp(t, ts, knots) + 0.02 * np.sin(6 * t)


def vase(rng, m) -> list[Part]:
    h = rng.uniform(0.6, 2.0)
    prof = _profile(rng, r0=(0.15, 0.6), n_knots=int(rng.integers(3, 7)))
    parts = [lathe(lambda t: (prof(t), h * t), m[0], n=64, m=32)]
    parts.append(disk(float(prof(np.array(0.0))), 0.0, m[0], up=False, n=64))
    parts.append(disk(float(prof(np.array(1.0))) * 0.98, h * 0.999, m[1], up=True, n=64))
    return parts


def mug(rng, m) -> list[Part]:
    r = rng.uniform(0.3, 0.55)
    h = rng.uniform(0.5, 1.1)
    parts = cylinder(r, 0.0, h, m[0], n=64)
    handle = torus(h * 0.28, rng.uniform(0.03, 0.07), m[1], n=48, m=16).transformed(rotate((1, 0, 0), 90))
    parts.append(handle.transformed(translate(r + h * 0.18, 0, h * 0.5)))
    return parts


def table(rng, m) -> list[Part]:
    w, d = rng.uniform(0.8, 1.6), rng.uniform(0.6, 1.4)
    h = rng.uniform(0.5, 1.1)
    t = rng.uniform(0.05, 0.15)
    parts = []
    if rng.uniform() < 0.5:
        parts += box((w, d, t), m[0], center=(0, 0, h))
    else:
        parts += cylinder(max(w, d) / 2, h - t / 2, h + t / 2, m[0], n=64)
    lr = rng.uniform(0.03, 0.08)
    inset = 0.8
    legs = [(sx * w / 2 * inset, sy * d / 2 * inset) for sx in (-1, 1) for sy in (-1, 1)]
    for x, y in legs:
        parts += [p.transformed(translate(x, y, 0)) for p in cylinder(lr, 0.0, h - t / 2, m[1], n=16)]
    return parts


def mushroom(rng, m) -> list[Part]:
    h = rng.uniform(0.4, 1.2)
    sr = rng.uniform(0.08, 0.25)
    parts = [lathe(lambda t: (sr * (1.2 - 0.4 * t), h * t), m[0], n=32, m=8)]
    cap_r = rng.uniform(0.4, 0.9)
    kind = rng.integers(0, 3)
    if kind == 0:
        cap = ellipsoid((cap_r, cap_r, cap_r * rng.uniform(0.3, 0.8)), m[1], n=32)
    elif kind == 1:
        cap = ellipsoid((cap_r, cap_r, cap_r * 0.7), m[1], n=32, bumps=random_bumps(rng, amp=0.2))
    else:
        cap = prism(rng, int(rng.integers(3, 9)), cap_r, 0.0, cap_r * rng.uniform(0.6, 1.5), m[1], top_scale=0.0)
    parts.append(cap.transformed(translate(0, 0, h)))
    return parts


def creature(rng, m) -> list[Part]:
    bl, bw = rng.uniform(0.5, 1.0), rng.uniform(0.25, 0.5)
    leg = rng.uniform(0.2, 0.6)
    parts = [ellipsoid((bl, bw, bw * rng.uniform(0.7, 1.1)), m[0], n=32).transformed(translate(0, 0, leg + bw * 0.6))]
    hr = rng.uniform(0.18, 0.4)
    head_pos = np.array([bl * 0.95, 0, leg + bw * 0.6 + rng.uniform(0.1, 0.5)])
    parts.append(ellipsoid((hr * 1.2, hr, hr), m[1], n=32).transformed(translate(*head_pos)))
    eye = Material(color=tuple(random_color(rng, val=(0.0, 0.3))), roughness=0.3)
    for s in (-1, 1):
        parts.append(ellipsoid((0.05, 0.05, 0.05), eye, n=12).transformed(translate(*(head_pos + [hr * 1.0, s * hr * 0.45, hr * 0.3]))))
    lr = rng.uniform(0.04, 0.1)
    for sx in (-0.6, 0.6):
        for sy in (-1, 1):
            parts += [p.transformed(translate(sx * bl, sy * bw * 0.6, 0)) for p in cylinder(lr, 0.0, leg + bw * 0.4, m[2], n=16)]
    if rng.uniform() < 0.6:  # tail
        parts += [p.transformed(rotate((0, 1, 0), -60)).transformed(translate(-bl * 0.9, 0, leg + bw * 0.7))
                  for p in cylinder(lr * 0.7, 0.0, rng.uniform(0.3, 0.7), m[2], n=12)]
    return parts


def stack(rng, m) -> list[Part]:
    """2–5 primitives stacked on the z axis (snowmen, lamps, totems, trophies)."""
    z = 0.0
    parts = []
    for i in range(int(rng.integers(2, 6))):
        kind = rng.integers(0, 5)
        r = rng.uniform(0.15, 0.6)
        h = rng.uniform(0.2, 0.7)
        mat = m[i % len(m)]
        if kind == 0:
            parts.append(ellipsoid((r, r, h / 2), mat, n=32).transformed(translate(0, 0, z + h / 2)))
        elif kind == 1:
            parts += cylinder(r, z, z + h, mat, n=48)
        elif kind == 2:
            parts += box((2 * r, 2 * r * rng.uniform(0.5, 1), h), mat, center=(0, 0, z + h / 2))
        elif kind == 3:
            parts.append(prism(rng, int(rng.integers(3, 8)), r, z, z + h, mat, top_scale=rng.uniform(0, 1)))
        else:
            rr = r * 0.25
            parts.append(torus(r, rr, mat, n=48, m=16).transformed(translate(0, 0, z + rr)))
            h = 2 * rr
        z += h
    return parts


def cluster(rng, m) -> list[Part]:
    """3–7 random primitives with random rotations, packed around the origin."""
    parts = []
    for i in range(int(rng.integers(3, 8))):
        mat = m[i % len(m)]
        kind = rng.integers(0, 5)
        s = rng.uniform(0.2, 0.5)
        if kind == 0:
            p = [ellipsoid(tuple(s * rng.uniform(0.5, 1.2, 3)), mat, n=24, bumps=random_bumps(rng, amp=0.15))]
        elif kind == 1:
            p = box(tuple(2 * s * rng.uniform(0.4, 1.0, 3)), mat)
        elif kind == 2:
            p = [crystal(rng, tuple(s * rng.uniform(0.5, 1.5, 3)), mat)]
        elif kind == 3:
            p = cylinder(s * 0.5, -s, s, mat, n=24)
        else:
            p = [torus(s, s * 0.3, mat, n=32, m=12)]
        R = rotate(rng.normal(size=3), rng.uniform(0, 180))
        T = translate(*(rng.normal(size=3) * 0.45))
        parts += [q.transformed(T @ R) for q in p]
    return parts


def single(rng, m) -> list[Part]:
    kind = rng.integers(0, 5)
    if kind == 0:
        return [ellipsoid(tuple(rng.uniform(0.4, 1.0, 3)), m[0], n=48, bumps=random_bumps(rng, amp=rng.uniform(0.05, 0.35)))]
    if kind == 1:
        return [crystal(rng, tuple(rng.uniform(0.4, 1.0, 3)), m[0])]
    if kind == 2:
        R = rng.uniform(0.4, 0.8)
        return [torus(R, R * rng.uniform(0.15, 0.5), m[0], n=64, m=24).transformed(rotate((1, 0, 0), rng.uniform(0, 90)))]
    if kind == 3:
        return box(tuple(rng.uniform(0.4, 1.2, 3)), {k: m[i % len(m)] for i, k in enumerate(("+x", "-x", "+y", "-y", "+z", "-z"))})
    return [prism(rng, int(rng.integers(3, 10)), rng.uniform(0.3, 0.7), 0.0, rng.uniform(0.5, 1.5), m[0], top_scale=rng.uniform(0, 1.2))]


def house(rng, m) -> list[Part]:
    w, d, h = rng.uniform(0.6, 1.2), rng.uniform(0.6, 1.2), rng.uniform(0.4, 1.0)
    parts = box((w, d, h), m[0], center=(0, 0, h / 2))
    roof = prism(rng, 4, 1.0, 0.0, rng.uniform(0.3, 0.8), m[1], top_scale=0.0)
    # align the 4-gon roof with the walls: rotate so corners sit on the box corners
    roof.positions[:, 0] *= w / np.sqrt(2) * 1.1
    roof.positions[:, 1] *= d / np.sqrt(2) * 1.1
    parts.append(Part(roof.positions, roof.normals, roof.uvs, roof.faces, roof.material).transformed(translate(0, 0, h)))
    if rng.uniform() < 0.5:  # chimney
        parts += box((0.12, 0.12, 0.4), m[2], center=(w * 0.25, d * 0.2, h + 0.3))
    return parts


BUILDERS = (vase, mug, table, mushroom, creature, stack, cluster, single, house)


def proc_object(rng: np.random.Generator) -> list[Part]:
    builder = BUILDERS[int(rng.integers(0, len(BUILDERS)))]
    mats = [random_material(rng) for _ in range(3)]
    parts = builder(rng, mats)
    R = rotate((0, 0, 1), rng.uniform(0, 360))
    if rng.uniform() < 0.15:  # occasionally tipped over
        R = rotate(rng.normal(size=3), rng.uniform(20, 90)) @ R
    return [p.transformed(R) for p in parts]


# ---------------------------------------------------------------------------
# pybullet random_urdfs
# ---------------------------------------------------------------------------


def pybullet_data_dir() -> Path:
    import pybullet_data

    return Path(pybullet_data.getDataPath())


def read_obj_groups(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """(vertices, triangles) per `o` group of a Wavefront OBJ (positions and faces only)."""
    verts, groups, cur = [], [], []
    for line in path.read_text().splitlines():
        if line.startswith("v "):
            verts.append([float(x) for x in line.split()[1:4]])
        elif line.startswith("o ") or line.startswith("g "):
            if cur:
                groups.append(cur)
            cur = []
        elif line.startswith("f "):
            idx = [int(tok.split("/")[0]) for tok in line.split()[1:]]
            idx = [i - 1 if i > 0 else len(verts) + i for i in idx]
            cur += [(idx[0], idx[k], idx[k + 1]) for k in range(1, len(idx) - 1)]
    if cur:
        groups.append(cur)
    V = np.asarray(verts, np.float64)
    finite = np.isfinite(V).all(axis=1) if len(V) else np.zeros(0, bool)
    # drop faces with non-finite vertices (random_urdfs/168 is all NaN) and groups left empty
    groups = [g for g in (np.asarray(g, np.int64).reshape(-1, 3) for g in groups) if len(g)]
    groups = [g[finite[g].all(axis=1)] for g in groups]
    groups = [g for g in groups if len(g)]
    if not groups:
        raise ValueError(f"{path}: no finite triangles")
    return [(V, g) for g in groups]


def urdf_object(index: int, rng: np.random.Generator) -> list[Part]:
    path = pybullet_data_dir() / "random_urdfs" / f"{index:03d}" / f"{index:03d}.obj"
    groups = read_obj_groups(path)
    n_mat = int(rng.integers(1, 4))
    mats = [random_material(rng) for _ in range(n_mat)]
    parts = []
    for i, (V, F) in enumerate(groups):
        used = np.unique(F)
        parts.append(flat_part(V, F, mats[i % n_mat], outward_from=V[used].mean(0), uv_scale=rng.uniform(0.15, 0.4)))
    R = rotate(rng.normal(size=3), rng.uniform(0, 180))
    return [p.transformed(R) for p in parts]


N_URDF = 1000

# ---------------------------------------------------------------------------
# Real textured meshes (out of distribution)
# ---------------------------------------------------------------------------

# name -> (path inside pybullet_data, rotation to make it z-up (axis, degrees) or None)
REAL_MESHES = {
    "duck": ("duck.obj", ((1, 0, 0), 90)),
    "soccerball": ("soccerball.obj", None),
    "textured_sphere": ("textured_sphere_smooth.obj", None),
    "table": ("table/table.obj", ((1, 0, 0), 90)),
    "tray": ("tray/tray_textured2.obj", None),
    "jenga": ("jenga/jenga.obj", ((1, 0, 0), 90)),
    "domino": ("domino/domino.obj", None),
    "teddy": ("teddy2_VHACD_CHs.obj", ((1, 0, 0), 90)),
    "mug": ("objects/mug.obj", ((1, 0, 0), 90)),
    "lego": ("lego/lego.obj", None),
    "bunny": ("bunny.obj", ((1, 0, 0), 90)),
}


def real_object(name: str):
    """A list of trimesh.Trimesh (with their own materials/textures), z-up."""
    import trimesh

    rel, rot = REAL_MESHES[name]
    path = pybullet_data_dir() / rel
    loaded = trimesh.load(str(path), force="scene", process=False)
    meshes = [g for g in loaded.dump(concatenate=False) if isinstance(g, trimesh.Trimesh) and len(g.faces)]
    if not meshes:
        raise ValueError(f"{path}: no triangle meshes")
    if rot is not None:
        T = rotate(*rot)
        for g in meshes:
            g.apply_transform(T)
    return meshes
