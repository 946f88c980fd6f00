"""Helpers shared by the splat codecs: error type, atomic writes, Morton order, field access."""
from __future__ import annotations

import contextlib
import math
import os
import tempfile
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch

from splatlab.gaussians import SH_C0, Gaussians, MethodSpec, num_sh_bases, sh_degree_from_bases

__all__ = [
    "SH_C0", "SplatFormatError", "SceneArrays", "atomic_write", "atomic_write_bytes",
    "morton_codes", "morton_order", "sigmoid", "logit", "check_finite", "check_order",
]


class SplatFormatError(ValueError):
    """A file could not be read or written; the message is one line naming the file."""

    def __init__(self, path: os.PathLike | str, problem: str) -> None:
        self.path = os.fspath(path)
        self.problem = " ".join(str(problem).split())
        super().__init__(f"{self.path}: {self.problem}")


# ---------------------------------------------------------------------------------------------
# scene <-> numpy


@dataclass
class SceneArrays:
    """Plain float32 numpy view of a scene (pre-activation, like `Gaussians.params`)."""

    means: np.ndarray  # (N, 3)
    quats: np.ndarray  # (N, 4) wxyz, unnormalised
    scales: np.ndarray  # (N, 3) log
    opacities: np.ndarray  # (N,) logits
    sh0: np.ndarray  # (N, 3)
    shN: np.ndarray  # (N, K, 3)
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    method: MethodSpec | None = None  # the method whose render the scene expects (see splatlab.methods)

    def __len__(self) -> int:
        return self.means.shape[0]

    @property
    def sh_degree(self) -> int:
        return sh_degree_from_bases(self.shN.shape[1] + 1)

    @classmethod
    def from_gaussians(cls, g: Gaussians) -> "SceneArrays":
        f = {k: v.detach().cpu().float().numpy() for k, v in g.detached_fields().items()}
        n = f["means"].shape[0]
        return cls(
            means=np.ascontiguousarray(f["means"].reshape(n, 3)),
            quats=np.ascontiguousarray(f["quats"].reshape(n, 4)),
            scales=np.ascontiguousarray(f["scales"].reshape(n, 3)),
            opacities=np.ascontiguousarray(f["opacities"].reshape(n)),
            sh0=np.ascontiguousarray(f["sh0"].reshape(n, 3)),
            shN=np.ascontiguousarray(f["shN"].reshape(n, -1, 3)),
            extras={k: v for k, v in f.items() if k not in ("means", "quats", "scales", "opacities", "sh0", "shN")},
            method=g.method,
        )

    def to_gaussians(self) -> Gaussians:
        n = len(self)
        t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
        return Gaussians(
            t(self.means.reshape(n, 3)), t(self.quats.reshape(n, 4)), t(self.scales.reshape(n, 3)),
            t(self.opacities.reshape(n)), t(self.sh0.reshape(n, 1, 3)), t(self.shN.reshape(n, -1, 3)),
            {k: t(v) for k, v in self.extras.items()}, self.method,
        )

    def take(self, order: np.ndarray) -> "SceneArrays":
        return SceneArrays(
            self.means[order], self.quats[order], self.scales[order], self.opacities[order],
            self.sh0[order], self.shN[order], {k: v[order] for k, v in self.extras.items()}, self.method,
        )

    def truncate_sh(self, degree: int) -> "SceneArrays":
        k = num_sh_bases(degree) - 1
        return SceneArrays(self.means, self.quats, self.scales, self.opacities, self.sh0,
                           self.shN[:, :k], dict(self.extras), self.method)


def as_arrays(gaussians: Gaussians | SceneArrays) -> SceneArrays:
    if isinstance(gaussians, SceneArrays):
        return gaussians
    if isinstance(gaussians, Gaussians):
        return SceneArrays.from_gaussians(gaussians)
    raise TypeError(f"expected a Gaussians model, got {type(gaussians).__name__}")


