"""Cross-check against PlayCanvas's `splat-transform` CLI (npm @playcanvas/splat-transform).

Found at `.tools/node_modules/.bin/splat-transform` under the repo root or via $SPLAT_TRANSFORM; the
whole module is skipped when it is absent.  Install:
    npm install --prefix .tools @playcanvas/splat-transform@3.7.0

1. their encoders -> our readers: our .ply -> their compressed .ply / .sog / .spz (v3, and v4 when the
   optional `zstandard` package is installed) / .splat; our reader must decode each exactly as their own
   decoder does (their X -> .ply), and within a quantisation step of the truth.
2. our encoders -> their reader: our compressed .ply / .sog / .spz / .splat -> their .ply must equal our
   reader's decoding and lie within our derived bounds of the truth.
Scenes are tiny (300 splats; SH degree 1 for their SOG encoder, which is slow on CPU).
"""
from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "tests"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from splatlab.gaussians import SH_C0, Gaussians, num_sh_bases  # noqa: E402
from splatlab.io import morton_order, read_splats, write_splats  # noqa: E402
from splatlab.io._common import SceneArrays  # noqa: E402
from splatlab.io.sog import read_sog_meta  # noqa: E402
from splatlab.io.splat import importance_order  # noqa: E402
from test_io_roundtrip import (assert_within, chunk_ranges, quat_error, sig, smallest_three_bound,  # noqa: E402
                               unit_quats, unorm_bound)


def _find_tool() -> str | None:
    env = os.environ.get("SPLAT_TRANSFORM")
    cands = [env] if env else [str(ROOT / ".tools" / "node_modules" / ".bin" / "splat-transform")]
    for c in cands:
        if c and os.path.isfile(c) and os.access(c, os.X_OK) and shutil.which("node"):
            return c
    return None


TOOL = _find_tool()
pytestmark = pytest.mark.skipif(
    TOOL is None, reason="splat-transform CLI not found (set SPLAT_TRANSFORM or run "
                         "`npm install --prefix .tools @playcanvas/splat-transform`) or node missing")
N = 300
try:
    import zstandard  # noqa: F401
    HAVE_ZSTD = True
except ImportError:
    HAVE_ZSTD = False


