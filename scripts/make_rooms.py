#!/usr/bin/env python
"""Procedural rooms and plazas for CATSplat: RGB, depth, poses and a caption per scene.

    python scripts/make_rooms.py --n 2000                 # -> /work/data/rooms
    python scripts/make_rooms.py --n 8 --out /tmp/rooms   # a few, anywhere

Each scene (deterministic from its integer id) is either an indoor room (textured floor, three
walls, 2-5 furniture-like objects with colours and materials, sometimes a photo on the back wall)
or an outdoor plaza (paving, facades, sky dome, benches, fountains, trees, lamp posts ...).
It is rendered by pyrender (EGL offscreen, 2x supersampled, box-filtered) along a short
RealEstate10K-like camera trajectory: frames -10, -5, 0 (the context), +5, +10 of a smooth walk
(forward/sideways steps of 3-8 cm a frame and a slow turn).

Files (`--out`):
    index.json            {"format": 1, "res": R, "frames": [...], "scenes": [{"id", "split",
                           "kind", "caption", "file"}]}; rewritten atomically after every chunk
    scenes/<id>.npz       rgb (F,R,R,3) uint8, depth (F,R,R) float32 metres (camera z; the nearest of
                           the 2x2 supersamples), c2w (F,4,4) OpenCV (x right, y down, z forward),
                           K (3,3), frames (F,), caption (str), graph (JSON str: objects with
                           category, colour, material, phrase, world bounds, context-view pixel count
                           and centroid)
Split: held out ("test") when sha256(id) mod 10 == 0; never used for training.
The caption names only objects that cover at least MIN_PIXELS of the context frame's object-id
render (its segmentation), ordered left to right, with the wall/building and floor material.
Resumable: each scene is written to a temp file and renamed; existing files are skipped.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
os.environ.setdefault("LP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scene_assets import (  # noqa: E402
    Material, box, colormap, cylinder, disk, ellipsoid, fit_texture, fractal_noise, lathe, marble_texture,
    noise_texture, photo, quad, rotate, tint_gray, to_u8, torus, translate, wood_texture,
)

FRAMES = (-10, -5, 0, 5, 10)
CONTEXT = FRAMES.index(0)
FOV_X = 1.2  # radians (~69 deg), a phone-like wide view
SUPERSAMPLE = 2
TEX = 128
MIN_PIXELS = 0.004  # fraction of the context frame an object must cover to be named
FORMAT = 1

COLOURS = {
    "red": (200, 40, 35), "blue": (40, 70, 190), "green": (50, 150, 60), "yellow": (230, 200, 40),
    "orange": (235, 120, 30), "purple": (120, 50, 160), "white": (235, 235, 230), "black": (30, 30, 32),
    "grey": (128, 128, 130), "pink": (235, 130, 170), "teal": (30, 140, 140),
}
MATERIALS = ("wooden", "metal", "fabric", "plastic", "marble")
ROOM_CATEGORIES = ("table", "chair", "armchair", "sofa", "cabinet", "lamp", "plant", "ball", "vase", "stool")
PLAZA_CATEGORIES = ("bench", "fountain", "tree", "lamp post", "planter", "kiosk", "statue", "bollard")
WALLS = ("brick", "plaster", "concrete", "wooden", "striped")
FLOORS = ("wooden", "tiled", "carpeted", "stone")
FACADES = ("brick", "plaster", "glass", "stone")
PAVING = ("grey paving", "gravel", "cobblestone", "grass")


def split_of(scene_id: int) -> str:
    """Held out when the id's hash says so (stable across runs and dataset sizes)."""
    return "test" if int(hashlib.sha256(str(scene_id).encode()).hexdigest(), 16) % 10 == 0 else "train"


# ---------------------------------------------------------------------------
# Scene graph
# ---------------------------------------------------------------------------


@dataclass
class SceneObject:
    category: str
    colour: str | None
    material: str
    parts: list
    bounds: tuple = ()  # (min xyz, max xyz) world
    visible_pixels: int = 0
    centroid_x: float = 0.0

    @property
    def phrase(self) -> str:
        """'a red fabric armchair', 'a wooden table', 'a tree' (the caption's noun phrase)."""
        words = []
        if self.colour is not None:
            words.append(self.colour)
        if self.material not in ("", "natural"):
            words.append(self.material)
        words.append(self.category)
        s = " ".join(words)
        return ("an " if s[0] in "aeiou" else "a ") + s


