"""COLMAP reader: hand-written text and binary models with known poses, cross-checked with pycolmap."""
from __future__ import annotations

import struct

import numpy as np
import pytest
import torch
from PIL import Image

from splatlab.data import load_scene
from splatlab.data.colmap import load_colmap, read_model

W, H = 80, 60
# id -> (model, params)
CAMERAS = {
    1: ("PINHOLE", [100.0, 110.0, 40.0, 30.0]),
    2: ("SIMPLE_PINHOLE", [90.0, 41.0, 29.0]),
    3: ("SIMPLE_RADIAL", [95.0, 40.0, 30.0, 0.0]),
}
MODEL_IDS = {"SIMPLE_PINHOLE": 0, "PINHOLE": 1, "SIMPLE_RADIAL": 2, "RADIAL": 3, "OPENCV": 4}


def expected_K(model, p):
    if model == "PINHOLE":
        fx, fy, cx, cy = p[:4]
    elif model == "OPENCV":
        fx, fy, cx, cy = p[:4]
    else:
        fx = fy = p[0]
        cx, cy = p[1], p[2]
    return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]])


def random_quat(rng):
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    return q if q[0] >= 0 else -q


def quat_to_R(q):
    # written independently of the reader: via the axis-angle (Rodrigues) form
    w, v = q[0], np.asarray(q[1:])
    angle = 2 * np.arctan2(np.linalg.norm(v), w)
    if np.linalg.norm(v) < 1e-12:
        return np.eye(3)
    k = v / np.linalg.norm(v)
    Kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * Kx + (1 - np.cos(angle)) * Kx @ Kx


def make_images(rng, n=10):
    """image id -> (q, t, camera id, name); ids deliberately not in name order."""
    names = [f"img_{i:02d}.png" for i in range(n)]
    ids = rng.permutation(np.arange(1, n + 1) * 3)
    out = {}
    for name, iid in zip(names, ids):
        out[int(iid)] = (random_quat(rng), rng.normal(size=3) * 2, int(rng.integers(1, 4)), name)
    return out


POINTS = {7: ([0.1, 0.2, 0.3], [255, 0, 10]), 9: ([-1.0, 2.0, 5.0], [1, 2, 3]), 12: ([3.0, -4.0, 1.5], [128, 64, 32])}


def observations(k, points):
    """POINTS2D of the k-th image written: the first one sees every point (point j at index j),
    other even ones have unmatched observations, odd ones have none (an empty line)."""
    if k == 0:
        return [(10.5 + j, 20.25, pid) for j, pid in enumerate(points)]
    return [(30.0, 40.0, -1), (1.5, 2.5, -1)] if k % 2 == 0 else []


def write_text_model(d, images, cameras=CAMERAS, points=POINTS):
    d.mkdir(parents=True, exist_ok=True)
    with open(d / "cameras.txt", "w") as f:
        f.write("# Camera list with one line of data per camera:\n#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]\n")
        for cid, (model, p) in cameras.items():
            f.write(f"{cid} {model} {W} {H} {' '.join(repr(float(v)) for v in p)}\n")
    with open(d / "images.txt", "w") as f:
        f.write("# Image list with two lines of data per image:\n")
        for k, (iid, (q, t, cid, name)) in enumerate(images.items()):
            f.write(f"{iid} {' '.join(repr(float(v)) for v in q)} {' '.join(repr(float(v)) for v in t)} {cid} {name}\n")
            f.write(" ".join(f"{x} {y} {pid}" for x, y, pid in observations(k, points)) + "\n")
    with open(d / "points3D.txt", "w") as f:
        f.write("# 3D point list\n")
        first = next(iter(images))
        for j, (pid, (xyz, rgb)) in enumerate(points.items()):
            f.write(f"{pid} {xyz[0]} {xyz[1]} {xyz[2]} {rgb[0]} {rgb[1]} {rgb[2]} 0.5 {first} {j}\n")


