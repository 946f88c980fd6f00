"""Triplane-Gaussian (TGS), sized for a CPU: one RGBA image -> a few thousand 3D Gaussians.

Following the paper's structure (methods.md §2), all pieces written here and small:
  image encoder (a 4-stage CNN, tokens at 1/8 resolution, camera-conditioned by the input
  elevation through FiLM) -> point decoder (learned queries cross-attending to image tokens ->
  coarse xyz, then each point spawns `children` offsets) -> triplane decoder (learned plane tokens
  plus the coarse points' features scattered onto the planes, a transformer attending to the image
  tokens, a transposed conv to upsample) -> Gaussian MLP per point on [triplane samples, projected
  image features, point feature] -> offset, scale, rotation, opacity, colour.

Frame ("canonical", upright): object centred at the origin, world z up, the input camera at the
input elevation e on the -y side: at D·(0, -cos e, sin e) looking at the origin (D = camera
distance, 3 in the object dataset), fov 40°. Only the azimuth is normalised away, so the object
keeps its real up direction (objects rest upright in the dataset) and the triplane stays aligned
with it; the elevation is an input of the model (camera conditioning and projection).
The predicted Gaussians live in this frame, so `splatlab view` shows the object upright, facing
the input view from -y.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from splatlab.cameras import Cameras, intrinsics_from_fov, look_at
from splatlab.gaussians import Gaussians, rgb_to_sh0

from ..base import FeedForwardModel, ModelConfig
from ..registry import register_model


@dataclass
class TGSConfig(ModelConfig):
    image_size: int = 64          # network input resolution (square RGBA)
    channels: tuple = (24, 48, 96)  # encoder stages at 1/2, 1/4, 1/8
    dim: int = 96                 # token width of all transformers
    heads: int = 4
    image_layers: int = 1         # self-attention layers over image tokens
    point_queries: int = 256      # coarse points
    point_layers: int = 2
    children: int = 8             # fine points per coarse point (Gaussians = queries x children)
    child_offset: float = 0.1     # max distance of a child point from its coarse point
    plane_res: int = 8            # triplane token grid per plane (upsampled x2 by a transposed conv)
    plane_layers: int = 2
    plane_channels: int = 32
    mlp_hidden: int = 128
    fov_deg: float = 40.0
    camera_distance: float = 3.0
    extent: float = 1.0           # half-size of the triplane cube (objects are in the unit sphere)
    max_offset: float = 0.05      # Gaussian centre offset from its point (canonical units)
    init_scale: float = 0.03
    max_scale: float = 0.2
    use_triplane: bool = True     # False: the points-only ablation (no triplane features in the Gaussian MLP)

    def validate(self) -> None:
        if self.image_size % 8:
            raise ValueError("image_size must be a multiple of 8")
        if self.dim % self.heads:
            raise ValueError("dim must be divisible by heads")
        if len(self.channels) != 3 or min(self.channels) < 1:
            raise ValueError("channels must be three positive widths")
        for name in ("point_queries", "children", "plane_res", "plane_channels", "mlp_hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")

    @property
    def n_gaussians(self) -> int:
        return self.point_queries * self.children


def _conv(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.GroupNorm(min(8, cout), cout), nn.SiLU())


class ImageEncoder(nn.Module):
    """RGBA -> (tokens (B, (S/8)², dim), 1/4-resolution feature map for projected features)."""

    def __init__(self, c: TGSConfig) -> None:
        super().__init__()
        c1, c2, c3 = c.channels
        self.stage1 = nn.Sequential(_conv(4, c1, 2), _conv(c1, c1, 1))
        self.stage2 = nn.Sequential(_conv(c1, c2, 2), _conv(c2, c2, 1))
        self.stage3 = nn.Sequential(_conv(c2, c3, 2), _conv(c3, c3, 1))
        self.proj = nn.Conv2d(c3, c.dim, 1)
        n = (c.image_size // 8) ** 2
        self.pos = nn.Parameter(torch.randn(1, n, c.dim) * 0.02)
        # camera conditioning: FiLM of the tokens from the input view's elevation (zero-init: identity)
        self.film = nn.Sequential(nn.Linear(2, c.dim), nn.SiLU(), nn.Linear(c.dim, 2 * c.dim))
        nn.init.zeros_(self.film[-1].weight)
        nn.init.zeros_(self.film[-1].bias)
        layer = nn.TransformerEncoderLayer(c.dim, c.heads, 2 * c.dim, 0.0, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, c.image_layers, enable_nested_tensor=False)

    def forward(self, image: Tensor, elevation: Tensor) -> tuple[Tensor, Tensor]:
        x = image * 2 - 1
        f1 = self.stage1(x)
        f2 = self.stage2(f1)
        f3 = self.proj(self.stage3(f2))
        tokens = f3.flatten(2).transpose(1, 2) + self.pos
        e = torch.deg2rad(elevation)[:, None]
        gamma, beta = self.film(torch.cat([torch.sin(e), torch.cos(e)], 1)).chunk(2, dim=1)
        tokens = tokens * (1 + gamma[:, None]) + beta[:, None]
        return self.blocks(tokens), f2


class PointDecoder(nn.Module):
    """Learned queries cross-attending to image tokens -> coarse xyz and per-point features."""

    def __init__(self, c: TGSConfig) -> None:
        super().__init__()
        self.queries = nn.Parameter(torch.randn(c.point_queries, c.dim) * 0.5)
        layer = nn.TransformerDecoderLayer(c.dim, c.heads, 2 * c.dim, 0.0, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerDecoder(layer, c.point_layers)
        self.norm = nn.LayerNorm(c.dim)
        self.xyz = nn.Linear(c.dim, 3)
        self.child_xyz = nn.Linear(c.dim, 3 * c.children)
        self.child_emb = nn.Parameter(torch.randn(c.children, c.dim) * 0.02)
        self.c = c

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        b = tokens.shape[0]
        h = self.norm(self.blocks(self.queries[None].expand(b, -1, -1), tokens))
        coarse = torch.tanh(self.xyz(h)) * self.c.extent
        k = self.c.children
        off = torch.tanh(self.child_xyz(h)).reshape(b, -1, k, 3) * self.c.child_offset
        fine = (coarse[:, :, None] + off).reshape(b, -1, 3)
        fine_h = (h[:, :, None] + self.child_emb).reshape(b, -1, h.shape[-1])
        return coarse, h, fine, fine_h


def _plane_coords(xyz: Tensor) -> list[Tensor]:
    """The (xy, xz, yz) 2D coordinates of points, for grid_sample (x -> width, y -> height)."""
    return [xyz[..., [0, 1]], xyz[..., [0, 2]], xyz[..., [1, 2]]]


class TriplaneDecoder(nn.Module):
    """Plane tokens (+ coarse point features scattered onto them) -> transformer -> upsampled planes."""

    def __init__(self, c: TGSConfig) -> None:
        super().__init__()
        self.c = c
        r = c.plane_res
        self.tokens = nn.Parameter(torch.randn(3 * r * r, c.dim) * 0.02)
        self.point_in = nn.Sequential(nn.Linear(c.dim + 3, c.dim), nn.SiLU(), nn.Linear(c.dim, c.dim))
        layer = nn.TransformerDecoderLayer(c.dim, c.heads, 2 * c.dim, 0.0, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerDecoder(layer, c.plane_layers)
        self.norm = nn.LayerNorm(c.dim)
        self.up = nn.Sequential(nn.ConvTranspose2d(c.dim, c.plane_channels, 4, 2, 1), nn.SiLU(),
                                nn.Conv2d(c.plane_channels, c.plane_channels, 3, 1, 1))

    def scatter(self, coarse: Tensor, h: Tensor) -> Tensor:
        """Mean of the point features falling in each plane cell (a local-pool PointNet)."""
        b, p, d = h.shape
        r = self.c.plane_res
        feat = self.point_in(torch.cat([h, coarse], -1))
        out = []
        for uv in _plane_coords(coarse):
            cell = ((uv / self.c.extent * 0.5 + 0.5) * r).long().clamp(0, r - 1)
            idx = cell[..., 1] * r + cell[..., 0]  # (B, P)
            s = feat.new_zeros(b, r * r, d).scatter_add(1, idx[..., None].expand(-1, -1, d), feat)
            n = feat.new_zeros(b, r * r, 1).scatter_add(1, idx[..., None], torch.ones_like(feat[..., :1]))
            out.append(s / n.clamp_min(1))
        return torch.cat(out, 1)

    def forward(self, tokens: Tensor, coarse: Tensor, h: Tensor) -> Tensor:
        b = tokens.shape[0]
        r = self.c.plane_res
        x = self.tokens[None].expand(b, -1, -1) + self.scatter(coarse, h)
        x = self.norm(self.blocks(x, tokens))
        x = x.reshape(b * 3, r, r, -1).permute(0, 3, 1, 2)
        planes = self.up(x)
        return planes.reshape(b, 3, *planes.shape[1:])  # (B, 3, C, 2r, 2r)


def sample_triplane(planes: Tensor, xyz: Tensor, extent: float) -> Tensor:
    """Bilinear samples of the three planes at xyz, concatenated: (B, P, 3*C)."""
    feats = []
    for i, uv in enumerate(_plane_coords(xyz / extent)):
        s = F.grid_sample(planes[:, i], uv[:, :, None], mode="bilinear", padding_mode="border", align_corners=False)
        feats.append(s[..., 0].transpose(1, 2))
    return torch.cat(feats, -1)


@register_model("tgs")
class TriplaneGaussian(FeedForwardModel):
    """Single image -> 3D Gaussians (see the module docstring)."""

    Config = TGSConfig

    def __init__(self, config: TGSConfig | None = None) -> None:
        super().__init__(config)
        c = self.config
        self.encoder = ImageEncoder(c)
        self.points = PointDecoder(c)
        self.triplane = TriplaneDecoder(c) if c.use_triplane else None
        feat_in = (3 * c.plane_channels if c.use_triplane else 0) + c.channels[1] + 4 + c.dim + 3
        self.gaussian_mlp = nn.Sequential(nn.Linear(feat_in, c.mlp_hidden), nn.SiLU(),
                                          nn.Linear(c.mlp_hidden, c.mlp_hidden), nn.SiLU(),
                                          nn.Linear(c.mlp_hidden, 14))
        nn.init.zeros_(self.gaussian_mlp[-1].weight)
        nn.init.zeros_(self.gaussian_mlp[-1].bias)

    @classmethod
    def tiny_config(cls) -> TGSConfig:
        return TGSConfig(image_size=16, channels=(4, 8, 8), dim=16, heads=2, point_queries=8, point_layers=1,
                         children=2, plane_res=2, plane_layers=1, plane_channels=4, mlp_hidden=16)

    def example_inputs(self, batch: int = 1) -> dict[str, Any]:
        s = self.config.image_size
        g = torch.Generator().manual_seed(1)
        return {"image": torch.rand(batch, 4, s, s, generator=g), "elevation": torch.full((batch,), 15.0)}

    # -- cameras of the canonical frame --------------------------------------------------------------
    def input_camera(self, size: int | None = None, elevation: float = 0.0) -> Cameras:
        """The input view in the canonical frame: at D·(0, -cos e, sin e) looking at the origin, z up."""
        s = size or self.config.image_size
        e = math.radians(float(elevation))
        d = self.config.camera_distance
        vm = look_at(torch.tensor([0.0, -d * math.cos(e), d * math.sin(e)]), torch.zeros(3))
        return Cameras(vm[None], intrinsics_from_fov(math.radians(self.config.fov_deg), s, s)[None], s, s)

    def project_to_input(self, xyz: Tensor, elevation: Tensor | float = 0.0) -> Tensor:
        """Canonical points (B, P, 3) or (P, 3) -> normalised input-image coordinates in [-1, 1]
        (grid_sample's), for input cameras at `elevation` degrees ((B,) or a number)."""
        c = self.config
        f = 1.0 / math.tan(math.radians(c.fov_deg) / 2)
        e = torch.deg2rad(torch.as_tensor(elevation, dtype=xyz.dtype))
        if e.ndim == 1:
            e = e.reshape(-1, *([1] * (xyz.ndim - 2)))
        ce, se = torch.cos(e), torch.sin(e)
        x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
        # camera axes of look_at(D(0,-cos e, sin e) -> 0, up z): right (1,0,0), down (0,-sin e,-cos e),
        # forward (0, cos e, -sin e); the eye is at distance D along -forward
        down = -se * y - ce * z
        depth = (ce * y - se * z + c.camera_distance).clamp_min(1e-3)
        return torch.stack([f * x / depth, f * down / depth], -1)

    # -- the network ---------------------------------------------------------------------------------
    def forward(self, image: Tensor, elevation: Tensor | None = None) -> dict[str, Tensor]:
        """`image` (B, 4, S, S): RGB over a white background and alpha, in [0, 1]; `elevation`
        (B,) degrees of the input camera above the object's horizon (default 15)."""
        c = self.config
        if elevation is None:
            elevation = image.new_full((image.shape[0],), 15.0)
        tokens, fmap = self.encoder(image, elevation)
        coarse, h, fine, fine_h = self.points(tokens)
        feats = []
        if self.triplane is not None:
            planes = self.triplane(tokens, coarse, h)
            feats.append(sample_triplane(planes, fine, c.extent))
        uv = self.project_to_input(fine, elevation)[:, :, None]
        img_feat = F.grid_sample(fmap, uv, align_corners=False, padding_mode="border")[..., 0].transpose(1, 2)
        img_rgba = F.grid_sample(image, uv, align_corners=False, padding_mode="border")[..., 0].transpose(1, 2)
        raw = self.gaussian_mlp(torch.cat(feats + [img_feat, img_rgba, fine_h, fine], -1))
        offset = (torch.sigmoid(raw[..., 0:3]) - 0.5) * 2 * c.max_offset
        scales = torch.exp((raw[..., 3:6] + math.log(c.init_scale)).clamp(max=math.log(c.max_scale)))
        quats = F.normalize(raw[..., 6:10] + raw.new_tensor([1.0, 0.0, 0.0, 0.0]), dim=-1)
        opacities = torch.sigmoid(raw[..., 10] + 1.0)
        # colour starts at the input image's colour where the point projects (a residual in logit space)
        base = torch.logit(img_rgba[..., :3].clamp(0.02, 0.98))
        rgb = torch.sigmoid(base + raw[..., 11:14])
        return {"coarse": coarse, "points": fine, "means": fine + offset, "scales": scales, "quats": quats,
                "opacities": opacities, "rgb": rgb}

    def to_gaussians(self, output: dict[str, Tensor], index: int = 0) -> Gaussians:
        o = {k: v[index].detach() for k, v in output.items()}
        n = o["means"].shape[0]
        return Gaussians(o["means"], o["quats"], torch.log(o["scales"]), torch.logit(o["opacities"].clamp(1e-6, 1 - 1e-6)),
                         rgb_to_sh0(o["rgb"]).reshape(n, 1, 3), o["means"].new_zeros(n, 0, 3))

    def render_views(self, output: dict[str, Tensor], index: int, cameras: Cameras,
                     background: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Differentiable render of sample `index` into `cameras` (training and evaluation): the
        one rasterizer with exactly the arguments `splatlab.render.render` gives a plain
        degree-0 scene (tested to match `render(model.to_gaussians(...))`)."""
        from splatlab.render import rasterize

        bg = torch.ones(3) if background is None else background
        img, alpha, _ = rasterize(output["means"][index], output["quats"][index], output["scales"][index],
                                  output["opacities"][index], output["rgb"][index], cameras.viewmats, cameras.Ks,
                                  cameras.width, cameras.height, backgrounds=bg.expand(len(cameras), 3))
        return img, alpha

    # -- photos ---------------------------------------------------------------------------------------
    @classmethod
    def add_predict_arguments(cls, parser) -> None:
        parser.add_argument("--elevation", type=float, default=15.0,
                            help="input camera elevation above the object's horizon, degrees (default 15)")

    def predict_path(self, input_path: str, options: dict[str, Any] | None = None) -> Gaussians:
        from .photo import load_photo

        image = load_photo(input_path, self.config.image_size)
        elevation = (options or {}).get("elevation")
        elevation = 15.0 if elevation is None else float(elevation)
        with torch.no_grad():
            out = self(torch.from_numpy(image)[None], torch.tensor([elevation]))
        return self.to_gaussians(out)
