"""PlayCanvas SOG version 2: `meta.json` + lossless RGBA WebP textures, as loose files or a `.sog` ZIP.

Splat i (after ordering) lives at texel i, row-major, in W x H textures with
W = ceil(sqrt(N)/4)*4 and H = ceil(N/W/4)*4.

- means_l / means_u: 16-bit t = sign(v)*ln(1+|v|) against meta means.mins/maxs (low/high byte).
- quats: smallest three components * sqrt2 as 255*(c/2 + 0.5); alpha = 252 + index of the largest (0 = w).
- scales: rgb index a shared 256-entry codebook of log-scales.
- sh0: rgb index a 256-entry codebook of f_dc; alpha = 255*sigmoid(opacity).
- shN: a k-means palette of SH vectors (shN_centroids, entries quantised with another 256-entry
  codebook) and a per-splat 16-bit label (shN_labels, R + 256*G).
"""
from __future__ import annotations

import io
import json
import math
import os
import shutil
import struct
import tempfile
import zipfile
import zlib

import numpy as np
import torch

from splatlab.gaussians import Gaussians, num_sh_bases

from ._common import (SceneArrays, SplatFormatError, as_arrays, atomic_write, check_finite, check_writable,
                      check_order, logit, morton_order, normalize_quats, sigmoid)

SQRT2 = math.sqrt(2.0)
FILES = {"means": ["means_l.webp", "means_u.webp"], "scales": ["scales.webp"], "quats": ["quats.webp"],
         "sh0": ["sh0.webp"], "shN": ["shN_centroids.webp", "shN_labels.webp"]}


def sog_texture_size(n: int) -> tuple[int, int]:
    """(width, height) of the SOG textures holding n splats; splat i sits at (i % W, i // W)."""
    w = max(4, int(math.ceil(math.sqrt(n) / 4)) * 4)
    h = max(4, int(math.ceil(n / w / 4)) * 4)
    return w, h


def sh_palette_size(n: int) -> int:
    """PlayCanvas's palette size: min(64, 2^floor(log2(N/1024))) * 1024."""
    if n <= 0:
        return 0
    return int(min(64.0, 2.0 ** math.floor(math.log2(n / 1024.0))) * 1024)


# ---------------------------------------------------------------------------------------------
# quantisers


def _check_weights(weights, n: int, who: str) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64).ravel()
    if w.shape != (n,) or not np.all(np.isfinite(w)) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"{who} weights must be finite, >= 0, not all 0, one per value ({w.size} for {n})")
    return w


