"""Bad inputs raise SplatFormatError with a one-line message naming the file, never a raw traceback."""
from __future__ import annotations

import gzip
import json
import os
import struct
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from plyfile import PlyData, PlyElement  # noqa: E402

from splatlab.gaussians import Gaussians  # noqa: E402
from splatlab.io import SplatFormatError, read_splats, write_splats  # noqa: E402
from splatlab.io._common import SceneArrays  # noqa: E402
from splatlab.io.ply import ply_vertex_array  # noqa: E402

EXTS = ["ply", "compressed.ply", "sog", "spz", "splat"]


def scene(n: int = 300, degree: int = 1) -> Gaussians:
    g = torch.Generator().manual_seed(0)
    k = (degree + 1) ** 2 - 1
    return Gaussians(torch.randn(n, 3, generator=g), torch.randn(n, 4, generator=g), torch.randn(n, 3, generator=g) - 3,
                     torch.randn(n, generator=g), torch.randn(n, 1, 3, generator=g) * 0.5,
                     torch.randn(n, k, 3, generator=g) * 0.2)


def expect_error(path, match: str | None = None, **kw) -> str:
    with pytest.raises(SplatFormatError) as ei:
        read_splats(path, **kw)
    msg = str(ei.value)
    assert os.path.basename(str(path).rstrip("/")) in msg, msg
    assert "\n" not in msg, msg
    assert isinstance(ei.value, ValueError)
    if match:
        assert match in msg, msg
    return msg


@pytest.fixture(scope="module")
def good_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("good")
    g = scene()
    out = {}
    for ext in EXTS:
        p = d / f"scene.{ext}"
        write_splats(p, g)
        out[ext] = p.read_bytes()
    return out


@pytest.mark.parametrize("ext", EXTS)
def test_empty_file(tmp_path, ext):
    p = tmp_path / f"empty.{ext}"
    p.write_bytes(b"")
    expect_error(p, "empty")