def sigmoid(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return 1.0 / (1.0 + np.exp(-x))


def logit(p: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Inverse sigmoid, clamped off the asymptotes (as the PlayCanvas readers do)."""
    p = np.clip(np.asarray(p, dtype=np.float64), eps, 1.0 - eps)
    return np.log(p / (1.0 - p))


def normalize_quats(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    n = np.linalg.norm(q, axis=-1, keepdims=True)
    out = np.zeros_like(q)
    ok = n[:, 0] > 0
    out[ok] = q[ok] / n[ok]
    out[~ok, 0] = 1.0  # a zero quaternion becomes the identity
    return out


def check_finite(path, scene: SceneArrays, what: str = "contains") -> None:
    """Raise SplatFormatError naming the first field holding NaN or inf."""
    named = [("positions", scene.means), ("rotations", scene.quats), ("scales", scene.scales),
             ("opacities", scene.opacities), ("colours (f_dc)", scene.sh0), ("SH coefficients", scene.shN)]
    named += [(f"extra field {k!r}", v) for k, v in scene.extras.items()]
    for name, arr in named:
        a = np.asarray(arr)
        if a.size and not np.isfinite(a).all():
            bad = ~np.isfinite(a.reshape(a.shape[0], -1)).all(axis=1)
            first = int(np.flatnonzero(bad)[0])
            kind = "NaN" if np.isnan(a).any() else "infinite"
            raise SplatFormatError(path, f"{what} {kind} {name} in {int(bad.sum())} splat(s) (first at index {first})")


def check_writable(path, scene: SceneArrays, format_label: str | None = None) -> None:
    """The checks every writer makes first: not empty, all finite, and (when the format caps
    SH at degree 3, `format_label` given) no higher bands."""
    if len(scene) == 0:
        raise SplatFormatError(path, "cannot write an empty scene (0 splats)")
    check_finite(path, scene, "cannot write: scene holds")
    if format_label is not None and scene.sh_degree > 3:
        raise SplatFormatError(path, f"{format_label} holds SH degree 0-3, scene has degree {scene.sh_degree}")


def check_order(path, order, n: int) -> np.ndarray:
    """Validate a caller-given ordering: a permutation of range(n)."""
    o = np.asarray(order.detach().cpu().numpy() if isinstance(order, torch.Tensor) else order)
    if o.ndim != 1 or o.shape[0] != n or not np.issubdtype(o.dtype, np.integer):
        raise SplatFormatError(path, f"order must be a 1-D integer permutation of {n} indices, got shape {o.shape} {o.dtype}")
    o = o.astype(np.int64)
    seen = np.zeros(n, dtype=bool)
    if n and (o.min() < 0 or o.max() >= n):
        raise SplatFormatError(path, "order holds indices outside 0..N-1")
    seen[o] = True
    if not seen.all():
        raise SplatFormatError(path, "order is not a permutation (repeated indices)")
    return o


# ---------------------------------------------------------------------------------------------
# Morton order


def _spread_bits_10(v: np.ndarray) -> np.ndarray:
    """Spread the low 10 bits of v so that bit i lands at bit 3i."""
    v = v.astype(np.uint64) & np.uint64(0x3FF)
    v = (v | (v << np.uint64(16))) & np.uint64(0x030000FF)
    v = (v | (v << np.uint64(8))) & np.uint64(0x0300F00F)
    v = (v | (v << np.uint64(4))) & np.uint64(0x030C30C3)
    v = (v | (v << np.uint64(2))) & np.uint64(0x09249249)
    return v


def morton_codes(means: np.ndarray, bits: int = 10) -> np.ndarray:
    """30-bit Morton codes of points quantised to a 1024^3 grid over their bounding box."""
    p = np.asarray(means, dtype=np.float64).reshape(-1, 3)
    if p.shape[0] == 0:
        return np.zeros(0, dtype=np.uint64)
    lo, hi = p.min(0), p.max(0)
    ext = hi - lo
    ext[ext <= 0] = 1.0
    q = np.clip(np.floor((p - lo) / ext * ((1 << bits) - 1) + 0.5), 0, (1 << bits) - 1).astype(np.uint64)
    return (_spread_bits_10(q[:, 0]) << np.uint64(2)) | (_spread_bits_10(q[:, 1]) << np.uint64(1)) | _spread_bits_10(q[:, 2])


def morton_order(means) -> np.ndarray:
    """Stable permutation sorting points along a Morton (Z-order) curve."""
    if isinstance(means, torch.Tensor):
        means = means.detach().cpu().numpy()
    return np.argsort(morton_codes(means), kind="stable").astype(np.int64)


# ---------------------------------------------------------------------------------------------
# atomic writes


def naming_target(err: OSError, path: os.PathLike | str, tmp: str | None = None) -> OSError:
    """`err` re-made to name `path` (the user's file) instead of a temp file beside it, so an error
    message never points at `.scene.ply.k3j2.tmp`, a name the user never gave."""
    if err.errno is None or (err.filename is not None and err.filename != tmp):
        return err
    return OSError(err.errno, err.strerror, os.fspath(path))


@contextlib.contextmanager
def atomic_write(path: os.PathLike | str, mode: str = "wb") -> Iterator:
    """Open a temp file beside `path`; on success fsync and os.replace it onto `path`.

    On any exception the temp file is removed and `path` is left untouched; OS errors name `path`.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    except OSError as err:
        raise naming_target(err, path, err.filename) from None
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(err, OSError):
            renamed = naming_target(err, path, tmp)
            if renamed is not err:
                raise renamed from None
        raise


def atomic_write_bytes(path: os.PathLike | str, data: bytes) -> None:
    with atomic_write(path) as fh:
        fh.write(data)


def read_bytes(path) -> bytes:
    """Read a whole file, turning OS errors and empty files into SplatFormatError."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except IsADirectoryError:
        raise SplatFormatError(path, "is a directory, not a file") from None
    except OSError as e:
        raise SplatFormatError(path, f"cannot read: {e.strerror or e}") from None
    if not data:
        raise SplatFormatError(path, "empty file (0 bytes)")
    return data


def quantize_unorm(v: np.ndarray, bits: int) -> np.ndarray:
    """floor(v*(2^b-1) + 0.5) clamped to [0, 2^b-1], for v nominally in [0, 1]."""
    m = (1 << bits) - 1
    return np.clip(np.floor(np.asarray(v, dtype=np.float64) * m + 0.5), 0, m).astype(np.uint32)


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def isqrt_ceil(x: float) -> int:
    return int(math.ceil(math.sqrt(x)))
