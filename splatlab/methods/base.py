"""What a training method is: a typed config plus hooks the one trainer loop and the one render
path call. The defaults are plain 3DGS, so a method overrides only what it changes.

A method sees the Gaussians (its own per-Gaussian fields are *extras* of the one `Gaussians`
model), the cameras being rendered (with image ids and times) and whether this is a training
render. Evaluation renders must depend only on the Gaussians' fields and the config: that is what
a checkpoint or a `.ply` carries, so `view`, `render` and `compress` draw a method's scene exactly
as the trainer evaluates it (`tests/test_methods_conformance.py` checks this for every method).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from torch import Tensor, nn
from torch.optim import Optimizer

from splatlab.cameras import Cameras
from splatlab.gaussians import CORE_FIELDS, Gaussians, MethodSpec
from splatlab.losses import photometric_loss

if TYPE_CHECKING:  # pragma: no cover
    from splatlab.data import SceneData


@dataclass
class MethodConfig:
    """Base of every method's options (`--method-option key=value`); fields must be JSON values."""

    def validate(self) -> None:
        """Raise ValueError (one line) on values out of range; types are checked on coercion."""


@dataclass
class RenderContext:
    """Why a render happens: `training` renders may use training-only effects (blur kernels);
    `step` is the training step (None outside training); `sh_degree` the SH bands to use;
    `backend` the rasterizer backend the passes will run on ('cpu', 'cuda' or 'reference'), for
    methods whose kernel one backend can only approximate (GES on CUDA)."""

    training: bool
    step: int | None
    sh_degree: int
    backend: str = "cpu"


@dataclass
class RenderPass:
    """One `rasterize` call of a render.

    `args`: rasterize keyword arguments except cameras/size/background (means, quats, scales,
    opacities, colors, sh_degree, shapes ...). `cameras`: which cameras of the batch this pass draws
    (None: all). `weight`: the pass's image is added with this weight (motion blur averages M passes).
    `index`: which Gaussian rows the pass's i-th Gaussian comes from (None: all rows, in order);
    densification statistics are scattered back through it.
    """

    args: dict[str, Any]
    cameras: Tensor | None = None
    weight: float = 1.0
    index: Tensor | None = None


@dataclass
class LossInputs:
    render: Tensor  # (C, H, W, 3)
    alpha: Tensor  # (C, H, W, 1)
    target: Tensor  # (C, H, W, 3)
    gaussians: Gaussians
    step: int
    meta: Any
    cameras: Cameras | None = None


class Method:
    """Plain 3D Gaussian splatting; subclasses override hooks and set `name` and `Config`."""

    name: ClassVar[str] = "gs3d"
    Config: ClassVar[type[MethodConfig]] = MethodConfig
    #: True when the method edits rows itself (in `after_step`) and the trainer's densification
    #: strategy must not run (its clone/split/prune would break the method's row structure)
    owns_densification: ClassVar[bool] = False
    #: whether the trainer may put pinned rows first (the background shell, `train/shell.py`): rows
    #: that keep every field but their colour; false for a method that cannot keep such rows as they
    #: are (its extras decide when a row is drawn, or it permutes or prunes every row)
    supports_pinned_rows: ClassVar[bool] = True

    def __init__(self, config: MethodConfig | None = None) -> None:
        self.config = config if config is not None else self.Config()

    # -- identity --------------------------------------------------------------------------------
    def spec(self) -> MethodSpec:
        """Name and full options as JSON values, as checkpoints and `.ply` headers record them."""
        return MethodSpec(self.name, json.loads(json.dumps(dataclasses.asdict(self.config))))

    # -- setup and parameters ------------------------------------------------------------------------
    def setup(self, scene: "SceneData", train_cfg) -> None:
        """Called once before training starts (fresh or resumed), after construction."""

    def extra_fields(self, n: int, train_cfg) -> dict[str, Tensor]:
        """Initial values of the method's per-Gaussian fields (n rows each)."""
        return {}

    def place_in_time(self, fields: dict[str, Tensor], times: Tensor, scene: "SceneData") -> None:
        """Edit the initial `extra_fields` in place for points seen at one moment (`times` in seconds,
        NaN where static or unknown), e.g. plane-sweep points of a moving object; no-op by default."""

    def extra_lrs(self, train_cfg) -> dict[str, float]:
        """Learning rates of the fields `extra_fields` adds."""
        return {}

    def modules(self) -> dict[str, nn.Module]:
        """Learned modules besides the Gaussians (saved in checkpoints; not needed to evaluate)."""
        return {}

    def extra_optimizers(self, train_cfg) -> dict[str, Optimizer]:
        return {}

    # -- rendering -------------------------------------------------------------------------------------
    def raster_args(self, gaussians: Gaussians, cameras: Cameras, ctx: RenderContext) -> dict[str, Any]:
        """Complete `rasterize` arguments (besides cameras, size and background) for these cameras."""
        deg = ctx.sh_degree
        return {"means": gaussians.means, "quats": gaussians.params["quats"], "scales": gaussians.scales,
                "opacities": gaussians.opacities, "colors": gaussians.sh_coeffs[:, : (deg + 1) ** 2],
                "sh_degree": deg}

    def render_passes(self, gaussians: Gaussians, cameras: Cameras, ctx: RenderContext) -> list[RenderPass]:
        """The rasterize calls that make these cameras' images; one pass unless overridden."""
        return [RenderPass(self.raster_args(gaussians, cameras, ctx))]

    def plain_gaussians(self, gaussians: Gaussians) -> Gaussians:
        """The closest plain-3DGS scene, for formats and viewers that draw only Gaussian kernels
        (SOG, SPZ, .splat, the browser splats): the core fields, extras dropped. Methods whose
        fields change what is drawn override this (GES bakes its shape into the scales)."""
        return Gaussians.from_fields({k: gaussians.params[k].detach() for k in CORE_FIELDS})

    # -- training --------------------------------------------------------------------------------------
    def loss_terms(self, x: LossInputs, train_cfg) -> dict[str, Tensor]:
        """Named loss terms (summed by the trainer): (1-λ)·L1 + λ·D-SSIM by default."""
        return photometric_loss(x.render, x.target, train_cfg.ssim_lambda)

    def after_step(self, gaussians: Gaussians, optimizers, step: int, train_cfg) -> None:
        """Per-step hook after the optimizer step and densification (field resets, pruning, ...)."""
