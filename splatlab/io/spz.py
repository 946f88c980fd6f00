"""Niantic `.spz`: gzip-wrapped v2/v3 (read and write, v3 written by default); v4 (zstd streams) is
read when the optional `zstandard` package is installed.

Header (16 bytes): magic "NGSP", u32 version, u32 numPoints, u8 shDegree, u8 fractionalBits,
u8 flags (1 = antialiased), u8 reserved.  Blocks: positions (3 x 24-bit signed fixed point),
alphas, colours, scales, rotations, SH (coefficient-major, RGB innermost).  Axes are stored as given.
"""
from __future__ import annotations

import gzip
import math
import struct
import zlib

import numpy as np

from splatlab.gaussians import Gaussians, num_sh_bases

from ._common import (SceneArrays, SplatFormatError, as_arrays, atomic_write, check_finite, check_writable, check_order,
                      logit, normalize_quats, read_bytes, sigmoid)

MAGIC = 0x5053474E  # "NGSP" little-endian
FLAG_ANTIALIASED = 1
COLOR_SCALE = 0.15
HEADER = struct.Struct("<IIIBBBB")
HEADER_V4 = struct.Struct("<IIIBBBBI12x")
SQRT1_2 = math.sqrt(0.5)


def sh_bits(coeff_index: int) -> int:
    """Bits kept for SH coefficient `coeff_index` (0-based within shN): 5 for band 1, 4 above."""
    return 5 if coeff_index < 3 else 4


def _quantize_sh(v: np.ndarray, bits: int) -> np.ndarray:
    bucket = 1 << (8 - bits)
    q = np.round((np.asarray(v, np.float64) * 128.0 + 128.0) / bucket) * bucket
    return np.clip(q, 0, 255).astype(np.uint8)


def pack_rot_v3(q_wxyz: np.ndarray) -> np.ndarray:
    q = normalize_quats(q_wxyz)[:, [1, 2, 3, 0]]  # xyzw
    i = np.argmax(np.abs(q), axis=1)
    rows = np.arange(q.shape[0])
    q = q * np.where(q[rows, i] < 0, -1.0, 1.0)[:, None]
    packed = i.astype(np.uint32)
    for j in range(4):
        mag = np.clip(np.round(np.abs(q[:, j]) / SQRT1_2 * 511.0), 0, 511).astype(np.uint32)
        neg = (q[:, j] < 0).astype(np.uint32)
        word = (packed << np.uint32(10)) | (neg << np.uint32(9)) | mag
        packed = np.where(i == j, packed, word)
    return packed.astype("<u4")


def unpack_rot_v3(p: np.ndarray) -> np.ndarray:
    p = p.astype(np.uint32)
    largest = (p >> 30).astype(np.int64)
    q = np.zeros((p.shape[0], 4))
    sumsq = np.zeros(p.shape[0])
    for j in (3, 2, 1, 0):  # the last component sits in the lowest 10 bits
        take = largest != j
        mag = (p & 511).astype(np.float64)
        val = np.where((p >> 9) & 1, -1.0, 1.0) * SQRT1_2 * mag / 511.0
        q[take, j] = val[take]
        sumsq += np.where(take, val * val, 0.0)
        p = np.where(take, p >> 10, p)
    rows = np.arange(q.shape[0])
    q[rows, largest] = np.sqrt(np.maximum(0.0, 1.0 - sumsq))
    return q[:, [3, 0, 1, 2]]  # wxyz