def kmeans_1d(values: np.ndarray, k: int = 256, iterations: int = 30, weights: np.ndarray | None = None,
              digits: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means on scalars; returns (codebook (k,) float32 ascending, labels uint8/uint16).

    Works on the sorted data with prefix sums, so each iteration is O(k log n).  When the data has
    at most k distinct values the codebook holds them exactly (up to `digits`).  `weights` (one per value, >= 0)
    make it minimise the weighted squared error, so entries go where the weight is (the compressor
    passes how much each splat shows in the training views).  `digits` rounds the entries to that
    many significant digits, so they print short in meta.json.  Labels are nearest-entry indices
    against the float32 codebook actually stored (after rounding).
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        return np.zeros(k, np.float32), np.zeros(0, np.uint8)
    w = np.ones_like(v) if weights is None else _check_weights(weights, v.size, "kmeans_1d")
    srt = np.argsort(v, kind="stable")
    s, ws = v[srt], w[srt]
    uniq = np.unique(s)
    if uniq.size <= k:
        cb = uniq
    else:
        cw = np.cumsum(ws)
        targets = (np.arange(k) + 0.5) / k * cw[-1]
        cb = np.unique(s[np.minimum(np.searchsorted(cw, targets), s.size - 1)])  # weighted quantiles
        csum = np.concatenate([[0.0], np.cumsum(s * ws)])
        cwt = np.concatenate([[0.0], cw])
        for _ in range(iterations):
            edges = np.searchsorted(s, (cb[:-1] + cb[1:]) / 2)
            lo = np.concatenate([[0], edges])
            hi = np.concatenate([edges, [s.size]])
            mass = cwt[hi] - cwt[lo]
            new = np.where(mass > 0, (csum[hi] - csum[lo]) / np.where(mass > 0, mass, 1.0), cb)
            new = np.unique(new)
            if new.size == cb.size and np.allclose(new, cb, rtol=0, atol=1e-12):
                cb = new
                break
            cb = new
    if digits is not None:
        cb = np.array([float(f"{x:.{int(digits)}g}") for x in cb.astype(np.float32).astype(np.float64)])
    cb32 = np.sort(cb.astype(np.float32))
    cb32 = np.concatenate([cb32, np.repeat(cb32[-1:], k - cb32.size)])  # pad to k entries
    return cb32, nearest_1d(v, cb32)


def nearest_1d(v: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    cb = codebook.astype(np.float64)
    idx = np.clip(np.searchsorted(cb, v), 1, cb.size - 1)
    left = cb[idx - 1]
    right = cb[idx]
    pick = np.where(np.abs(v - left) <= np.abs(right - v), idx - 1, idx)
    return pick.astype(np.uint8 if cb.size <= 256 else np.uint16)


def _nearest_rows(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Index of the nearest row of c for every row of x (squared Euclidean), in memory-bounded blocks."""
    out = torch.empty(x.shape[0], dtype=torch.int64)
    cc = (c * c).sum(1)
    block = max(1, (1 << 24) // max(1, c.shape[0]))
    for s in range(0, x.shape[0], block):
        xb = x[s:s + block]
        d = torch.addmm(cc[None, :], xb, c.T, beta=1.0, alpha=-2.0)  # |c|^2 - 2 x.c (|x|^2 is constant per row)
        out[s:s + block] = d.argmin(1)
    return out


def kmeans_rows(x: np.ndarray, k: int, iterations: int = 10, seed: int = 0,
                weights: np.ndarray | None = None) -> np.ndarray:
    """Lloyd's k-means on row vectors (float32 torch, CPU); returns the (k', D) centroids (k' <= k).
    With `weights` (one per row) it minimises the weighted squared error and seeds the centroids
    from rows drawn with probability proportional to weight."""
    uniq = np.unique(x, axis=0)
    if uniq.shape[0] <= k:
        return uniq.astype(np.float32)
    g = torch.Generator().manual_seed(seed)
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if weights is None:
        ut = torch.from_numpy(uniq.astype(np.float32))
        c = ut[torch.randperm(ut.shape[0], generator=g)[:k]].clone()
        wt = torch.ones(xt.shape[0])
    else:
        wt = torch.from_numpy(_check_weights(weights, xt.shape[0], "kmeans_rows").astype(np.float32))
        seeds = torch.multinomial(wt.double(), min(k, int((wt > 0).sum())), replacement=False, generator=g)
        c = xt[seeds].clone()
    for _ in range(iterations):
        lab = _nearest_rows(xt, c)
        sums = torch.zeros_like(c).index_add_(0, lab, xt * wt[:, None])
        mass = torch.zeros(c.shape[0], dtype=c.dtype).index_add_(0, lab, wt)
        nonempty = mass > 0
        c[nonempty] = sums[nonempty] / mass[nonempty, None]
    return c.numpy()


# ---------------------------------------------------------------------------------------------
# textures


def _encode_webp(rgba: np.ndarray, effort: int = 4) -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgba, dtype=np.uint8), "RGBA").save(
        buf, format="WEBP", lossless=True, exact=True, quality=100, method=effort)
    return buf.getvalue()


def _decode_webp(path, name: str, data: bytes, max_texels: int | None = None) -> np.ndarray:
    from PIL import Image
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.format != "WEBP":
                raise SplatFormatError(path, f"{name} is {im.format or 'unknown'} data, not WebP")
            if max_texels is not None and im.size[0] * im.size[1] > max_texels:
                raise SplatFormatError(path, f"{name} is {im.size[0]}x{im.size[1]} texels, far more than the "
                                             f"header's count needs (corrupt or a decompression bomb)")
            im.load()
            return np.asarray(im.convert("RGBA"))
    except SplatFormatError:
        raise
    except Exception as e:  # PIL raises UnidentifiedImageError, OSError, SyntaxError, ValueError ...
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SplatFormatError(path, f"corrupt texture {name}: {msg}") from None


def _texture(values: np.ndarray, w: int, h: int, fill_alpha: int = 255) -> np.ndarray:
    """(N, C<=4) uint8 rows -> (h, w, 4) texture, splat i at texel i; rest zero (alpha fill_alpha)."""
    tex = np.zeros((w * h, 4), np.uint8)
    tex[:, 3] = fill_alpha
    tex[: values.shape[0], : values.shape[1]] = values
    return tex.reshape(h, w, 4)


# ---------------------------------------------------------------------------------------------
# writing


def _json_float(x) -> float:
    """The shortest decimal that reads back as the same float32 (what readers store it in); keeps
    meta.json's three 256-entry codebooks about half the size of float64 reprs."""
    return float(np.format_float_positional(np.float32(x), unique=True, trim="-"))


CODEBOOK_DIGITS = 5  # meta.json codebook entries: relative error 5e-5, far below 256-entry spacing; ~25% shorter


class _Quantized:
    """Everything of a SOG that does not depend on the texel order: per-splat texel rows (in the
    scene's own row order), the palette texture and meta.json's fields."""

    def __init__(self, rows: dict, fill: dict, fixed: dict, meta: dict) -> None:
        self.rows, self.fill, self.fixed, self.meta = rows, fill, fixed, meta


def quantize_sog(gaussians: Gaussians | SceneArrays, *, sh_iterations: int = 10, sh_palette: int | None = None,
                 means_bits: int = 16, weights: np.ndarray | None = None, path="<sog>") -> _Quantized:
    """Quantise a scene for SOG once; `layout_sog` then lays it out in any texel order. Every
    quantiser here (means range, 1-D codebooks, SH palette) is a function of the value multiset, not
    of the row order, so the decoded values are the same whatever order is chosen.

    `means_bits` < 16 rounds the 16-bit log-positions to multiples of 2^(16 - bits) (still a valid
    16-bit SOG; the low-byte texture then holds only bits - 8 significant bits, which WebP codes in
    that many bits instead of 8 of near-noise). Error per axis, in t = sign(v) ln(1 + |v|):
    <= (max - min) * 2^(16 - bits) / 65535 (half that away from the top code).

    `weights` (one per splat, >= 0) weight the scale and colour codebooks and the SH palette
    towards the splats that show most (see `compress.importance`); None weighs all alike."""
    if not 9 <= int(means_bits) <= 16:
        raise ValueError(f"means_bits must be 9..16, got {means_bits}")
    scene = as_arrays(gaussians)
    n = len(scene)
    check_writable(path, scene, "SOG")
    rows: dict[str, np.ndarray] = {}
    fill = {"quats.webp": 0}

    # means: log transform, 16 bits per axis
    m = scene.means.astype(np.float64)
    t = np.sign(m) * np.log1p(np.abs(m))
    tmin, tmax = t.min(0), t.max(0)
    rng = tmax - tmin
    u = np.where(rng > 0, (t - tmin) / np.where(rng > 0, rng, 1.0), 0.0)
    step = 1 << (16 - int(means_bits))
    q16 = (np.minimum(np.round(u * (65535.0 / step)), 65535 // step) * step).astype(np.uint32)
    rows["means_l.webp"] = (q16 & 0xFF).astype(np.uint8)
    rows["means_u.webp"] = (q16 >> 8).astype(np.uint8)

    # quats: smallest three
    q = normalize_quats(scene.quats)
    i = np.argmax(np.abs(q), axis=1)
    ar = np.arange(n)
    q = q * np.where(q[ar, i] < 0, -1.0, 1.0)[:, None]
    others = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])[i]
    small = np.stack([q[ar, others[:, j]] for j in range(3)], axis=1)
    qb = np.clip(np.round(255.0 * (small * SQRT2 * 0.5 + 0.5)), 0, 255).astype(np.uint8)
    rows["quats.webp"] = np.concatenate([qb, (252 + i)[:, None].astype(np.uint8)], 1)

    # scales and colours: shared 256-entry codebooks
    if weights is not None:
        weights = _check_weights(weights, n, "quantize_sog")
    w3 = None if weights is None else np.repeat(weights, 3)
    scb, slab = kmeans_1d(scene.scales, weights=w3, digits=CODEBOOK_DIGITS)
    rows["scales.webp"] = slab.reshape(n, 3)
    ccb, clab = kmeans_1d(scene.sh0, weights=w3, digits=CODEBOOK_DIGITS)
    alpha = np.clip(np.round(sigmoid(scene.opacities) * 255.0), 0, 255).astype(np.uint8)
    rows["sh0.webp"] = np.concatenate([clab.reshape(n, 3), alpha[:, None]], 1)

    meta: dict = {
        "version": 2,
        "asset": {"generator": "splatlab"},
        "count": n,
        "means": {"mins": [float(x) for x in tmin], "maxs": [float(x) for x in tmax], "files": FILES["means"]},
        "scales": {"codebook": [_json_float(x) for x in scb], "files": FILES["scales"]},
        "quats": {"files": FILES["quats"]},
        "sh0": {"codebook": [_json_float(x) for x in ccb], "files": FILES["sh0"]},
    }
    fixed: dict[str, np.ndarray] = {}
    k = scene.shN.shape[1]
    if k:
        bands = scene.sh_degree
        flat = scene.shN.transpose(0, 2, 1).reshape(n, 3 * k)  # channel-major f_rest order
        pal_size = sh_palette or sh_palette_size(n)
        pal_size = int(max(1, min(pal_size, 65536)))
        cent = kmeans_rows(flat, pal_size, sh_iterations, weights=weights)
        ncent = cent.shape[0]
        shcb, shlab = kmeans_1d(cent, digits=CODEBOOK_DIGITS)
        shlab = shlab.reshape(ncent, 3 * k)
        # final labels: nearest entry of the palette as a reader will decode it
        decoded = shcb[shlab.astype(np.int64)]
        labels = _nearest_rows(torch.from_numpy(flat.astype(np.float32)), torch.from_numpy(decoded)).numpy()
        rows_c = int(math.ceil(ncent / 64))
        ctex = np.zeros((rows_c, 64 * k, 4), np.uint8)
        ctex[..., 3] = 255
        j = np.arange(ncent)
        for c in range(k):
            for ch in range(3):
                ctex[j // 64, (j % 64) * k + c, ch] = shlab[:, ch * k + c]
        fixed["shN_centroids.webp"] = ctex
        rows["shN_labels.webp"] = np.stack([labels & 0xFF, labels >> 8], axis=1).astype(np.uint8)
        meta["shN"] = {"count": ncent, "bands": bands, "codebook": [_json_float(x) for x in shcb],
                       "files": FILES["shN"]}
    return _Quantized(rows, fill, fixed, meta)


def layout_sog(qz: _Quantized, order, *, webp_effort: int = 4, path="<sog>",
               fixed_cache: dict | None = None) -> dict[str, bytes]:
    """{filename: bytes} of a quantised scene with texel i holding splat order[i]. `fixed_cache`
    (a dict) keeps the order-independent encoded textures between calls."""
    n = qz.meta["count"]
    order = check_order(path, order, n)
    w, h = sog_texture_size(n)
    files: dict[str, bytes] = {}
    for name, r in qz.rows.items():
        files[name] = _encode_webp(_texture(r[order], w, h, qz.fill.get(name, 255)), webp_effort)
    for name, tex in qz.fixed.items():
        if fixed_cache is not None and name in fixed_cache:
            files[name] = fixed_cache[name]
        else:
            files[name] = _encode_webp(tex, webp_effort)
            if fixed_cache is not None:
                fixed_cache[name] = files[name]
    files["meta.json"] = json.dumps(qz.meta).encode()
    return files


def encode_sog(gaussians: Gaussians | SceneArrays, *, order=None, sh_iterations: int = 10,
               sh_palette: int | None = None, webp_effort: int = 4, path="<sog>") -> dict[str, bytes]:
    """Encode a scene into {filename: bytes} (meta.json plus the WebP textures)."""
    scene = as_arrays(gaussians)
    qz = quantize_sog(scene, sh_iterations=sh_iterations, sh_palette=sh_palette, path=path)
    order = morton_order(scene.means) if order is None else order
    return layout_sog(qz, order, webp_effort=webp_effort, path=path)


def _is_folder_target(path: str, bundle: bool | None) -> tuple[bool, str]:
    if os.path.basename(path).lower().endswith(".json"):
        return True, os.path.dirname(os.path.abspath(path))
    if bundle is None:
        bundle = not (os.path.isdir(path) or path.endswith(("/", os.sep)))
    return (not bundle), path


def write_sog(path, gaussians: Gaussians | SceneArrays, order=None, *, bundle: bool | None = None,
              sh_iterations: int = 10, sh_palette: int | None = None, webp_effort: int = 4) -> None:
    """Write SOG v2.  `x.sog` -> ZIP bundle; `dir/meta.json`, an existing directory or a path ending in
    '/' (or bundle=False) -> loose files.  `order` is a permutation: texel i holds splat order[i]
    (default: Morton order of the means)."""
    files = encode_sog(gaussians, order=order, sh_iterations=sh_iterations, sh_palette=sh_palette,
                       webp_effort=webp_effort, path=os.fspath(path))
    write_sog_files(path, files, bundle=bundle)


def _write_sog_folder(target: str, files: dict[str, bytes], meta_name: str) -> None:
    """Write loose SOG files so that a failure leaves the old folder as it was: everything goes into a
    temp folder beside `target` first. A folder holding only a SOG (or nothing) is then swapped whole;
    a folder shared with other files gets the new files renamed in one by one, meta last."""
    target = os.path.abspath(target)
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    existing = os.listdir(target) if os.path.isdir(target) else []
    only_sog = all(n in (meta_name, "meta.json") or n.endswith(".webp") for n in existing)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=parent)
    try:
        names = {name: (meta_name if name == "meta.json" else name) for name in files}
        for name, data in files.items():
            with open(os.path.join(tmp, names[name]), "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(os.path.join(tmp, names[name]), 0o644)
        os.chmod(tmp, 0o755)
        if not existing or only_sog:
            old = None
            if os.path.isdir(target):
                old = tmp + ".old"
                os.replace(target, old)
            try:
                os.replace(tmp, target)
            except BaseException:
                if old is not None:
                    os.replace(old, target)
                raise
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        else:
            for name in sorted(files, key=lambda n: n == "meta.json"):  # meta last: marks completion
                os.replace(os.path.join(tmp, names[name]), os.path.join(target, names[name]))
            os.rmdir(tmp)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


def write_sog_files(path, files: dict[str, bytes], *, bundle: bool | None = None) -> None:
    """Write encoded SOG files (from `encode_sog` / `layout_sog`) as a bundle or loose files (see
    `write_sog`), atomically."""
    path = os.fspath(path)
    folder, target = _is_folder_target(path, bundle)
    if folder:
        meta_name = os.path.basename(path) if path.lower().endswith(".json") else "meta.json"
        _write_sog_folder(target, files, meta_name)
        return
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED, allowZip64=False) as zf:
        for name in ["meta.json"] + [f for f in files if f != "meta.json"]:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            zf.writestr(info, files[name])
    with atomic_write(target) as fh:
        fh.write(buf.getvalue())


# ---------------------------------------------------------------------------------------------
# reading


MAX_META_BYTES = 16 << 20  # meta.json: three 256-entry codebooks and a few names
MAX_COUNT = 1 << 27  # splats per SOG (textures of 11585^2 texels)


def _texture_limits(texels: int) -> tuple[int, int]:
    """(most bytes a lossless WebP of `texels` RGBA texels can take, most texels accepted) for a
    texture sized for `texels` entries; generous for other writers' layouts, tiny next to a bomb."""
    most = 4 * texels + 65536
    return 8 * most + (1 << 20), most


class _Source:
    """Files of a SOG, from a ZIP bundle or a folder."""

    def __init__(self, path) -> None:
        self.path = os.fspath(path)
        self.zip: zipfile.ZipFile | None = None
        self.dir = None
        self.meta_name = "meta.json"
        p = self.path
        if os.path.isdir(p):
            self.dir = p
        elif p.lower().endswith(".json"):
            self.dir = os.path.dirname(os.path.abspath(p))
            self.meta_name = os.path.basename(p)
        else:
            try:
                size = os.path.getsize(p)
                with open(p, "rb") as fh:
                    head = fh.read(4)
            except OSError as e:
                raise SplatFormatError(p, f"cannot read: {e.strerror or e}") from None
            if size == 0:
                raise SplatFormatError(p, "empty file (0 bytes)")
            if head != b"PK\x03\x04":
                raise SplatFormatError(p, "not a SOG bundle (no ZIP magic)")
            try:
                self.zip = zipfile.ZipFile(p)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
                raise SplatFormatError(p, f"corrupt or truncated SOG zip ({e})") from None

    def read(self, name: str, limit: int = MAX_META_BYTES) -> bytes:
        """Member `name`, refused when it is (or declares to be) larger than `limit` bytes, so a small
        bundle cannot inflate to gigabytes."""
        if os.path.basename(name) != name or name in ("", ".", ".."):
            raise SplatFormatError(self.path, f"meta.json names a file outside the bundle: {name!r}")
        if self.zip is not None:
            try:
                info = self.zip.getinfo(name)
                if info.file_size > limit:
                    raise SplatFormatError(self.path, f"{name} declares {info.file_size} bytes, more than the "
                                                      f"{limit} its contents can need (corrupt or a zip bomb)")
                with self.zip.open(info) as fh:  # zipfile stops at the declared size and checks the CRC
                    data = fh.read(limit + 1)
                if len(data) > limit:
                    raise SplatFormatError(self.path, f"{name} inflates past {limit} bytes (corrupt or a zip bomb)")
                return data
            except SplatFormatError:
                raise
            except KeyError:
                raise SplatFormatError(self.path, f"SOG bundle lacks {name}") from None
            except (zipfile.BadZipFile, OSError, EOFError, zlib.error, struct.error, ValueError, NotImplementedError) as e:
                raise SplatFormatError(self.path, f"corrupt SOG zip member {name} ({e})") from None
        full = os.path.join(self.dir, name)
        try:
            if os.path.getsize(full) > limit:
                raise SplatFormatError(self.path, f"{name} is {os.path.getsize(full)} bytes, more than the {limit} "
                                                  "its contents can need")
            with open(full, "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            raise SplatFormatError(self.path, f"SOG folder lacks {name}") from None
        except OSError as e:
            raise SplatFormatError(self.path, f"cannot read {name}: {e.strerror or e}") from None

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


def _load_meta(src: _Source) -> dict:
    raw = src.read(src.meta_name)
    if not raw:
        raise SplatFormatError(src.path, f"{src.meta_name} is empty")
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SplatFormatError(src.path, f"{src.meta_name} is not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise SplatFormatError(src.path, f"{src.meta_name} is not a JSON object")
    if meta.get("version") != 2:
        raise SplatFormatError(src.path, f"unsupported SOG version {meta.get('version', 1)!r} (only version 2 is read)")
    return meta


def read_sog_meta(path) -> dict:
    src = _Source(path)
    try:
        return _load_meta(src)
    finally:
        src.close()


def read_sog(path) -> Gaussians:
    return read_sog_arrays(path).to_gaussians()


def read_sog_arrays(path) -> SceneArrays:
    src = _Source(path)
    try:
        return _decode(src, _load_meta(src))
    finally:
        src.close()


def _decode(src: _Source, meta: dict) -> SceneArrays:
    p = src.path

    def get(obj, *keys):
        cur = obj
        for k in keys:
            if not isinstance(cur, dict) or k not in cur:
                raise SplatFormatError(p, f"meta.json lacks {'.'.join(keys)}")
            cur = cur[k]
        return cur

    def numbers(value, what: str) -> np.ndarray:
        if isinstance(value, (str, bytes, dict)) or (isinstance(value, list) and any(
                isinstance(v, (str, bytes, dict, list, bool)) or v is None for v in value)):
            raise SplatFormatError(p, f"meta.json {what} must be numbers, got {str(value)[:40]!r}")
        try:
            return np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise SplatFormatError(p, f"meta.json {what} must be numbers, got {str(value)[:40]!r}") from None

    def codebook(key: str) -> np.ndarray:
        cb = numbers(get(meta, key, "codebook"), f"{key}.codebook")
        if cb.ndim != 1 or cb.size == 0 or cb.size > 256 or not np.isfinite(cb).all():
            raise SplatFormatError(p, f"meta.json {key}.codebook must be up to 256 finite numbers")
        return np.concatenate([cb, np.zeros(256 - cb.size)])

    def files(key: str, count: int) -> list[str]:
        f = get(meta, key, "files")
        if not isinstance(f, list) or len(f) < count or not all(isinstance(x, str) for x in f):
            raise SplatFormatError(p, f"meta.json {key}.files must list {count} file name(s)")
        return f

    n = get(meta, "count")
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise SplatFormatError(p, f"meta.json count must be a non-negative integer, got {n!r}")
    if n == 0:
        raise SplatFormatError(p, "SOG holds no splats (count 0)")
    if n > MAX_COUNT:
        raise SplatFormatError(p, f"meta.json count {n} is more than the {MAX_COUNT} splats a SOG can hold")
    tex_bytes, tex_texels = _texture_limits(n)

    def tex(name: str) -> np.ndarray:
        t = _decode_webp(p, name, src.read(name, tex_bytes), tex_texels)
        if t.shape[0] * t.shape[1] < n:
            raise SplatFormatError(p, f"truncated: {name} holds {t.shape[1]}x{t.shape[0]} texels but count is {n}")
        return t.reshape(-1, 4)[:n].astype(np.int64)

    mins = numbers(get(meta, "means", "mins"), "means.mins")
    maxs = numbers(get(meta, "means", "maxs"), "means.maxs")
    if mins.shape != (3,) or maxs.shape != (3,) or not (np.isfinite(mins).all() and np.isfinite(maxs).all()):
        raise SplatFormatError(p, "meta.json means.mins/maxs must be 3 finite numbers each")
    fm = files("means", 2)
    lo, hi = tex(fm[0]), tex(fm[1])
    q16 = (lo[:, :3] | (hi[:, :3] << 8)).astype(np.float64)
    rng = np.where(maxs - mins == 0, 1.0, maxs - mins)
    t = mins + rng * (q16 / 65535.0)
    means = np.sign(t) * np.expm1(np.abs(t))

    qt = tex(files("quats", 1)[0])
    tag = qt[:, 3]
    if ((tag < 252) | (tag > 255)).any():
        bad = int(np.flatnonzero((tag < 252) | (tag > 255))[0])
        raise SplatFormatError(p, f"corrupt quats texture: tag {int(tag[bad])} at splat {bad} (expected 252-255)")
    i = tag - 252
    abc = (qt[:, :3] / 255.0 * 2.0 - 1.0) / SQRT2
    quats = np.zeros((n, 4))
    rows = np.arange(n)
    others = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])[i]
    for j in range(3):
        quats[rows, others[:, j]] = abc[:, j]
    quats[rows, i] = np.sqrt(np.maximum(0.0, 1.0 - (abc ** 2).sum(1)))

    scb = codebook("scales")
    scales = scb[tex(files("scales", 1)[0])[:, :3]]
    ccb = codebook("sh0")
    s0 = tex(files("sh0", 1)[0])
    sh0 = ccb[s0[:, :3]]
    opac = logit(s0[:, 3] / 255.0)

    shN = np.zeros((n, 0, 3))
    if "shN" in meta and meta["shN"]:
        bands = get(meta, "shN", "bands")
        if bands not in (1, 2, 3):
            raise SplatFormatError(p, f"meta.json shN.bands must be 1-3, got {bands!r}")
        k = num_sh_bases(bands) - 1
        count = get(meta, "shN", "count")
        if not isinstance(count, int) or not 0 < count <= 65536:
            raise SplatFormatError(p, f"meta.json shN.count must be 1..65536, got {count!r}")
        shcb = codebook("shN")
        fs = files("shN", 2)
        cen_bytes, cen_texels = _texture_limits(64 * k * ((count + 63) // 64))
        cen = _decode_webp(p, fs[0], src.read(fs[0], cen_bytes), cen_texels)
        if cen.shape[1] != 64 * k or cen.shape[0] * 64 < count:
            raise SplatFormatError(p, f"{fs[0]} is {cen.shape[1]}x{cen.shape[0]}, expected width {64 * k} "
                                      f"and room for {count} entries")
        labels = tex(fs[1])
        lab = labels[:, 0] | (labels[:, 1] << 8)
        if (lab >= count).any():
            bad = int(np.flatnonzero(lab >= count)[0])
            raise SplatFormatError(p, f"corrupt shN labels: label {int(lab[bad])} at splat {bad} >= palette size {count}")
        j = np.arange(count)
        cols = (j[:, None] % 64) * k + np.arange(k)[None, :]  # (count, k)
        pal = shcb[cen[(j // 64)[:, None], cols, :3]]  # (count, k, 3)
        shN = pal[lab]
    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    scene = SceneArrays(f32(means), f32(quats), f32(scales), f32(opac), f32(sh0), f32(shN))
    check_finite(p, scene)
    return scene