@dataclass
class Scene:
    kind: str
    objects: list
    static_parts: list
    wall: str
    floor: str
    lights: list
    ambient: float
    eye: np.ndarray
    yaw: float
    pitch: float
    velocity: np.ndarray
    yaw_rate: float
    extra: dict = field(default_factory=dict)


def _mat(rng, material: str, colour: str | None) -> Material:
    c = np.array(COLOURS[colour] if colour else (150, 110, 70), float)
    if material == "wooden":
        return Material(wood_texture(rng, TEX), roughness=0.6)
    if material == "marble":
        return Material(marble_texture(rng, TEX, c, np.clip(c * 0.7 + 60, 0, 255), wrap_x=False), roughness=0.25)
    if material == "metal":
        return Material(None, color=tuple(c / 255), metallic=0.8, roughness=0.3)
    if material == "fabric":
        lo, hi = tuple(int(v) for v in np.clip(c * 0.6, 0, 255)), tuple(int(v) for v in np.clip(c * 1.15, 0, 255))
        return Material(noise_texture(rng, TEX, [(0, lo), (1, hi)], base=32, octaves=3, detail=0.4), roughness=1.0)
    if material == "stone":
        return Material(noise_texture(rng, TEX, [(0, (90, 88, 85)), (1, (190, 185, 175))], base=8, detail=0.3), roughness=0.9)
    return Material(None, color=tuple(c / 255), roughness=0.45)  # plastic


def _place(parts, x, y, yaw):
    T = translate(x, y, 0) @ rotate((0, 0, 1), yaw)
    return [p.transformed(T) for p in parts]


