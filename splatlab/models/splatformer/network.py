"""A point transformer after PTv3, in plain torch: serialised window attention over space-filling
curve orders, grid pooling between stages, an encoder and a decoder with skip connections.

Points live on an integer grid (`cells`). Each encoder stage after the first pools cells by a stride
of 2 (the mean of a linear projection of the points in each coarse cell); the decoder unpools by
gathering a coarse point's features back to its children and adding the skip features. Attention
runs inside windows of `patch` consecutive points along one curve order; blocks cycle through the
orders, so windows overlap differently from block to block.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from .serialization import serialize


@dataclass
class PointLevel:
    """Points of one resolution: grid cells, the curve orders computed so far (lazily: a level only
    needs the orders its blocks use), and `parent`, the index of the coarser point each of these
    points is pooled into (set when the next level is built)."""

    cells: Tensor  # (N, 3) int64
    bits: int
    order_names: tuple[str, ...]
    parent: Tensor | None = None
    _orders: dict[int, tuple[Tensor, Tensor]] = field(default_factory=dict)

    def order(self, i: int) -> tuple[Tensor, Tensor]:
        """(perm, inverse) of curve order number i (cycling through `order_names`)."""
        i %= len(self.order_names)
        if i not in self._orders:
            self._orders[i] = serialize(self.cells, self.order_names[i], self.bits)
        return self._orders[i]


def build_level(cells: Tensor, bits: int, order_names: tuple[str, ...]) -> PointLevel:
    return PointLevel(cells, bits, tuple(order_names))


def pool_cells(cells: Tensor) -> tuple[Tensor, Tensor]:
    """Stride-2 grid pooling: (coarse cells (M, 3), cluster (N,) index of each fine point's cell)."""
    coarse, cluster = torch.unique(cells >> 1, dim=0, return_inverse=True)
    return coarse, cluster


class SerializedAttention(nn.Module):
    """Multi-head self-attention inside windows of `patch` points along a curve order."""

    def __init__(self, channels: int, heads: int, patch: int) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels {channels} not divisible by heads {heads}")
        self.heads, self.patch = heads, patch
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)

    def forward(self, x: Tensor, perm: Tensor, inverse: Tensor) -> Tensor:
        n, c = x.shape
        patch = min(self.patch, n)
        windows = math.ceil(n / patch)
        pad = windows * patch - n
        xs = x[perm]
        if pad:  # repeat the last points to fill the last window; their outputs are dropped
            xs = torch.cat([xs, xs[-1:].expand(pad, c)], dim=0)
        qkv = self.qkv(xs).reshape(windows, patch, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        out = nn.functional.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        out = out.transpose(1, 2).reshape(windows * patch, c)[:n]
        return self.proj(out)[inverse]


class Block(nn.Module):
    """Pre-norm transformer block with a positional term from the cell coordinates (a light stand-in
    for PTv3's sparse-conv positional encoding)."""

    def __init__(self, channels: int, heads: int, patch: int, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        self.pos = nn.Linear(3, channels)
        self.norm1 = nn.LayerNorm(channels)
        self.attn = SerializedAttention(channels, heads, patch)
        self.norm2 = nn.LayerNorm(channels)
        hidden = int(channels * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.GELU(), nn.Linear(hidden, channels))

    def forward(self, x: Tensor, rel_pos: Tensor, perm: Tensor, inverse: Tensor) -> Tensor:
        x = x + self.pos(rel_pos)
        x = x + self.attn(self.norm1(x), perm, inverse)
        return x + self.mlp(self.norm2(x))


def _scatter_mean(values: Tensor, index: Tensor, size: int) -> Tensor:
    out = values.new_zeros((size, values.shape[1])).index_add_(0, index, values)
    count = values.new_zeros(size).index_add_(0, index, values.new_ones(index.shape[0]))
    return out / count.clamp_min(1.0)[:, None]


class PointTransformer(nn.Module):
    """Encoder-decoder over serialised points; returns `out_channels` features per input point."""

    def __init__(self, in_channels: int, enc_channels: tuple[int, ...], enc_depths: tuple[int, ...],
                 enc_heads: tuple[int, ...], dec_channels: tuple[int, ...], dec_depths: tuple[int, ...],
                 dec_heads: tuple[int, ...], patch: int, orders: tuple[str, ...]) -> None:
        super().__init__()
        stages = len(enc_channels)
        if not (len(enc_depths) == len(enc_heads) == stages):
            raise ValueError("encoder channels/depths/heads must have the same length")
        if not (len(dec_channels) == len(dec_depths) == len(dec_heads) == stages - 1):
            raise ValueError("decoder lists must have one entry fewer than the encoder's")
        self.orders = orders
        self.stem = nn.Sequential(nn.Linear(in_channels, enc_channels[0]), nn.LayerNorm(enc_channels[0]), nn.GELU())
        self.down = nn.ModuleList(nn.Linear(enc_channels[i - 1], enc_channels[i]) for i in range(1, stages))
        self.enc = nn.ModuleList(
            nn.ModuleList(Block(enc_channels[i], enc_heads[i], patch) for _ in range(enc_depths[i])) for i in range(stages))
        # decoder stage i brings level i+1 back to level i
        up_in = [enc_channels[-1]] + list(dec_channels[::-1][:-1])
        self.up = nn.ModuleList()
        self.skip = nn.ModuleList()
        self.dec = nn.ModuleList()
        for j, i in enumerate(reversed(range(stages - 1))):
            self.up.append(nn.Linear(up_in[j], dec_channels[i]))
            self.skip.append(nn.Linear(enc_channels[i], dec_channels[i]))
            self.dec.append(nn.ModuleList(Block(dec_channels[i], dec_heads[i], patch) for _ in range(dec_depths[i])))
        self.out_channels = dec_channels[0] if stages > 1 else enc_channels[0]

    def _run(self, blocks: nn.ModuleList, x: Tensor, level: PointLevel, order_shift: int) -> Tensor:
        rel = level.cells.float() / float(1 << level.bits)
        for b, block in enumerate(blocks):
            perm, inverse = level.order(b + order_shift)
            x = block(x, rel, perm, inverse)
        return x

    def forward(self, features: Tensor, cells: Tensor, bits: int, order_shift: int = 0) -> Tensor:
        levels = [build_level(cells, bits, self.orders)]
        for _ in range(len(self.enc) - 1):
            coarse, cluster = pool_cells(levels[-1].cells)
            levels[-1].parent = cluster
            levels.append(build_level(coarse, max(levels[-1].bits - 1, 1), self.orders))
        x = self.stem(features)
        skips = []
        for i, blocks in enumerate(self.enc):
            if i > 0:
                x = _scatter_mean(self.down[i - 1](x), levels[i - 1].parent, levels[i].cells.shape[0])
            x = self._run(blocks, x, levels[i], order_shift + i)
            skips.append(x)
        for j, i in enumerate(reversed(range(len(self.enc) - 1))):
            x = self.up[j](x)[levels[i].parent] + self.skip[j](skips[i])
            x = self._run(self.dec[j], x, levels[i], order_shift + i + 1)
        return x
