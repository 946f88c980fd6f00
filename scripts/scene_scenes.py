"""Scene definitions (geometry, materials, lights, cameras) for make_scenes.py.

World frame: z up (Blender convention).  Every builder takes a seeded
``numpy.random.Generator`` and returns a :class:`SceneSpec`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    quad,
    random_bumps,
    rotate,
    tint_gray,
    to_u8,
    torus,
    translate,
    wood_texture,
)


@dataclass
class Light:
    kind: str  # "directional" | "point"
    position: tuple  # for directional: a point the light shines from, towards `target`
    color: tuple = (1.0, 1.0, 1.0)
    intensity: float = 3.0
    target: tuple = (0.0, 0.0, 0.0)
    shadows: bool = False


@dataclass
class SceneSpec:
    parts: list[Part]
    lights: list[Light]
    scene_center: tuple
    ambient: float = 0.25
    znear: float = 0.05
    zfar: float = 50.0
    extra: dict = field(default_factory=dict)


def look_at_gl(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Camera-to-world in OpenGL/Blender convention (x right, y up, looking down -z)."""
    eye = np.asarray(eye, float)
    target = np.asarray(target, float)
    z = eye - target
    z /= np.linalg.norm(z)
    x = np.cross(np.asarray(up, float), z)
    if np.linalg.norm(x) < 1e-6:
        x = np.cross((0.0, 1.0, 0.0), z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    M = np.eye(4)
    M[:3, 0], M[:3, 1], M[:3, 2], M[:3, 3] = x, y, z, eye
    return M


def sphere_dirs(rng, n, el_min_deg, el_max_deg):
    """n directions uniform in area on the sphere band el_min..el_max (degrees)."""
    zmin, zmax = np.sin(np.radians(el_min_deg)), np.sin(np.radians(el_max_deg))
    z = rng.uniform(zmin, zmax, n)
    az = rng.uniform(0, 2 * np.pi, n)
    r = np.sqrt(1 - z**2)
    return np.stack([r * np.cos(az), r * np.sin(az), z], -1)


def fibonacci_dirs(n, el_min_deg, el_max_deg, offset=0.0):
    """Evenly spread directions (golden-angle spiral) on a sphere band."""
    zmin, zmax = np.sin(np.radians(el_min_deg)), np.sin(np.radians(el_max_deg))
    i = np.arange(n) + 0.5
    z = zmin + (zmax - zmin) * i / n
    az = (i * np.pi * (3 - np.sqrt(5)) + offset) % (2 * np.pi)
    r = np.sqrt(1 - z**2)
    return np.stack([r * np.cos(az), r * np.sin(az), z], -1)


def spiral_dirs(n, el_lo_deg, el_hi_deg, turns=1.0, phase=0.0):
    """A test path: one orbit whose elevation oscillates between el_lo and el_hi."""
    t = np.arange(n) / n
    az = 2 * np.pi * turns * t + phase
    el = np.radians(el_lo_deg + (el_hi_deg - el_lo_deg) * 0.5 * (1 - np.cos(2 * np.pi * t * 2)))
    return np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], -1)


# ---------------------------------------------------------------------------
# Object scene 1: "robot" — a toy robot of ~20 textured parts, full sphere of views
# ---------------------------------------------------------------------------


