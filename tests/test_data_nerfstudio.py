"""nerfstudio transforms.json: OpenGL->OpenCV flip, orient/centre/scale normalisation, point clouds."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from splatlab.data import load_scene
from splatlab.data.nerfstudio import load_nerfstudio

W, H = 40, 30
FX, FY, CX, CY = 35.0, 37.0, 19.0, 16.0


def gl_look_at(eye, target, up):
    """OpenGL camera-to-world: columns right, up, back (camera looks down -z)."""
    back = eye - target
    back /= np.linalg.norm(back)
    right = np.cross(up, back)
    right /= np.linalg.norm(right)
    cam_up = np.cross(back, right)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, cam_up, back, eye
    return m


def project_gl(c2w, X, fx, fy, cx, cy):
    """Pixel of world point X seen by an OpenGL camera (x right, y up, looking down -z)."""
    p = np.linalg.inv(c2w) @ np.append(X, 1.0)
    depth = -p[2]
    return np.array([cx + fx * p[0] / depth, cy - fy * p[1] / depth]), depth


def project_cv(viewmat, K, X):
    p = viewmat @ np.append(X, 1.0)
    return np.array([K[0, 0] * p[0] / p[2] + K[0, 2], K[1, 1] * p[1] / p[2] + K[1, 2]]), p[2]


def random_rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def make_dataset(root, rng, n=12, applied=None, ply=None, extra=None):
    """Cameras on a tilted, offset ring looking at a target; world 'up' is a random direction."""
    (root / "images").mkdir(parents=True)
    up = rng.normal(size=3)
    up /= np.linalg.norm(up)
    target = rng.normal(size=3) * 3
    a = np.cross(up, [1.0, 0.0, 0.0])
    a /= np.linalg.norm(a)
    b = np.cross(up, a)
    frames = []
    for i in range(n):
        ang = 2 * np.pi * i / n
        eye = target + 4.0 * (np.cos(ang) * a + np.sin(ang) * b) + 1.5 * up
        c2w = gl_look_at(eye, target, up)
        name = f"images/frame_{i:05d}.png"
        Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(root / name)
        frames.append({"file_path": name, "transform_matrix": c2w.tolist()})
    if n > 3:
        frames[3]["fl_x"] = 50.0  # per-frame intrinsics override the shared ones
    meta = {"camera_model": "OPENCV", "fl_x": FX, "fl_y": FY, "cx": CX, "cy": CY, "w": W, "h": H,
            "frames": frames[::-1]}  # not in name order on purpose
    if applied is not None:
        meta["applied_transform"] = applied.tolist()
    if ply is not None:
        meta["ply_file_path"] = ply
    meta.update(extra or {})
    (root / "transforms.json").write_text(json.dumps(meta))
    return {f["file_path"]: np.array(f["transform_matrix"]) for f in frames}, target, up


def all_views(scene):
    for views in (scene.train, scene.test):
        for i, name in enumerate(views.names):
            yield name, views.cameras.viewmats[i].double().numpy(), views.cameras.Ks[i].double().numpy()


def test_projection_is_invariant_under_normalisation(tmp_path):
    rng = np.random.default_rng(3)
    poses, target, _ = make_dataset(tmp_path / "d", rng)
    scene = load_scene(tmp_path / "d", output_dir=tmp_path / "out")
    assert scene.format == "nerfstudio"
    S = scene.transform.double().numpy()
    pts = target + rng.normal(size=(20, 3)) * 0.7
    checked = 0
    for name, vm, K in all_views(scene):
        fx = 50.0 if name.endswith("00003.png") else FX
        np.testing.assert_allclose(K, [[fx, 0, CX], [0, FY, CY], [0, 0, 1]], atol=1e-5)
        for X in pts:
            uv_raw, d_raw = project_gl(poses[name], X, fx, FY, CX, CY)
            uv_new, d_new = project_cv(vm, K, (S @ np.append(X, 1.0))[:3])
            assert d_raw > 0 and d_new > 0
            np.testing.assert_allclose(uv_new, uv_raw, atol=1e-3)
            checked += 1
    assert checked == 12 * 20


def test_normalisation_orients_centres_and_scales(tmp_path):
    rng = np.random.default_rng(4)
    make_dataset(tmp_path / "d", rng)
    scene = load_nerfstudio(tmp_path / "d")
    vms = torch.cat([scene.train.cameras.viewmats, scene.test.cameras.viewmats]).double()
    c2w = torch.linalg.inv(vms)
    centers = c2w[:, :3, 3]
    assert centers.abs().max().item() == pytest.approx(1.0, abs=1e-5)
    torch.testing.assert_close(centers.mean(0), torch.zeros(3, dtype=torch.float64), atol=1e-5, rtol=0)
    up = -c2w[:, :3, 1].mean(0)  # OpenCV y is down
    up = up / up.norm()
    torch.testing.assert_close(up, torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64), atol=1e-5, rtol=0)
    rot = c2w[:, :3, :3]
    torch.testing.assert_close(rot.transpose(1, 2) @ rot, torch.eye(3, dtype=torch.float64).expand(12, 3, 3),
                               atol=1e-5, rtol=0)
    # every 8th frame (sorted by name) is held out
    assert scene.test.names == ["images/frame_00000.png", "images/frame_00008.png"]
    assert len(scene.train) == 10
    assert scene.train.load_image(0).shape == (H, W, 3)


def test_dataparser_transforms_and_point_cloud(tmp_path):
    from plyfile import PlyData, PlyElement

    rng = np.random.default_rng(5)
    A = np.eye(4)
    A[:3, :3] = random_rotation(rng)
    A[:3, 3] = [0.5, -1.0, 2.0]
    root = tmp_path / "d"
    root.mkdir()
    xyz = rng.normal(size=(50, 3))
    rgb = rng.integers(0, 256, (50, 3), dtype=np.uint8)
    vert = np.empty(50, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    for k, c in enumerate("xyz"):
        vert[c] = xyz[:, k]
    for k, c in enumerate(("red", "green", "blue")):
        vert[c] = rgb[:, k]
    PlyData([PlyElement.describe(vert, "vertex")]).write(str(root / "sparse_pc.ply"))
    make_dataset(tmp_path / "tmpdata", rng)  # just to get frames; move them under root
    for p in (tmp_path / "tmpdata").iterdir():
        p.rename(root / p.name)
    meta = json.loads((root / "transforms.json").read_text())
    meta["applied_transform"] = A[:3].tolist()
    meta["ply_file_path"] = "sparse_pc.ply"
    (root / "transforms.json").write_text(json.dumps(meta))

    scene = load_scene(root, output_dir=tmp_path / "out")
    S = scene.transform.double().numpy()
    # the point cloud is in the transforms.json frame and follows the poses
    np.testing.assert_allclose(scene.points.numpy(), (xyz.astype(np.float32) @ S[:3, :3].T + S[:3, 3]), atol=1e-5)
    np.testing.assert_allclose(scene.points_rgb.numpy(), rgb / 255.0, atol=1e-6)

    dp = json.loads((tmp_path / "out" / "dataparser_transforms.json").read_text())
    T, s = np.array(dp["transform"]), dp["scale"]
    assert T.shape == (3, 4)
    # x_scene = s * T @ x_original, where the transforms.json frame is x_data = A @ x_original
    x_orig = rng.normal(size=(10, 3))
    x_data = x_orig @ A[:3, :3].T + A[:3, 3]
    via_scene = x_data @ S[:3, :3].T + S[:3, 3]
    via_dp = s * (x_orig @ T[:, :3].T + T[:, 3])
    np.testing.assert_allclose(via_dp, via_scene, atol=1e-5)


def test_distortion_coefficients_are_undistorted(tmp_path):
    rng = np.random.default_rng(6)
    make_dataset(tmp_path / "d", rng, n=3, extra={"k1": -0.1, "p1": 0.001})
    scene = load_nerfstudio(tmp_path / "d", test_every=0)
    assert scene.train.distortion is not None
    torch.testing.assert_close(scene.train.distortion[0], torch.tensor([-0.1, 0.0, 0.001, 0.0, 0.0]))
    img = scene.train.load_image(1)
    assert img.shape == (H, W, 3)
    assert list((tmp_path / "d" / ".splatlab_cache" / "undistorted").glob("*.png"))


def test_no_normalisation_keeps_poses(tmp_path):
    rng = np.random.default_rng(7)
    poses, _, _ = make_dataset(tmp_path / "d", rng, n=4)
    scene = load_nerfstudio(tmp_path / "d", normalize=False, test_every=0)
    for name, vm, _ in all_views(scene):
        c2w_cv = poses[name] @ np.diag([1.0, -1.0, -1.0, 1.0])
        np.testing.assert_allclose(np.linalg.inv(vm), c2w_cv, atol=1e-5)
