"""Writer -> reader round trips for every splat format, checked against error bounds derived from each
format's bit widths and ranges (not against tolerances tuned to pass)."""
from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from splatlab.gaussians import SH_C0, Gaussians, num_sh_bases  # noqa: E402
from splatlab.io import (SplatFormatError, formats, morton_order, read_splats, sog_texture_size,  # noqa: E402
                         write_splats)
from splatlab.io._common import SceneArrays  # noqa: E402
from splatlab.io.sog import read_sog_meta  # noqa: E402
from splatlab.io.splat import importance_order  # noqa: E402
from splatlab.io.spz import read_spz_header  # noqa: E402

F32 = 1e-6  # float32 slack, relative to magnitude


def make_scene(n: int, degree: int, seed: int = 0, extras: bool = False) -> Gaussians:
    """Random scene whose values stay inside every format's representable range (so no clamping)."""
    rng = np.random.default_rng(seed)
    k = num_sh_bases(degree) - 1
    means = rng.normal(0, 3, (n, 3))
    means[: n // 3] *= 0.05  # a dense cluster plus a spread, so chunk ranges differ
    ex = {}
    if extras:
        ex = {"shape": torch.from_numpy(rng.uniform(0.5, 3, n).astype(np.float32)),
              "feat": torch.from_numpy(rng.normal(size=(n, 2)).astype(np.float32))}
    t = lambda a: torch.from_numpy(np.asarray(a, np.float32))  # noqa: E731
    return Gaussians(t(means), t(rng.normal(size=(n, 4)) * rng.uniform(0.2, 3, (n, 1))),
                     t(rng.uniform(-7, 0.5, (n, 3))), t(rng.normal(0, 2.5, n)),
                     t(rng.uniform(-1.7, 1.7, (n, 1, 3))), t(rng.uniform(-0.95, 0.95, (n, k, 3))), ex)


def arrays(g: Gaussians) -> SceneArrays:
    return SceneArrays.from_gaussians(g)


def unit_quats(q: np.ndarray) -> np.ndarray:
    q = q.astype(np.float64)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def quat_error(dec: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Euclidean distance between unit quaternions, modulo the q ~ -q sign."""
    a, b = unit_quats(dec), unit_quats(true)
    a = a * np.where((a * b).sum(1) < 0, -1.0, 1.0)[:, None]
    return np.linalg.norm(a - b, axis=1)


def smallest_three_bound(e: float) -> float:
    """Error bound of a smallest-three quaternion whose three small components are off by <= e each.

    The largest component w = sqrt(1 - |v|^2) is >= 1/2 and |v| <= sqrt(3)/2, so
    |w' - w| <= (|v| + |v'|) |v' - v| / (w + w') <= 2 (sqrt3 + sqrt3 e) sqrt3 e.
    """
    dv = math.sqrt(3) * e
    dw = 2 * (math.sqrt(3) / 2 * 2 + dv) * dv
    return math.sqrt(dv ** 2 + dw ** 2) + 1e-6


def sig(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def assert_within(name, err, bound):
    err, bound = np.broadcast_arrays(np.asarray(err, np.float64), np.asarray(bound, np.float64))
    bad = err > bound
    assert not bad.any(), (f"{name}: {int(bad.sum())} values exceed the derived bound; worst excess "
                           f"{float((err - bound).max()):.3g} (err {float(err[bad].max()):.3g})")


def chunk_ranges(values: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Per-row (max - min) of the 256-row chunk each row falls in (rows already in file order)."""
    n = values.shape[0]
    out = np.empty_like(values, dtype=np.float64)
    for s in range(0, n, chunk):
        v = values[s:s + chunk].astype(np.float64)
        out[s:s + chunk] = v.max(0) - v.min(0)
    return out


def unorm_bound(rng: np.ndarray, bits: int) -> np.ndarray:
    """Error of v quantised to `bits` within a range r: r / (2 (2^b - 1)); ranges < 1e-5 decode to min."""
    return np.where(rng < 1e-5, rng, rng / (2 * ((1 << bits) - 1)))


# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
@pytest.mark.parametrize("n", [1, 300])
def test_plain_ply_is_exact(tmp_path, degree, n):
    g = make_scene(n, degree, seed=degree, extras=True)
    p = tmp_path / "scene.ply"
    write_splats(p, g)
    h = read_splats(p)
    assert h.sh_degree == degree and len(h) == n
    for k, v in g.detached_fields().items():
        assert torch.equal(h[k].detach(), v), k
    assert sorted(h.extra_names()) == ["feat", "shape"]