def write_binary_model(d, images, cameras=CAMERAS, points=POINTS):
    d.mkdir(parents=True, exist_ok=True)
    with open(d / "cameras.bin", "wb") as f:
        f.write(struct.pack("<Q", len(cameras)))
        for cid, (model, p) in cameras.items():
            f.write(struct.pack("<iiQQ", cid, MODEL_IDS[model], W, H))
            f.write(struct.pack(f"<{len(p)}d", *p))
    with open(d / "images.bin", "wb") as f:
        f.write(struct.pack("<Q", len(images)))
        for k, (iid, (q, t, cid, name)) in enumerate(images.items()):
            f.write(struct.pack("<i4d3di", iid, *q, *t, cid))
            f.write(name.encode() + b"\x00")
            obs = observations(k, points)
            f.write(struct.pack("<Q", len(obs)))
            for x, y, pid in obs:
                f.write(struct.pack("<ddq", x, y, pid))
    with open(d / "points3D.bin", "wb") as f:
        f.write(struct.pack("<Q", len(points)))
        first = next(iter(images))
        for j, (pid, (xyz, rgb)) in enumerate(points.items()):
            f.write(struct.pack("<Q3d3Bd", pid, *xyz, *rgb, 0.5))
            f.write(struct.pack("<Q", 1))
            f.write(struct.pack("<ii", first, j))