def write_spz(path, gaussians: Gaussians | SceneArrays, *, version: int = 3, fractional_bits: int | None = None,
              antialiased: bool = False, order=None) -> None:
    """Write gzip `.spz` version 3 (or 2).  `fractional_bits` defaults to 12, lowered automatically
    when positions exceed the 24-bit range (+-2048 at 12 bits)."""
    scene = as_arrays(gaussians)
    n = len(scene)
    if version not in (2, 3):
        raise SplatFormatError(path, f"can only write SPZ version 2 or 3, not {version}")
    check_writable(path, scene)
    if order is not None:
        scene = scene.take(check_order(path, order, n))
    deg = scene.sh_degree
    if deg > 3:
        raise SplatFormatError(path, f"SPZ holds SH degree 0-3, scene has degree {deg}")
    limit = (1 << 23) - 1
    amax = float(np.abs(scene.means.astype(np.float64)).max())
    if fractional_bits is None:
        fb = 12
        while fb > 0 and round(amax * (1 << fb)) > limit:
            fb -= 1
    else:
        fb = int(fractional_bits)
    if not 0 <= fb <= 23 or round(amax * (1 << fb)) > limit:
        raise SplatFormatError(path, f"positions up to {amax:g} do not fit 24-bit fixed point with {fb} fractional bits")

    fixed = np.round(scene.means.astype(np.float64) * (1 << fb)).astype(np.int64) & 0xFFFFFF
    pos = np.stack([fixed & 0xFF, (fixed >> 8) & 0xFF, (fixed >> 16) & 0xFF], axis=-1).astype(np.uint8)
    alphas = np.clip(np.round(sigmoid(scene.opacities) * 255.0), 0, 255).astype(np.uint8)
    colors = np.clip(np.round(scene.sh0.astype(np.float64) * (COLOR_SCALE * 255.0) + 127.5), 0, 255).astype(np.uint8)
    scales = np.clip(np.round((scene.scales.astype(np.float64) + 10.0) * 16.0), 0, 255).astype(np.uint8)
    if version == 3:
        rots = pack_rot_v3(scene.quats).tobytes()
    else:
        q = normalize_quats(scene.quats)
        q = q * np.where(q[:, :1] < 0, -1.0, 1.0)
        rots = np.clip(np.round(q[:, 1:] * 127.5 + 127.5), 0, 255).astype(np.uint8).tobytes()
    k = scene.shN.shape[1]
    sh = np.zeros((n, k, 3), np.uint8)
    for j in range(k):
        sh[:, j] = _quantize_sh(scene.shN[:, j], sh_bits(j))
    flags = FLAG_ANTIALIASED if antialiased else 0
    raw = b"".join([HEADER.pack(MAGIC, version, n, deg, fb, flags, 0), pos.tobytes(), alphas.tobytes(),
                    colors.tobytes(), scales.tobytes(), rots, sh.tobytes()])
    with atomic_write(path) as fh:
        with gzip.GzipFile(fileobj=fh, mode="wb", compresslevel=6, mtime=0) as gz:
            gz.write(raw)


MAX_DEFLATE_RATIO = 1032  # deflate cannot expand more than this (258-byte matches from 2 bits)


def _gunzip(path, data: bytes, expected: int | None = None) -> bytes:
    """Inflate a single gzip member, never beyond `expected` bytes (+1 to detect trailing data).

    With `expected` None only the 16-byte header is inflated. A body shorter than `expected` is
    truncation, a longer one (or bytes after the gzip member) is trailing data: both are errors,
    so a small file can never inflate to more than its header declares."""
    want = HEADER.size if expected is None else expected
    if expected is not None and expected > MAX_DEFLATE_RATIO * len(data) + 4096:
        raise SplatFormatError(path, f"header declares {expected} bytes of data, more than a "
                                     f"{len(data)}-byte gzip file can hold (corrupt count)")
    d = zlib.decompressobj(wbits=31)
    try:
        out = d.decompress(data, want + 1)  # bounded: never more than the header declares (+1)
        if expected is None:
            return out
    except zlib.error as e:
        raise SplatFormatError(path, f"corrupt gzip stream ({str(e).splitlines()[0] if str(e) else 'bad data'})") from None
    if len(out) > want or (d.eof and d.unused_data.strip(b"\x00")):
        raise SplatFormatError(path, f"trailing data: more than the {want} bytes the header declares")
    if not d.eof:
        raise SplatFormatError(path, "truncated: gzip stream ends early" if len(out) < want else
                               "corrupt gzip stream (no end marker after the declared data)")
    return out


def _v4_streams(path, data: bytes, n: int, sizes: list[int]) -> list[bytes]:
    try:
        import zstandard
    except ImportError:
        raise SplatFormatError(path, "SPZ version 4 (zstd) needs the optional 'zstandard' package") from None
    if len(data) < HEADER_V4.size:
        raise SplatFormatError(path, f"truncated: {len(data)} bytes is shorter than the 32-byte SPZ v4 header")
    _, _, _, _, _, _, nstreams, toc = HEADER_V4.unpack_from(data)
    if nstreams != len(sizes) or toc < HEADER_V4.size or toc + 16 * nstreams > len(data):
        raise SplatFormatError(path, f"corrupt SPZ v4 table of contents ({nstreams} streams at offset {toc})")
    out, off = [], toc + 16 * nstreams
    d = zstandard.ZstdDecompressor()
    for i in range(nstreams):
        csize, usize = struct.unpack_from("<QQ", data, toc + 16 * i)
        if usize != sizes[i]:
            raise SplatFormatError(path, f"SPZ v4 stream {i} holds {usize} bytes, expected {sizes[i]} for {n} splats")
        if off + csize > len(data):
            raise SplatFormatError(path, f"truncated: SPZ v4 stream {i} ends past the end of the file")
        try:
            s = d.decompress(data[off:off + csize], max_output_size=usize)
        except zstandard.ZstdError as e:
            raise SplatFormatError(path, f"corrupt zstd stream {i} ({e})") from None
        if len(s) != usize:
            raise SplatFormatError(path, f"SPZ v4 stream {i} decompressed to {len(s)} bytes, expected {usize}")
        out.append(s)
        off += csize
    return out


