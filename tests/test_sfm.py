"""Photos -> poses: render a randomly textured room with known cameras, run pycolmap, compare.

The renderer is a tiny numpy ray caster (axis-aligned boxes with non-repeating multi-scale noise
textures); 20 views of 192x192 render in a few seconds and register in ~6 s on 2 CPU cores.
"""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from splatlab.data import DatasetError, load_scene

pytest.importorskip("pycolmap")
from splatlab.data.cli import process_main  # noqa: E402
from splatlab.data.sfm import run_sfm  # noqa: E402

N_VIEWS, SIZE, RADIUS = 20, 192, 3.0
# (lo, hi, seen from inside): a room, a box in the middle, a small box to the side
BOXES = [(np.array([-5.0, -5.0, -1.0]), np.array([5.0, 5.0, 4.0]), True),
         (np.array([-1.0, -1.0, -1.0]), np.array([1.0, 1.0, 1.0]), False),
         (np.array([1.5, -2.5, -1.0]), np.array([2.2, -1.8, 0.2]), False)]


def noise_texture(rng, size=512):
    """Multi-scale value noise (mostly luminance): non-repeating blobs at many scales for SIFT."""
    tex = np.zeros((size, size, 3), np.float32)
    for n, weight in ((8, 1.0), (16, 0.9), (32, 0.8), (64, 0.8), (128, 0.7), (256, 0.6)):
        small = (rng.random((n, n, 1)) * 0.75 + rng.random((n, n, 3)) * 0.25) * 255
        up = Image.fromarray(small.astype(np.uint8)).resize((size, size), Image.Resampling.BICUBIC)
        tex += weight * np.asarray(up, np.float32) / 255
    tex -= tex.mean((0, 1))
    return np.clip(0.5 + tex / (3 * tex.std()), 0, 1)


def look_at(eye, target):
    """OpenCV camera-to-world looking from eye at target, world z up."""
    f = target - eye
    f /= np.linalg.norm(f)
    r = np.cross(f, [0.0, 0.0, 1.0])
    r /= np.linalg.norm(r)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = r, np.cross(f, r), f, eye
    return c2w


