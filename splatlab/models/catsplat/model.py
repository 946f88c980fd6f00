"""CATSplat, sized for a CPU: one photo (+ an optional caption) -> per-pixel 3D Gaussians.

Structure after methods.md §3 (Flash3D base + CATSplat's guidance), all pieces small:
  depth net (MobileNetV2 ImageNet init + U-Net decoder, trained on rendered depth, then frozen)
  -> image encoder (MobileNetV2 blocks, ImageNet init, log-depth as a 4th input channel)
  -> a transformer on the two coarsest scales (1/16, 1/8): image tokens cross-attend to caption
     tokens (frozen MiniLM, linear-projected) and to point tokens (a PointNet-style set encoder over
     the back-projected depth, pretrained on a scene-content task, then frozen), then self-attention
     and an FFN, post-LN; the 1/8 scale starts from 0.5·its own features + 0.5·conv(up×2(1/16 output))
  -> U-Net decoder to full resolution -> `layers` Gaussians per pixel: depth through cumulative
     positive offsets behind the predicted depth, sub-pixel shift, scale, rotation, opacity, colour.
Switches `use_text` / `use_points` drop a guidance branch (the no-text / no-points / base variants).

Frame: the context camera's (OpenCV: x right, y down, z forward; the camera at the origin).
A target view with camera-to-world `c2w_t` (context `c2w_0`) is seen with viewmat inv(c2w_t) @ c2w_0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from splatlab.cameras import Cameras
from splatlab.gaussians import Gaussians, rgb_to_sh0

from ..base import FeedForwardModel, InputError, ModelConfig
from ..registry import register_model
from .backbone import TAP_CHANNELS, MobileNetV2Features

TEXT_DIM = 384
MAX_ASPECT = 2.5  # photos wider/taller than this are rejected (the model saw square views)


@dataclass
class CATSplatConfig(ModelConfig):
    image_size: int = 64            # square network input
    fov_x_deg: float = 68.75        # the training views' horizontal field of view (1.2 rad)
    dim: int = 64                   # transformer width
    heads: int = 4
    blocks: int = 1                 # transformer blocks per coarse scale
    decoder: tuple = (32, 24, 16)   # decoder widths at 1/4, 1/2, full
    layers: int = 2                 # Gaussians per pixel
    use_text: bool = True
    use_points: bool = True
    text_tokens: int = 64           # caption token limit (longer: truncated with a warning)
    point_stride: int = 2           # back-project every n-th pixel of the depth map
    point_groups: int = 64          # point tokens (farthest-point-sampled centres)
    point_k: int = 16               # neighbours per group
    point_dim: int = 128
    point_classes: int = 20         # pretraining targets of the point encoder (categories + kind)
    depth_decoder: tuple = (48, 32, 16)
    max_depth: float = 60.0
    scale_factor: float = 0.7       # initial Gaussian size in pixel footprints
    pretrained_backbone: bool = True  # documentation: both MobileNets started from ImageNet

    def validate(self) -> None:
        if self.image_size % 16:
            raise ValueError("image_size must be a multiple of 16")
        if self.dim % self.heads:
            raise ValueError("dim must be divisible by heads")
        if self.layers < 1 or self.blocks < 1:
            raise ValueError("layers and blocks must be >= 1")
        if self.text_tokens < 2:
            raise ValueError("text_tokens must be >= 2")
        if len(self.decoder) != 3 or len(self.depth_decoder) != 3:
            raise ValueError("decoder widths are three numbers")

    @property
    def focal(self) -> float:
        return 0.5 * self.image_size / math.tan(math.radians(self.fov_x_deg) / 2)


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1), nn.GroupNorm(min(8, cout), cout), nn.SiLU())


class UpBlock(nn.Module):
    def __init__(self, cin: int, skip: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(_conv(cin + skip, cout), _conv(cout, cout))

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(torch.cat([x, skip], 1))


class DepthNet(nn.Module):
    """Monocular metric depth (the training renders share one fov and eye height, so the scale is
    learnable): MobileNetV2 encoder + U-Net decoder -> log depth."""

    def __init__(self, c: CATSplatConfig) -> None:
        super().__init__()
        self.encoder = MobileNetV2Features(3)
        d1, d2, d3 = c.depth_decoder
        self.up3 = UpBlock(TAP_CHANNELS[3], TAP_CHANNELS[2], d1)
        self.up2 = UpBlock(d1, TAP_CHANNELS[1], d2)
        self.up1 = UpBlock(d2, TAP_CHANNELS[0], d3)
        self.up0 = UpBlock(d3, 3, d3)
        self.head = nn.Conv2d(d3, 1, 3, 1, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.constant_(self.head.bias, math.log(3.0))
        self.max_log = math.log(c.max_depth)

    def forward(self, rgb: Tensor) -> Tensor:
        """(B,3,H,W) in [0,1] -> log depth (B,1,H,W)."""
        f1, f2, f3, f4 = self.encoder(rgb)
        x = self.up0(self.up1(self.up2(self.up3(f4, f3), f2), f1), rgb)
        return self.head(x).clamp(math.log(0.1), self.max_log)


def backproject(depth: Tensor, K: Tensor, stride: int = 1) -> Tensor:
    """(B,1,H,W) depth -> (B, H/stride·W/stride, 3) camera-frame points at pixel centres."""
    b, _, h, w = depth.shape
    ys = torch.arange(stride // 2, h, stride, dtype=depth.dtype, device=depth.device) + 0.5
    xs = torch.arange(stride // 2, w, stride, dtype=depth.dtype, device=depth.device) + 0.5
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    z = depth[:, 0, stride // 2::stride, stride // 2::stride]
    fx, fy, cx, cy = K[:, 0, 0, None, None], K[:, 1, 1, None, None], K[:, 0, 2, None, None], K[:, 1, 2, None, None]
    return torch.stack([(xx - cx) / fx * z, (yy - cy) / fy * z, z], -1).reshape(b, -1, 3)


def farthest_points(x: Tensor, n: int) -> Tensor:
    """Indices (B, n) of farthest-point samples (deterministic: starts at point 0)."""
    b, p, _ = x.shape
    idx = torch.zeros(b, n, dtype=torch.long, device=x.device)
    dist = torch.full((b, p), float("inf"), device=x.device)
    cur = torch.zeros(b, dtype=torch.long, device=x.device)
    ar = torch.arange(b, device=x.device)
    for i in range(n):
        idx[:, i] = cur
        dist = torch.minimum(dist, ((x - x[ar, cur][:, None]) ** 2).sum(-1))
        cur = dist.argmax(-1)
    return idx


class PointEncoder(nn.Module):
    """PointNet-style set encoder: FPS centres, kNN groups, shared MLP + max-pool per group
    (PointNet++'s set abstraction) -> point tokens; a classifier head for its pretraining."""

    def __init__(self, c: CATSplatConfig) -> None:
        super().__init__()
        self.c = c
        d = c.point_dim
        self.local = nn.Sequential(nn.Linear(6, 64), nn.ReLU(), nn.Linear(64, d), nn.ReLU(), nn.Linear(d, d))
        self.pos = nn.Sequential(nn.Linear(3, d), nn.ReLU(), nn.Linear(d, d))
        self.mix = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))
        self.classifier = nn.Linear(2 * d, c.point_classes)

    @staticmethod
    def normalise(points: Tensor) -> Tensor:
        """Metric camera-frame points -> a compressed range (log-like in distance)."""
        r = points.norm(dim=-1, keepdim=True).clamp_min(1e-6)
        return points / r * torch.log1p(r) / 2.0

    def forward(self, points: Tensor) -> tuple[Tensor, Tensor]:
        """(B, P, 3) -> tokens (B, G, D) and centres (B, G, 3) (normalised)."""
        x = self.normalise(points)
        b = x.shape[0]
        ar = torch.arange(b, device=x.device)[:, None]
        centres = x[ar, farthest_points(x, self.c.point_groups)]
        knn = torch.cdist(centres, x).topk(self.c.point_k, largest=False).indices  # (B, G, k)
        nb = x[ar[..., None], knn]  # (B, G, k, 3)
        feat = self.local(torch.cat([nb - centres[:, :, None], nb], -1)).amax(2)
        h = feat + self.pos(centres)
        return h + self.mix(h), centres

    def classify(self, tokens: Tensor) -> Tensor:
        return self.classifier(torch.cat([tokens.amax(1), tokens.mean(1)], -1))