def read_spz_header(path, data: bytes | None = None) -> dict:
    raw = read_bytes(path) if data is None else data
    compressed = None
    if raw[:2] == b"\x1f\x8b":
        compressed, raw = raw, _gunzip(path, raw)  # the header only: the body is inflated with its size known
        container = "gzip"
    elif raw[:4] == b"NGSP":
        container = "plain"
    else:
        raise SplatFormatError(path, "not an SPZ file (neither gzip nor 'NGSP' magic)")
    if len(raw) < HEADER.size:
        raise SplatFormatError(path, f"truncated: {len(raw)} bytes is shorter than the 16-byte SPZ header")
    magic, version, n, deg, fb, flags, _ = HEADER.unpack_from(raw)
    if magic != MAGIC:
        raise SplatFormatError(path, "not an SPZ file (bad 'NGSP' magic inside the gzip stream)")
    return {"raw": raw, "compressed": compressed, "container": container, "version": version, "count": n, "sh_degree": deg,
            "fractional_bits": fb, "antialiased": bool(flags & FLAG_ANTIALIASED)}


def read_spz(path) -> Gaussians:
    return read_spz_arrays(path).to_gaussians()


def read_spz_arrays(path) -> SceneArrays:
    h = read_spz_header(path)
    raw, version, n, deg, fb = h["raw"], h["version"], h["count"], h["sh_degree"], h["fractional_bits"]
    if version not in (2, 3, 4):
        raise SplatFormatError(path, f"unsupported SPZ version {version} (readable: 2, 3, 4)")
    if deg > 3:
        raise SplatFormatError(path, f"unsupported SPZ SH degree {deg}")
    if fb > 23:
        raise SplatFormatError(path, f"bad SPZ fractional bits {fb}")
    if n == 0:
        raise SplatFormatError(path, "SPZ holds no splats (numPoints 0)")
    k = num_sh_bases(deg) - 1
    rot_size = 3 if version == 2 else 4
    sizes = [9 * n, n, 3 * n, 3 * n, rot_size * n] + ([3 * k * n] if k else [])
    if version == 4:
        if h["container"] != "plain":
            raise SplatFormatError(path, "SPZ version 4 must not be gzip-wrapped")
        blocks = _v4_streams(path, raw, n, sizes)
    else:
        per = sum(sizes) // n
        if h["compressed"] is not None:
            raw = _gunzip(path, h["compressed"], HEADER.size + sum(sizes))
        body = len(raw) - HEADER.size
        if body < sum(sizes):
            raise SplatFormatError(path, f"truncated: header says {n} splats but data holds {max(body, 0) // per}")
        if body > sum(sizes):
            raise SplatFormatError(path, f"trailing data: {body - sum(sizes)} bytes after the {n} splats")
        blocks, off = [], HEADER.size
        for s in sizes:
            blocks.append(raw[off:off + s])
            off += s
    pos = np.frombuffer(blocks[0], np.uint8).reshape(n, 3, 3).astype(np.int32)
    fixed = pos[..., 0] | (pos[..., 1] << 8) | (pos[..., 2] << 16)
    fixed = np.where(fixed & 0x800000, fixed - (1 << 24), fixed)
    means = fixed / float(1 << fb)
    alphas = np.frombuffer(blocks[1], np.uint8)
    colors = np.frombuffer(blocks[2], np.uint8).reshape(n, 3)
    scales = np.frombuffer(blocks[3], np.uint8).reshape(n, 3) / 16.0 - 10.0
    if version == 2:
        xyz = np.frombuffer(blocks[4], np.uint8).reshape(n, 3) / 127.5 - 1.0
        w = np.sqrt(np.maximum(0.0, 1.0 - (xyz ** 2).sum(1)))
        quats = np.concatenate([w[:, None], xyz], axis=1)
    else:
        quats = unpack_rot_v3(np.frombuffer(blocks[4], "<u4"))
    shN = np.zeros((n, k, 3))
    if k:
        shN = (np.frombuffer(blocks[5], np.uint8).reshape(n, k, 3).astype(np.float64) - 128.0) / 128.0
    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    scene = SceneArrays(f32(means), f32(quats), f32(scales), f32(logit(alphas / 255.0)),
                        f32((colors / 255.0 - 0.5) / COLOR_SCALE), f32(shN))
    check_finite(path, scene)
    return scene

