"""Space-filling-curve orders for serialised attention (PTv3): points are quantised to an integer
grid, given a Z-order (Morton) or Hilbert code, and sorted by it, so that points close along the
curve are close in space and attention over consecutive windows of the order is local.

The "transposed" variants swap the x and y axes before coding, so neighbouring windows of the two
variants cut space differently; blocks cycle through (shuffled) orders to mix across windows.
"""
from __future__ import annotations

import torch
from torch import Tensor

ORDERS = ("z", "z-trans", "hilbert", "hilbert-trans")
MAX_BITS = 16  # 3 * 16 = 48-bit codes fit int64


def quantize(positions: Tensor, bits: int) -> Tensor:
    """(N, 3) positions in [0, 1] -> (N, 3) int64 grid cells in [0, 2**bits)."""
    if not 1 <= bits <= MAX_BITS:
        raise ValueError(f"bits must be in 1..{MAX_BITS}, got {bits}")
    cells = (positions.clamp(0.0, 1.0) * (1 << bits)).long()
    return cells.clamp_(0, (1 << bits) - 1)


def _spread_bits(v: Tensor, bits: int) -> Tensor:
    """Put bit i of v at bit 3*i (the Morton interleave for one axis)."""
    out = torch.zeros_like(v)
    for i in range(bits):
        out |= ((v >> i) & 1) << (3 * i)
    return out


def morton_code(cells: Tensor, bits: int) -> Tensor:
    """Z-order code: bits of x, y, z interleaved (x most significant within each triple)."""
    x, y, z = cells.unbind(-1)
    return (_spread_bits(x, bits) << 2) | (_spread_bits(y, bits) << 1) | _spread_bits(z, bits)


def hilbert_code(cells: Tensor, bits: int) -> Tensor:
    """3-D Hilbert index (Skilling's transpose algorithm, vectorised): consecutive codes are
    face-adjacent cells, which keeps windows of the order compact."""
    x = [c.clone() for c in cells.unbind(-1)]
    n = 3
    m = 1 << (bits - 1)
    # inverse undo of the excess work (axes -> transposed Hilbert index)
    q = m
    while q > 1:
        p = q - 1
        for i in range(n):
            hit = (x[i] & q) != 0
            # where bit set: invert low bits of x[0]; else exchange low bits of x[0] and x[i]
            x0_inv = x[0] ^ p
            t = (x[0] ^ x[i]) & p
            new_x0 = torch.where(hit, x0_inv, x[0] ^ t)
            if i != 0:
                x[i] = torch.where(hit, x[i], x[i] ^ t)
            x[0] = new_x0
        q >>= 1
    # Gray encode
    for i in range(1, n):
        x[i] = x[i] ^ x[i - 1]
    t = torch.zeros_like(x[0])
    q = m
    while q > 1:
        t = torch.where((x[n - 1] & q) != 0, t ^ (q - 1), t)
        q >>= 1
    for i in range(n):
        x[i] = x[i] ^ t
    # interleave the transposed index: bit b of x[i] -> position 3*b + (2 - i)
    code = torch.zeros_like(x[0])
    for b in range(bits):
        for i in range(n):
            code |= ((x[i] >> b) & 1) << (3 * b + (n - 1 - i))
    return code


def serialization_code(cells: Tensor, order: str, bits: int) -> Tensor:
    if order not in ORDERS:
        raise ValueError(f"unknown order {order!r} (choose {', '.join(ORDERS)})")
    if order.endswith("-trans"):
        cells = cells[:, [1, 0, 2]]
    return morton_code(cells, bits) if order.startswith("z") else hilbert_code(cells, bits)


def serialize(cells: Tensor, order: str, bits: int) -> tuple[Tensor, Tensor]:
    """(order, inverse): `x[order]` is x sorted along the curve and `x[order][inverse] == x`."""
    code = serialization_code(cells, order, bits)
    perm = torch.argsort(code, stable=True)
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(perm.numel(), device=perm.device)
    return perm, inverse