def build_robot(rng: np.random.Generator) -> SceneSpec:
    T = 512
    astronaut = fit_texture(photo("astronaut"), T)
    coffee = fit_texture(photo("coffee"), T)
    chelsea = fit_texture(photo("chelsea"), T)
    rocket = fit_texture(photo("rocket"), T)
    hubble = fit_texture(photo("hubble_deep_field"), T)
    paint = noise_texture(rng, T, [(0, (30, 60, 140)), (0.45, (60, 120, 200)), (0.7, (230, 190, 60)), (1, (200, 60, 40))], base=4)
    rust = noise_texture(rng, T, [(0, (60, 30, 20)), (0.4, (150, 70, 30)), (0.7, (190, 140, 90)), (1, (90, 110, 120))], base=8)
    green = noise_texture(rng, T, [(0, (20, 70, 30)), (0.5, (90, 160, 60)), (1, (220, 230, 120))], base=4, wrap_x=True)
    marble = marble_texture(rng, T, (235, 225, 210), (180, 170, 200))

    m_front = Material(astronaut, roughness=0.55)
    m_back = Material(coffee, roughness=0.6)
    m_side = Material(paint, roughness=0.5, metallic=0.1)
    m_top = Material(rust, roughness=0.8)
    m_head = Material(chelsea, roughness=0.5)
    m_ring = Material(rocket, metallic=0.6, roughness=0.3)
    m_limb = Material(green, roughness=0.6)
    m_joint = Material(rust, metallic=0.5, roughness=0.35)
    m_foot = Material(hubble, roughness=0.7)
    m_shiny = Material(color=(0.9, 0.15, 0.1), metallic=0.2, roughness=0.15)
    m_eye = Material(marble, roughness=0.2)

    parts: list[Part] = []
    # torso (centre of the scene at its middle)
    parts += box((0.8, 0.55, 0.9), {"+x": m_side, "-x": m_side, "+y": m_back, "-y": m_front, "+z": m_top, "-z": m_top}, center=(0, 0, 0.1))
    # waist ring
    parts.append(torus(0.5, 0.07, m_ring).transformed(translate(0, 0, -0.22)))
    # neck + head
    parts += cylinder(0.1, 0.55, 0.7, m_joint, n=32)
    head = ellipsoid((0.32, 0.3, 0.28), m_head, n=48).transformed(rotate((0, 0, 1), -90))
    parts.append(head.transformed(translate(0, 0, 0.95)))
    for sx in (-0.12, 0.12):
        parts.append(ellipsoid((0.06, 0.06, 0.06), m_eye, n=16).transformed(translate(sx, -0.27, 1.0)))
    # antenna
    parts += cylinder(0.018, 1.2, 1.45, m_joint, n=16)
    parts.append(ellipsoid((0.06, 0.06, 0.06), m_shiny, n=16).transformed(translate(0, 0, 1.48)))
    # arms: shoulder spheres, upper arm, forearm, hand
    for side in (-1, 1):
        sh = np.array([side * 0.48, 0, 0.42])
        parts.append(ellipsoid((0.11, 0.11, 0.11), m_joint, n=24).transformed(translate(*sh)))
        arm = lathe(lambda t: (0.06 + 0.015 * t, -0.55 + 0.55 * t), m_limb, n=48, m=8)
        arm = arm.transformed(rotate((0, 1, 0), -side * 25)).transformed(translate(*sh))
        parts.append(arm)
        hand = sh + np.array([side * 0.55 * np.sin(np.radians(25)), 0, -0.55 * np.cos(np.radians(25))])
        parts.append(ellipsoid((0.09, 0.07, 0.1), m_shiny if side > 0 else m_eye, n=20).transformed(translate(*hand)))
    # legs + feet
    for side in (-1, 1):
        parts += [p.transformed(translate(side * 0.2, 0, 0)) for p in cylinder(0.09, -0.9, -0.35, m_limb, n=32)]
        parts += box((0.24, 0.38, 0.12), m_foot, center=(side * 0.2, -0.06, -0.96))
    # backpack
    parts += [p.transformed(rotate((1, 0, 0), 90)).transformed(translate(0, 0.36, 0.15)) for p in cylinder(0.16, -0.08, 0.08, m_ring, n=32, cap_material=m_foot)]

    lights = [
        Light("directional", (3, -4, 5), (1.0, 0.97, 0.9), 3.5),
        Light("directional", (-4, 3, 2), (0.75, 0.85, 1.0), 1.6),
        Light("directional", (1, 4, -3), (1.0, 1.0, 1.0), 1.0),
    ]
    return SceneSpec(parts, lights, scene_center=(0.0, 0.0, 0.1), ambient=0.35, znear=0.1, zfar=20.0)