def st(*args) -> None:
    r = subprocess.run([TOOL, "-q", "-w", *map(str, args)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"splat-transform {' '.join(map(str, args))} failed:\n{r.stdout}\n{r.stderr}"


def ext_scene(degree: int, seed: int) -> Gaussians:
    """Splats on a jittered unit grid (so positions match up unambiguously after reordering), with
    opacities whose 8-bit codes avoid 0 and 255 (their compressed-ply decoder maps those to +-inf) and
    unit quaternions (their .splat writer quantises q*128+128 without normalising first)."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.arange(7)] * 3, indexing="ij"), -1).reshape(-1, 3)[:N].astype(np.float64)
    means = grid - 3 + rng.uniform(-0.2, 0.2, (N, 3))
    k = num_sh_bases(degree) - 1
    t = lambda a: torch.from_numpy(np.asarray(a, np.float32))  # noqa: E731
    q = rng.normal(size=(N, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return Gaussians(t(means), t(q), t(rng.uniform(-6, 0, (N, 3))), t(rng.uniform(-4.5, 4.5, N)),
                     t(rng.uniform(-1.6, 1.6, (N, 1, 3))), t(rng.uniform(-0.9, 0.9, (N, k, 3))))


def arr(g) -> SceneArrays:
    return SceneArrays.from_gaussians(g)


def match(decoded: SceneArrays, truth: SceneArrays) -> SceneArrays:
    """Truth reordered to the decoded file's order, by nearest position (asserting a bijection)."""
    from scipy.spatial import cKDTree
    d, idx = cKDTree(truth.means.astype(np.float64)).query(decoded.means.astype(np.float64))
    assert d.max() < 0.05 and np.unique(idx).size == len(decoded), "positions do not pair up one-to-one"
    return truth.take(idx)


def same_decoding(ours: SceneArrays, theirs: SceneArrays, what: str, quat_tol: float = 1e-5) -> None:
    """Both readers decode the same bits with the same formulas: equal up to float32 rounding."""
    assert len(ours) == len(theirs), what
    assert np.allclose(ours.means, theirs.means, rtol=1e-6, atol=1e-6), f"{what}: positions differ"
    assert np.allclose(ours.scales, theirs.scales, rtol=1e-5, atol=1e-5), f"{what}: scales differ"
    assert np.allclose(ours.sh0, theirs.sh0, rtol=1e-5, atol=1e-5), f"{what}: colours differ"
    assert np.allclose(sig(ours.opacities), sig(theirs.opacities), atol=1e-6), f"{what}: opacities differ"
    assert quat_error(ours.quats, theirs.quats).max() <= quat_tol, f"{what}: rotations differ"
    assert ours.shN.shape == theirs.shN.shape, f"{what}: SH degree differs"
    assert np.allclose(ours.shN, theirs.shN, rtol=1e-5, atol=1e-5), f"{what}: SH differs"


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("ext")
    g3, g1 = ext_scene(3, 1), ext_scene(1, 2)
    write_splats(d / "src3.ply", g3)
    write_splats(d / "src1.ply", g1)
    return d, arr(g3), arr(g1)


# ---- 1. their encoders, our readers -----------------------------------------------------------


def _their_file(work, out_name: str, src: str, *extra) -> tuple[SceneArrays, SceneArrays]:
    d = work[0]
    st(*extra, d / src, d / out_name)
    ours = arr(read_splats(d / out_name))
    back = d / (out_name.replace(".", "_") + ".back.ply")
    st(d / out_name, back)
    return ours, arr(read_splats(back))


def test_their_compressed_ply(work):
    ours, theirs = _their_file(work, "t.compressed.ply", "src3.ply")
    same_decoding(ours, theirs, "compressed ply")
    t = match(ours, work[1])
    for name, true, dec in [("position", t.means, ours.means), ("log-scale", t.scales, ours.scales)]:
        rng = chunk_ranges(true)
        bound = np.stack([unorm_bound(rng[:, a], b) for a, b in enumerate((11, 10, 11))], 1) + 1e-5
        assert_within(name, np.abs(dec - true), bound)
    rgb = 0.5 + SH_C0 * t.sh0.astype(np.float64)
    assert_within("f_dc", np.abs(ours.sh0 - t.sh0), unorm_bound(chunk_ranges(rgb), 8) / SH_C0 + 1e-5)
    assert_within("opacity", np.abs(sig(ours.opacities) - sig(t.opacities)), 0.5 / 255 + 1e-6)
    assert_within("rotation", quat_error(ours.quats, t.quats), smallest_three_bound(math.sqrt(2) / (2 * 1023)))
    assert_within("SH", np.abs(ours.shN - t.shN), 8 / 256 + 1e-6)


def test_their_sog(work):
    ours, theirs = _their_file(work, "t.sog", "src1.ply", "-g", "cpu", "-i", "3")
    same_decoding(ours, theirs, "sog")
    t = match(ours, work[2])
    meta = read_sog_meta(work[0] / "t.sog")
    assert meta["count"] == N and meta["shN"]["bands"] == 1
    # their encoder truncates instead of rounding: allow one full 16-bit / 8-bit step
    tt = np.sign(t.means) * np.log1p(np.abs(t.means.astype(np.float64)))
    step = (tt.max(0) - tt.min(0)) / 65535
    assert_within("position", np.abs(ours.means - t.means), (1 + np.abs(t.means)) * np.expm1(step) + 1e-5)
    assert_within("rotation", quat_error(ours.quats, t.quats), smallest_three_bound(2 / (255 * math.sqrt(2))))
    assert_within("opacity", np.abs(sig(ours.opacities) - sig(t.opacities)), 1 / 255 + 1e-6)
    for key, true, dec in [("scales", t.scales, ours.scales), ("sh0", t.sh0, ours.sh0)]:
        cb = np.sort(np.asarray(meta[key]["codebook"], np.float64))
        assert np.isin(dec.astype(np.float32), cb.astype(np.float32)).all(), key
        # within one codebook entry of the bracketing pair
        i = np.searchsorted(cb, true.astype(np.float64))
        lo, hi = cb[np.clip(i - 2, 0, cb.size - 1)], cb[np.clip(i + 1, 0, cb.size - 1)]
        assert ((dec >= lo - 1e-6) & (dec <= hi + 1e-6)).all(), key
    assert np.isin(ours.shN.astype(np.float32), np.asarray(meta["shN"]["codebook"], np.float32)).all()
    assert np.abs(ours.shN - t.shN).mean() < 0.2


@pytest.mark.parametrize("version", [3, 4])
def test_their_spz(work, version):
    if version == 4 and not HAVE_ZSTD:
        pytest.skip("reading SPZ v4 needs the optional 'zstandard' package")
    ours, theirs = _their_file(work, f"t{version}.spz", "src3.ply", "--spz-version", version)
    same_decoding(ours, theirs, f"spz v{version}")
    t = match(ours, work[1])
    assert_within("position", np.abs(ours.means - t.means), 1.0 / 4096 + 1e-6)  # one step of 12 fractional bits
    assert_within("opacity", np.abs(sig(ours.opacities) - sig(t.opacities)), 1 / 255 + 1e-6)
    assert_within("f_dc", np.abs(ours.sh0 - t.sh0), 1 / (255 * 0.15) + 1e-5)
    assert_within("log-scale", np.abs(ours.scales - t.scales), 1 / 16 + 1e-5)
    assert_within("rotation", quat_error(ours.quats, t.quats), smallest_three_bound(1 / (511 * math.sqrt(2))))
    k = t.shN.shape[1]
    bucket = np.array([8 if j < 3 else 16 for j in range(k)], np.float64)[None, :, None]
    assert_within("SH", np.abs(ours.shN - t.shN), (bucket / 2 + 1) / 128 + 1e-6)


def test_their_splat(work):
    ours, theirs = _their_file(work, "t.splat", "src3.ply")
    # their reader decodes rotation bytes as b/127.5 - 1, the format (and ours) as (b - 128)/128
    same_decoding(ours, SceneArrays(theirs.means, theirs.quats, theirs.scales, theirs.opacities, theirs.sh0,
                                    theirs.shN[:, :0]), "splat", quat_tol=2 * math.sqrt(4) / 128)
    t = match(ours, work[1])
    assert np.array_equal(ours.means, t.means)
    assert_within("f_dc", np.abs(ours.sh0 - t.sh0), 1 / 255 / SH_C0 + 1e-5)
    assert_within("opacity", np.abs(sig(ours.opacities) - sig(t.opacities)), 1 / 255 + 1e-6)
    assert_within("rotation", quat_error(ours.quats, t.quats), 2 * 2 / 128 + 1e-6)


# ---- 2. our encoders, their reader ------------------------------------------------------------


@pytest.mark.parametrize("name", ["o.compressed.ply", "o.sog", "o.spz", "o.splat", "o2.spz"])
def test_our_files_read_by_them(work, name):
    d, t3, _ = work
    g = t3.to_gaussians()
    opts = {"version": 2} if name == "o2.spz" else {}
    write_splats(d / name, g, **opts)
    back = d / (name.replace(".", "_") + ".back.ply")
    st(d / name, back)
    theirs = arr(read_splats(back))
    ours = arr(read_splats(d / name))
    if name.endswith(".splat"):
        same_decoding(ours, SceneArrays(theirs.means, theirs.quats, theirs.scales, theirs.opacities, theirs.sh0,
                                        theirs.shN[:, :0]), name, quat_tol=2 * math.sqrt(4) / 128)
        t = t3.take(importance_order(t3))
        q = unit_quats(t.quats)
        comp = np.maximum(0.5 / 128, (q * 128 + 128 - 255) / 128) + 0.5 / 128  # + their decoder's offset
        assert_within("rotation", quat_error(theirs.quats, t.quats), 2 * np.linalg.norm(comp, axis=1) + 1e-6)
        assert np.array_equal(theirs.means, t.means)
        return
    same_decoding(ours, theirs, name)
    if name.endswith(".spz"):
        t = t3
        assert_within("position", np.abs(theirs.means - t.means), 0.5 / 4096 + 1e-6)
        assert_within("SH", np.abs(theirs.shN - t.shN), 8 / 128 + 1e-6)
    else:
        t = t3.take(morton_order(t3.means))
    if name.endswith(".compressed.ply"):
        rng = chunk_ranges(t.means)
        bound = np.stack([unorm_bound(rng[:, a], b) for a, b in enumerate((11, 10, 11))], 1) + 1e-5
        assert_within("position", np.abs(theirs.means - t.means), bound)
    if name.endswith(".sog"):
        tt = np.sign(t.means) * np.log1p(np.abs(t.means.astype(np.float64)))
        delta = (tt.max(0) - tt.min(0)) / (2 * 65535)
        assert_within("position", np.abs(theirs.means - t.means), (1 + np.abs(t.means)) * np.expm1(delta) + 1e-5)
    assert_within("opacity", np.abs(sig(theirs.opacities) - sig(t.opacities)), 0.5 / 255 + 1e-6)
    if name == "o2.spz":  # v2 keeps xyz (w >= 0) and rebuilds w, which is ill-conditioned near w = 0
        q = unit_quats(t.quats)
        v = np.linalg.norm(q[:, 1:], axis=1)
        dv = math.sqrt(3) / 255
        assert_within("rotation", quat_error(theirs.quats, t.quats), np.sqrt(dv ** 2 + (2 * v + dv) * dv) + 1e-6)
    else:
        e = {"o.compressed.ply": math.sqrt(2) / (2 * 1023), "o.sog": 1 / (255 * math.sqrt(2)),
             "o.spz": 1 / (2 * 511 * math.sqrt(2))}[name]
        assert_within("rotation", quat_error(theirs.quats, t.quats), smallest_three_bound(e))