def sinusoid(h: int, w: int, dim: int, device=None) -> Tensor:
    """2D sinusoidal position code (h·w, dim)."""
    q = dim // 4
    freq = torch.exp(-math.log(100.0) * torch.arange(q, device=device) / q)
    ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=torch.float32),
                            torch.arange(w, device=device, dtype=torch.float32), indexing="ij")
    parts = []
    for v in (ys.reshape(-1) / h * 16, xs.reshape(-1) / w * 16):
        parts += [torch.sin(v[:, None] * freq), torch.cos(v[:, None] * freq)]
    return torch.cat(parts, -1)


class GuidedBlock(nn.Module):
    """image→text cross-attn, image→point cross-attn (×γ), self-attn, FFN; post-LN (CATSplat)."""

    def __init__(self, c: CATSplatConfig) -> None:
        super().__init__()
        d = c.dim
        self.text_attn = nn.MultiheadAttention(d, c.heads, batch_first=True) if c.use_text else None
        self.point_attn = nn.MultiheadAttention(d, c.heads, batch_first=True) if c.use_points else None
        self.gamma = nn.Parameter(torch.tensor(0.5)) if c.use_points else None
        self.self_attn = nn.MultiheadAttention(d, c.heads, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(4))

    def forward(self, x: Tensor, text: Tensor | None, text_pad: Tensor | None, points: Tensor | None) -> Tensor:
        if self.text_attn is not None:
            mask = None
            if text_pad is not None:  # as an additive attn_mask: torch's key_padding_mask check imports sympy (0.7 s)
                b, s = text_pad.shape
                mask = torch.zeros(b, 1, s, dtype=x.dtype).masked_fill(text_pad[:, None, :], float("-inf"))
                mask = mask.expand(b, x.shape[1], s).repeat_interleave(self.text_attn.num_heads, dim=0)
            x = self.norms[0](x + self.text_attn(x, text, text, attn_mask=mask, need_weights=False)[0])
        if self.point_attn is not None:
            x = self.norms[1](x + self.gamma * self.point_attn(x, points, points, need_weights=False)[0])
        x = self.norms[2](x + self.self_attn(x, x, x, need_weights=False)[0])
        return self.norms[3](x + self.ffn(x))


