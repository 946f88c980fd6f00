"""Space-filling-curve orders for serialised attention (PTv3): points are quantised to an integer
grid, given a Z-order (Morton) or Hilbert code, and sorted by it, so that points close along the
curve are close in space and attention over consecutive windows of the order is local.

The "transposed" variants swap the x and y axes before coding, so neighbouring windows of the two
variants cut space differently; blocks cycle through (shuffled) orders to mix across windows.
"""
from __future__ import annotations

import numpy as np
import torch
from numba import njit
from torch import Tensor

ORDERS = ("z", "z-trans", "hilbert", "hilbert-trans")
MAX_BITS = 16  # 3 * 16 = 48-bit codes fit int64


def quantize(positions: Tensor, bits: int) -> Tensor:
    """(N, 3) positions in [0, 1] -> (N, 3) int64 grid cells in [0, 2**bits)."""
    if not 1 <= bits <= MAX_BITS:
        raise ValueError(f"bits must be in 1..{MAX_BITS}, got {bits}")
    cells = (positions.clamp(0.0, 1.0) * (1 << bits)).long()
    return cells.clamp_(0, (1 << bits) - 1)


@njit(cache=True, nogil=True)
def _curve_codes(cells: np.ndarray, bits: int, hilbert: bool) -> np.ndarray:
    """Per point: the Z-order code (bits of x, y, z interleaved, x most significant in each triple)
    or the 3-D Hilbert index (Skilling's axes-to-transpose algorithm, then the same interleave)."""
    n = cells.shape[0]
    out = np.empty(n, dtype=np.int64)
    x = np.empty(3, dtype=np.int64)
    top = np.int64(1) << (bits - 1)
    for k in range(n):
        for i in range(3):
            x[i] = cells[k, i]
        if hilbert:
            q = top
            while q > 1:  # undo excess work: invert or exchange the low bits
                p = q - 1
                for i in range(3):
                    if x[i] & q:
                        x[0] ^= p
                    else:
                        t = (x[0] ^ x[i]) & p
                        x[0] ^= t
                        x[i] ^= t
                q >>= 1
            for i in range(1, 3):  # Gray encode
                x[i] ^= x[i - 1]
            t = np.int64(0)
            q = top
            while q > 1:
                if x[2] & q:
                    t ^= q - 1
                q >>= 1
            for i in range(3):
                x[i] ^= t
        code = np.int64(0)
        for b in range(bits):
            for i in range(3):
                code |= ((x[i] >> b) & 1) << (3 * b + 2 - i)
        out[k] = code
    return out


def morton_code(cells: Tensor, bits: int) -> Tensor:
    """Z-order code of (N, 3) int64 cells."""
    return torch.from_numpy(_curve_codes(cells.cpu().numpy().astype(np.int64), bits, False)).to(cells.device)


def hilbert_code(cells: Tensor, bits: int) -> Tensor:
    """3-D Hilbert index of (N, 3) int64 cells: consecutive codes are face-adjacent cells, which
    keeps windows of the order compact."""
    return torch.from_numpy(_curve_codes(cells.cpu().numpy().astype(np.int64), bits, True)).to(cells.device)


def serialization_code(cells: Tensor, order: str, bits: int) -> Tensor:
    if order not in ORDERS:
        raise ValueError(f"unknown order {order!r} (choose {', '.join(ORDERS)})")
    if order.endswith("-trans"):
        cells = cells[:, [1, 0, 2]]
    return morton_code(cells, bits) if order.startswith("z") else hilbert_code(cells, bits)


def serialize(cells: Tensor, order: str, bits: int) -> tuple[Tensor, Tensor]:
    """(order, inverse): `x[order]` is x sorted along the curve and `x[order][inverse] == x`."""
    code = serialization_code(cells, order, bits).cpu().numpy()
    perm = np.argsort(code, kind="stable")
    inverse = np.empty_like(perm)
    inverse[perm] = np.arange(perm.size)
    return torch.from_numpy(perm).to(cells.device), torch.from_numpy(inverse).to(cells.device)
