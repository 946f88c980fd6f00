"""Bad input gives DatasetError (a ValueError) with a one-line message naming the file."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from PIL import Image

from splatlab.data import DatasetError, load_scene

W, H = 24, 16


def png(path, size=(W, H), seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)


def colmap_text(root, names=("a.png", "b.png", "c.png"), make_images=True):
    d = root / "sparse" / "0"
    d.mkdir(parents=True)
    (d / "cameras.txt").write_text(f"# cameras\n1 PINHOLE {W} {H} 20 20 12 8\n")
    lines = ["# images"]
    for i, n in enumerate(names, 1):
        lines += [f"{i} 1 0 0 0 0 0 {i} 1 {n}", ""]
    (d / "images.txt").write_text("\n".join(lines) + "\n")
    (d / "points3D.txt").write_text("1 0 0 5 255 255 255 0.1 1 0\n")
    if make_images:
        for k, n in enumerate(names):
            png(root / "images" / n, seed=k)
    return d


def colmap_binary(root, names=("a.png", "b.png", "c.png")):
    d = root / "sparse" / "0"
    d.mkdir(parents=True)
    (d / "cameras.bin").write_bytes(struct.pack("<QiiQQ4d", 1, 1, 1, W, H, 20, 20, 12, 8))
    data = struct.pack("<Q", len(names))
    for i, n in enumerate(names, 1):
        data += struct.pack("<i7di", i, 1, 0, 0, 0, 0, 0, i, 1) + n.encode() + b"\0" + struct.pack("<Q", 0)
    (d / "images.bin").write_bytes(data)
    (d / "points3D.bin").write_bytes(struct.pack("<QQ3d3BdQ", 1, 1, 0, 0, 5, 255, 255, 255, 0.1, 0))
    for k, n in enumerate(names):
        png(root / "images" / n, seed=k)
    return d


def expect_error(fn, *names):
    with pytest.raises(DatasetError) as info:
        fn()
    msg = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "\n" not in msg and msg.strip() == msg and msg
    for name in names:
        assert str(name) in msg, msg
    return msg


def test_valid_fixtures_load(tmp_path):
    colmap_text(tmp_path / "t")
    colmap_binary(tmp_path / "b")
    for sub in ("t", "b"):
        scene = load_scene(tmp_path / sub)
        scene.validate()
        assert len(scene.train) + len(scene.test) == 3


def test_missing_path_and_unknown_layout(tmp_path):
    expect_error(lambda: load_scene(tmp_path / "nope"), tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    msg = expect_error(lambda: load_scene(tmp_path / "empty"), tmp_path / "empty")
    assert "no dataset found" in msg


def test_missing_image_file(tmp_path):
    colmap_text(tmp_path)
    (tmp_path / "images" / "b.png").unlink()
    expect_error(lambda: load_scene(tmp_path), tmp_path / "images" / "b.png")


def test_empty_text_model(tmp_path):
    d = colmap_text(tmp_path)
    (d / "images.txt").write_text("# Image list with two lines of data per image:\n")
    expect_error(lambda: load_scene(tmp_path), d / "images.txt")
    (d / "cameras.txt").write_text("")
    expect_error(lambda: load_scene(tmp_path), d / "cameras.txt")


def test_corrupt_text_model(tmp_path):
    d = colmap_text(tmp_path)
    good = (d / "images.txt").read_text()
    (d / "images.txt").write_text(good.replace("1 1 0 0 0 0 0 1 1 a.png", "1 1 0 zero 0 0 0 1 1 a.png"))
    expect_error(lambda: load_scene(tmp_path), d / "images.txt")
    (d / "images.txt").write_text(good[: good.index("b.png") - 3])  # truncated mid-line
    expect_error(lambda: load_scene(tmp_path), d / "images.txt")
    (d / "images.txt").write_text(good)
    (d / "cameras.txt").write_text("1 PINHOLE 24 16 20 20\n")  # too few params
    expect_error(lambda: load_scene(tmp_path), d / "cameras.txt")
    (d / "cameras.txt").write_text("1 PINHOLE 24 16 20 20 12 8\n")
    (d / "points3D.txt").write_text("1 0 0 five 255 255 255 0.1\n")
    expect_error(lambda: load_scene(tmp_path), d / "points3D.txt")


def test_unsupported_camera_model(tmp_path):
    d = colmap_text(tmp_path)
    (d / "cameras.txt").write_text("1 OPENCV_FISHEYE 24 16 20 20 12 8 0.1 0 0 0\n")
    msg = expect_error(lambda: load_scene(tmp_path), d / "cameras.txt")
    assert "OPENCV_FISHEYE" in msg


@pytest.mark.parametrize("which", ["cameras.bin", "images.bin", "points3D.bin"])
def test_truncated_binary_model(tmp_path, which):
    d = colmap_binary(tmp_path)
    data = (d / which).read_bytes()
    for cut in (len(data) - 3, 5, 0):
        (d / which).write_bytes(data[:cut])
        expect_error(lambda: load_scene(tmp_path), d / which)


def test_corrupt_binary_model(tmp_path):
    d = colmap_binary(tmp_path)
    data = bytearray((d / "cameras.bin").read_bytes())
    data[12:16] = struct.pack("<i", 99)  # unknown camera model id
    (d / "cameras.bin").write_bytes(bytes(data))
    expect_error(lambda: load_scene(tmp_path), d / "cameras.bin")
    (d / "cameras.bin").write_bytes(struct.pack("<Q", 10 ** 12) + b"\0" * 40)  # absurd count
    expect_error(lambda: load_scene(tmp_path), d / "cameras.bin")
    (d / "cameras.bin").write_bytes(struct.pack("<QiiQQ4d", 1, 1, 1, W, H, 20, 20, 12, 8) + b"junk")
    expect_error(lambda: load_scene(tmp_path), d / "cameras.bin")
    (d / "cameras.bin").write_bytes(struct.pack("<Q", 0))  # empty model
    expect_error(lambda: load_scene(tmp_path), d / "cameras.bin")


def test_images_of_mismatched_size(tmp_path):
    colmap_text(tmp_path)
    png(tmp_path / "images" / "c.png", size=(W * 2, H * 2))  # same aspect, different size
    expect_error(lambda: load_scene(tmp_path), tmp_path / "images" / "c.png")
    png(tmp_path / "images" / "c.png", size=(W, H + 3))  # different aspect from its camera
    expect_error(lambda: load_scene(tmp_path), tmp_path / "images" / "c.png")


def test_corrupt_images(tmp_path):
    colmap_text(tmp_path)
    bad = tmp_path / "images" / "b.png"
    bad.write_bytes(b"this is not a png at all")
    expect_error(lambda: load_scene(tmp_path), bad)
    # truncated: the header is fine (so loading the scene works) but decoding fails
    png(bad, seed=1)
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    scene = load_scene(tmp_path)
    expect_error(scene.validate, bad)
    views = scene.train if "b.png" in scene.train.names else scene.test
    i = views.names.index("b.png")
    expect_error(lambda: views.load_image(i), bad)


def test_nerfstudio_errors(tmp_path):
    root = tmp_path / "ns"
    root.mkdir()
    f = root / "transforms.json"
    f.write_text("{not json")
    msg = expect_error(lambda: load_scene(root), f)
    assert "invalid JSON" in msg
    f.write_text(json.dumps({"fl_x": 10, "fl_y": 10, "cx": 5, "cy": 5, "w": 10, "h": 10}))
    expect_error(lambda: load_scene(root), f)
    f.write_text(json.dumps({"fl_x": 10, "frames": []}))
    msg = expect_error(lambda: load_scene(root), f)
    assert "no frames" in msg
    f.write_text(json.dumps({"fl_x": 10, "cx": 5, "cy": 5, "frames": [{"file_path": "x.png"}]}))
    expect_error(lambda: load_scene(root), f)
    f.write_text(json.dumps({"fl_x": 10, "cx": 5, "cy": 5,
                             "frames": [{"file_path": "images/x.png", "transform_matrix": np.eye(4).tolist()}]}))
    expect_error(lambda: load_scene(root), root / "images" / "x.png")
    png(root / "images" / "x.png")
    f.write_text(json.dumps({"fl_x": 10, "cx": 5, "cy": 5, "ply_file_path": "pc.ply",
                             "frames": [{"file_path": "images/x.png", "transform_matrix": np.eye(4).tolist()}]}))
    expect_error(lambda: load_scene(root), root / "pc.ply")
    (root / "pc.ply").write_bytes(b"ply\nformat garbage\n")
    expect_error(lambda: load_scene(root), root / "pc.ply")


def test_blender_errors(tmp_path):
    root = tmp_path / "bl"
    root.mkdir()
    f = root / "transforms_train.json"
    f.write_text(json.dumps({"frames": [{"file_path": "./train/r_0", "transform_matrix": np.eye(4).tolist()}]}))
    png(root / "train" / "r_0.png")
    msg = expect_error(lambda: load_scene(root), f)
    assert "camera_angle_x" in msg
    f.write_text(json.dumps({"camera_angle_x": 0.7, "frames": [
        {"file_path": "./train/r_0", "transform_matrix": np.eye(4).tolist()},
        {"file_path": "./train/r_1", "transform_matrix": np.eye(4).tolist()}]}))
    expect_error(lambda: load_scene(root), root / "train" / "r_1.png")
    png(root / "train" / "r_1.png", size=(W + 2, H))
    expect_error(lambda: load_scene(root), root / "train" / "r_1.png")
    f.write_text("[1, 2")
    expect_error(lambda: load_scene(root), f)