N_RAW = 14  # per Gaussian: depth offset 1, shift 2, log-scale 3, quaternion 4, opacity 1, colour 3


@register_model("catsplat")
class CATSplat(FeedForwardModel):
    """Single photo (+ caption) -> per-pixel Gaussians in the photo's camera frame."""

    Config = CATSplatConfig

    def __init__(self, config: CATSplatConfig | None = None) -> None:
        super().__init__(config)
        c = self.config
        self.depth_net = DepthNet(c)
        self.point_encoder = PointEncoder(c)
        self.encoder = MobileNetV2Features(4)
        self.proj16 = nn.Conv2d(TAP_CHANNELS[3], c.dim, 1)
        self.proj8 = nn.Conv2d(TAP_CHANNELS[2], c.dim, 1)
        self.fuse = nn.Conv2d(c.dim, c.dim, 3, 1, 1)  # conv on the ×2-upsampled coarser output
        self.text_proj = nn.Linear(TEXT_DIM, c.dim) if c.use_text else None
        self.point_proj = nn.Linear(c.point_dim + 3, c.dim) if c.use_points else None
        self.blocks16 = nn.ModuleList(GuidedBlock(c) for _ in range(c.blocks))
        self.blocks8 = nn.ModuleList(GuidedBlock(c) for _ in range(c.blocks))
        d4, d2, d1 = c.decoder
        self.up4 = UpBlock(c.dim, TAP_CHANNELS[1], d4)
        self.up2 = UpBlock(d4, TAP_CHANNELS[0], d2)
        self.up1 = UpBlock(d2, 4, d1)
        self.head = nn.Conv2d(d1, c.layers * N_RAW, 3, 1, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.freeze_pretrained()

    def freeze_pretrained(self) -> None:
        """The depth net and the point encoder are trained separately, then frozen (as the paper)."""
        for m in (self.depth_net, self.point_encoder):
            m.requires_grad_(False)
            m.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        if not getattr(self, "_training_parts", False):
            self.depth_net.eval()
            self.point_encoder.eval()
        return self

    @classmethod
    def tiny_config(cls) -> CATSplatConfig:
        return CATSplatConfig(image_size=32, dim=16, heads=2, decoder=(8, 8, 8), depth_decoder=(8, 8, 8),
                              point_groups=8, point_k=4, point_dim=16, text_tokens=16)

    def example_inputs(self, batch: int = 1) -> dict[str, Any]:
        s = self.config.image_size
        g = torch.Generator().manual_seed(1)
        return {"image": torch.rand(batch, 3, s, s, generator=g),
                "text": torch.randn(batch, 5, TEXT_DIM, generator=g), "text_mask": torch.ones(batch, 5, dtype=torch.bool)}

    def intrinsics(self, batch: int = 1) -> Tensor:
        c = self.config
        f, s = c.focal, c.image_size
        return torch.tensor([[f, 0, s / 2], [0, f, s / 2], [0, 0, 1.0]]).expand(batch, 3, 3)

    # -- the network ---------------------------------------------------------------------------------
    def predict_depth(self, image: Tensor) -> Tensor:
        with torch.no_grad():
            return self.depth_net(image).exp()

    def point_tokens(self, depth: Tensor, K: Tensor) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            return self.point_encoder(backproject(depth, K, self.config.point_stride))

    def forward(self, image: Tensor, text: Tensor | None = None, text_mask: Tensor | None = None,
                depth: Tensor | None = None, point_feats: tuple[Tensor, Tensor] | None = None) -> dict[str, Tensor]:
        """`image` (B,3,S,S) in [0,1]; `text` (B,T,384) MiniLM states with `text_mask` (B,T)
        (None: the empty caption's tokens must be passed by the caller when use_text);
        `depth` (B,1,S,S) and `point_feats` (tokens, centres) are the frozen nets' outputs when
        the caller has cached them (training), computed here otherwise."""
        c = self.config
        b, _, h, w = image.shape
        K = self.intrinsics(b).to(image)
        if depth is None:
            depth = self.predict_depth(image)
        logd = torch.log(depth.clamp_min(1e-3))
        f1, f2, f3, f4 = self.encoder(image, (logd - 1.0) / 2.0)
        text_tok = pad = pts = None
        if c.use_text:
            if text is None:
                raise ValueError("use_text models need caption tokens (encode the empty caption for none)")
            text_tok = self.text_proj(text)
            pad = ~text_mask if text_mask is not None else None
        if c.use_points:
            tok, centres = point_feats if point_feats is not None else self.point_tokens(depth, K)
            pts = self.point_proj(torch.cat([tok, centres], -1))
        x16 = self.proj16(f4)
        t = x16.flatten(2).transpose(1, 2) + sinusoid(*x16.shape[-2:], c.dim, image.device)
        for blk in self.blocks16:
            t = blk(t, text_tok, pad, pts)
        y16 = t.transpose(1, 2).reshape(b, c.dim, *x16.shape[-2:])
        x8 = 0.5 * self.proj8(f3) + 0.5 * self.fuse(F.interpolate(y16, scale_factor=2.0, mode="bilinear", align_corners=False))
        t = x8.flatten(2).transpose(1, 2) + sinusoid(*x8.shape[-2:], c.dim, image.device)
        for blk in self.blocks8:
            t = blk(t, text_tok, pad, pts)
        y8 = t.transpose(1, 2).reshape(b, c.dim, *x8.shape[-2:])
        x = self.up1(self.up2(self.up4(y8, f2), f1), torch.cat([image, (logd - 1.0) / 2.0], 1))
        raw = self.head(x).view(b, c.layers, N_RAW, h, w)
        return self.gaussians_from_raw(raw, image, depth, K)

    def gaussians_from_raw(self, raw: Tensor, image: Tensor, depth: Tensor, K: Tensor) -> dict[str, Tensor]:
        """Per-pixel raw values -> Gaussian fields (B, L·H·W, ...). With raw = 0 the first layer is
        the reprojection of the photo at the predicted depth (each later layer sits behind it)."""
        c = self.config
        b, L, _, h, w = raw.shape
        base = depth[:, None, 0]  # (B,1,H,W)
        d0 = base * torch.exp(0.3 * torch.tanh(raw[:, :1, 0]))
        if L > 1:
            steps = F.softplus(raw[:, 1:, 0] - 2.0) * 0.2 * base  # cumulative positive offsets
            d = torch.cat([d0, d0 + torch.cumsum(steps, 1)], 1)
        else:
            d = d0
        ys = torch.arange(h, device=raw.device, dtype=raw.dtype) + 0.5
        xs = torch.arange(w, device=raw.device, dtype=raw.dtype) + 0.5
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        u = xx + 0.5 * torch.tanh(raw[:, :, 1])
        v = yy + 0.5 * torch.tanh(raw[:, :, 2])
        fx, fy, cx, cy = (K[:, i, j].view(b, 1, 1, 1) for i, j in ((0, 0), (1, 1), (0, 2), (1, 2)))
        means = torch.stack([(u - cx) / fx * d, (v - cy) / fy * d, d], -1)
        footprint = (d / fx)[..., None] * c.scale_factor
        scales = footprint * torch.exp(raw[:, :, 3:6].permute(0, 1, 3, 4, 2).clamp(max=3.0))
        quats = F.normalize(raw[:, :, 6:10].permute(0, 1, 3, 4, 2) + raw.new_tensor([1.0, 0, 0, 0]), dim=-1)
        layer_bias = raw.new_tensor([4.0] + [-1.0] * (L - 1)).view(1, L, 1, 1)
        opac = torch.sigmoid(raw[:, :, 10] + layer_bias)
        logit = torch.logit(image.clamp(0.02, 0.98))[:, None]  # (B,1,3,H,W)
        rgb = torch.sigmoid(logit + raw[:, :, 11:14]).permute(0, 1, 3, 4, 2)
        flat = lambda t, k: t.reshape(b, -1, k) if k else t.reshape(b, -1)  # noqa: E731
        return {"means": flat(means, 3), "scales": flat(scales, 3), "quats": flat(quats, 4),
                "opacities": flat(opac, 0), "rgb": flat(rgb, 3), "depth": depth}

    @staticmethod
    def reprojection(image: Tensor, depth: Tensor, K: Tensor, scale_factor: float = 0.7) -> dict[str, Tensor]:
        """The baseline: one opaque Gaussian per pixel with the photo's colour at the given depth."""
        b, _, h, w = image.shape
        raw = image.new_zeros(b, 1, N_RAW, h, w)
        tmp = CATSplat.__new__(CATSplat)
        tmp.__dict__["config"] = CATSplatConfig(image_size=h, scale_factor=scale_factor, layers=1)
        out = CATSplat.gaussians_from_raw(tmp, raw, image, depth, K)
        out["opacities"] = torch.full_like(out["opacities"], 0.995)
        return out

    def to_gaussians(self, output: dict[str, Tensor], index: int = 0) -> Gaussians:
        o = {k: v[index].detach() for k, v in output.items() if k != "depth"}
        n = o["means"].shape[0]
        return Gaussians(o["means"], o["quats"], torch.log(o["scales"]), torch.logit(o["opacities"].clamp(1e-6, 1 - 1e-6)),
                         rgb_to_sh0(o["rgb"]).reshape(n, 1, 3), o["means"].new_zeros(n, 0, 3))

    @staticmethod
    def render_views(output: dict[str, Tensor], index: int, cameras: Cameras,
                     background: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Differentiable render of sample `index` into `cameras`: the one rasterizer with the
        arguments `splatlab.render.render` gives a plain degree-0 scene (see tests)."""
        from splatlab.render import rasterize

        bg = torch.zeros(3) if background is None else background
        img, alpha, _ = rasterize(output["means"][index], output["quats"][index], output["scales"][index],
                                  output["opacities"][index], output["rgb"][index], cameras.viewmats, cameras.Ks,
                                  cameras.width, cameras.height, backgrounds=bg.expand(len(cameras), 3))
        return img, alpha

    # -- photos ---------------------------------------------------------------------------------------
    @classmethod
    def add_predict_arguments(cls, parser) -> None:
        parser.add_argument("--caption", default="", help="a description of the scene (default: none)")

    def load_photo(self, path: str) -> Tensor:
        """(1,3,S,S): the photo centre-cropped to a square and resized (one-line errors)."""
        from PIL import Image

        try:
            with Image.open(path) as im:
                im.load()
                arr = im.convert("RGB")
        except Exception as exc:
            raise InputError(f"{path}: unreadable image ({type(exc).__name__})") from None
        w, h = arr.size
        if max(w, h) > MAX_ASPECT * min(w, h):
            raise InputError(f"{path}: aspect ratio {w}x{h} is too extreme (at most {MAX_ASPECT}:1; crop the photo)")
        s = min(w, h)
        arr = arr.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
        import numpy as np

        t = torch.from_numpy(np.asarray(arr, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
        n = self.config.image_size
        return F.interpolate(t, size=(n, n), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)

    def encode_caption(self, caption: str) -> tuple[Tensor | None, Tensor | None]:
        if not self.config.use_text:
            return None, None
        from .text import encode

        return encode([caption or ""], self.config.text_tokens)

    def predict_path(self, input_path: str, options: dict[str, Any] | None = None) -> Gaussians:
        import warnings

        image = self.load_photo(input_path)
        caption = str((options or {}).get("caption") or "")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            text, mask = self.encode_caption(caption)
        for w in caught:
            import sys
            print(f"warning: --caption: {w.message}", file=sys.stderr)
        with torch.no_grad():
            out = self(image, text, mask)
        return self.to_gaussians(out)
