"""Consistency checks for the committed ground-truth scenes in scenes/.

Regenerate the scenes with `python scripts/make_scenes.py`; these tests only
read the committed files (numpy + Pillow), so they run in a few seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SCENES = Path(__file__).resolve().parent.parent / "scenes"
OBJECT_SCENES = ["robot", "stilllife"]
UNBOUNDED_SCENES = ["garden"]
PHOTO_SCENES = ["courtyard"]
BLENDER_SCENES = OBJECT_SCENES + UNBOUNDED_SCENES
SPLITS = ["train", "val", "test"]
RES = 256


def load_split(scene: str, split: str) -> dict:
    return json.loads((SCENES / scene / f"transforms_{split}.json").read_text())


def assert_rigid(m: np.ndarray):
    assert m.shape == (4, 4)
    assert np.allclose(m[3], [0, 0, 0, 1])
    R = m[:3, :3]
    assert np.allclose(R @ R.T, np.eye(3), atol=1e-5)
    assert np.linalg.det(R) == pytest.approx(1.0, abs=1e-5)


def project_gl(c2w: np.ndarray, point, camera_angle_x: float, w: int, h: int):
    """Pixel (col, row) of a world point for an OpenGL/Blender camera (looks down -z, y up)."""
    w2c = np.linalg.inv(c2w)
    x, y, z = w2c[:3, :3] @ np.asarray(point, float) + w2c[:3, 3]
    assert z < 0, "point is behind the camera"
    f = 0.5 * w / np.tan(0.5 * camera_angle_x)
    return w / 2 + f * x / -z, h / 2 - f * y / -z


@pytest.mark.parametrize("scene", BLENDER_SCENES)
def test_blender_layout(scene):
    counts = {}
    for split in SPLITS:
        meta = load_split(scene, split)
        assert 0.1 < meta["camera_angle_x"] < 2.0
        assert len(meta["scene_center"]) == 3
        frames = meta["frames"]
        assert frames, split
        counts[split] = len(frames)
        for fr in frames:
            fp = fr["file_path"]
            assert fp.startswith(f"./{split}/") and not fp.endswith(".png")
            img = Image.open(SCENES / scene / (fp + ".png"))
            assert img.size == (RES, RES)
            assert img.mode == ("RGBA" if scene in OBJECT_SCENES else "RGB")
            assert_rigid(np.array(fr["transform_matrix"], float))
    assert counts["train"] >= 90 and counts["test"] >= 20 and counts["val"] >= 3
    # splits must not share images
    paths = [fr["file_path"] for s in SPLITS for fr in load_split(scene, s)["frames"]]
    assert len(paths) == len(set(paths))


@pytest.mark.parametrize("scene", OBJECT_SCENES)
def test_object_centre_projects_into_alpha_mask(scene):
    """The stored 3D centre must land on the object in every view (checks pose convention + fov)."""
    for split in SPLITS:
        meta = load_split(scene, split)
        for fr in meta["frames"]:
            c2w = np.array(fr["transform_matrix"], float)
            alpha = np.asarray(Image.open(SCENES / scene / (fr["file_path"] + ".png")))[..., 3]
            u, v = project_gl(c2w, meta["scene_center"], meta["camera_angle_x"], *alpha.shape[::-1])
            col, row = int(np.floor(u)), int(np.floor(v))
            assert 0 <= col < alpha.shape[1] and 0 <= row < alpha.shape[0], fr["file_path"]
            assert alpha[row, col] > 127, f"{scene} {fr['file_path']}: centre lands on background"


@pytest.mark.parametrize("scene", OBJECT_SCENES)
def test_object_masks(scene):
    """Transparent background, opaque object, object fully inside the frame."""
    for split in SPLITS:
        for fr in load_split(scene, split)["frames"]:
            alpha = np.asarray(Image.open(SCENES / scene / (fr["file_path"] + ".png")))[..., 3]
            cover = (alpha > 127).mean()
            assert 0.03 < cover < 0.7, fr["file_path"]
            border = np.concatenate([alpha[0], alpha[-1], alpha[:, 0], alpha[:, -1]])
            assert border.max() == 0, f"{fr['file_path']}: object touches the image border"


@pytest.mark.parametrize("scene", OBJECT_SCENES)
def test_off_object_point_misses_mask(scene):
    """Negative control: a point far outside the object projects onto background in some view."""
    meta = load_split(scene, "train")
    far = np.asarray(meta["scene_center"]) + np.array([1.8, 0.0, 0.0])
    misses = 0
    for fr in meta["frames"][:20]:
        c2w = np.array(fr["transform_matrix"], float)
        alpha = np.asarray(Image.open(SCENES / scene / (fr["file_path"] + ".png")))[..., 3]
        u, v = project_gl(c2w, far, meta["camera_angle_x"], *alpha.shape[::-1])
        if 0 <= u < alpha.shape[1] and 0 <= v < alpha.shape[0]:
            misses += alpha[int(v), int(u)] == 0
    assert misses >= 5


@pytest.mark.parametrize("scene", UNBOUNDED_SCENES)
def test_unbounded_cameras_look_at_centre(scene):
    for split in SPLITS:
        meta = load_split(scene, split)
        c = np.asarray(meta["scene_center"])
        for fr in meta["frames"]:
            c2w = np.array(fr["transform_matrix"], float)
            u, v = project_gl(c2w, c, meta["camera_angle_x"], RES, RES)
            assert 0.25 * RES < u < 0.75 * RES and 0.25 * RES < v < 0.75 * RES
            img = np.asarray(Image.open(SCENES / scene / (fr["file_path"] + ".png")))
            assert img.std() > 10  # opaque, textured, not blank


@pytest.mark.parametrize("scene", PHOTO_SCENES)
def test_photo_set(scene):
    root = SCENES / scene
    gt = json.loads((root / "ground_truth_poses.json").read_text())
    assert gt["width"] == gt["height"] == RES
    assert gt["fx"] == pytest.approx(0.5 * RES / np.tan(0.5 * gt["camera_angle_x"]))
    assert gt["fy"] == pytest.approx(gt["fx"])
    assert (gt["cx"], gt["cy"]) == (RES / 2, RES / 2)
    frames = gt["frames"]
    assert len(frames) >= 30
    on_disk = sorted(p.name for p in (root / "photos").iterdir())
    assert on_disk == sorted(fr["image_name"] for fr in frames)
    c = np.asarray(gt["scene_center"])
    K = np.array([[gt["fx"], 0, gt["cx"]], [0, gt["fy"], gt["cy"]], [0, 0, 1]])
    for fr in frames:
        img = Image.open(root / fr["file"])
        assert img.size == (RES, RES) and img.mode == "RGB"
        c2w = np.array(fr["camera_to_world"], float)
        assert_rigid(c2w)
        # OpenCV convention: the scene centre is in front (z > 0) and projects near the image centre
        w2c = np.linalg.inv(c2w)
        pc = w2c[:3, :3] @ c + w2c[:3, 3]
        assert pc[2] > 0
        uv = (K @ pc)[:2] / pc[2]
        assert np.all(np.abs(uv - RES / 2) < RES / 4)
        # OpenCV y axis points down: world up (+z) maps to negative camera y
        assert (w2c[:3, :3] @ np.array([0, 0, 1.0]))[1] < 0
    r = np.linalg.norm(np.array([fr["camera_to_world"] for fr in frames])[:, :3, 3] - c, axis=1)
    assert np.mean(r) == pytest.approx(gt["orbit_radius"], rel=1e-6)


def test_scenes_size_budget():
    """What the repository ships under scenes/ (git-tracked files: training writes ignored caches
    such as an automatic triangulation beside a bundled scene, which a clone never carries)."""
    import subprocess

    try:
        out = subprocess.run(["git", "ls-files", "-z", "--", "."], cwd=SCENES, capture_output=True, check=True).stdout
        files = [SCENES / f for f in out.decode().split("\0") if f]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an unpacked archive)
        files = [p for p in SCENES.rglob("*") if p.is_file()]
    assert len(files) > 10
    total = sum(p.stat().st_size for p in files)
    assert total < 26e6, f"scenes/ is {total / 1e6:.1f} MB"


@pytest.mark.parametrize("scene", OBJECT_SCENES)
def test_object_mask_matches_projected_bbox(scene):
    """The alpha mask lies inside the projection of the stored 3D bounding box and fills a good
    part of it (catches a wrong camera_angle_x), and world up (+z) points up in the image
    (catches a flipped y axis / OpenCV-vs-OpenGL mix-up)."""
    for split in SPLITS:
        meta = load_split(scene, split)
        lo, hi = (np.asarray(b, float) for b in meta["object_bbox"])
        corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
        mid = 0.5 * (lo + hi)
        for fr in meta["frames"]:
            c2w = np.array(fr["transform_matrix"], float)
            alpha = np.asarray(Image.open(SCENES / scene / (fr["file_path"] + ".png")))[..., 3]
            uv = np.array([project_gl(c2w, c, meta["camera_angle_x"], RES, RES) for c in corners])
            rows, cols = np.nonzero(alpha > 0)
            name = f"{scene} {fr['file_path']}"
            assert cols.min() >= uv[:, 0].min() - 2 and cols.max() <= uv[:, 0].max() + 2, name
            assert rows.min() >= uv[:, 1].min() - 2 and rows.max() <= uv[:, 1].max() + 2, name
            fill_w = (cols.max() - cols.min() + 1) / (uv[:, 0].max() - uv[:, 0].min())
            fill_h = (rows.max() - rows.min() + 1) / (uv[:, 1].max() - uv[:, 1].min())
            assert max(fill_w, fill_h) > 0.35, name
            view_dir = -c2w[:3, 2]
            if abs(view_dir[2]) < 0.8:  # not looking straight down/up
                _, v_top = project_gl(c2w, (mid[0], mid[1], hi[2]), meta["camera_angle_x"], RES, RES)
                _, v_bot = project_gl(c2w, (mid[0], mid[1], lo[2]), meta["camera_angle_x"], RES, RES)
                assert v_top < v_bot, f"{name}: world up points down in the image"