# ---------------------------------------------------------------------------
# Object scene 2: "stilllife" — vase, fruit, book, donut on a wooden tray; upper hemisphere
# ---------------------------------------------------------------------------


def build_stilllife(rng: np.random.Generator) -> SceneSpec:
    T = 512
    wood = wood_texture(rng, 1024)
    marble = marble_texture(rng, T, (40, 70, 120), (220, 210, 190), veins=(240, 235, 220))
    orange = noise_texture(rng, 256, [(0, (200, 90, 10)), (0.6, (240, 140, 30)), (1, (250, 190, 60))], base=16, detail=0.35, wrap_x=True)
    apple = noise_texture(rng, 256, [(0, (120, 10, 20)), (0.5, (190, 30, 30)), (0.8, (220, 160, 40)), (1, (150, 190, 60))], base=4, wrap_x=True)
    plum = noise_texture(rng, 256, [(0, (40, 10, 50)), (0.7, (100, 40, 120)), (1, (160, 120, 180))], base=8, wrap_x=True)
    icing = noise_texture(rng, 256, [(0, (250, 120, 170)), (0.5, (255, 180, 210)), (0.55, (90, 50, 20)), (1, (200, 140, 90))], base=8, detail=0.2, wrap_x=True)
    ihc = fit_texture(photo("hubble_deep_field"), T)
    retina = fit_texture(photo("retina"), T)
    brick = tint_gray(photo("brick")[..., 0], (230, 120, 90), rng)
    rocket = fit_texture(photo("rocket"), T)

    parts: list[Part] = []
    # tray: wooden disk with rim
    parts += cylinder(1.25, -0.62, -0.55, Material(wood, roughness=0.6), n=128)
    parts.append(torus(1.25, 0.04, Material(wood, roughness=0.5), n=128, m=16).transformed(translate(0, 0, -0.55)))

    # vase (centre of the scene inside its belly)
    def vase(t):
        z = -0.55 + 1.35 * t
        r = 0.18 + 0.22 * np.sin(np.pi * np.clip(t * 1.25, 0, 1)) ** 1.5 + 0.07 * np.clip((t - 0.82) / 0.18, 0, 1) ** 2
        return r, z

    parts.append(lathe(vase, Material(marble, roughness=0.25, metallic=0.0), n=96, m=64))
    parts.append(disk(0.18 + 0.07, 0.8, Material(color=(0.08, 0.06, 0.05), roughness=0.9), n=48))
    # flowers: stems + blossoms
    for k, (ang, h) in enumerate([(0, 1.25), (2.1, 1.1), (4.2, 1.18)]):
        tip = np.array([0.22 * np.cos(ang), 0.22 * np.sin(ang), h])
        d = tip - np.array([0, 0, 0.75])
        L = np.linalg.norm(d)
        axis = np.cross((0, 0, 1), d / L)
        angle = np.degrees(np.arcsin(np.linalg.norm(axis)))
        stem = cylinder(0.015, 0.0, L, Material(color=(0.2, 0.5, 0.15), roughness=0.7), n=12, caps=False)[0]
        parts.append(stem.transformed(rotate(axis, angle)).transformed(translate(0, 0, 0.75)))
        bloom = ellipsoid((0.09, 0.09, 0.05), Material([plum, orange, icing][k], roughness=0.6), n=24, bumps=random_bumps(rng, 0.35, 8, (3, 6)))
        parts.append(bloom.transformed(translate(*tip)))
    # fruit
    fruit = [((0.75, -0.3), 0.17, orange), ((0.55, -0.62), 0.15, apple), ((0.88, 0.1), 0.13, plum), ((0.45, 0.55), 0.16, apple)]
    for (x, y), r, tex in fruit:
        b = random_bumps(rng, 0.05, 6, (1, 3))
        parts.append(ellipsoid((r, r, r * 0.92), Material(tex, roughness=0.35), n=32, bumps=b).transformed(translate(x, y, -0.55 + r * 0.9)))
    # book stack
    cover = Material(ihc, roughness=0.6)
    pages = Material(color=(0.93, 0.9, 0.82), roughness=0.9)
    parts += [p.transformed(rotate((0, 0, 1), 20)).transformed(translate(-0.65, -0.35, 0)) for p in box((0.5, 0.36, 0.1), {"+x": pages, "-x": cover, "+y": pages, "-y": pages, "+z": cover, "-z": cover}, center=(0, 0, -0.5))]
    cover2 = Material(retina, roughness=0.5)
    parts += [p.transformed(rotate((0, 0, 1), -10)).transformed(translate(-0.62, -0.33, 0)) for p in box((0.42, 0.3, 0.08), {"+x": pages, "-x": cover2, "+y": pages, "-y": pages, "+z": cover2, "-z": cover2}, center=(0, 0, -0.41))]
    # donut on the books
    parts.append(torus(0.11, 0.05, Material(icing, roughness=0.45), n=48, m=24).transformed(translate(-0.62, -0.33, -0.32)))
    # brick block and a little rocket-textured can
    parts += box((0.28, 0.28, 0.28), Material(brick, roughness=0.85), center=(-0.55, 0.55, -0.41))
    parts += [p.transformed(translate(0.1, 0.8, 0)) for p in cylinder(0.11, -0.55, -0.2, Material(rocket, metallic=0.7, roughness=0.25), n=48, cap_material=Material(color=(0.7, 0.7, 0.72), metallic=1.0, roughness=0.3))]

    lights = [
        Light("directional", (-3, -3, 6), (1.0, 0.95, 0.85), 3.5),
        Light("directional", (4, 1, 3), (0.7, 0.8, 1.0), 1.5),
        Light("directional", (0, 5, 1), (1.0, 1.0, 1.0), 0.8),
    ]
    return SceneSpec(parts, lights, scene_center=(0.0, 0.0, -0.05), ambient=0.3, znear=0.1, zfar=20.0)


