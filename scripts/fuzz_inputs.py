"""Bad-input fuzz of every `splatlab` verb: corrupt / truncated / NaN splat files (.ply, .spz, .sog),
bad images and COLMAP folders, malicious checkpoints, hostile CLI arguments and signals.

    nice -n 15 .venv/bin/python scripts/fuzz_inputs.py [--work .cache/fuzz] [--timeout 45] [-k FILTER]
                                                       [--code OTHER_CHECKOUT] [--json results.json]

`-k` runs the cases whose family or name contains FILTER (e.g. `-k render`, `-k train`); `--code`
runs the same cases against another source tree (e.g. an older commit unpacked with `git archive`),
which is how the before/after counts below were made.

Every case runs `python -m splatlab ...` in its own subprocess (its own temp folder, a wall-clock
timeout, an address-space cap) and is classified as one of

    clean      non-zero exit, no traceback, stderr's error is one line, nothing left behind
    traceback  a Python traceback on stderr
    hang       killed after the timeout
    partial    the command failed but left an output file, a temp file, or an incomplete SOG
    accepted   exit 0 on an input that should have been refused
    multiline  non-zero exit without a traceback but a multi-line error
    memory     peak RSS above 2 GB (decompression bombs, renders holding every view)
    tempname   the error names a temp file (`.x.ply.k3j2.tmp`) instead of the user's path
    codeexec   a pickled checkpoint ran code (a marker file appeared)
    lost       a signalled training left no checkpoint
    ok         a case that is meant to succeed did (e.g. SIGTERM saved a checkpoint)

and a summary table is printed. Inputs are generated from a fixed seed, so runs are reproducible.
It is NOT part of the test suite (~20 min with --jobs 5 on the loaded 2-core machine); the tests
(tests/test_reliability_*.py) cover one case of each family.

Measured 2026-12-06 (issue 13; shared 2-core machine, load 15-18, run as root):
    after, 278 cases:  259 clean, 18 ok, 1 traceback (`process` into /sys, fixed after the run and
                       re-checked with -k process), 0 hang / partial / accepted / multiline / memory /
                       tempname / codeexec / lost; peak RSS 0.60 GB
    before (bf9d113), the 69 cases of the families added here (huge positions, --out paths, render
                       sizes and streaming, predict/refine/triangulate/process, NaN points, 0x0 cameras):
                       28 clean, 12 ok, 15 traceback, 2 hang, 6 accepted, 2 multiline, 4 tempname
                       (after: 54 clean + 13 ok on the 67 of them with unchanged arguments)
    `render --views 200 --width 384 --height 384`: peak RSS 1.73 GB before (every view held), 0.43 GB after.
"""
from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MEMORY_LIMIT_GB = 2.0
ADDRESS_CAP = 12 << 30  # hard cap so a bomb cannot take the shared machine down


@dataclass
class Case:
    family: str
    name: str
    argv: list[str]
    outputs: list[str] = field(default_factory=list)  # must not exist after a failure
    expect_fail: bool = True
    signal_after: float | None = None  # send SIGTERM / SIGINT after this many seconds
    signal_kind: int = signal.SIGTERM
    must_exist: list[str] = field(default_factory=list)  # for signal cases: what must have been saved
    timeout: float | None = None
    may_succeed: bool = False  # either a clean error or a success that wrote every output in full
    peak_gb: float = 0.0  # measured: the case's peak RSS
    serves: bool = False  # a viewer that is meant to keep serving: still up at the timeout is fine


# ----------------------------------------------------------------------------------- inputs

def tiny_gaussians(n: int = 64, seed: int = 0):
    import torch

    from splatlab.gaussians import Gaussians

    g = torch.Generator().manual_seed(seed)
    return Gaussians(torch.randn(n, 3, generator=g), torch.randn(n, 4, generator=g),
                     torch.randn(n, 3, generator=g) * 0.2 - 3.0, torch.randn(n, generator=g),
                     torch.randn(n, 1, 3, generator=g) * 0.5, torch.randn(n, 3, 3, generator=g) * 0.1)