def test_plain_ply_layout_is_inria(tmp_path):
    """f_rest is channel-major and the property order is the INRIA one."""
    from plyfile import PlyData
    g = make_scene(5, 3, seed=3)
    p = tmp_path / "s.ply"
    write_splats(p, g)
    el = PlyData.read(str(p))["vertex"]
    names = [pr.name for pr in el.properties]
    assert names[:9] == ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    assert names[9:54] == [f"f_rest_{i}" for i in range(45)]
    assert names[54:] == ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    shN = g["shN"].detach().numpy()
    assert el.data["f_rest_16"][2] == shN[2, 1, 1]  # channel 1 (green), coefficient 1
    assert el.data["rot_0"][4] == g["quats"].detach().numpy()[4, 0]  # w first


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
@pytest.mark.parametrize("n", [1, 300, 700])
def test_compressed_ply_within_quantisation_bound(tmp_path, degree, n):
    g = make_scene(n, degree, seed=10 + degree)
    p = tmp_path / "scene.compressed.ply"
    write_splats(p, g)
    h = arrays(read_splats(p))
    t = arrays(g).take(morton_order(g["means"]))  # the file is Morton-ordered
    assert len(h) == n and h.sh_degree == degree
    bits = np.array([11, 10, 11])
    for name, true, dec in [("position", t.means, h.means), ("log-scale", t.scales, h.scales)]:
        rng = chunk_ranges(true)
        bound = np.stack([unorm_bound(rng[:, a], bits[a]) for a in range(3)], 1) + F32 * (1 + np.abs(true))
        assert_within(name, np.abs(dec - true), bound)
    rgb = 0.5 + SH_C0 * t.sh0.astype(np.float64)
    bound = unorm_bound(chunk_ranges(rgb), 8) / SH_C0 + F32 * 10
    assert_within("f_dc", np.abs(h.sh0 - t.sh0), bound)
    assert_within("opacity", np.abs(sig(h.opacities) - sig(t.opacities)), 0.5 / 255 + 1e-6)
    assert_within("rotation", quat_error(h.quats, t.quats), smallest_three_bound(math.sqrt(2) / (2 * 1023)))
    if degree:
        # 8 bits over [-4, 4]: bucket width 1/32, decoded at the bucket centre (end buckets at +-4)
        b = np.trunc((t.shN / 8 + 0.5) * 256)
        bound = np.where((b <= 0) | (b >= 255), 8 / 256, 4 / 256) + 1e-6
        assert_within("SH", np.abs(h.shN - t.shN), bound)


def test_compressed_ply_leaves_out_zero_sh_bands(tmp_path):
    """8-bit SH over [-4, 4] cannot store 0, so an all-zero top band is not written (it would
    decode as +1/64 everywhere); the bands below it keep their bound."""
    g = make_scene(300, 3, seed=5)
    g.params["shN"].data[:, 8:] = 0.0  # band 3 never trained
    p = tmp_path / "z.compressed.ply"
    write_splats(p, g)
    h = arrays(read_splats(p))
    t = arrays(g).take(morton_order(g["means"]))
    assert h.sh_degree == 2
    b = np.trunc((t.shN[:, :8] / 8 + 0.5) * 256)
    assert_within("SH", np.abs(h.shN - t.shN[:, :8]), np.where((b <= 0) | (b >= 255), 8 / 256, 4 / 256) + 1e-6)
    g.params["shN"].data[:] = 0.0
    write_splats(p, g)
    assert read_splats(p).sh_degree == 0