def write_photos(folder, names, size=(W, H), seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in names:
        arr = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(arr).save(folder / name)


@pytest.fixture
def images():
    return make_images(np.random.default_rng(1))


def check_scene(scene, images):
    by_name = {name: (q, t, cid) for q, t, cid, name in images.values()}
    names = sorted(by_name)
    assert scene.test.names == [names[0], names[8]]
    assert scene.train.names == [n for i, n in enumerate(names) if i % 8 != 0]
    assert (scene.width, scene.height) == (W, H)
    for views in (scene.train, scene.test):
        for i, name in enumerate(views.names):
            q, t, cid = by_name[name]
            vm = np.eye(4)
            vm[:3, :3], vm[:3, 3] = quat_to_R(q), t
            np.testing.assert_allclose(views.cameras.viewmats[i].numpy(), vm, atol=1e-5)
            np.testing.assert_allclose(views.cameras.Ks[i].numpy(), expected_K(*CAMERAS[cid]), atol=1e-5)
    np.testing.assert_allclose(scene.points.numpy(), [p[0] for p in POINTS.values()], atol=1e-6)
    np.testing.assert_allclose(scene.points_rgb.numpy(), np.array([p[1] for p in POINTS.values()]) / 255, atol=1e-6)
    centers = torch.linalg.inv(scene.train.cameras.viewmats.double())[:, :3, 3]
    radius = (centers - centers.mean(0)).norm(dim=1).max().item()
    assert scene.scene_scale == pytest.approx(1.1 * radius, rel=1e-5)
    assert torch.equal(scene.transform, torch.eye(4))
    assert scene.format == "colmap"


@pytest.mark.parametrize("layout", ["sparse/0", "sparse", "colmap/sparse/0"])
def test_text_model_known_poses(tmp_path, images, layout):
    write_text_model(tmp_path / layout, images)
    write_photos(tmp_path / "images", [v[3] for v in images.values()])
    scene = load_scene(tmp_path)
    check_scene(scene, images)
    img = scene.train.load_image(0)
    assert img.shape == (H, W, 3) and img.dtype == torch.float32
    assert 0.0 <= img.min() and img.max() <= 1.0
    ref = np.asarray(Image.open(tmp_path / "images" / scene.train.names[0]), dtype=np.float32) / 255
    np.testing.assert_allclose(img.numpy(), ref, atol=1e-6)


def test_binary_model_matches_text_and_pycolmap(tmp_path, images):
    pycolmap = pytest.importorskip("pycolmap")
    write_binary_model(tmp_path / "bin" / "sparse" / "0", images)
    write_text_model(tmp_path / "txt" / "sparse" / "0", images)
    for sub in ("bin", "txt"):
        write_photos(tmp_path / sub / "images", [v[3] for v in images.values()])
    scene_bin = load_scene(tmp_path / "bin")
    scene_txt = load_scene(tmp_path / "txt")
    check_scene(scene_bin, images)
    assert torch.allclose(scene_bin.train.cameras.viewmats, scene_txt.train.cameras.viewmats, atol=1e-6)

    # external reference: pycolmap reads the same files
    for sub, scene in (("bin", scene_bin), ("txt", scene_txt)):
        rec = pycolmap.Reconstruction(str(tmp_path / sub / "sparse" / "0"))
        assert rec.num_images() == len(images) and rec.num_points3D() == len(POINTS)
        ours = {}
        for views in (scene.train, scene.test):
            for i, name in enumerate(views.names):
                ours[name] = (views.cameras.viewmats[i].numpy(), views.cameras.Ks[i].numpy())
        for image in rec.images.values():
            vm, K = ours[image.name]
            np.testing.assert_allclose(vm[:3], image.cam_from_world().matrix(), atol=1e-5)
            np.testing.assert_allclose(K, image.camera.calibration_matrix(), atol=1e-5)
        for pid, (xyz, rgb) in POINTS.items():
            np.testing.assert_allclose(rec.points3D[pid].xyz, xyz)
            np.testing.assert_array_equal(rec.points3D[pid].color, rgb)


def test_reads_models_written_by_pycolmap(tmp_path, images):
    pycolmap = pytest.importorskip("pycolmap")
    write_text_model(tmp_path / "src", images)
    rec = pycolmap.Reconstruction(str(tmp_path / "src"))
    (tmp_path / "b").mkdir()
    (tmp_path / "t").mkdir()
    rec.write_binary(str(tmp_path / "b"))
    rec.write_text(str(tmp_path / "t"))
    for sub in ("b", "t"):
        model = read_model(tmp_path / sub)
        assert len(model.images) == len(images)
        for image in rec.images.values():
            ours = model.images[image.image_id]
            assert ours.name == image.name
            np.testing.assert_allclose(ours.viewmat()[:3], image.cam_from_world().matrix(), atol=1e-9)
            np.testing.assert_allclose(model.cameras[ours.camera_id].params, image.camera.params)
        np.testing.assert_allclose(np.sort(model.xyz, axis=0), np.sort([p[0] for p in POINTS.values()], axis=0))


def test_downscale_uses_images_n_folder_or_resizes(tmp_path, images):
    write_text_model(tmp_path / "sparse" / "0", images)
    names = [v[3] for v in images.values()]
    write_photos(tmp_path / "images", names)
    full = load_scene(tmp_path)
    # no images_2/: resized on the fly
    half = load_scene(tmp_path, downscale=2)
    assert (half.width, half.height) == (W // 2, H // 2)
    torch.testing.assert_close(half.train.cameras.Ks[:, :2], full.train.cameras.Ks[:, :2] / 2)
    assert half.train.load_image(0).shape == (H // 2, W // 2, 3)
    assert half.train.paths[0].parent.name == "images"
    # images_4/ present: used as is
    write_photos(tmp_path / "images_4", names, size=(W // 4, H // 4), seed=5)
    quarter = load_scene(tmp_path, downscale=4)
    assert quarter.train.paths[0].parent.name == "images_4"
    assert (quarter.width, quarter.height) == (W // 4, H // 4)
    torch.testing.assert_close(quarter.train.cameras.Ks[:, :2], full.train.cameras.Ks[:, :2] / 4)
    ref = np.asarray(Image.open(tmp_path / "images_4" / quarter.train.names[0]), dtype=np.float32) / 255
    np.testing.assert_allclose(quarter.train.load_image(0).numpy(), ref, atol=1e-6)


def blob_image(centers, w, h, sigma=1.6):
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    img = np.zeros((h, w))
    for cx, cy in centers:
        img += np.exp(-((u - cx) ** 2 + (v - cy) ** 2) / (2 * sigma ** 2))
    return img


def centroid(img, near, radius=5):
    u, v = np.meshgrid(np.arange(img.shape[1]) + 0.5, np.arange(img.shape[0]) + 0.5)
    m = ((u - near[0]) ** 2 + (v - near[1]) ** 2 < radius ** 2) * img
    return np.array([(m * u).sum() / m.sum(), (m * v).sum() / m.sum()])


@pytest.mark.parametrize("model,params", [
    ("OPENCV", [70.0, 72.0, 60.5, 44.0, -0.18, 0.04, 0.002, -0.003]),
    ("RADIAL", [70.0, 60.0, 45.0, 0.15, -0.03]),
    ("SIMPLE_RADIAL", [70.0, 60.0, 45.0, -0.2]),
])
def test_undistortion_moves_points_to_pinhole_positions(tmp_path, model, params):
    pycolmap = pytest.importorskip("pycolmap")
    w, h = 120, 90
    cam = pycolmap.Camera(model=model, width=w, height=h, params=params)
    # normalised camera points; where a pinhole would see them vs where the lens put them
    pts = np.array([[0.0, 0.0], [0.55, 0.4], [-0.6, 0.3], [0.4, -0.45], [-0.5, -0.4]])
    cam_pts = np.concatenate([pts, np.ones((len(pts), 1))], 1)
    distorted = cam.img_from_cam(cam_pts)  # external reference for the distortion model
    K = expected_K(model, params)
    pinhole = pts * [K[0, 0], K[1, 1]] + [K[0, 2], K[1, 2]]
    assert np.abs(distorted - pinhole).max() > 2.0  # the lens really moves them

    img = blob_image(distorted, w, h)
    (tmp_path / "images").mkdir()
    Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8)).convert("RGB").save(tmp_path / "images" / "a.png")
    d = tmp_path / "sparse" / "0"
    d.mkdir(parents=True)
    (d / "cameras.txt").write_text(f"1 {model} {w} {h} {' '.join(map(str, params))}\n")
    (d / "images.txt").write_text("1 1 0 0 0 0 0 0 1 a.png\n\n")
    (d / "points3D.txt").write_text("")
    scene = load_colmap(tmp_path, test_every=0)
    assert scene.points is None
    out = scene.train.load_image(0)[..., 0].numpy()
    for p in pinhole:
        np.testing.assert_allclose(centroid(out, p), p, atol=0.35)
    cached = list((tmp_path / ".splatlab_cache" / "undistorted").glob("*.png"))
    assert len(cached) == 1
    again = scene.train.load_image(0)[..., 0].numpy()  # now from the cache
    np.testing.assert_allclose(again, out, atol=1.0 / 255 + 1e-6)


def test_rgba_images_composited_on_background(tmp_path, images):
    write_text_model(tmp_path / "sparse" / "0", images)
    (tmp_path / "images").mkdir()
    for _, _, _, name in images.values():
        arr = np.zeros((H, W, 4), np.uint8)
        arr[..., 0] = 255
        arr[:, : W // 2, 3] = 255  # left half opaque red, right half transparent
        Image.fromarray(arr).save(tmp_path / "images" / name)
    scene = load_scene(tmp_path, background=(0.0, 0.0, 1.0))
    rgb, alpha = scene.train.load(0)
    assert alpha.shape == (H, W, 1)
    torch.testing.assert_close(rgb[0, 0], torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(rgb[0, -1], torch.tensor([0.0, 0.0, 1.0]))
    raw, _ = scene.train.load(0, composite=False)
    torch.testing.assert_close(raw[0, -1], torch.tensor([1.0, 0.0, 0.0]))