def render(c2w, K, size, textures):
    u, v = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5)
    dirs = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1).reshape(-1, 3)
    dirs = dirs @ c2w[:3, :3].T
    o = c2w[:3, 3]
    best_t = np.full(len(dirs), np.inf)
    best_face = np.full(len(dirs), -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / dirs
        for b, (lo, hi, inside) in enumerate(BOXES):
            t0, t1 = (lo - o) * inv, (hi - o) * inv
            tmin, tmax = np.minimum(t0, t1), np.maximum(t0, t1)
            t_near, t_far = tmin.max(1), tmax.min(1)
            hit = t_far >= np.maximum(t_near, 0)
            if inside:
                t, axis = np.where(hit, t_far, np.inf), tmax.argmin(1)
            else:
                t, axis = np.where(hit & (t_near > 0), t_near, np.inf), tmin.argmax(1)
            p = o + dirs * t[:, None]
            side = np.take_along_axis(p, axis[:, None], 1)[:, 0] > (lo + hi)[axis] / 2
            face = b * 6 + axis * 2 + side
            closer = t < best_t
            best_t, best_face = np.where(closer, t, best_t), np.where(closer, face, best_face)
    p = o + dirs * best_t[:, None]
    img = np.zeros((len(dirs), 3), np.float32)
    for f in np.unique(best_face):
        m = best_face == f
        lo, hi, _ = BOXES[f // 6]
        a, c = [k for k in range(3) if k != (f % 6) // 2]
        tex = textures[f]
        s = tex.shape[0]
        x = np.clip((p[m, a] - lo[a]) / (hi[a] - lo[a]) * (s - 1), 0, s - 1)
        y = np.clip((p[m, c] - lo[c]) / (hi[c] - lo[c]) * (s - 1), 0, s - 1)
        x0, y0 = np.minimum(x.astype(int), s - 2), np.minimum(y.astype(int), s - 2)
        fx, fy = (x - x0)[:, None], (y - y0)[:, None]
        img[m] = (tex[y0, x0] * (1 - fx) * (1 - fy) + tex[y0, x0 + 1] * fx * (1 - fy)
                  + tex[y0 + 1, x0] * (1 - fx) * fy + tex[y0 + 1, x0 + 1] * fx * fy)
    return (img.reshape(size, size, 3) * 255).round().astype(np.uint8)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """20 views on a wobbly circle around the middle box; returns (folder, {name: centre})."""
    folder = tmp_path_factory.mktemp("sfm") / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    textures = {f: noise_texture(rng) for f in range(6 * len(BOXES))}
    focal = 0.5 * SIZE / np.tan(np.radians(35))
    K = np.array([[focal, 0, SIZE / 2], [0, focal, SIZE / 2], [0, 0, 1]])
    centers = {}
    for i in range(N_VIEWS):
        a = 2 * np.pi * i / N_VIEWS
        eye = np.array([RADIUS * np.cos(a), RADIUS * np.sin(a), 0.8 + 0.2 * np.sin(3 * a)])
        name = f"img_{i:03d}.png"
        Image.fromarray(render(look_at(eye, np.zeros(3)), K, SIZE, textures)).save(folder / name)
        centers[name] = eye
    return folder, centers


@pytest.fixture(scope="module")
def reconstruction(photos):
    folder, _ = photos
    out = folder.parent / "scene"
    run_sfm(folder, out, matcher="exhaustive")
    return out


def umeyama(src, dst):
    """Similarity (s, R, t) minimising |s R src + t - dst|^2."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    U, D, Vt = np.linalg.svd(xd.T @ xs / len(src))
    S = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        S[2, 2] = -1
    R = U @ S @ Vt
    s = np.trace(np.diag(D) @ S) / xs.var(0).sum()
    return s, R, mu_d - s * R @ mu_s


def test_sfm_recovers_camera_path(photos, reconstruction):
    _, centers = photos
    out = reconstruction
    assert (out / "images").is_dir() and (out / "sparse" / "0" / "cameras.bin").is_file()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp folders left
    scene = load_scene(out)
    scene.validate()
    names, est = [], []
    for views in (scene.train, scene.test):
        c2w = np.linalg.inv(views.cameras.viewmats.double().numpy())
        names += views.names
        est += list(c2w[:, :3, 3])
    assert len(names) >= 0.8 * N_VIEWS
    assert scene.points is not None and len(scene.points) > 100
    gt = np.array([centers[n] for n in names])
    est = np.array(est)
    s, R, t = umeyama(est, gt)
    err = np.linalg.norm(s * est @ R.T + t - gt, axis=1)
    assert err.max() < 0.03 * RADIUS, f"camera centre error {err.max() / RADIUS:.2%} of the radius"


def test_existing_output_is_not_overwritten(photos, reconstruction, tmp_path):
    folder, _ = photos
    with pytest.raises(DatasetError, match="not empty"):
        run_sfm(folder, reconstruction)


def test_too_few_photos(tmp_path, capsys):
    (tmp_path / "p").mkdir()
    for i in range(2):
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "p" / f"{i}.png")
    with pytest.raises(DatasetError, match="at least 3"):
        run_sfm(tmp_path / "p", tmp_path / "out")
    assert process_main([str(tmp_path / "p"), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "at least 3" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_mismatched_photo_sizes(tmp_path):
    (tmp_path / "p").mkdir()
    for i, s in enumerate((32, 32, 40)):
        Image.fromarray(np.zeros((s, s, 3), np.uint8)).save(tmp_path / "p" / f"{i}.png")
    with pytest.raises(DatasetError, match="2.png"):
        run_sfm(tmp_path / "p", tmp_path / "out")


def test_unrelated_photos_do_not_register(tmp_path):
    (tmp_path / "p").mkdir()
    rng = np.random.default_rng(1)
    for i in range(5):  # independent noise: nothing matches
        small = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
        Image.fromarray(small).resize((96, 96), Image.Resampling.BICUBIC).save(tmp_path / "p" / f"{i}.png")
    with pytest.raises(DatasetError, match=r"of 5 images registered"):
        run_sfm(tmp_path / "p", tmp_path / "out", verbose=False)
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