def test_compressed_ply_structure(tmp_path):
    from plyfile import PlyData
    n = 700
    p = tmp_path / "s.compressed.ply"
    write_splats(p, make_scene(n, 2, seed=4))
    ply = PlyData.read(str(p))
    assert [e.name for e in ply.elements] == ["chunk", "vertex", "sh"]
    assert len(ply["chunk"].data) == math.ceil(n / 256) and len(ply["chunk"].properties) == 18
    assert [pr.name for pr in ply["vertex"].properties] == ["packed_position", "packed_rotation", "packed_scale",
                                                             "packed_color"]
    assert len(ply["sh"].properties) == 24
    assert os.path.getsize(p) < n * (16 + 24 + 1) + 2000


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
@pytest.mark.parametrize("n", [1, 300, 700])
def test_sog_within_quantisation_bound(tmp_path, degree, n):
    g = make_scene(n, degree, seed=20 + degree)
    p = tmp_path / "scene.sog"
    write_splats(p, g)
    h = arrays(read_splats(p))
    meta = read_sog_meta(p)
    t = arrays(g).take(morton_order(g["means"]))
    assert len(h) == n and h.sh_degree == degree and meta["count"] == n
    # means: 16 bits over the log-transformed range; |dv/dt| = 1 + |v|
    tt = np.sign(t.means) * np.log1p(np.abs(t.means.astype(np.float64)))
    delta = (tt.max(0) - tt.min(0)) / (2 * 65535)
    assert_within("position", np.abs(h.means - t.means), (1 + np.abs(t.means)) * np.expm1(delta) + F32 * (1 + np.abs(t.means)))
    assert_within("rotation", quat_error(h.quats, t.quats), smallest_three_bound(1 / (255 * math.sqrt(2))))
    assert_within("opacity", np.abs(sig(h.opacities) - sig(t.opacities)), 0.5 / 255 + 1e-6)
    # 8-bit codebook indices: each value decodes to its nearest codebook entry
    for key, true, dec in [("scales", t.scales, h.scales), ("sh0", t.sh0, h.sh0)]:
        cb = np.asarray(meta[key]["codebook"], np.float64)
        assert cb.size <= 256
        nearest = np.abs(true[..., None].astype(np.float64) - cb).min(-1)
        assert_within(key, np.abs(dec - true), nearest + 1e-6)
    if degree:
        k = num_sh_bases(degree) - 1
        assert meta["shN"]["bands"] == degree and meta["shN"]["count"] <= min(n, 65536)
        cb = np.asarray(meta["shN"]["codebook"], np.float64)
        assert np.isin(h.shN.astype(np.float32), cb.astype(np.float32)).all()
        flat_t = t.shN.reshape(n, -1).astype(np.float64)
        flat_h = h.shN.reshape(n, -1).astype(np.float64)
        pal = np.unique(flat_h, axis=0)
        # each splat's label is its nearest palette entry
        err = ((flat_h - flat_t) ** 2).sum(1)
        best = ((flat_t[:, None, :] - pal[None]) ** 2).sum(-1).min(1)
        assert_within("SH label", err, best * (1 + 1e-5) + 1e-6)
        if meta["shN"]["count"] == n:  # palette holds every splat's own vector: only the codebook error is left
            nearest = np.abs(flat_t[..., None] - cb).min(-1)
            assert_within("SH", np.abs(flat_h - flat_t), nearest + 1e-6)
        assert h.shN.shape == (n, k, 3)


def test_sog_texture_layout(tmp_path):
    import zipfile
    from PIL import Image
    n = 700
    p = tmp_path / "s.sog"
    write_splats(p, make_scene(n, 1, seed=5))
    w, h = sog_texture_size(n)
    assert (w, h) == (28, 28)
    with zipfile.ZipFile(p) as z:
        names = set(z.namelist())
        assert names == {"meta.json", "means_l.webp", "means_u.webp", "quats.webp", "scales.webp", "sh0.webp",
                         "shN_centroids.webp", "shN_labels.webp"}
        assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())
        meta = json.loads(z.read("meta.json"))
        import io
        im = Image.open(io.BytesIO(z.read("quats.webp")))
        assert im.format == "WEBP" and im.size == (w, h)
        cen = Image.open(io.BytesIO(z.read("shN_centroids.webp")))
        assert cen.size[0] == 64 * 3 and cen.size[1] == math.ceil(meta["shN"]["count"] / 64)
        tags = np.asarray(im.convert("RGBA"))[..., 3].ravel()[:n]
        assert ((tags >= 252) & (tags <= 255)).all()
    assert meta["version"] == 2 and len(meta["scales"]["codebook"]) == 256


def test_sog_explicit_order_and_folder(tmp_path):
    n = 300
    g = make_scene(n, 1, seed=6)
    order = np.random.default_rng(1).permutation(n)
    folder = tmp_path / "out"
    write_splats(folder / "meta.json", g, order=order)
    assert (folder / "meta.json").is_file() and (folder / "means_l.webp").is_file()
    a = arrays(read_splats(folder / "meta.json"))
    b = arrays(read_splats(folder))  # the folder itself
    assert np.array_equal(a.means, b.means)
    t = arrays(g).take(order)
    tt = np.sign(t.means) * np.log1p(np.abs(t.means.astype(np.float64)))
    delta = (tt.max(0) - tt.min(0)) / (2 * 65535)
    assert_within("position", np.abs(a.means - t.means), (1 + np.abs(t.means)) * np.expm1(delta) + 1e-5)
    # a directory target ending in .sog is written as loose files too
    d = tmp_path / "dir.sog"
    d.mkdir()
    write_splats(d, g)
    assert (d / "meta.json").is_file()
    assert len(read_splats(d)) == n
    with pytest.raises(SplatFormatError):
        write_splats(tmp_path / "x.sog", g, order=np.zeros(n, int))  # not a permutation