def build_object(rng, category: str, used: set) -> SceneObject:
    """Geometry at the origin (standing on z=0), its colour/material, unique phrase in the scene."""
    for _ in range(20):
        if category in ("plant", "tree"):
            material, colour = "natural", "green" if rng.random() < 0.7 else "yellow"
        elif category in ("fountain", "statue", "bollard"):
            material, colour = str(rng.choice(["stone", "marble", "metal"])), None
            if material != "stone":
                colour = str(rng.choice(["white", "grey", "black"]))
        else:
            material = str(rng.choice(MATERIALS))
            colour = None if material == "wooden" else str(rng.choice(list(COLOURS)))
        key = (category, colour, material)
        if key not in used:
            used.add(key)
            break
    m = _mat(rng, material if material != "natural" else "plastic", colour)
    s = rng.uniform(0.85, 1.15)
    P: list = []
    if category == "table":
        w, d, h = 1.2 * s, 0.7 * s, 0.75
        P += box((w, d, 0.05), m, center=(0, 0, h))
        for sx in (-1, 1):
            for sy in (-1, 1):
                P += box((0.06, 0.06, h), m, center=(sx * (w / 2 - 0.05), sy * (d / 2 - 0.05), h / 2))
    elif category in ("chair", "stool"):
        w = 0.45 * s
        P += box((w, w, 0.05), m, center=(0, 0, 0.45))
        for sx in (-1, 1):
            for sy in (-1, 1):
                P += box((0.04, 0.04, 0.45), m, center=(sx * (w / 2 - 0.03), sy * (w / 2 - 0.03), 0.225))
        if category == "chair":
            P += box((w, 0.05, 0.5), m, center=(0, w / 2, 0.72))
    elif category in ("armchair", "sofa"):
        w = (0.9 if category == "armchair" else 1.8) * s
        P += box((w, 0.85, 0.42), m, center=(0, 0, 0.21))
        P += box((w, 0.2, 0.5), m, center=(0, 0.33, 0.67))
        for sx in (-1, 1):
            P += box((0.18, 0.85, 0.25), m, center=(sx * (w / 2 - 0.09), 0, 0.54))
    elif category == "cabinet":
        P += box((0.9 * s, 0.45, 1.1 * s), m, center=(0, 0, 0.55 * s))
    elif category == "lamp":
        P += cylinder(0.03, 0.0, 1.4, m, n=12)
        P += cylinder(0.18, 0.0, 0.03, m, n=16)
        P.append(lathe(lambda t: (0.25 - 0.12 * t, 1.35 + 0.3 * t), m, n=16, m=2))
    elif category in ("plant", "tree"):
        big = 3.0 if category == "tree" else 1.0
        pot = _mat(rng, "plastic" if category == "plant" else "wooden", "brown" if False else None)
        P += cylinder(0.15 * big ** 0.5 if category == "tree" else 0.18, 0.0, 0.35 * big, pot, n=12)
        P.append(ellipsoid((0.35 * big * s, 0.35 * big * s, 0.45 * big * s), m, n=12).transformed(translate(0, 0, 0.35 * big + 0.4 * big * s)))
    elif category == "ball":
        r = 0.2 * s
        P.append(ellipsoid((r, r, r), m, n=12).transformed(translate(0, 0, r)))
    elif category == "vase":
        P.append(lathe(lambda t: (0.12 + 0.08 * np.sin(np.pi * t), 0.6 * s * t), m, n=16, m=8))
    elif category == "bench":
        P += box((1.8 * s, 0.5, 0.06), m, center=(0, 0, 0.45))
        P += box((1.8 * s, 0.05, 0.4), m, center=(0, 0.25, 0.75))
        for sx in (-1, 1):
            P += box((0.08, 0.45, 0.45), m, center=(sx * 0.8 * s, 0, 0.225))
    elif category == "fountain":
        r = 1.2 * s
        P += cylinder(r, 0.0, 0.5, m, n=24)
        P.append(torus(r, 0.12, m, n=24, m=8).transformed(translate(0, 0, 0.5)))
        P += cylinder(0.2, 0.5, 1.4, m, n=12)
        water = Material(None, color=(0.35, 0.55, 0.75), roughness=0.1)
        P.append(disk(r - 0.05, 0.45, water, n=24))
    elif category == "lamp post":
        P += cylinder(0.07, 0.0, 3.2, m, n=10)
        P.append(ellipsoid((0.22, 0.22, 0.22), Material(None, color=(1.0, 0.95, 0.8), roughness=0.2), n=10).transformed(translate(0, 0, 3.3)))
    elif category == "planter":
        P += box((1.2 * s, 1.2 * s, 0.5), m, center=(0, 0, 0.25))
        green = Material(None, color=(0.2, 0.5, 0.2), roughness=0.9)
        P.append(ellipsoid((0.5 * s, 0.5 * s, 0.35), green, n=10).transformed(translate(0, 0, 0.6)))
    elif category == "kiosk":
        P += box((2.0 * s, 1.6 * s, 2.3), m, center=(0, 0, 1.15))
        P += box((2.4 * s, 2.0 * s, 0.12), _mat(rng, "plastic", "white"), center=(0, 0, 2.36))
    elif category == "statue":
        P += box((0.8, 0.8, 1.0), m, center=(0, 0, 0.5))
        P.append(ellipsoid((0.3, 0.25, 0.6 * s), m, n=12).transformed(translate(0, 0, 1.6)))
    elif category == "bollard":
        P += cylinder(0.12, 0.0, 0.9, m, n=10)
    else:  # pragma: no cover
        raise ValueError(category)
    return SceneObject(category, colour, material if material != "natural" else "", P)