@pytest.mark.parametrize("ext", EXTS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_bytes(tmp_path, ext, seed):
    rng = np.random.default_rng(seed)
    p = tmp_path / f"noise.{ext}"
    p.write_bytes(rng.integers(0, 256, 1000 + seed * 37, dtype=np.uint8).tobytes())
    expect_error(p)


@pytest.mark.parametrize("ext", EXTS)
@pytest.mark.parametrize("frac", [0.1, 0.5, 0.97])
def test_truncated(tmp_path, good_files, ext, frac):
    data = good_files[ext]
    cut = max(1, int(len(data) * frac))
    if ext == "splat" and cut % 32 == 0:
        cut -= 5  # headerless: a cut on a 32-byte record boundary is a valid, shorter file
    p = tmp_path / f"cut.{ext}"
    p.write_bytes(data[:cut])
    expect_error(p)


def test_truncated_ply_message_counts(tmp_path, good_files):
    data = good_files["ply"]
    header_end = data.index(b"end_header\n") + len(b"end_header\n")
    row = (len(data) - header_end) // 300
    p = tmp_path / "scene.ply"
    p.write_bytes(data[: header_end + 412 // 3 * row + 5])
    expect_error(p, "truncated: header says 300 vertices but data holds 137")


def test_truncated_splat_message(tmp_path, good_files):
    p = tmp_path / "s.splat"
    p.write_bytes(good_files["splat"][:-7])
    expect_error(p, "not a multiple of 32")


def test_truncated_spz_payload(tmp_path, good_files):
    raw = gzip.decompress(good_files["spz"])
    p = tmp_path / "short.spz"
    p.write_bytes(gzip.compress(raw[:-100]))  # a well-formed gzip of too little data
    expect_error(p, "truncated: header says 300 splats")


@pytest.mark.parametrize("field", ["x", "opacity", "scale_1", "rot_2", "f_dc_0", "f_rest_4"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nonfinite_ply(tmp_path, field, bad):
    arr = ply_vertex_array(SceneArrays.from_gaussians(scene(20)))
    arr[field][7] = bad
    p = tmp_path / "nan.ply"
    PlyData([PlyElement.describe(arr, "vertex")]).write(str(p))
    msg = expect_error(p)
    assert ("NaN" in msg if np.isnan(bad) else "infinite" in msg) and "index 7" in msg


def test_nan_position_message(tmp_path):
    arr = ply_vertex_array(SceneArrays.from_gaussians(scene(20)))
    arr["y"][3] = np.nan
    p = tmp_path / "nanpos.ply"
    PlyData([PlyElement.describe(arr, "vertex")]).write(str(p))
    expect_error(p, "NaN positions in 1 splat(s) (first at index 3)")


def test_nan_splat(tmp_path, good_files):
    data = bytearray(good_files["splat"])
    data[32 * 5 + 4: 32 * 5 + 8] = struct.pack("<f", float("nan"))
    p = tmp_path / "nan.splat"
    p.write_bytes(bytes(data))
    expect_error(p, "NaN positions")


def test_writing_nan_is_refused(tmp_path):
    g = scene(10)
    f = g.detached_fields()
    f["scales"][2, 1] = float("nan")
    for ext in EXTS:
        p = tmp_path / f"out.{ext}"
        with pytest.raises(SplatFormatError, match="NaN scales") as ei:
            write_splats(p, Gaussians.from_fields(f))
        assert "out." in str(ei.value)
        assert not p.exists()
    assert os.listdir(tmp_path) == []  # no temp files left behind


def test_wrong_extension(tmp_path, good_files):
    p = tmp_path / "scene.xyz"
    p.write_bytes(b"hello world, not a splat file\n" * 10)
    expect_error(p, "extension .xyz")
    with pytest.raises(SplatFormatError, match="scene.obj"):
        write_splats(tmp_path / "scene.obj", scene(5))
    assert not (tmp_path / "scene.obj").exists()
    # a plain ply named .splat is still read (by its magic) ...
    q = tmp_path / "actually_ply.splat"
    q.write_bytes(good_files["ply"])
    assert len(read_splats(q)) == 300
    # ... but .splat data named .spz is not an SPZ
    r = tmp_path / "wrong.spz"
    r.write_bytes(good_files["splat"])
    expect_error(r, "not an SPZ")


def test_missing_file_and_directory(tmp_path):
    expect_error(tmp_path / "nope.ply", "no such file")
    d = tmp_path / "empty_dir"
    d.mkdir()
    expect_error(d, "meta.json")


def test_ply_header_problems(tmp_path):
    cases = {
        "nomagic.ply": b"plx\nformat binary_little_endian 1.0\nend_header\n",
        "noend.ply": b"ply\nformat binary_little_endian 1.0\nelement vertex 3\n",
        "badprop.ply": b"ply\nformat binary_little_endian 1.0\nelement vertex 1\nproperty float128 x\nend_header\n",
        "notsplat.ply": b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\n"
                        b"property float z\nend_header\n1 2 3\n",
        "zero.ply": b"ply\nformat binary_little_endian 1.0\nelement vertex 0\nproperty float x\nend_header\n",
    }
    for name, data in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        expect_error(p)


def test_compressed_ply_problems(tmp_path, good_files):
    data = good_files["compressed.ply"]
    p = tmp_path / "few_chunks.ply"
    p.write_bytes(data.replace(b"element chunk 2\n", b"element chunk 1\n", 1))
    expect_error(p)
    q = tmp_path / "nan_chunk.compressed.ply"
    head_end = data.index(b"end_header\n") + len(b"end_header\n")
    buf = bytearray(data)
    buf[head_end: head_end + 4] = struct.pack("<f", float("nan"))  # min_x of chunk 0
    q.write_bytes(bytes(buf))
    expect_error(q, "NaN")


def _sog_folder(tmp_path, good_files) -> Path:
    d = tmp_path / "sogdir"
    d.mkdir()
    with zipfile.ZipFile(tmp_path / "src.sog", "w") as z:
        pass
    (tmp_path / "src.sog").write_bytes(good_files["sog"])
    with zipfile.ZipFile(tmp_path / "src.sog") as z:
        z.extractall(d)
    return d


def test_sog_problems(tmp_path, good_files):
    d = _sog_folder(tmp_path, good_files)
    assert len(read_splats(d / "meta.json")) == 300
    (d / "quats.webp").write_bytes(b"RIFF\x10\x00\x00\x00WEBPVP8L garbage")
    expect_error(d / "meta.json", "quats.webp")
    (d / "quats.webp").unlink()
    expect_error(d / "meta.json", "lacks quats.webp")
    meta = json.loads((d / "meta.json").read_text())
    for bad, match in [({**meta, "version": 1}, "version"), ({**meta, "count": "many"}, "count"),
                       ({k: v for k, v in meta.items() if k != "means"}, "means"),
                       ({**meta, "count": 10 ** 6}, "count is 1000000")]:
        (d / "meta.json").write_text(json.dumps(bad))
        expect_error(d / "meta.json", match)
    (d / "meta.json").write_text("{not json")
    expect_error(d / "meta.json", "not valid JSON")
    # a zip without meta.json, and one that is cut short
    z = tmp_path / "nometa.sog"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("other.txt", "x")
    expect_error(z, "lacks meta.json")


def test_spz_header_problems(tmp_path, good_files):
    raw = bytearray(gzip.decompress(good_files["spz"]))
    for name, patch, match in [("badmagic.spz", (0, b"XXXX"), "magic"), ("v9.spz", (4, struct.pack("<I", 9)), "version 9"),
                               ("deg7.spz", (12, b"\x07"), "SH degree 7")]:
        buf = bytearray(raw)
        buf[patch[0]: patch[0] + len(patch[1])] = patch[1]
        p = tmp_path / name
        p.write_bytes(gzip.compress(bytes(buf)))
        expect_error(p, match)
    p = tmp_path / "tiny.spz"
    p.write_bytes(gzip.compress(b"NGSP"))
    expect_error(p, "shorter than the 16-byte")
    p = tmp_path / "v4.spz"  # a plain (un-gzipped) v4 header whose table of contents is garbage
    p.write_bytes(b"NGSP" + struct.pack("<IIBBBBI", 4, 10, 0, 12, 0, 5, 9999) + bytes(12))
    expect_error(p)