def test_sog_kmeans_palette_for_larger_scene(tmp_path):
    """N > palette size exercises the k-means path: 2^floor(log2 N) entries."""
    from splatlab.io.sog import sh_palette_size
    n = 1500
    assert sh_palette_size(n) == 1024 and sh_palette_size(300000) == 65536 and sh_palette_size(1) == 1
    g = make_scene(n, 1, seed=7)
    p = tmp_path / "big.sog"
    write_splats(p, g, sh_iterations=3)
    meta = read_sog_meta(p)
    assert meta["shN"]["count"] == 1024
    h = arrays(read_splats(p))
    t = arrays(g).take(morton_order(g["means"]))
    err = np.abs(h.shN - t.shN)
    assert err.mean() < 0.15  # k-means with 1024 centroids for 1500 points: most are close


def spz_position_bound(path, means):
    fb = read_spz_header(path)["fractional_bits"]
    return 0.5 / (1 << fb) + F32 * (1 + np.abs(means))


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("degree", [0, 1, 2, 3])
@pytest.mark.parametrize("n", [1, 300])
def test_spz_within_quantisation_bound(tmp_path, degree, n, version):
    g = make_scene(n, degree, seed=30 + degree)
    p = tmp_path / "scene.spz"
    write_splats(p, g, version=version)
    hdr = read_spz_header(p)
    assert hdr["version"] == version and hdr["count"] == n and hdr["fractional_bits"] == 12
    h = arrays(read_splats(p))
    t = arrays(g)  # SPZ keeps the caller's order
    assert h.sh_degree == degree
    assert_within("position", np.abs(h.means - t.means), spz_position_bound(p, t.means))
    assert_within("opacity", np.abs(sig(h.opacities) - sig(t.opacities)), 0.5 / 255 + 1e-6)
    assert_within("f_dc", np.abs(h.sh0 - t.sh0), 0.5 / (255 * 0.15) + 1e-5)
    assert_within("log-scale", np.abs(h.scales - t.scales), 0.5 / 16 + 1e-5)
    if version == 3:
        assert_within("rotation", quat_error(h.quats, t.quats), smallest_three_bound(1 / (2 * 511 * math.sqrt(2))))
    else:
        q = unit_quats(t.quats)
        q = q * np.where(q[:, :1] < 0, -1.0, 1.0)
        e = 1 / 255  # half of the 2/255 step of q*127.5 + 127.5
        v = np.linalg.norm(q[:, 1:], axis=1)
        dv = math.sqrt(3) * e
        bound = np.sqrt(dv ** 2 + (2 * v + dv) * dv) + 1e-6  # |w'-w| <= sqrt(| |v|^2 - |v'|^2 |)
        assert_within("rotation", quat_error(h.quats, t.quats), bound)
    if degree:
        k = num_sh_bases(degree) - 1
        bucket = np.array([8 if j < 3 else 16 for j in range(k)], np.float64)[None, :, None]
        assert_within("SH", np.abs(h.shN - t.shN), bucket / 2 / 128 + 1e-6)


def test_spz_large_coordinates_lower_fractional_bits(tmp_path):
    g = make_scene(50, 0, seed=8)
    m = g["means"].detach().clone()
    m[0, 0] = 5000.0  # beyond the +-2048 of 12 fractional bits
    g = Gaussians.from_fields({**g.detached_fields(), "means": m})
    p = tmp_path / "far.spz"
    write_splats(p, g)
    fb = read_spz_header(p)["fractional_bits"]
    assert fb == 10
    h = arrays(read_splats(p))
    assert_within("position", np.abs(h.means - m.numpy()), spz_position_bound(p, m.numpy()))


def test_spz_sh_out_of_range_saturates(tmp_path):
    g = make_scene(4, 1, seed=9)
    sh = torch.tensor([5.0, -5.0, 0.5]).expand(4, 3, 3).contiguous()
    g = Gaussians.from_fields({**g.detached_fields(), "shN": sh})
    p = tmp_path / "sat.spz"
    write_splats(p, g)
    h = read_splats(p)["shN"].detach().numpy()
    assert np.allclose(h[..., 0], 127 / 128) and np.allclose(h[..., 1], -1.0)