# ---------------------------------------------------------------------------
# Shared pieces for the outdoor scenes
# ---------------------------------------------------------------------------


def sky_panorama(rng, w=2048, h=1024, mountain_color=((40, 60, 45), (90, 100, 80), (150, 150, 140))):
    """Equirectangular-ish texture for a dome: u = azimuth, v = elevation (-90..90 deg). Seamless in u."""
    # row 0 is the top of the image = elevation +90 (pyrender puts v = 0 at the bottom row)
    v = np.linspace(90, -90, h)[:, None] * np.ones((1, w))
    # sky gradient + clouds
    t = np.clip(v / 60.0, 0, 1)
    sky = colormap(t, [(0, (200, 215, 230)), (0.4, (130, 170, 220)), (1, (60, 100, 180))])
    clouds = fractal_noise(rng, h, w, base=4, octaves=7, wrap_x=True)
    c = np.clip((clouds - 0.5) * 3.0, 0, 1)[..., None] * (v[..., None] > 2)
    sky = sky * (1 - 0.8 * c) + 0.8 * c * np.array([0.97, 0.97, 0.98])
    # mountain silhouettes (two ranges)
    img = sky
    for k, (hmin, hmax, cols) in enumerate([(6, 18, mountain_color), (2, 9, ((25, 55, 30), (60, 90, 50), (110, 120, 80)))]):
        ridge = fractal_noise(rng, 64, w, base=4, octaves=8, persistence=0.55, wrap_x=True)[32]
        height = hmin + (hmax - hmin) * ridge
        tex = fractal_noise(rng, h, w, base=16, octaves=6, wrap_x=True)
        shade = colormap(tex, [(0, cols[0]), (0.6, cols[1]), (1, cols[2])])
        # snow caps on the far range
        if k == 0:
            snow = np.clip((v - (hmin + 0.75 * (hmax - hmin))) / 2.0, 0, 1)[..., None] * (tex[..., None] > 0.35)
            shade = shade * (1 - snow) + snow * 0.95
        mask = (v < height[None, :])[..., None]
        img = np.where(mask, shade, img)
    return to_u8(img)


