"""Training configuration in one dataclass.

Two presets share it. `fast` (the defaults) is sized for the data and a CPU: 3000 steps with the
recipe's schedule scaled to them, and a Gaussian budget proportional to the training pixels
(`gaussian_budget`). `paper` restores the 30k-step 3DGS recipe (gsplat simple_trainer /
splatfacto values, no budget). `TrainConfig.apply_preset` fills only what the user did not set.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TrainConfig:
    scene: str = ""
    out: str | None = None  # default outputs/<scene>/<timestamp>
    method: str = "gs3d"
    strategy: str = "default"  # default | mcmc
    preset: str = "fast"  # fast | paper (see PRESETS)
    iterations: int = 3000
    downscale: int = 1
    seed: int = 0
    batch_size: int = 1  # total cameras per step (split across ranks when distributed)
    eval_every: int = 7000  # 0: evaluate only at the end
    save_every: int = 1000  # 0: checkpoint only at the end / on interrupt
    stop_at: int | None = None  # stop (checkpoint, no metrics.json) after this many steps
    resume: str | None = None
    nproc: int = 1
    backend: str = "auto"
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    random_background: bool = False  # RGBA data: composite targets on a random colour each step
    cache_images: bool = True
    progress: bool = True
    max_eval_views: int = 0  # 0: all views for the final train/test metrics
    viewer: bool = False  # live browser viewer (splatlab.view.LiveViewer) on rank 0
    viewer_host: str = "127.0.0.1"
    viewer_port: int = 8080
    # loss
    ssim_lambda: float = 0.2
    # SH
    sh_degree: int = 3
    sh_degree_interval: int = 1000
    # init
    init_opacity: float | None = None  # None: 0.1 (default) / 0.5 (mcmc)
    init_scale: float | None = None  # multiplier of the 3-NN distance; None: 1.0 / 0.1 (mcmc)
    init_num_points: int | None = None  # random init without (enough) points; None: budget // 4 (paper: 100k)
    auto_triangulate: bool = True  # poses but no points, init_sweep off: triangulate the training views once, cached
    min_init_points: int = 300  # fewer scene points than this: plane sweep (auto) and the fallback random init
    background_points: int = -1  # along training rays, beyond the scene; -1: init_num_points // 2 if photos are opaque
    background_layout: str = "disparity"  # disparity: uniform in 1/distance over [near, 30·near]; sphere: all at 30·near
    background_shell: int = -1  # far shell of pinned Gaussians covering every direction; -1: 4096 (<= budget/8) for opaque photos, 0: none
    init_sweep: str = "auto"  # plane-sweep stereo points (train/sweep.py): auto (video, or fewer than min_init_points points: instead of triangulating), on (always), off
    init_radius: float = 1.0  # random init: fraction of the radius of the ball the views cover at their focus
    # learning rates (Adam eps 1e-15); means lr is multiplied by the scene scale and decays to
    # means_lr_final_factor of itself; every lr is multiplied by sqrt(batch_size)
    means_lr: float = 1.6e-4
    means_lr_final_factor: float = 0.01
    scales_lr: float = 5e-3
    opacities_lr: float = 5e-2
    quats_lr: float = 1e-3
    sh0_lr: float = 2.5e-3
    shN_lr: float = 2.5e-3 / 20
    # default strategy (adaptive density control)
    grad_threshold: float = 2e-4
    absgrad: bool = False
    grow_scale3d: float = 0.01
    prune_opacity: float = 0.005
    prune_scale3d: float = 0.1
    refine_start: int = 500
    # None: scaled with `iterations` so a short run keeps the recipe's shape (30k: 15000 / 3000)
    refine_stop: int | None = None  # default: min(15000, 0.7·iterations); mcmc: min(25000, 0.85·iterations)
    refine_every: int = 100
    reset_every: int | None = None  # default: min(3000, max(1000, iterations // 3))
    # mcmc
    cap_max: int | None = None  # None: gaussian_budget(training pixels); 0: no cap (default strategy)
    pixels_per_gaussian: float = 20.0  # the budget rule: one Gaussian per this many training pixels
    prune_screen_size: float = 0.0  # > 0: prune/split Gaussians wider than this fraction of the image while densifying
    prune_view_fraction: float = 0.0  # > 0: prune Gaussians inside the camera rig that fewer than this fraction of the training views contain (default strategy)
    noise_lr: float = 5e5
    opacity_reg: float | None = None  # None: 0 (default) / 0.01 (mcmc)
    scale_reg: float | None = None
    # method-specific settings (read by the method's hooks)
    method_options: dict[str, Any] = field(default_factory=dict)

    def apply_preset(self, explicit: set[str] | frozenset[str] = frozenset()) -> "TrainConfig":
        """Set this preset's values on every field not in `explicit` (the ones the user gave)."""
        if self.preset not in PRESETS:
            raise ValueError(f"unknown --preset {self.preset!r} (choose {', '.join(PRESETS)})")
        for k, v in PRESETS[self.preset].items():
            if k not in explicit:
                setattr(self, k, v)
        return self

    def resolve_budget(self, train_pixels: int) -> "TrainConfig":
        """Fill the data-sized defaults (cap_max, init_num_points) for `train_pixels` training pixels."""
        budget = gaussian_budget(train_pixels, self.pixels_per_gaussian)
        if self.cap_max is None:
            self.cap_max = budget if self.preset != "paper" else (1_000_000 if self.strategy == "mcmc" else 0)
        if self.init_num_points is None:
            self.init_num_points = max(1000, (self.cap_max or budget) // 4)
        return self

    def resolved(self) -> "TrainConfig":
        """A copy with the strategy-dependent defaults filled in."""
        mcmc = self.strategy == "mcmc"
        return dataclasses.replace(
            self,
            init_opacity=self.init_opacity if self.init_opacity is not None else (0.5 if mcmc else 0.1),
            init_scale=self.init_scale if self.init_scale is not None else (0.1 if mcmc else 1.0),
            refine_stop=self.refine_stop if self.refine_stop is not None else (
                min(25_000, int(0.85 * self.iterations)) if mcmc else min(15_000, int(0.7 * self.iterations))),
            reset_every=self.reset_every if self.reset_every is not None else min(3000, max(1000, self.iterations // 3)),
            opacity_reg=self.opacity_reg if self.opacity_reg is not None else (0.01 if mcmc else 0.0),
            scale_reg=self.scale_reg if self.scale_reg is not None else (0.01 if mcmc else 0.0),
        )

    def validate(self) -> None:
        from splatlab.densify import STRATEGIES
        from splatlab.methods import make_method

        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ValueError(msg)

        need(self.iterations >= 1, f"--iterations must be >= 1, got {self.iterations}")
        need(self.downscale >= 1, f"--resolution/--downscale must be >= 1, got {self.downscale}")
        need(self.strategy in STRATEGIES, f"unknown --strategy {self.strategy!r} (choose {', '.join(STRATEGIES)})")
        need(0 <= self.sh_degree <= 4, f"--sh-degree must be in 0..4, got {self.sh_degree}")
        need(self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}")
        need(self.nproc >= 1, f"--nproc must be >= 1, got {self.nproc}")
        need(self.batch_size % self.nproc == 0,
             f"--batch-size ({self.batch_size}) must be a multiple of --nproc ({self.nproc})")
        need(self.eval_every >= 0 and self.save_every >= 0, "--eval-every/--save-every must be >= 0")
        need(self.stop_at is None or self.stop_at >= 0, "--stop-at must be >= 0")
        need(len(self.background) == 3 and all(0.0 <= v <= 1.0 for v in self.background),
             "--background must be 3 values in [0, 1]")
        need(self.preset in PRESETS, f"unknown --preset {self.preset!r} (choose {', '.join(PRESETS)})")
        need(self.init_num_points is None or self.init_num_points >= 1, "--init-points must be >= 1")
        need(self.cap_max is None or self.cap_max >= 0, "--cap-max must be >= 0")
        need(self.pixels_per_gaussian > 0, "--pixels-per-gaussian must be > 0")
        need(0.0 <= self.prune_screen_size < 1.0, "--prune-screen-size must be in [0, 1)")
        need(0.0 <= self.prune_view_fraction < 1.0, f"--prune-view-fraction must be in [0, 1), got {self.prune_view_fraction}")
        need(self.init_sweep in ("auto", "on", "off"), f"--init-sweep must be auto, on or off, got {self.init_sweep!r}")
        need(self.background_layout in BACKGROUND_LAYOUTS,
             f"unknown --background-layout {self.background_layout!r} (choose {', '.join(BACKGROUND_LAYOUTS)})")
        import math

        def finite(v) -> bool:
            return isinstance(v, (int, float)) and math.isfinite(v)

        for name in ("means_lr", "scales_lr", "opacities_lr", "quats_lr", "sh0_lr", "shN_lr", "grad_threshold",
                     "ssim_lambda", "noise_lr", "means_lr_final_factor", "prune_opacity", "grow_scale3d",
                     "prune_scale3d", "opacity_reg", "scale_reg"):
            v = getattr(self, name)
            if v is None and name in ("opacity_reg", "scale_reg"):  # the strategy's default
                continue
            need(finite(v) and v >= 0, f"--{name.replace('_', '-')} must be a finite number >= 0, got {v}")
        need(self.init_opacity is None or (finite(self.init_opacity) and 0.0 < self.init_opacity < 1.0),
             f"--init-opacity must be strictly between 0 and 1, got {self.init_opacity}")
        need(finite(self.init_radius) and 0.0 < self.init_radius <= 1.0,
             f"--init-radius must be in (0, 1], got {self.init_radius}")
        need(self.init_scale is None or (finite(self.init_scale) and self.init_scale > 0),
             f"--init-scale must be > 0, got {self.init_scale}")
        need(self.reset_every is None or self.reset_every >= 1, f"--reset-every must be >= 1, got {self.reset_every}")
        need(self.refine_every >= 1, f"--refine-every must be >= 1, got {self.refine_every}")
        need(self.refine_start >= 0, f"--refine-start must be >= 0, got {self.refine_start}")
        need(self.refine_stop is None or self.refine_stop >= 0, f"--refine-stop must be >= 0, got {self.refine_stop}")
        need(self.max_eval_views >= 0, f"--max-eval-views must be >= 0, got {self.max_eval_views}")
        need(self.seed >= 0, f"--seed must be >= 0, got {self.seed}")
        need(self.background_shell >= -1, f"--background-shell must be >= 0, got {self.background_shell}")
        need(self.background_points >= -1, f"--background-points must be >= 0, got {self.background_points}")
        need(self.backend in ("auto", "cpu", "cuda", "reference"),
             f"unknown --backend {self.backend!r} (choose auto, cpu, cuda, reference)")
        if self.backend == "cuda":
            import torch
            need(torch.cuda.is_available(), "--backend cuda needs a CUDA GPU, and none is available")
        if self.viewer:
            from splatlab.view.listen import check_listen_address
            try:
                check_listen_address(self.viewer_host, self.viewer_port)
            except ValueError as err:
                raise ValueError(f"--viewer-host/--viewer-port: {err}") from None
        method = make_method(self.method, self.method_options)  # unknown method or bad option: ValueError listing the valid ones
        need(self.background_shell <= 0 or method.supports_pinned_rows,
             f"--background-shell does not work with --method {self.method} (use 0 or leave it out)")

    def make_strategy(self):
        from splatlab.densify import DefaultStrategy, MCMCStrategy

        c = self.resolved()
        if c.strategy == "mcmc":
            return MCMCStrategy(cap_max=c.cap_max or 1_000_000, noise_lr=c.noise_lr, refine_start=c.refine_start,
                                refine_stop=c.refine_stop, refine_every=c.refine_every,
                                min_opacity=c.prune_opacity, opacity_reg=c.opacity_reg, scale_reg=c.scale_reg)
        return DefaultStrategy(grad_threshold=c.grad_threshold, absgrad=c.absgrad, grow_scale3d=c.grow_scale3d,
                               prune_opacity=c.prune_opacity, prune_scale3d=c.prune_scale3d,
                               refine_start=c.refine_start, refine_stop=c.refine_stop,
                               refine_every=c.refine_every, reset_every=c.reset_every,
                               cap_max=c.cap_max or 0, prune_scale2d=c.prune_screen_size or 0.15,
                               scale2d_stop=c.refine_stop if c.prune_screen_size > 0 else 0,
                               min_view_fraction=c.prune_view_fraction, opacity_reg=c.opacity_reg, scale_reg=c.scale_reg)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["background"] = list(self.background)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in names}
        if "background" in d:
            d["background"] = tuple(d["background"])
        return cls(**d)


BACKGROUND_LAYOUTS = ("disparity", "sphere")
MIN_BUDGET = 10_000
CPU_MAX_BUDGET = 50_000  # what 3000 steps can afford in minutes on a 2-core CPU (~6 steps/s at 256²)
GPU_MAX_BUDGET = 1_000_000


def gaussian_budget(train_pixels: int, pixels_per_gaussian: float = 20.0, max_budget: int | None = None) -> int:
    """Default maximum number of Gaussians: one per `pixels_per_gaussian` training pixels (more than
    the pixels can pin down fit the training views and not the others), at least 10k, and at most
    what the machine trains in minutes (`CPU_MAX_BUDGET` without CUDA)."""
    if max_budget is None:
        import torch

        max_budget = GPU_MAX_BUDGET if torch.cuda.is_available() else CPU_MAX_BUDGET
    return int(min(max_budget, max(MIN_BUDGET, train_pixels / pixels_per_gaussian)))


# Values a preset sets (on the fields the user left alone). `fast` is the dataclass defaults.
PRESETS: dict[str, dict[str, Any]] = {
    "fast": {"iterations": 3000, "save_every": 1000, "eval_every": 7000, "init_num_points": None, "cap_max": None},
    "paper": {"iterations": 30_000, "save_every": 7000, "eval_every": 7000, "init_num_points": 100_000,
              "cap_max": None, "prune_screen_size": 0.0},
}
