"""SplatFormer: read a trained splat set and refine every Gaussian in one forward pass, so views far
outside the capture's band of viewpoints improve (ICLR'25; `../shared/methods.md` §1).

Each Gaussian becomes a token of its normalised attributes (position in the scene's box, log-scale
relative to the box, opacity, rotation, SH colour up to `sh_degree`). A point transformer
(`network.py`) gives each token a feature; one small MLP per attribute maps [feature ‖ input] to a
residual that is added to the input. The heads' last layers start at zero, so an untrained model
returns its input unchanged, and training only has to learn the correction.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from splatlab.gaussians import Gaussians, num_sh_bases

from ..base import FeedForwardModel, InputError, ModelConfig
from ..registry import register_model
from .network import PointTransformer
from .serialization import ORDERS, quantize, serialize

# the core fields the model reads and refines (each gets a residual head)
ATTRIBUTES = ("means", "scales", "opacities", "quats", "sh0", "shN")


@dataclass
class SplatFormerConfig(ModelConfig):
    sh_degree: int = 1
    grid_bits: int = 10  # positions are quantised to 2**bits cells per axis of the scene box
    patch: int = 256  # attention window along a curve order
    orders: tuple = ("z", "z-trans", "hilbert", "hilbert-trans")
    enc_channels: tuple = (32, 64, 96, 128)
    enc_depths: tuple = (1, 1, 1, 2)
    enc_heads: tuple = (2, 4, 4, 8)
    dec_channels: tuple = (48, 64, 96)
    dec_depths: tuple = (1, 1, 1)
    dec_heads: tuple = (2, 4, 4)
    head_width: int = 64
    head_layers: int = 3
    max_offset: float = 0.05  # largest position change, as a fraction of the scene box
    max_points: int = 120_000  # larger scenes are refined in spatially coherent chunks of this size

    def validate(self) -> None:
        if not 0 <= self.sh_degree <= 3:
            raise ValueError("sh_degree must be in 0..3")
        if not 2 <= self.grid_bits <= 16:
            raise ValueError("grid_bits must be in 2..16")
        if self.patch < 1 or self.head_layers < 2 or self.head_width < 1 or self.max_points < 1:
            raise ValueError("patch, head_width, max_points must be >= 1 and head_layers >= 2")
        if not self.orders or any(o not in ORDERS for o in self.orders):
            raise ValueError(f"orders must be a non-empty subset of {ORDERS}")
        if len(self.enc_channels) - 1 > self.grid_bits - 1:
            raise ValueError("too many encoder stages for grid_bits")
        if not 0 < self.max_offset <= 1:
            raise ValueError("max_offset must be in (0, 1]")

    @property
    def rest_coeffs(self) -> int:
        return num_sh_bases(self.sh_degree) - 1

    @property
    def in_channels(self) -> int:
        return 3 + 3 + 1 + 4 + 3 + 3 * self.rest_coeffs


def _head(in_channels: int, width: int, layers: int, out: int) -> nn.Sequential:
    mods: list[nn.Module] = []
    c = in_channels
    for _ in range(layers - 1):
        mods += [nn.Linear(c, width), nn.ReLU()]
        c = width
    last = nn.Linear(c, out)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(*mods, last)


def scene_box(means: Tensor) -> tuple[Tensor, Tensor]:
    """(low corner, edge length): the cube around the axis-aligned bounds, so normalisation keeps
    the scene's proportions."""
    lo, hi = means.min(0).values, means.max(0).values
    extent = (hi - lo).max().clamp_min(1e-6)
    centre = (lo + hi) / 2
    return centre - extent / 2, extent


class _SceneRenderer(nn.Module):
    """Holds a Gaussians so `torch.func.functional_call` can swap in refined fields that still carry
    the model's graph, and renders through the one render path."""

    def __init__(self, gaussians: Gaussians) -> None:
        super().__init__()
        self.scene = gaussians

    def forward(self, cameras, kwargs: dict[str, Any]):
        from splatlab.render import render

        return render(self.scene, cameras, **kwargs)


def render_fields(fields: dict[str, Tensor], cameras, **render_kwargs: Any):
    """Differentiable render of plain Gaussians given as field tensors (e.g. a refined scene with
    gradients to the network), through `splatlab.render.render`."""
    shell = Gaussians.from_fields({k: v.detach() for k, v in fields.items()})
    swapped = {f"scene.params.{k}": v for k, v in fields.items()}
    return torch.func.functional_call(_SceneRenderer(shell), swapped, (cameras, render_kwargs))


def check_fields(fields: dict[str, Tensor], where: str) -> None:
    n = fields["means"].shape[0]
    if n == 0:
        raise InputError(f"{where}: the scene has no Gaussians")
    for name in ATTRIBUTES:
        bad = (~torch.isfinite(fields[name].reshape(n, -1))).any(dim=1)
        if bad.any():
            raise InputError(f"{where}: {int(bad.sum())} Gaussians have NaN or infinite {name}")