def dome(radius, tex, n=96) -> Part:
    """Sky dome (inside faces visible): emissive texture, u = azimuth."""

    def fn(U, V):
        th = 2 * np.pi * U
        el = -np.pi / 2 + np.pi * V
        return radius * np.stack([np.cos(el) * np.cos(th), np.cos(el) * np.sin(th), np.sin(el)], -1)

    return surface_inside(fn, 2 * n, n, Material(tex, emissive=True))


def surface_inside(fn, nu, nv, material):
    from scene_assets import surface

    return surface(fn, nu, nv, material, flip=True)


def ground_textures(rng, size_inner=2048, size_outer=2048):
    gravel = photo("gravel")[..., 0].astype(float) / 255.0
    # non-repeating detail: noise-warped gravel + large-scale colour noise
    big = fractal_noise(rng, size_inner, size_inner, base=4, octaves=9, persistence=0.6)
    fine = fractal_noise(rng, size_inner, size_inner, base=64, octaves=5, persistence=0.6)
    yy, xx = np.mgrid[0:size_inner, 0:size_inner].astype(float)
    from scipy import ndimage

    warp = 40 * (fractal_noise(rng, size_inner, size_inner, base=4, octaves=4) - 0.5)
    gv = ndimage.map_coordinates(gravel, [(yy + warp) % 512, (xx * 1.3 - warp) % 512], order=1, mode="wrap")
    col = colormap(big, [(0, (110, 95, 75)), (0.35, (150, 130, 100)), (0.65, (120, 110, 90)), (1, (170, 150, 120))])
    inner = col * (0.88 + 0.12 * gv[..., None]) * (0.92 + 0.16 * fine[..., None])
    # moss patches
    moss = np.clip((fractal_noise(rng, size_inner, size_inner, base=8, octaves=6) - 0.6) * 4, 0, 1)[..., None]
    inner = inner * (1 - moss) + moss * np.array([0.3, 0.42, 0.2]) * (0.6 + 0.5 * fine[..., None])
    grass_n = fractal_noise(rng, size_outer, size_outer, base=8, octaves=9, persistence=0.62)
    grass_f = fractal_noise(rng, size_outer, size_outer, base=128, octaves=4)
    outer = colormap(grass_n, [(0, (40, 70, 25)), (0.4, (75, 110, 40)), (0.7, (110, 130, 55)), (1, (150, 140, 80))])
    outer = outer * (0.9 + 0.2 * grass_f[..., None])
    return to_u8(inner), to_u8(outer)


def tree(rng, x, y, h, leaf_tex, bark_tex) -> list[Part]:
    parts = cylinder(0.08 * h, 0, 0.55 * h, Material(bark_tex, roughness=0.9), n=16, caps=False)
    crown = ellipsoid((0.35 * h, 0.35 * h, 0.45 * h), Material(leaf_tex, roughness=0.85), n=24, bumps=random_bumps(rng, 0.3, 10, (2, 5)))
    parts.append(crown.transformed(translate(0, 0, 0.8 * h)))
    return [p.transformed(translate(x, y, 0)) for p in parts]


def rock(rng, x, y, r, tex) -> Part:
    b = random_bumps(rng, 0.3, 14, (1.5, 5))
    return ellipsoid((r, r * rng.uniform(0.7, 1.1), r * rng.uniform(0.5, 0.8)), Material(tex, roughness=0.9), n=24, bumps=b).transformed(
        rotate((0, 0, 1), rng.uniform(0, 360))
    ).transformed(translate(x, y, 0.0))


# ---------------------------------------------------------------------------
# Unbounded scene: "garden" — a statue on a gravel plaza in a field, distant sky + mountains
# ---------------------------------------------------------------------------