def _wall_texture(rng, name: str) -> np.ndarray:
    if name == "brick":
        return tint_gray(fit_texture(photo("brick"), 256)[..., 0], tuple(int(v) for v in rng.integers(150, 240, 3)), rng)
    if name == "plaster":
        c = rng.integers(150, 245, 3)
        return noise_texture(rng, TEX, [(0, tuple(int(v) for v in c * 0.85)), (1, tuple(int(v) for v in c))], base=8, detail=0.1)
    if name == "concrete":
        return noise_texture(rng, TEX, [(0, (110, 110, 108)), (1, (175, 172, 168))], base=16, detail=0.25)
    if name == "wooden":
        return wood_texture(rng, TEX)
    c1, c2 = rng.integers(60, 240, (2, 3))
    x = (np.arange(TEX) // 16) % 2
    return to_u8(np.where(x[None, :, None] == 1, c1 / 255.0, c2 / 255.0) * np.ones((TEX, TEX, 1)))


def _floor_texture(rng, name: str) -> np.ndarray:
    if name == "wooden":
        return wood_texture(rng, TEX)
    if name == "tiled":
        c1, c2 = rng.integers(80, 240, (2, 3))
        y, x = np.mgrid[0:TEX, 0:TEX] // 16
        return to_u8(np.where(((x + y) % 2 == 0)[..., None], c1 / 255.0, c2 / 255.0))
    if name == "carpeted":
        c = rng.integers(40, 220, 3)
        return noise_texture(rng, TEX, [(0, tuple(int(v) for v in c * 0.7)), (1, tuple(int(v) for v in c))], base=32, detail=0.3)
    return noise_texture(rng, TEX, [(0, (95, 90, 85)), (0.5, (150, 140, 125)), (1, (200, 195, 185))], base=8, detail=0.3)


def _paving_texture(rng, name: str) -> np.ndarray:
    if name == "grass":
        return tint_gray(fit_texture(photo("grass"), 256)[..., 0], (90, 170, 60), rng)
    if name == "gravel":
        return tint_gray(fit_texture(photo("gravel"), 256)[..., 0], (190, 175, 150), rng)
    g = fractal_noise(rng, TEX, TEX, base=16, octaves=4)
    y, x = np.mgrid[0:TEX, 0:TEX]
    cell = 32 if name == "grey paving" else 12
    joint = ((x % cell) < 2) | ((y % cell) < 2)
    base = colormap(g, [(0, (110, 110, 112)), (1, (170, 168, 165))]) if name == "grey paving" else \
        colormap(g, [(0, (90, 75, 65)), (1, (160, 140, 120))])
    return to_u8(np.where(joint[..., None], 0.35, base))


def _facade_texture(rng, name: str) -> np.ndarray:
    base = _wall_texture(rng, "brick" if name == "brick" else "plaster" if name == "plaster" else "concrete").astype(float) / 255
    if name == "glass":
        base = base * 0.3 + np.array([0.3, 0.45, 0.55])
    y, x = np.mgrid[0:base.shape[0], 0:base.shape[1]] / base.shape[0]
    win = ((x * 6) % 1 > 0.3) & ((x * 6) % 1 < 0.75) & ((y * 4) % 1 > 0.3) & ((y * 4) % 1 < 0.75)
    return to_u8(np.where(win[..., None], np.array([0.15, 0.2, 0.28]), base))


def _sky(rng) -> np.ndarray:
    v = np.linspace(1, 0, 64)[:, None] * np.ones((1, 128))
    sky = colormap(np.clip(v * 2 - 1, 0, 1), [(0, (200, 215, 230)), (1, (70, 110, 190))])
    return to_u8(sky)


def _free_spot(rng, placed, r, xr, yr):
    for _ in range(60):
        x, y = rng.uniform(*xr), rng.uniform(*yr)
        if all(np.hypot(x - px, y - py) > r + pr + 0.1 for px, py, pr in placed):
            return x, y
    return None


def build_scene(scene_id: int) -> Scene:
    """The scene graph and geometry of scene `scene_id` (deterministic)."""
    rng = np.random.default_rng(1000 + scene_id)
    kind = "plaza" if rng.random() < 0.35 else "room"
    used: set = set()
    objects: list[SceneObject] = []
    static = []
    if kind == "room":
        W, D, H = rng.uniform(4.0, 6.0), rng.uniform(5.0, 7.0), 2.7
        wall, floor = str(rng.choice(WALLS)), str(rng.choice(FLOORS))
        wm = Material(_wall_texture(rng, wall), roughness=0.9)
        static.append(quad((-W / 2, -1, 0), (W, 0, 0), (0, D + 1, 0), Material(_floor_texture(rng, floor), roughness=0.7), uv_rect=(0, 0, W / 2, (D + 1) / 2)))
        static.append(quad((-W / 2, D, 0), (W, 0, 0), (0, 0, H), wm, uv_rect=(0, 0, W / 2, H / 2)))
        static.append(quad((-W / 2, -1, 0), (0, D + 1, 0), (0, 0, H), wm, uv_rect=(0, 0, (D + 1) / 2, H / 2)))
        static.append(quad((W / 2, D, 0), (0, -D - 1, 0), (0, 0, H), wm, uv_rect=(0, 0, (D + 1) / 2, H / 2)))
        static.append(quad((-W / 2, D, H), (W, 0, 0), (0, -D - 1, 0), Material(None, color=(0.92, 0.92, 0.9))))
        if rng.random() < 0.5:
            pic = fit_texture(photo(str(rng.choice(["astronaut", "coffee", "chelsea", "rocket"]))), TEX)
            pw = rng.uniform(0.8, 1.4)
            px = rng.uniform(-W / 2 + 0.8, W / 2 - 0.8 - pw)
            static.append(quad((px + pw, D - 0.02, 1.2), (-pw, 0, 0), (0, 0, pw * 0.75), Material(pic, roughness=0.5)))
        cats = ROOM_CATEGORIES
        n_obj = int(rng.integers(2, 6))
        xr, yr = (-W / 2 + 0.6, W / 2 - 0.6), (1.8, D - 0.6)
        lights = [("point", (0.0, D / 2, H - 0.1), rng.uniform(6, 12)), ("directional", (1.0, -2.0, 4.0), 2.0)]
        ambient = 0.35
        eye = np.array([rng.uniform(-0.5, 0.5), rng.uniform(0.0, 0.4), rng.uniform(1.3, 1.7)])
        speed = rng.uniform(0.03, 0.06)
    else:
        L = 14.0
        wall, floor = str(rng.choice(FACADES)), str(rng.choice(PAVING))
        pav = _paving_texture(rng, floor)
        static.append(quad((-L, -6, 0), (2 * L, 0, 0), (0, L + 8, 0), Material(pav, roughness=0.9), uv_rect=(0, 0, L / 2, (L + 8) / 4)))
        fac = Material(_facade_texture(rng, wall), roughness=0.8)
        for x0 in np.arange(-L, L, 7.0):
            h = rng.uniform(7, 14)
            static.append(quad((x0 + 7, L + 2, 0), (-7, 0, 0), (0, 0, h), fac, uv_rect=(0, 0, 1.5, h / 4)))
        for sx in (-1, 1):
            static.append(quad((sx * 9, L + 2 if sx < 0 else -6, 0), (0, sx * (L + 8), 0), (0, 0, 9), fac, uv_rect=(0, 0, 3, 2)))
        sky = Material(_sky(rng), emissive=True)
        static.append(quad((-60, 40, -5), (120, 0, 0), (0, 0, 60), sky))
        cats = PLAZA_CATEGORIES
        n_obj = int(rng.integers(2, 6))
        xr, yr = (-5.0, 5.0), (2.5, 9.0)
        lights = [("directional", (3.0, -4.0, 8.0), rng.uniform(3, 5))]
        ambient = 0.45
        eye = np.array([rng.uniform(-1, 1), rng.uniform(-2, 0), rng.uniform(1.5, 1.8)])
        speed = rng.uniform(0.05, 0.09)
    placed = []
    for _ in range(n_obj):
        cat = str(rng.choice(cats))
        obj = build_object(rng, cat, used)
        pts = np.concatenate([p.positions for p in obj.parts])
        r = float(np.max(np.hypot(pts[:, 0], pts[:, 1])))
        spot = _free_spot(rng, placed, r, xr, yr)
        if spot is None:
            continue
        placed.append((*spot, r))
        obj.parts = _place(obj.parts, spot[0], spot[1], float(rng.uniform(-30, 30)) + (180 if kind == "room" else 0))
        pts = np.concatenate([p.positions for p in obj.parts])
        obj.bounds = (pts.min(0).tolist(), pts.max(0).tolist())
        objects.append(obj)
    yaw = float(rng.uniform(-15, 15))  # degrees from +y
    pitch = float(rng.uniform(-14, -4))
    side = np.radians(rng.uniform(-60, 60))  # walk direction relative to the view
    fwd = np.array([np.sin(np.radians(yaw)), np.cos(np.radians(yaw)), 0.0])
    right = np.array([fwd[1], -fwd[0], 0.0])
    velocity = speed * (np.cos(side) * fwd + np.sin(side) * right)
    return Scene(kind, objects, static, wall, floor, lights, ambient, eye, yaw, pitch, velocity,
                 float(rng.uniform(-0.4, 0.4)))


def camera_c2w_gl(scene: Scene, t: int) -> np.ndarray:
    """OpenGL camera-to-world of frame t (x right, y up, looking down -z)."""
    eye = scene.eye + t * scene.velocity
    yaw, pitch = np.radians(scene.yaw + t * scene.yaw_rate), np.radians(scene.pitch)
    d = np.array([np.sin(yaw) * np.cos(pitch), np.cos(yaw) * np.cos(pitch), np.sin(pitch)])
    z = -d
    x = np.cross((0.0, 0.0, 1.0), z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    M = np.eye(4)
    M[:3, 0], M[:3, 1], M[:3, 2], M[:3, 3] = x, y, z, eye
    return M


def gl_to_cv(c2w_gl: np.ndarray) -> np.ndarray:
    return c2w_gl @ np.diag([1.0, -1.0, -1.0, 1.0])


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------


class RoomRenderer:
    """One offscreen pyrender context reused for every scene (EGL setup is the slow part)."""

    def __init__(self, res: int) -> None:
        import pyrender

        self.pyrender, self.res = pyrender, res
        self.renderer = pyrender.OffscreenRenderer(res * SUPERSAMPLE, res * SUPERSAMPLE)

    def _mesh(self, parts):
        pr = self.pyrender
        prims, cache = [], {}
        for part in parts:
            m = part.material
            tex = None
            if m.texture is not None:
                tex = cache.get(id(m.texture))
                if tex is None:
                    tex = cache[id(m.texture)] = pr.Texture(source=np.ascontiguousarray(m.texture), source_channels="RGB")
            if m.emissive:
                mat = pr.MetallicRoughnessMaterial(baseColorFactor=[0, 0, 0, 1.0], emissiveTexture=tex,
                                                   emissiveFactor=[1.0, 1.0, 1.0], doubleSided=True)
            else:
                mat = pr.MetallicRoughnessMaterial(baseColorFactor=[*m.color, 1.0], baseColorTexture=tex,
                                                   metallicFactor=m.metallic, roughnessFactor=m.roughness, doubleSided=True)
            prims.append(pr.Primitive(positions=part.positions.astype(np.float32), normals=part.normals.astype(np.float32),
                                      texcoord_0=part.uvs.astype(np.float32), indices=part.faces.astype(np.uint32), material=mat))
        return pr.Mesh(prims)

    def render(self, scene: Scene) -> dict:
        pr = self.pyrender
        a = scene.ambient
        sc = pr.Scene(bg_color=[0.0, 0.0, 0.0, 1.0], ambient_light=[a, a, a])
        sc.add(self._mesh(scene.static_parts))
        nodes = [sc.add(self._mesh(o.parts)) for o in scene.objects]
        for kind, pos, inten in scene.lights:
            if kind == "point":
                sc.add(pr.PointLight(color=np.ones(3), intensity=inten), pose=translate(*pos))
            else:
                from scene_scenes import look_at_gl
                sc.add(pr.DirectionalLight(color=np.ones(3), intensity=inten), pose=look_at_gl(pos, (0, 0, 0)))
        cam = sc.add(pr.PerspectiveCamera(yfov=FOV_X, aspectRatio=1.0, znear=0.05, zfar=100.0))
        R, k = self.res, SUPERSAMPLE
        rgbs, depths, c2ws = [], [], []
        for t in FRAMES:
            c2w = camera_c2w_gl(scene, t)
            sc.set_pose(cam, c2w)
            color, depth = self.renderer.render(sc)
            rgbs.append(color[..., :3].astype(np.float32).reshape(R, k, R, k, 3).mean(axis=(1, 3)))
            d = np.where(depth > 0, depth, 100.0).reshape(R, k, R, k).min(axis=(1, 3))
            depths.append(d)
            c2ws.append(gl_to_cv(c2w))
            if t == 0:  # object-id render of the context frame: which objects are in view
                seg_map = {n: np.array([(i + 1) & 255, (i + 1) >> 8, 7], np.uint8) for i, n in enumerate(nodes)}
                seg, _ = self.renderer.render(sc, flags=pr.RenderFlags.SEG, seg_node_map=seg_map)
                ids = seg[..., 0].astype(np.int64) + (seg[..., 1].astype(np.int64) << 8)
                ids = np.where(seg[..., 2] == 7, ids, 0)
                xs = np.broadcast_to(np.arange(ids.shape[1])[None], ids.shape)
                for i, o in enumerate(scene.objects):
                    m = ids == i + 1
                    o.visible_pixels = int(m.sum())
                    o.centroid_x = float(xs[m].mean() / ids.shape[1]) if m.any() else -1.0
        sc.clear()
        f = 0.5 * R / np.tan(0.5 * FOV_X)
        K = np.array([[f, 0, R / 2], [0, f, R / 2], [0, 0, 1]], np.float32)
        return {"rgb": np.clip(np.round(np.stack(rgbs)), 0, 255).astype(np.uint8),
                "depth": np.stack(depths).astype(np.float32), "c2w": np.stack(c2ws).astype(np.float32), "K": K,
                "seg_pixels": (R * k) ** 2}

    def close(self) -> None:
        self.renderer.delete()


# ---------------------------------------------------------------------------
# Caption
# ---------------------------------------------------------------------------


def visible_objects(scene: Scene, total_pixels: int) -> list[SceneObject]:
    return [o for o in scene.objects if o.visible_pixels >= MIN_PIXELS * total_pixels]


def caption_for(scene: Scene, total_pixels: int) -> str:
    """'a red fabric armchair left of a wooden table, a blue lamp on the right, brick wall behind,
    wooden floor': objects in view of the context frame, left to right, then the surroundings."""
    vis = sorted(visible_objects(scene, total_pixels), key=lambda o: o.centroid_x)
    parts = []
    if len(vis) >= 2:
        parts.append(f"{vis[0].phrase} left of {vis[1].phrase}")
        rest = vis[2:]
    else:
        rest = vis
    for o in rest:
        where = "on the left" if o.centroid_x < 0.33 else "on the right" if o.centroid_x > 0.67 else "in the middle"
        parts.append(f"{o.phrase} {where}")
    if scene.kind == "room":
        parts.append(f"{scene.wall} wall behind")
        parts.append(f"{scene.floor} floor")
    else:
        parts.append(f"{scene.wall} buildings behind")
        parts.append(f"{scene.floor} underfoot")
    return ", ".join(parts)


def graph_json(scene: Scene) -> str:
    return json.dumps({"kind": scene.kind, "wall": scene.wall, "floor": scene.floor, "objects": [
        {"category": o.category, "colour": o.colour, "material": o.material, "phrase": o.phrase,
         "bounds": [list(map(float, b)) for b in o.bounds], "visible_pixels": o.visible_pixels,
         "centroid_x": o.centroid_x} for o in scene.objects]})


# ---------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------


def make_one(renderer: RoomRenderer, scene_id: int, out: Path) -> dict:
    scene = build_scene(scene_id)
    r = renderer.render(scene)
    caption = caption_for(scene, r["seg_pixels"])
    path = out / "scenes" / f"{scene_id:06d}.npz"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npz", dir=path.parent)
    os.close(fd)
    try:
        np.savez_compressed(tmp, rgb=r["rgb"], depth=r["depth"], c2w=r["c2w"], K=r["K"], frames=np.array(FRAMES),
                            caption=np.array(caption), graph=np.array(graph_json(scene)))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return {"id": scene_id, "split": split_of(scene_id), "kind": scene.kind, "caption": caption,
            "file": f"scenes/{path.name}"}


def write_index(out: Path, entries: dict, res: int) -> None:
    data = {"format": FORMAT, "res": res, "frames": list(FRAMES), "fov_x": FOV_X,
            "scenes": [entries[k] for k in sorted(entries)]}
    fd, tmp = tempfile.mkstemp(prefix=".index.", suffix=".json", dir=out)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, out / "index.json")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="/work/data/rooms")
    ap.add_argument("--n", type=int, default=2000, help="scene ids 0..n-1")
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--res", type=int, default=64)
    ap.add_argument("--chunk", type=int, default=25, help="rewrite index.json every this many scenes")
    args = ap.parse_args(argv)
    out = Path(args.out)
    (out / "scenes").mkdir(parents=True, exist_ok=True)
    entries: dict = {}
    old = out / "index.json"
    if old.is_file():
        prev = json.loads(old.read_text())
        if prev.get("res") != args.res:
            print(f"make_rooms: error: {old}: made at res {prev.get('res')}, not {args.res}", file=sys.stderr)
            return 2
        entries = {e["id"]: e for e in prev["scenes"] if (out / e["file"]).is_file()}
    renderer = RoomRenderer(args.res)
    t0, made = time.time(), 0
    try:
        for sid in range(args.start, args.n):
            if sid in entries:
                continue
            entries[sid] = make_one(renderer, sid, out)
            made += 1
            if made % args.chunk == 0:
                write_index(out, entries, args.res)
                print(f"{len(entries)} scenes ({made / (time.time() - t0):.2f} scenes/s)", flush=True)
    finally:
        write_index(out, entries, args.res)
        renderer.close()
    dt = time.time() - t0
    print(f"done: {len(entries)} scenes in {args.out} ({made} new in {dt:.0f} s, {made / max(dt, 1e-9):.2f} scenes/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