@register_model("splatformer")
class SplatFormer(FeedForwardModel):
    """Splat set in, refined splat set out (same count, same order)."""

    Config = SplatFormerConfig

    def __init__(self, config: SplatFormerConfig | None = None) -> None:
        super().__init__(config)
        c = self.config
        self.backbone = PointTransformer(c.in_channels, tuple(c.enc_channels), tuple(c.enc_depths),
                                         tuple(c.enc_heads), tuple(c.dec_channels), tuple(c.dec_depths),
                                         tuple(c.dec_heads), c.patch, tuple(c.orders))
        widths = {"means": 3, "scales": 3, "opacities": 1, "quats": 4, "sh0": 3, "shN": 3 * c.rest_coeffs}
        self.heads = nn.ModuleDict({
            name: _head(self.backbone.out_channels + c.in_channels, c.head_width, c.head_layers, w)
            for name, w in widths.items() if w > 0})

    @classmethod
    def tiny_config(cls) -> SplatFormerConfig:
        return SplatFormerConfig(grid_bits=6, patch=16, enc_channels=(8, 16), enc_depths=(1, 1), enc_heads=(2, 2),
                                 dec_channels=(8,), dec_depths=(1,), dec_heads=(2,), head_width=8, head_layers=2)

    # -- tokens --------------------------------------------------------------------------------------
    def encode(self, fields: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(features (N, in_channels), grid cells (N, 3), box low corner, box edge)."""
        c = self.config
        means = fields["means"]
        n = means.shape[0]
        lo, extent = scene_box(means)
        pos = (means - lo) / extent
        quats = nn.functional.normalize(fields["quats"], dim=-1)
        quats = torch.where(quats[:, :1] < 0, -quats, quats)  # q and -q are the same rotation
        rest = fields["shN"].reshape(n, -1, 3)[:, :c.rest_coeffs]
        if rest.shape[1] < c.rest_coeffs:
            rest = torch.cat([rest, rest.new_zeros((n, c.rest_coeffs - rest.shape[1], 3))], dim=1)
        feats = torch.cat([pos, fields["scales"] - torch.log(extent), torch.sigmoid(fields["opacities"])[:, None],
                           quats, fields["sh0"].reshape(n, 3), rest.reshape(n, -1)], dim=1)
        return feats, quantize(pos, c.grid_bits), lo, extent

    def refine_fields(self, fields: dict[str, Tensor], order_shift: int = 0) -> dict[str, Tensor]:
        """One forward pass over one scene (at most `max_points` Gaussians): refined core fields."""
        c = self.config
        feats, cells, _, extent = self.encode(fields)
        hidden = self.backbone(feats, cells, c.grid_bits, order_shift)
        z = torch.cat([hidden, feats], dim=1)
        out = dict(fields)
        n = feats.shape[0]
        out["means"] = fields["means"] + torch.tanh(self.heads["means"](z)) * (c.max_offset * extent)
        out["scales"] = fields["scales"] + self.heads["scales"](z)
        out["opacities"] = fields["opacities"] + self.heads["opacities"](z)[:, 0]
        out["quats"] = fields["quats"] + self.heads["quats"](z)
        out["sh0"] = fields["sh0"] + self.heads["sh0"](z).reshape(n, 1, 3)
        k = min(c.rest_coeffs, fields["shN"].shape[1])
        if k:
            delta = self.heads["shN"](z).reshape(n, c.rest_coeffs, 3)[:, :k]
            out["shN"] = torch.cat([fields["shN"][:, :k] + delta, fields["shN"][:, k:]], dim=1)
        return out

    def forward(self, scenes: list[dict[str, Tensor]]) -> list[dict[str, Tensor]]:
        return [self.refine_fields(s) for s in scenes]

    def refine(self, gaussians: Gaussians, where: str = "scene") -> Gaussians:
        """Refine a whole scene without gradients. Scenes above `max_points` are cut into chunks of
        consecutive Gaussians along the Z-order curve (spatially compact), each refined on its own;
        Gaussians near a cut see only their own chunk's context."""
        fields = {k: v.detach().float() for k, v in gaussians.params.items()}
        check_fields(fields, where)
        n = fields["means"].shape[0]
        limit = self.config.max_points
        with torch.no_grad():
            if n <= limit:
                out = self.refine_fields(fields)
            else:
                lo, extent = scene_box(fields["means"])
                perm, _ = serialize(quantize((fields["means"] - lo) / extent, 16), "z", 16)
                out = {k: v.clone() for k, v in fields.items()}
                chunks = math.ceil(n / limit)
                for idx in torch.tensor_split(perm, chunks):
                    part = self.refine_fields({k: v[idx] for k, v in fields.items()})
                    for k in out:
                        out[k][idx] = part[k]
        return Gaussians.from_fields(out, gaussians.method)

    # -- contract ------------------------------------------------------------------------------------
    def example_inputs(self, batch: int = 1) -> dict[str, Any]:
        gen = torch.Generator().manual_seed(7)
        scenes = []
        for b in range(batch):
            n = 40 + 10 * b
            k = self.config.rest_coeffs
            scenes.append({"means": torch.rand(n, 3, generator=gen) * 2 - 1, "quats": torch.randn(n, 4, generator=gen),
                           "scales": torch.log(torch.rand(n, 3, generator=gen) * 0.05 + 0.01),
                           "opacities": torch.randn(n, generator=gen), "sh0": torch.randn(n, 1, 3, generator=gen) * 0.5,
                           "shN": torch.randn(n, k, 3, generator=gen) * 0.1})
        return {"scenes": scenes}

    def to_gaussians(self, output: list[dict[str, Tensor]], index: int = 0) -> Gaussians:
        return Gaussians.from_fields({k: v.detach() for k, v in output[index].items()})

    def predict_path(self, input_path: str, options: dict[str, Any] | None = None) -> Gaussians:
        from splatlab.io import SplatFormatError, read_splats

        try:
            gaussians = read_splats(input_path)
        except SplatFormatError as exc:
            raise InputError(str(exc)) from None
        return self.refine(gaussians, where=str(input_path))