def build_garden(rng: np.random.Generator) -> SceneSpec:
    inner, outer = ground_textures(rng)
    sky = sky_panorama(rng)
    stone = noise_texture(rng, 512, [(0, (90, 88, 85)), (0.5, (150, 145, 135)), (1, (200, 195, 185))], base=8, detail=0.3)
    leaf = noise_texture(rng, 256, [(0, (20, 50, 15)), (0.5, (50, 100, 30)), (1, (140, 160, 60))], base=16, detail=0.4, wrap_x=True)
    bark = noise_texture(rng, 256, [(0, (50, 35, 20)), (1, (120, 90, 60))], base=32, detail=0.4, wrap_x=True)
    marble = marble_texture(rng, 512, (230, 220, 200), (200, 180, 170), veins=(90, 80, 80))
    astronaut = fit_texture(photo("astronaut"), 512)
    chelsea = fit_texture(photo("chelsea"), 512)

    parts: list[Part] = []
    parts.append(quad((-200, -200, -0.01), (400, 0, 0), (0, 400, 0), Material(outer, roughness=0.95), uv_rect=(0, 0, 1, 1)))
    parts.append(quad((-8, -8, 0.0), (16, 0, 0), (0, 16, 0), Material(inner, roughness=0.9)))
    parts.append(dome(300.0, sky))
    # statue: plinth + sphere + torus
    parts += box((0.9, 0.9, 0.6), {"+x": Material(chelsea, roughness=0.6), "-x": Material(stone), "+y": Material(stone), "-y": Material(astronaut, roughness=0.6), "+z": Material(stone), "-z": Material(stone)}, center=(0, 0, 0.3))
    parts.append(ellipsoid((0.38, 0.38, 0.38), Material(marble, roughness=0.3), n=48).transformed(translate(0, 0, 1.0)))
    parts.append(torus(0.5, 0.05, Material(color=(0.8, 0.6, 0.25), metallic=1.0, roughness=0.3), n=64, m=16).transformed(rotate((1, 0, 0), 70)).transformed(translate(0, 0, 1.0)))
    # rocks and trees around
    for _ in range(14):
        a = rng.uniform(0, 2 * np.pi)
        d = rng.uniform(1.2, 7.0)
        parts.append(rock(rng, d * np.cos(a), d * np.sin(a), rng.uniform(0.12, 0.45), stone))
    for _ in range(16):
        a = rng.uniform(0, 2 * np.pi)
        d = rng.uniform(9.0, 30.0)
        parts += tree(rng, d * np.cos(a), d * np.sin(a), rng.uniform(2.0, 4.5), leaf, bark)
    # a low wall segment with photo panels
    for k, img in enumerate([photo("coffee"), photo("rocket"), photo("hubble_deep_field")]):
        a = np.radians(110 + 35 * k)
        c = np.array([5.5 * np.cos(a), 5.5 * np.sin(a), 0.0])
        parts += [p.transformed(rotate((0, 0, 1), np.degrees(a))).transformed(translate(*c)) for p in box((0.3, 2.2, 1.4), {"+x": Material(stone), "-x": Material(fit_texture(img, 512), roughness=0.6), "+y": Material(stone), "-y": Material(stone), "+z": Material(stone), "-z": Material(stone)}, center=(0, 0, 0.7))]

    lights = [
        Light("directional", (6, -4, 8), (1.0, 0.95, 0.85), 4.0, shadows=True),
    ]
    return SceneSpec(parts, lights, scene_center=(0.0, 0.0, 0.7), ambient=0.6, znear=0.05, zfar=700.0)


def random_palette_texture(rng, size):
    """A noise texture with a random 4-colour palette and random feature size (unique per call)."""
    cols = rng.integers(20, 240, size=(4, 3))
    stops = [(t, tuple(int(c) for c in col)) for t, col in zip((0.0, 0.35, 0.65, 1.0), cols)]
    return noise_texture(rng, size, stops, base=int(rng.choice([4, 8, 16])), octaves=7, detail=0.3)


# ---------------------------------------------------------------------------
# SfM photo set: "courtyard" — crates, statues and photo-covered walls, orbit of 40 views
# ---------------------------------------------------------------------------


