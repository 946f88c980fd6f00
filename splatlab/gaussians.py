"""The one Gaussian scene model every method, exporter and viewer shares.

Parameters are stored pre-activation (as the INRIA `.ply` does): log-scales, opacity logits,
unnormalised wxyz quaternions and SH coefficients split into the DC band (`sh0`) and the rest
(`shN`).  Methods add their own per-Gaussian fields (GES shape, time, ...) as *extras*, which take
part in selection, concatenation, optimizer groups and checkpoints exactly like the core fields.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

import torch
from torch import Tensor, nn

SH_C0 = 0.28209479177387814
CORE_FIELDS = ("means", "quats", "scales", "opacities", "sh0", "shN")


@dataclass
class MethodSpec:
    """Which training method made a scene and with what options: enough to render it that method's
    way after a round trip through a checkpoint or a `.ply` (see `splatlab.methods`)."""

    name: str = "gs3d"
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "options": dict(self.options)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "MethodSpec | None":
        if not d:
            return None
        return cls(str(d.get("name", "gs3d")), dict(d.get("options") or {}))


def num_sh_bases(degree: int) -> int:
    return (degree + 1) ** 2


def sh_degree_from_bases(n_bases: int) -> int:
    degree = int(round(math.sqrt(n_bases))) - 1
    if num_sh_bases(degree) != n_bases or degree < 0 or degree > 4:
        raise ValueError(f"{n_bases} SH coefficients per channel is not a full SH band set")
    return degree


def rgb_to_sh0(rgb: Tensor) -> Tensor:
    return (rgb - 0.5) / SH_C0


def sh0_to_rgb(sh0: Tensor) -> Tensor:
    return sh0 * SH_C0 + 0.5


class Gaussians(nn.Module):
    """N Gaussians as named `nn.Parameter`s.

    `params["scales"]` holds log-scales and `params["opacities"]` logits; use the activated
    properties (`scales`, `opacities`, `quats`) when rendering.
    """

    def __init__(
        self,
        means: Tensor,
        quats: Tensor,
        log_scales: Tensor,
        opacity_logits: Tensor,
        sh0: Tensor,
        shN: Tensor | None = None,
        extras: Mapping[str, Tensor] | None = None,
        method: MethodSpec | None = None,
    ) -> None:
        super().__init__()
        #: the method whose render this scene expects (None: plain 3DGS); not a parameter
        self.method = method
        n = means.shape[0]
        if shN is None:
            shN = means.new_zeros((n, 0, 3))
        sh0 = sh0.reshape(n, 1, 3)
        fields = {
            "means": means, "quats": quats, "scales": log_scales,
            "opacities": opacity_logits.reshape(n), "sh0": sh0, "shN": shN,
        }
        for name, value in (extras or {}).items():
            if name in CORE_FIELDS:
                raise ValueError(f"extra field {name!r} shadows a core field")
            fields[name] = value
        for name, value in fields.items():
            if value.shape[0] != n:
                raise ValueError(f"field {name!r} has {value.shape[0]} rows, expected {n}")
        expect = {"means": (n, 3), "quats": (n, 4), "scales": (n, 3), "opacities": (n,), "sh0": (n, 1, 3)}
        for name, shape in expect.items():
            if tuple(fields[name].shape) != shape:
                raise ValueError(f"field {name!r} has shape {tuple(fields[name].shape)}, expected {shape}")
        if shN.ndim != 3 or shN.shape[2] != 3:
            raise ValueError(f"shN must be (N, K, 3), got {tuple(shN.shape)}")
        sh_degree_from_bases(shN.shape[1] + 1)
        self.params = nn.ParameterDict(
            {k: nn.Parameter(v.detach().clone().float().contiguous()) for k, v in fields.items()}
        )

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_fields(cls, fields: Mapping[str, Tensor], method: MethodSpec | None = None) -> "Gaussians":
        extras = {k: v for k, v in fields.items() if k not in CORE_FIELDS}
        return cls(fields["means"], fields["quats"], fields["scales"], fields["opacities"],
                   fields["sh0"], fields.get("shN"), extras, method)

    @classmethod
    def from_points(
        cls, points: Tensor, rgb: Tensor, scales: Tensor, opacity: float = 0.1, sh_degree: int = 3
    ) -> "Gaussians":
        """Isotropic, identity-rotation Gaussians at `points` with colours `rgb` in [0, 1]."""
        n = points.shape[0]
        quats = points.new_zeros((n, 4))
        quats[:, 0] = 1.0
        log_scales = torch.log(scales.reshape(n, -1).expand(n, 3).clamp_min(1e-8))
        logit = math.log(opacity / (1.0 - opacity))
        return cls(points, quats, log_scales, points.new_full((n,), logit), rgb_to_sh0(rgb),
                   points.new_zeros((n, num_sh_bases(sh_degree) - 1, 3)))

    # ---- access ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.params["means"].shape[0]

    def __getitem__(self, name: str) -> Tensor:
        return self.params[name]

    def fields(self) -> dict[str, Tensor]:
        return dict(self.params.items())

    def extra_names(self) -> list[str]:
        return [k for k in self.params.keys() if k not in CORE_FIELDS]

    def named_fields(self) -> Iterator[tuple[str, nn.Parameter]]:
        return iter(self.params.items())

    @property
    def sh_degree(self) -> int:
        return sh_degree_from_bases(self.params["shN"].shape[1] + 1)

    @property
    def means(self) -> Tensor:
        return self.params["means"]

    @property
    def quats(self) -> Tensor:
        """Unit quaternions (wxyz)."""
        return nn.functional.normalize(self.params["quats"], dim=-1)

    @property
    def scales(self) -> Tensor:
        return torch.exp(self.params["scales"])

    @property
    def opacities(self) -> Tensor:
        return torch.sigmoid(self.params["opacities"])

    @property
    def sh_coeffs(self) -> Tensor:
        """(N, (deg+1)^2, 3) SH coefficients, DC first."""
        return torch.cat([self.params["sh0"], self.params["shN"]], dim=1)

    @property
    def device(self) -> torch.device:
        return self.params["means"].device

    # ---- editing (used by densification strategies and loaders) ---------------------------
    def replace(self, fields: Mapping[str, Tensor]) -> None:
        """Swap parameter tensors in place (the caller keeps optimizer state consistent)."""
        for name, value in fields.items():
            self.params[name] = nn.Parameter(value.detach().contiguous(), requires_grad=True)

    def subset(self, index: Tensor) -> "Gaussians":
        """A new model with the rows selected by a boolean mask or index tensor."""
        return Gaussians.from_fields({k: v.detach()[index] for k, v in self.params.items()}, self.method)

    def detached_fields(self) -> dict[str, Tensor]:
        return {k: v.detach() for k, v in self.params.items()}

    def param_groups(self, lrs: Mapping[str, float]) -> list[dict]:
        """Optimizer parameter groups, one per field, named so strategies can find them."""
        groups = []
        for name, param in self.params.items():
            if name not in lrs:
                raise KeyError(f"no learning rate given for field {name!r}")
            groups.append({"params": [param], "lr": lrs[name], "name": name})
        return groups

    def bounds(self) -> tuple[Tensor, Tensor]:
        means = self.params["means"].detach()
        if len(self) == 0:
            zero = means.new_zeros(3)
            return zero, zero
        return means.min(0).values, means.max(0).values

    @staticmethod
    def concat(parts: list["Gaussians"]) -> "Gaussians":
        names = list(parts[0].params.keys())
        return Gaussians.from_fields({k: torch.cat([p.params[k].detach() for p in parts]) for k in names},
                                     parts[0].method)