def make_blender_scene(root: Path, size: int = 16, n_train: int = 3, n_test: int = 1) -> Path:
    """A tiny nerf-synthetic layout with random images (enough for the loaders and a few steps)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("test", n_test)):
        (root / split).mkdir(parents=True, exist_ok=True)
        frames = []
        for j in range(n):
            Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(root / split / f"r_{j}.png")
            ang = 2 * math.pi * (j + (0.5 if split == "test" else 0.0)) / max(n, 1)
            eye = np.array([4 * math.cos(ang), 4 * math.sin(ang), 1.0])
            fwd = -eye / np.linalg.norm(eye)
            right = np.cross(fwd, [0, 0, 1.0])
            right /= np.linalg.norm(right)
            up = np.cross(right, fwd)
            c2w = np.eye(4)
            c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, up, -fwd, eye
            frames.append({"file_path": f"./{split}/r_{j}", "transform_matrix": c2w.tolist()})
        (root / f"transforms_{split}.json").write_text(json.dumps({"camera_angle_x": 0.8, "frames": frames}))
    return root


def make_colmap_scene(root: Path, size: int = 16) -> Path:
    from PIL import Image

    rng = np.random.default_rng(1)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "sparse" / "0").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(root / "images" / f"{i}.png")
        lines += [f"{i + 1} 1 0 0 0 {i * 0.1} 0 4 1 {i}.png", ""]
    (root / "sparse/0/cameras.txt").write_text(f"1 PINHOLE {size} {size} 20 20 8 8\n")
    (root / "sparse/0/images.txt").write_text("\n".join(lines) + "\n")
    pts = rng.normal(size=(20, 3))
    (root / "sparse/0/points3D.txt").write_text(
        "".join(f"{k + 1} {p[0]} {p[1]} {p[2]} 128 128 128 0.5\n" for k, p in enumerate(pts)))
    return root


def ply_points(path: Path, xyz: np.ndarray) -> None:
    head = (f"ply\nformat binary_little_endian 1.0\nelement vertex {len(xyz)}\n"
            "property float x\nproperty float y\nproperty float z\n"
            "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n")
    body = b"".join(struct.pack("<fffBBB", *map(float, p), 128, 128, 128) for p in xyz)
    path.write_bytes(head.encode() + body)


def zip_with(path: Path, members: dict[str, bytes], deflate: bool = False) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


class _Evil:
    """A pickle that creates a marker file when unpickled (proof of code execution)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def build_inputs(work: Path) -> dict[str, Path]:
    """All input files, generated from fixed seeds."""
    import torch

    from splatlab.gaussians import Gaussians
    from splatlab.io import write_splats

    inp = work / "inputs"
    if inp.exists():
        shutil.rmtree(inp)
    inp.mkdir(parents=True)
    rng = np.random.default_rng(1234)
    f: dict[str, Path] = {}
    g = tiny_gaussians()
    for ext in ("ply", "spz", "sog", "splat"):
        f[ext] = inp / f"good.{ext}"
        write_splats(f[ext], g)
    f["cply"] = inp / "good.compressed.ply"
    write_splats(f["cply"], g)
    good = {k: v.read_bytes() for k, v in f.items()}

    def put(name: str, data: bytes) -> None:
        f[name] = inp / name
        f[name].write_bytes(data)

    # --- .ply
    put("empty.ply", b"")
    put("random.ply", rng.bytes(4096))
    put("trunc_header.ply", good["ply"][:60])
    put("trunc_body.ply", good["ply"][:len(good["ply"]) - 100])
    put("trailing.ply", good["ply"] + b"\x00" * 64)
    head_end = good["ply"].index(b"end_header\n") + len(b"end_header\n")
    header = good["ply"][:head_end].decode("latin-1")
    put("huge_count.ply", header.replace("element vertex 64", "element vertex 4000000000").encode("latin-1")
        + good["ply"][head_end:])
    body = bytearray(good["ply"][head_end:])
    body[0:4] = struct.pack("<f", float("nan"))
    put("nan.ply", good["ply"][:head_end] + bytes(body))
    body = bytearray(good["ply"][head_end:])
    body[0:4] = struct.pack("<f", 3e38)
    put("huge_position.ply", good["ply"][:head_end] + bytes(body))
    put("bad_format.ply", good["ply"].replace(b"binary_little_endian", b"binary_middle_endian", 1))
    put("text.ply", b"ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nend_header\n1\nfoo\n")
    # --- .spz
    raw = gzip.decompress(good["spz"])
    put("empty.spz", b"")
    put("random.spz", rng.bytes(2048))
    put("trunc.spz", good["spz"][: len(good["spz"]) // 2])
    put("trailing.spz", gzip.compress(raw + b"\x00" * 100))
    put("count_big.spz", gzip.compress(raw[:8] + struct.pack("<I", 10_000_000) + raw[12:]))
    put("bomb.spz", gzip.compress(raw[:16] + b"\x00" * (1536 << 20), compresslevel=9))  # 1.5 GB inflated
    put("version9.spz", gzip.compress(raw[:4] + struct.pack("<I", 9) + raw[8:]))
    # --- .sog
    with zipfile.ZipFile(f["sog"]) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    meta = json.loads(members["meta.json"])
    put("empty.sog", b"")
    put("random.sog", b"PK\x03\x04" + rng.bytes(2048))
    put("trunc.sog", good["sog"][: len(good["sog"]) // 2])
    bomb = dict(members)
    bomb[meta["means"]["files"][0]] = b"\x00" * (1536 << 20)
    f["bomb.sog"] = inp / "bomb.sog"
    zip_with(f["bomb.sog"], bomb, deflate=True)
    for label, patch in [("meta_types", {"count": "64"}), ("meta_means_str", {"means": {"mins": "a", "maxs": 1,
                                                                                          "files": [1, 2]}}),
                         ("meta_codebook_str", {"scales": {"codebook": "abc", "files": ["x.webp"]}}),
                         ("meta_count_big", {"count": 10 ** 9}), ("meta_shn_types", {"shN": {"bands": "x"}}),
                         ("meta_list", None)]:
        m = dict(members)
        m["meta.json"] = json.dumps([1, 2] if patch is None else {**meta, **patch}).encode()
        f[f"{label}.sog"] = inp / f"{label}.sog"
        zip_with(f[f"{label}.sog"], m)
    m = dict(members)
    del m[meta["quats"]["files"][0]]
    f["missing_member.sog"] = inp / "missing_member.sog"
    zip_with(f["missing_member.sog"], m)
    m = dict(members)
    m[meta["quats"]["files"][0]] = b"RIFF\x00\x00\x00\x00WEBPjunk"
    f["bad_webp.sog"] = inp / "bad_webp.sog"
    zip_with(f["bad_webp.sog"], m)
    # --- .splat
    put("trunc.splat", good["splat"][:-7])
    put("empty.splat", b"")
    # --- checkpoints
    put("random.pt", rng.bytes(4096))
    put("empty.pt", b"")
    marker = work / "PWNED"
    f["marker"] = marker
    evil = inp / "evil.pt"
    torch.save({"config": {"scene": "x"}, "step": 1, "params": {}, "x": _Evil(str(marker))}, evil)
    f["evil.pt"] = evil
    run = inp / "evil_run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(evil, run / "checkpoints" / "step_0000001.pt")
    write_splats(run / "point_cloud.ply", g)
    os.utime(run / "checkpoints" / "step_0000001.pt", (1, 1))
    f["evil_run"] = run
    # --- scenes
    f["scene"] = make_blender_scene(inp / "scene")
    s = make_blender_scene(inp / "scene_nanpts")
    ply_points(s / "points3d.ply", np.array([[0, 0, 0], [np.nan, 1, 1], [1, 1, 1]], float))
    f["scene_nanpts"] = s
    s = make_blender_scene(inp / "scene_badpng")
    (s / "train" / "r_1.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    f["scene_badpng"] = s
    s = make_blender_scene(inp / "scene_emptypng", size=16)
    for p in (s / "train").glob("*.png"):
        p.write_bytes(b"")
    f["scene_emptypng"] = s
    from PIL import Image
    s = make_blender_scene(inp / "scene_modes")
    Image.fromarray(np.zeros((16, 16), np.uint16)).save(s / "train" / "r_0.png")  # I;16
    Image.new("P", (16, 16)).save(s / "train" / "r_1.png")
    f["scene_modes"] = s
    s = make_blender_scene(inp / "scene_nanpose")
    t = json.loads((s / "transforms_train.json").read_text())
    t["frames"][0]["transform_matrix"][0][0] = float("nan")
    (s / "transforms_train.json").write_text(json.dumps(t))
    f["scene_nanpose"] = s
    s = make_blender_scene(inp / "scene_badjson")
    (s / "transforms_train.json").write_text("{not json")
    f["scene_badjson"] = s
    f["colmap"] = make_colmap_scene(inp / "colmap")
    for label, edit in [("colmap_zero", lambda r: (r / "sparse/0/cameras.txt").write_text("1 PINHOLE 0 0 20 20 0 0\n")),
                        ("colmap_garbage", lambda r: (r / "sparse/0/images.txt").write_text("garbage\n1 2 3\n")),
                        ("colmap_nocams", lambda r: (r / "sparse/0/cameras.txt").unlink()),
                        ("colmap_nanpts", lambda r: (r / "sparse/0/points3D.txt").write_text(
                            "1 nan 0 0 1 1 1 0\n2 0 inf 0 1 1 1 0\n")),
                        ("colmap_model", lambda r: (r / "sparse/0/cameras.txt").write_text(
                            "1 FANCY_MODEL 16 16 1 2 3\n"))]:
        f[label] = make_colmap_scene(inp / label)
        edit(f[label])
    # finite but huge positions: every splat far out, one stray splat, a tiny scene far from the origin
    big = tiny_gaussians(16)
    for label, edit in [("all_1e30", lambda m: m * 1e30), ("stray_1e30", lambda m: torch.cat([m[:-1], m[-1:] * 0 + 1e30])),
                        ("offset_1e8", lambda m: m * 1e-4 + 1e8)]:
        g2 = Gaussians(edit(big.means.detach()), big.params["quats"].detach(), big.params["scales"].detach(),
                       big.params["opacities"].detach(), big.params["sh0"].detach(), big.params["shN"].detach())
        f[f"{label}.ply"] = inp / f"{label}.ply"
        write_splats(f[f"{label}.ply"], g2)
    # photos for the learned models
    from PIL import Image as _Image
    f["photo"] = inp / "photo.png"
    _Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(f["photo"])
    put("random.png", rng.bytes(3000))
    put("empty.png", b"")
    f["afile"] = inp / "a_file.txt"
    f["afile"].write_text("x")
    ro = inp / "readonly"
    ro.mkdir()
    os.chmod(ro, 0o555)
    f["readonly"] = ro
    return f


# ----------------------------------------------------------------------------------- cases

def build_cases(f: dict[str, Path], out: Path) -> list[Case]:
    cases: list[Case] = []
    S = lambda k: str(f[k])  # noqa: E731

    def add(family, name, argv, outputs=(), **kw):
        cases.append(Case(family, name, [str(a) for a in argv], [str(o) for o in outputs], **kw))

    splats = ["empty.ply", "random.ply", "trunc_header.ply", "trunc_body.ply", "trailing.ply", "huge_count.ply",
              "nan.ply", "bad_format.ply", "text.ply", "empty.spz", "random.spz", "trunc.spz", "trailing.spz",
              "count_big.spz", "bomb.spz", "version9.spz", "empty.sog", "random.sog", "trunc.sog", "bomb.sog",
              "meta_types.sog", "meta_means_str.sog", "meta_codebook_str.sog", "meta_count_big.sog",
              "meta_shn_types.sog", "meta_list.sog", "missing_member.sog", "bad_webp.sog", "trunc.splat",
              "empty.splat"]
    for name in splats:
        fam = name.rsplit(".", 1)[1]
        add(fam, f"info {name}", ["info", S(name)])
        add(fam, f"export {name}", ["export", S(name), out / f"x_{name}.ply"], [out / f"x_{name}.ply"])
        add(fam, f"render {name}", ["render", S(name), "--out", out / f"r_{name}.png", "--width", 16, "--height", 16],
            [out / f"r_{name}.png"])
        add(fam, f"view {name}", ["view", S(name), "--port", 0])
        add(fam, f"compress {name}", ["compress", S(name), "--out", out / f"c_{name}.sog", "--order", "morton"],
            [out / f"c_{name}.sog"])
    # rendering a finite but huge position: a clean error, or a picture when the rest of the scene frames
    for name in ("huge_position.ply", "all_1e30.ply", "stray_1e30.ply", "offset_1e8.ply"):
        o = out / f"hp_{name}.png"
        add("huge", f"render {name}", ["render", S(name), "--out", o, "--width", 16, "--height", 16], [o],
            may_succeed=True)
        add("huge", f"export {name}", ["export", S(name), out / f"hx_{name}.spz"], [out / f"hx_{name}.spz"],
            may_succeed=True)
        add("huge", f"compress {name}", ["compress", S(name), "--out", out / f"hc_{name}.sog", "--order", "morton"],
            [out / f"hc_{name}.sog"], may_succeed=True)
    # an unwritable place even for root (sysfs refuses new files), a file used as a folder, a folder as a file
    for verb, argv in [("render", ["render", S("ply"), "--width", 16, "--height", 16, "--out"]),
                       ("export", ["export", S("ply")]),
                       ("compress", ["compress", S("ply"), "--order", "morton", "--out"])]:
        ext = ".png" if verb == "render" else (".sog" if verb == "compress" else ".spz")
        add("out", f"{verb} --out in /sys", [*argv, f"/sys/splatlab_fuzz{ext}"])
        add("out", f"{verb} --out under a file", [*argv, f["afile"] / f"x{ext}"])
        if verb == "render":  # (for export and compress a folder is a valid loose-file SOG output)
            add("out", f"{verb} --out is a folder", [*argv, f["readonly"]])
        add("out", f"{verb} --out in read-only dir", [*argv, f["readonly"] / f"x{ext}"], [f["readonly"] / f"x{ext}"],
            may_succeed=os.geteuid() == 0)  # root writes anyway
    add("out", "predict --out in /sys", ["predict", "tgs", S("photo"), "--out", "/sys/splatlab_fuzz.ply"])
    add("out", "predict --out under a file", ["predict", "tgs", S("photo"), "--out", f["afile"] / "x.ply"])
    # render: views must be written as they are rendered (memory stays bounded) and sizes are bounded
    o = out / "stream.png"
    add("render", "render 200 views 384x384 (streamed)", ["render", S("ply"), "--out", o, "--views", 200, "--width", 384,
                                                          "--height", 384], [], expect_fail=False, timeout=240)
    add("render", "render elevation 90", ["render", S("ply"), "--out", out / "top.png", "--width", 16, "--height", 16,
                                          "--elevation", 90], expect_fail=False)
    add("render", "render 20000x10", ["render", S("ply"), "--out", out / "wide.png", "--width", 20000, "--height", 10],
        [out / "wide.png"])
    add("render", "render 5000x5000", ["render", S("ply"), "--out", out / "big.png", "--width", 5000, "--height", 5000],
        [out / "big.png"])
    add("render", "render time nan", ["render", S("ply"), "--out", out / "tn.png", "--time", "nan"], [out / "tn.png"])
    # learned models and the data verbs
    for name in ("random.png", "empty.png", "nan.ply"):
        add("model", f"predict tgs {name}", ["predict", "tgs", S(name), "--out", out / f"p_{name}.ply"],
            [out / f"p_{name}.ply"])
    add("model", "predict unknown model", ["predict", "nosuchmodel", S("photo"), "--out", out / "p.ply"])
    for name in ("random.ply", "nan.ply", "trailing.spz"):
        add("model", f"refine {name}", ["refine", S(name), "--out", out / f"rf_{name}.ply"], [out / f"rf_{name}.ply"])
    for key in ("colmap_zero", "colmap_nanpts", "scene_nanpose", "scene_badjson", "afile"):
        add("data", f"triangulate {key}", ["triangulate", S(key)])
    add("data", "process a file", ["process", S("afile"), out / "proc"], [out / "proc"])
    add("data", "process no photos", ["process", S("colmap_nocams") + "/sparse", out / "proc2"], [out / "proc2"])
    add("data", "process out in /sys", ["process", S("colmap") + "/images", "/sys/splatlab_fuzz_scene"])
    # render / export / view arguments
    good = S("ply")
    for name, extra in [("elevation nan", ["--elevation", "nan"]), ("elevation inf", ["--elevation", "inf"]),
                        ("huge views", ["--views", 10 ** 9]), ("huge size", ["--width", 10 ** 6, "--height", 10 ** 6]),
                        ("zero width", ["--width", 0]), ("background nan", ["--background", "nan", "0", "0"]),
                        ("views -1", ["--views", -1])]:
        add("cli", f"render {name}", ["render", good, "--out", out / "args.png", *extra], [out / "args.png"])
    add("cli", "render out is a dir", ["render", good, "--out", f["readonly"]])
    add("cli", "render out in unwritable dir", ["render", good, "--out", f["readonly"] / "x.png"],
        [f["readonly"] / "x.png"], may_succeed=os.geteuid() == 0)  # root writes anyway
    add("cli", "export sog-iterations -1", ["export", good, out / "it.sog", "--sog-iterations", -1], [out / "it.sog"])
    add("cli", "export sog-iterations huge", ["export", good, out / "ith.sog", "--sog-iterations", 10 ** 12],
        [out / "ith.sog"], timeout=60)
    add("cli", "export into unwritable dir", ["export", good, f["readonly"] / "x.spz"], [f["readonly"] / "x.spz"],
        may_succeed=os.geteuid() == 0)
    add("cli", "export unknown ext", ["export", good, out / "x.foo"], [out / "x.foo"])
    add("cli", "export out is a file's child", ["export", good, f["afile"] / "x.ply"])
    for name, extra in [("port 70000", ["--port", 70000]), ("port -1", ["--port", -1]),
                        ("host 999.1.1.1", ["--host", "999.1.1.1"]),
                        ("host invalid", ["--host", "no.such.host.invalid"]), ("max-res 0", ["--max-res", 0]),
                        ("max-res -5", ["--max-res", -5]), ("max-res 1e6", ["--max-res", 10 ** 6]),
                        ("max-cameras -1", ["--max-cameras", -1])]:
        add("view", f"view {name}", ["view", good, *extra])
    add("view", "view static port 70000", ["view", good, "--static", "--port", 70000])
    add("view", "view static host invalid", ["view", good, "--static", "--host", "no.such.host.invalid"])
    # checkpoints
    for name in ("random.pt", "empty.pt", "evil.pt"):
        add("ckpt", f"view {name}", ["view", S(name), "--port", 0])
        add("ckpt", f"train --resume {name}", ["train", "--resume", S(name), "--no-progress"])
        add("ckpt", f"export {name}", ["export", S(name), out / f"ck_{name}.ply"], [out / f"ck_{name}.ply"])
    add("ckpt", "view evil run folder", ["view", S("evil_run"), "--port", 0, "--no-cameras"], timeout=20,
        serves=True, expect_fail=False)  # its .ply is good: the viewer serves it, the checkpoint runs nothing
    # train arguments
    scene = S("scene")
    base = ["train", scene, "--iterations", 3, "--no-progress", "--eval-every", 0, "--save-every", 0]
    bad_train = [("reset-every 0", ["--reset-every", 0]), ("init-opacity 1", ["--init-opacity", 1]),
                 ("init-opacity nan", ["--init-opacity", "nan"]), ("init-scale -1", ["--init-scale", -1]),
                 ("backend foo", ["--backend", "foo"]), ("backend cuda", ["--backend", "cuda"]),
                 ("grad-threshold nan", ["--grad-threshold", "nan"]), ("grad-threshold -1", ["--grad-threshold", -1]),
                 ("refine-every 0", ["--refine-every", 0]), ("refine-start -5", ["--refine-start", -5]),
                 ("cap-max -1", ["--cap-max", -1]), ("max-eval-views -1", ["--max-eval-views", -1]),
                 ("seed -1", ["--seed", -1]), ("background nan", ["--background", "nan"]),
                 ("background-points -5", ["--background-points", -5]),
                 ("viewer port 70000", ["--viewer", "--viewer-port", 70000]),
                 ("viewer host invalid", ["--viewer", "--viewer-host", "no.such.host.invalid"]),
                 ("method-option junk", ["--method-option", "nope=1"]),
                 ("iterations -3", ["--iterations", -3]), ("sh-degree -1", ["--sh-degree", -1]),
                 ("batch-size 0", ["--batch-size", 0]), ("resolution 0", ["--resolution", 0]),
                 ("stop-at -1", ["--stop-at", -1]), ("nproc 0", ["--nproc", 0]),
                 ("pixels-per-gaussian nan", ["--pixels-per-gaussian", "nan"]),
                 ("prune-screen-size -1", ["--prune-screen-size", -1]), ("init-points -5", ["--init-points", -5]),
                 ("eval-every -1", ["--eval-every", -1]), ("refine-stop -1", ["--refine-stop", -1]),
                 ("grad-threshold inf", ["--grad-threshold", "inf"]), ("init-scale nan", ["--init-scale", "nan"]),
                 ("viewer max: port 65536", ["--viewer", "--viewer-port", 65536]),
                 ("viewer host 999.1.1.1", ["--viewer", "--viewer-host", "999.1.1.1"])]
    for i, (name, extra) in enumerate(bad_train):
        o = out / f"t{i}"
        add("train", f"train {name}", [*base, "--out", o, *extra], [o])
    add("train", "train out is a file", [*base, "--out", f["afile"]])
    add("train", "train out unwritable", [*base, "--out", f["readonly"] / "run"], [f["readonly"] / "run"],
        may_succeed=os.geteuid() == 0)
    add("train", "train out in /sys", [*base, "--out", "/sys/splatlab_fuzz_run"])
    add("train", "train out under a file", [*base, "--out", f["afile"] / "run"])
    # datasets
    for key in ("scene_nanpts", "scene_badpng", "scene_emptypng", "scene_modes", "scene_nanpose", "scene_badjson",
                "colmap_zero", "colmap_garbage", "colmap_nocams", "colmap_nanpts", "colmap_model"):
        o = out / f"d_{key}"
        add("data", f"train {key}", ["train", S(key), "--iterations", 2, "--no-progress", "--out", o], [o],
            expect_fail=(key != "scene_modes"))
    # signals: training must leave a resumable checkpoint and the .ply
    for sig, label in ((signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT")):
        o = out / f"sig_{label}"
        add("signal", f"train {label} mid-run", ["train", scene, "--iterations", 100000, "--no-progress",
                                                 "--out", o, "--eval-every", 0],
            signal_after=10.0, signal_kind=sig, must_exist=[o / "checkpoints"], expect_fail=False, timeout=150)
    return cases


# ----------------------------------------------------------------------------------- running

def _limit():
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_CAP, ADDRESS_CAP))
    os.setsid()


PARALLEL = False  # with --jobs > 1 a temp file only counts against the case whose output it is named after


def _leftovers(outputs: list[str], out: Path) -> list[str]:
    found = [o for o in outputs if os.path.exists(o) and not (os.path.isdir(o) and not any(Path(o).rglob("*.*")))]
    temps = [p for p in out.rglob("*") if p.name.startswith(".") and ".tmp" in p.name]
    if PARALLEL:
        temps = [p for p in temps if any(Path(o).name in p.name for o in outputs)]
    return found + [str(p) for p in temps]


def run_case(case: Case, python: str, env: dict, out: Path, timeout: float, marker: Path) -> tuple[str, str, float]:
    if marker.exists():
        marker.unlink()
    t0 = time.perf_counter()
    proc = subprocess.Popen([python, "-m", "splatlab", *case.argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, cwd=out, preexec_fn=_limit)
    limit = case.timeout or timeout
    signalled = False
    started = None
    hung = False
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        elapsed = time.perf_counter() - t0
        if case.signal_after is not None and not signalled:
            # count from the moment the run folder exists (training starts right after), so a slow,
            # loaded machine does not turn the case into "killed during imports"
            if started is None and (not case.must_exist or os.path.exists(case.must_exist[0])):
                started = elapsed
            if started is not None and elapsed - started > case.signal_after:
                os.kill(proc.pid, case.signal_kind)
                signalled = True
        if elapsed > limit:
            hung = True
            os.killpg(proc.pid, signal.SIGKILL)
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.05)
    rc = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode("utf-8", "replace")
    proc.stdout.read()
    secs = time.perf_counter() - t0
    rss_gb = usage.ru_maxrss / (1 << 20)
    case.peak_gb = rss_gb
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip() and "%|" not in ln and "it/s" not in ln
             and not ln.lstrip().startswith("warn")]
    detail = lines[-1][:150] if lines else f"rc={rc}"
    if marker.exists():
        return "codeexec", detail, secs
    if hung:
        if case.serves:
            return "ok", f"still serving after {limit:.0f} s (as it should), no code ran", secs
        return "hang", f"no exit within {limit:.0f} s", secs
    if rss_gb > MEMORY_LIMIT_GB:
        return "memory", f"peak RSS {rss_gb:.1f} GB", secs
    if "Traceback (most recent call last)" in stderr:
        return "traceback", detail, secs
    if case.signal_after is not None:
        missing = [m for m in case.must_exist if not any(Path(m).glob("*.pt"))]
        ply = Path(case.must_exist[0]).parent / "point_cloud.ply"
        if missing or not ply.is_file():
            return "lost", f"rc={rc}; no checkpoint" if missing else f"rc={rc}; no point_cloud.ply", secs
        return "ok", f"rc={rc}; checkpoint + .ply saved", secs
    if rc != 0 and ".tmp" in detail:
        return "tempname", detail, secs
    if not case.expect_fail:
        return ("ok" if rc == 0 else ("clean" if len(lines) == 1 else "multiline")), detail, secs
    if rc == 0 and case.may_succeed:
        missing = [o for o in case.outputs if not os.path.exists(o) or os.path.getsize(o) == 0]
        return ("partial", f"exit 0 but {Path(missing[0]).name} missing", secs) if missing else \
            ("ok", "exit 0 with complete output", secs)
    if rc == 0:
        return "accepted", "exit 0", secs
    left = _leftovers(case.outputs, out)
    if left:
        return "partial", f"left {Path(left[0]).name}", secs
    if len(lines) != 1:
        return "multiline", f"{len(lines)} lines: {detail}", secs
    return "clean", detail, secs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default=str(REPO / ".cache" / "fuzz"), help="scratch folder (recreated)")
    ap.add_argument("--timeout", type=float, default=45.0, help="seconds before a case counts as a hang")
    ap.add_argument("-k", dest="filter", help="only cases whose family or name contains this (comma-separated: any)")
    ap.add_argument("--code", default=str(REPO), help="splatlab source tree to test (default: this checkout)")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--json", help="also write the per-case results here")
    ap.add_argument("--jobs", type=int, default=1, help="cases run at once (the checkpoint and signal cases run alone)")
    args = ap.parse_args()
    work = Path(args.work).resolve()
    if work.exists():
        for p in work.rglob("*"):
            if p.is_dir():
                os.chmod(p, 0o755)
        shutil.rmtree(work)
    work.mkdir(parents=True)
    args.code = str(Path(args.code).resolve())  # the cases run with another cwd
    sys.path.insert(0, args.code)
    files = build_inputs(work)
    out = work / "out"
    out.mkdir()
    cases = build_cases(files, out)
    if args.filter:
        keys = [k for k in args.filter.split(",") if k]
        cases = [c for c in cases if any(k in c.family or k in c.name for k in keys)]
    env = {**os.environ, "PYTHONPATH": args.code, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1",
           "PYTHONWARNINGS": "ignore"}
    global PARALLEL
    PARALLEL = args.jobs > 1
    results: list[dict | None] = [None] * len(cases)
    done = [0]
    lock = threading.Lock()

    def one(i: int) -> None:
        case = cases[i]
        # the pickle cases share one marker file: run them alone (see below)
        kind, detail, secs = run_case(case, args.python, env, out, args.timeout, files["marker"])
        with lock:
            results[i] = {"family": case.family, "case": case.name, "outcome": kind, "detail": detail,
                          "peak_gb": round(case.peak_gb, 3), "seconds": round(secs, 1)}
            done[0] += 1
            print(f"[{done[0]:3d}/{len(cases)}] {kind:<9} {case.family:<6} {case.name:<36} {detail}", flush=True)

    serial = [i for i, c in enumerate(cases) if c.family in ("ckpt", "signal")]  # marker file / timing
    pooled = [i for i in range(len(cases)) if i not in serial]
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        list(pool.map(one, pooled))
    for i in serial:
        one(i)
    stray = [str(p) for p in out.rglob("*") if p.name.startswith(".") and ".tmp" in p.name]
    if stray:
        print(f"temp files left anywhere after all cases: {', '.join(stray[:5])}")
    results = [r for r in results if r is not None]
    kinds = ["clean", "ok", "traceback", "hang", "partial", "accepted", "multiline", "memory", "tempname", "codeexec",
             "lost"]
    fams = sorted({r["family"] for r in results})
    peak = max((r["peak_gb"] for r in results), default=0.0)
    print(f"\npeak RSS of any case: {peak:.2f} GB (limit {MEMORY_LIMIT_GB:.0f} GB)")
    print("family  " + " ".join(f"{k:>9}" for k in kinds) + "    total")
    for fam in fams + ["ALL"]:
        rows = [r for r in results if fam in ("ALL", r["family"])]
        print(f"{fam:<7} " + " ".join(f"{sum(r['outcome'] == k for r in rows):>9}" for k in kinds) + f"{len(rows):>9}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    for p in work.rglob("*"):
        if p.is_dir():
            os.chmod(p, 0o755)
    bad = sum(r["outcome"] not in ("clean", "ok") for r in results)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