@pytest.mark.parametrize("n", [1, 300])
def test_splat_within_quantisation_bound(tmp_path, n):
    g = make_scene(n, 2, seed=40)
    p = tmp_path / "scene.splat"
    write_splats(p, g)
    assert os.path.getsize(p) == 32 * n
    h = arrays(read_splats(p))
    t = arrays(g).take(importance_order(arrays(g)))
    assert h.sh_degree == 0
    assert np.array_equal(h.means, t.means)  # float32 stored as is
    assert_within("log-scale", np.abs(h.scales - t.scales), 1e-6 * (1 + np.abs(t.scales)))
    assert_within("f_dc", np.abs(h.sh0 - t.sh0), 0.5 / 255 / SH_C0 + 1e-5)
    assert_within("opacity", np.abs(sig(h.opacities) - sig(t.opacities)), 0.5 / 255 + 1e-6)
    q = unit_quats(t.quats)
    # round(q*128 + 128) clamped to 255: per component <= 1/256, or the clamp excess at q -> 1
    comp = np.maximum(0.5 / 128, (q * 128 + 128 - 255) / 128)
    bound = 2 * np.linalg.norm(comp, axis=1) + 1e-6  # normalising at most doubles the error
    assert_within("rotation", quat_error(h.quats, t.quats), bound)
    # the file order (checked exactly through the positions above) is by size x opacity, largest first
    key = np.exp(t.scales.astype(np.float64).sum(1)) * sig(t.opacities)
    assert (np.diff(key) <= 0).all()


def test_registry_and_detection(tmp_path):
    names = [f.name for f in formats()]
    assert names == ["ply", "compressed-ply", "sog", "spz", "splat"]
    g = make_scene(10, 1, seed=50)
    # content wins over a misleading extension when reading
    write_splats(tmp_path / "real.spz", g)
    os.replace(tmp_path / "real.spz", tmp_path / "disguised.ply")
    assert len(read_splats(tmp_path / "disguised.ply")) == 10
    write_splats(tmp_path / "c.compressed.ply", g)
    os.replace(tmp_path / "c.compressed.ply", tmp_path / "c.ply")  # plain name, chunk element inside
    h = read_splats(tmp_path / "c.ply")
    assert h.sh_degree == 1
    # an explicit format overrides the extension when writing
    write_splats(tmp_path / "forced.ply", g, format="compressed-ply")
    from splatlab.io import detect_format
    assert detect_format(tmp_path / "forced.ply").name == "compressed-ply"


def test_writes_are_atomic(tmp_path):
    g = make_scene(20, 0, seed=51)
    bad = Gaussians.from_fields({**g.detached_fields(),
                                 "means": torch.full((20, 3), float("nan"))})
    for ext in ["ply", "compressed.ply", "sog", "spz", "splat"]:
        p = tmp_path / f"keep.{ext}"
        write_splats(p, g)
        before = p.read_bytes()
        with pytest.raises(SplatFormatError, match="NaN positions"):
            write_splats(p, bad)
        assert p.read_bytes() == before, ext
    assert sorted(os.listdir(tmp_path)) == sorted(f"keep.{e}" for e in ["ply", "compressed.ply", "sog", "spz", "splat"])


def test_describe_and_cli(tmp_path, capsys):
    from splatlab.io.cli import export_main, info_main
    from splatlab.io.info import describe
    g = make_scene(300, 3, seed=52, extras=True)
    src = tmp_path / "in.ply"
    write_splats(src, g)
    d = describe(src)
    assert d["format"] == "ply" and d["count"] == 300 and d["sh_degree"] == 3
    assert d["file_size"] == os.path.getsize(src)
    assert np.allclose(d["bounds"]["min"], g["means"].detach().min(0).values.numpy())
    assert set(d["extras"]) == {"shape", "feat"}
    for out in ["o.compressed.ply", "o.spz", "o.splat", "o.sog"]:
        assert export_main([str(src), str(tmp_path / out), "-q"]) == 0
        d = describe(tmp_path / out)
        assert d["count"] == 300
        assert d["sh_degree"] == (0 if out.endswith("splat") else 3)
    assert describe(tmp_path / "o.spz")["details"]["version"] == 3
    assert export_main([str(src), str(tmp_path / "lo.spz"), "--sh-degree", "1", "-q"]) == 0
    assert describe(tmp_path / "lo.spz")["sh_degree"] == 1
    capsys.readouterr()
    assert info_main([str(tmp_path / "o.sog"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "sog" and info["count"] == 300
    assert info_main([str(tmp_path / "o.spz")]) == 0
    assert "splats          300" in capsys.readouterr().out
    (tmp_path / "junk.spz").write_bytes(b"\x1f\x8b\x08garbage")
    assert info_main([str(tmp_path / "junk.spz")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "junk.spz" in err and err.count("\n") == 1
    assert export_main([str(src), str(tmp_path / "o.xyz")]) == 1
    assert "o.xyz" in capsys.readouterr().err