def build_courtyard(rng: np.random.Generator) -> SceneSpec:
    inner, outer = ground_textures(rng)
    sky = sky_panorama(rng, mountain_color=((70, 60, 55), (120, 105, 90), (170, 160, 150)))
    names = ["astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina"]
    photos = [fit_texture(photo(n), 512) for n in names]
    stone = noise_texture(rng, 512, [(0, (100, 80, 70)), (0.5, (160, 140, 120)), (1, (210, 200, 180))], base=8, detail=0.3)
    wall_tex = [
        noise_texture(rng, 1024, [(0, (120, 40, 30)), (0.5, (200, 120, 80)), (1, (240, 220, 180))], base=8, octaves=8),
        noise_texture(rng, 1024, [(0, (30, 50, 90)), (0.5, (90, 140, 170)), (1, (220, 230, 200))], base=8, octaves=8),
        marble_texture(rng, 1024, (220, 200, 160), (140, 120, 100), veins=(60, 40, 30), wrap_x=False),
        tint_gray(photo("brick")[..., 0], (240, 150, 110), rng),
    ]

    parts: list[Part] = []
    parts.append(quad((-200, -200, -0.01), (400, 0, 0), (0, 400, 0), Material(outer, roughness=0.95)))
    parts.append(quad((-8, -8, 0.0), (16, 0, 0), (0, 16, 0), Material(inner, roughness=0.9)))
    parts.append(dome(300.0, sky))
    # central cluster of crates. Every face carries different content (SfM needs texture that
    # does not repeat): the six photos once each, then procedural textures with random palettes.
    crates = [((0, 0, 0), 1.0, 0), ((1.1, 0.3, 0), 0.7, 25), ((-0.9, 0.6, 0), 0.8, -15), ((0.2, -1.0, 0), 0.6, 40), ((0.1, 0.1, 1.0), 0.6, 10)]
    order = rng.permutation(len(photos))
    k_face = 0
    for i, ((x, y, z), s, yaw) in enumerate(crates):
        mats = {}
        for face in ["+x", "-x", "+y", "-y", "+z", "-z"]:
            if face == "-z":
                mats[face] = Material(stone)  # never seen
                continue
            tex = photos[order[k_face]] if k_face < len(photos) else random_palette_texture(rng, 256)
            k_face += 1
            mats[face] = Material(tex, roughness=0.6)
        parts += [p.transformed(rotate((0, 0, 1), yaw)).transformed(translate(x, y, z)) for p in box((s, s, s), mats, center=(0, 0, s / 2))]
    parts.append(ellipsoid((0.3, 0.3, 0.3), Material(wall_tex[2], roughness=0.3), n=32).transformed(translate(0.1, 0.1, 1.9)))
    # ring of wall panels at radius ~7 (gaps let the far background through), each one different
    for k in range(10):
        a = 2 * np.pi * k / 10 + 0.2
        c = np.array([7.0 * np.cos(a), 7.0 * np.sin(a), 0.0])
        tex = wall_tex[[0, 1, 3][k]] if k < 3 else random_palette_texture(rng, 512)
        face = Material(tex, roughness=0.7)
        parts += [p.transformed(rotate((0, 0, 1), np.degrees(a))).transformed(translate(*c)) for p in box((0.3, 3.0, 2.0 + 0.4 * (k % 3)), {"+x": Material(stone), "-x": face, "+y": Material(stone), "-y": Material(stone), "+z": Material(stone), "-z": Material(stone)}, center=(0, 0, 1.0 + 0.2 * (k % 3)))]
    for _ in range(10):
        a = rng.uniform(0, 2 * np.pi)
        d = rng.uniform(1.8, 5.5)
        rock_tex = noise_texture(rng, 256, [(0, (90, 80, 70)), (0.5, tuple(rng.integers(120, 190, 3))), (1, (210, 200, 185))], base=8, detail=0.3)
        parts.append(rock(rng, d * np.cos(a), d * np.sin(a), rng.uniform(0.1, 0.35), rock_tex))

    lights = [
        Light("directional", (5, -6, 8), (1.0, 0.95, 0.85), 4.0, shadows=True),
    ]
    return SceneSpec(parts, lights, scene_center=(0.0, 0.0, 0.6), ambient=0.6, znear=0.05, zfar=700.0)
