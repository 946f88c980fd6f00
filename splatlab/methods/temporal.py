"""`temporal`: a Temporal Gaussian Hierarchy of 4D Gaussians for multi-view video (LongVolcap, TOG'24).

    splatlab train scenes/dynamic --method temporal [--method-option levels=4]

Primitive. Each Gaussian carries, besides the 3D fields, a time centre `t_mean` μt and a time
scale `t_log_scale` (log σt), both in *normalised* time τ = t / duration ∈ [0, 1], and a velocity
`velocity` v (scene units per unit τ). This is a 4D Gaussian conditioned on time: with the 4D
covariance's space-time block Σxt = v·σt², the slice at τ has mean μ + v(τ − μt) and opacity
scaled by the temporal marginal w(τ) = exp(−(τ − μt)² / (2σt²)); its 3D covariance is the
conditional one, which the usual quats/scales parametrise directly.

Support and hierarchy. A Gaussian matters where w > o_th (`opacity_threshold`), i.e. on
[μt − rσt, μt + rσt] with r = √(−2 ln o_th); outside it the opacity is cut to exactly 0. Level 0
is global (static content, or support reaching outside the clip); level k ≥ 1 splits the clip into
2^(k−1) segments of equal length. A Gaussian belongs to the finest segment that contains its
support (`assign_segments`), so the assignment follows the fields and is redone automatically after
densification. At time τ exactly one segment per level is active (`active_segments`), and no
Gaussian outside them can be visible then: renders draw only the active rows (`active_rows`),
which is what keeps rendering (and, with `splatlab.temporal.paging`, training) memory flat as the
video grows.

Static scenes (cameras without `times`, `duration` 0) render every Gaussian at its centre
(τ = μt, w = 1), i.e. as plain 3DGS.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from splatlab.cameras import Cameras
from splatlab.gaussians import CORE_FIELDS, Gaussians

from .base import Method, MethodConfig, RenderContext, RenderPass
from .registry import register_method

TEMPORAL_FIELDS = ("t_mean", "t_log_scale", "velocity")


@dataclass
class TemporalConfig(MethodConfig):
    levels: int = 4  # hierarchy levels below the global one (finest segment = duration / 2^(levels-1))
    duration: float = 0.0  # clip length in seconds (0: set from the training cameras' times)
    opacity_threshold: float = 0.05  # o_th: temporal weight below which a Gaussian is cut
    init_time_scale: float = 0.5  # initial σt in normalised time (0.5: everything starts global)
    init_moving_frames: float = 1.0  # initial σt, in frame intervals, of points seen moving at one frame
    # Learning rates of the time fields are in seconds, not in normalised time, so one Adam step
    # moves a time centre by the same number of frames however long the clip is (a rate in
    # normalised time moved it 8x farther in frames on an 8x longer clip, across segment
    # boundaries into coarser, always-active levels). On a 2 s clip they equal the former
    # normalised-time rates (2e-3, 1e-3).
    t_mean_lr: float = 4e-3  # seconds per step (normalised: t_mean_lr / duration)
    t_scale_lr: float = 1e-2  # log σt: scale-free
    velocity_lr: float = 5e-4  # scene units per second per step (normalised: velocity_lr * duration)

    def validate(self) -> None:
        if not 1 <= self.levels <= 16:
            raise ValueError(f"temporal: levels must be in 1..16, got {self.levels}")
        if self.duration < 0:
            raise ValueError(f"temporal: duration must be >= 0, got {self.duration}")
        if not 0.0 < self.opacity_threshold < 1.0:
            raise ValueError(f"temporal: opacity_threshold must be in (0, 1), got {self.opacity_threshold}")
        if self.init_moving_frames <= 0:
            raise ValueError(f"temporal: init_moving_frames must be > 0, got {self.init_moving_frames}")
        if self.init_time_scale <= 0:
            raise ValueError(f"temporal: init_time_scale must be > 0, got {self.init_time_scale}")


# ------------------------------------------------------------------------------ formulas

def support_radius(opacity_threshold: float) -> float:
    """r with w(μt ± rσt) = o_th: r = √(−2 ln o_th)."""
    return math.sqrt(-2.0 * math.log(opacity_threshold))


def temporal_weight(tau: Tensor | float, t_mean: Tensor, t_scale: Tensor, opacity_threshold: float) -> Tensor:
    """exp(−(τ−μt)²/(2σt²)), cut to 0 where it is <= o_th (outside the support)."""
    w = torch.exp(-0.5 * ((tau - t_mean) / t_scale) ** 2)
    return torch.where(w > opacity_threshold, w, torch.zeros_like(w))


def sliced_means(tau: Tensor | float, means: Tensor, velocity: Tensor, t_mean: Tensor) -> Tensor:
    """Conditional mean of the 4D Gaussian at τ: μ + v (τ − μt)."""
    return means + velocity * (tau - t_mean)


def frame_interval(times: Tensor) -> float:
    """Smallest gap between distinct times (seconds; 1 for a single moment)."""
    t = torch.unique(times)
    return float((t[1:] - t[:-1]).min()) if len(t) > 1 else 1.0


def segment_lengths(levels: int) -> list[float]:
    """Segment length (normalised time) of levels 1..levels: 1, 1/2, 1/4, ..."""
    return [0.5 ** (k - 1) for k in range(1, levels + 1)]


def assign_segments(t_mean: Tensor, t_scale: Tensor, levels: int, opacity_threshold: float) -> tuple[Tensor, Tensor]:
    """(level, segment) of each Gaussian: the finest segment containing [μt − rσt, μt + rσt].

    Level 0 (segment 0) is global: supports that reach outside [0, 1] (static content)."""
    r = support_radius(opacity_threshold)
    t_mean, t_scale = t_mean.reshape(-1).double(), t_scale.reshape(-1).double()
    lo, hi = t_mean - r * t_scale, t_mean + r * t_scale
    level = torch.zeros_like(t_mean, dtype=torch.long)
    segment = torch.zeros_like(level)
    inside = (lo >= 0) & (hi <= 1)
    for k, length in enumerate(segment_lengths(levels), start=1):
        seg = torch.floor(lo / length).clamp(min=0)
        fits = inside & (hi <= (seg + 1) * length)
        level = torch.where(fits, torch.full_like(level, k), level)
        segment = torch.where(fits, seg.long(), segment)
    return level, segment


def active_segments(tau: float, levels: int) -> list[tuple[int, int]]:
    """The one active (level, segment) per level at normalised time τ (global first)."""
    out = [(0, 0)]
    for k, length in enumerate(segment_lengths(levels), start=1):
        n = 2 ** (k - 1)
        out.append((k, min(max(int(math.floor(tau / length)), 0), n - 1)))
    return out


def active_rows(level: Tensor, segment: Tensor, tau: float, levels: int) -> Tensor:
    """Row indices of the Gaussians in the segments active at τ."""
    keep = torch.zeros_like(level, dtype=torch.bool)
    for k, s in active_segments(tau, levels):
        keep |= (level == k) & (segment == s)
    return torch.nonzero(keep).reshape(-1)


# ------------------------------------------------------------------------------ method

@register_method("temporal", aliases=("tgh", "longvolcap"))
class TemporalHierarchy(Method):
    """Temporal Gaussian Hierarchy: 4D Gaussians sliced at each camera's time, one active segment per level."""

    Config = TemporalConfig
    supports_pinned_rows = False  # a pinned row would keep a random moment of the clip

    def setup(self, scene, train_cfg) -> None:
        times = scene.train.cameras.times
        if self.config.duration == 0.0 and times is not None and len(times):
            self.config.duration = float(times.max()) + frame_interval(times)  # the last frame lasts one interval

    def place_in_time(self, fields: dict[str, Tensor], times: Tensor, scene) -> None:
        """Points seen at one frame (e.g. moving plane-sweep points) start centred on it, `init_moving_frames`
        frame intervals wide in time; the others keep their defaults."""
        self.setup(scene, None)
        cam_times = scene.train.cameras.times
        if self.config.duration <= 0 or cam_times is None:
            return
        timed = ~torch.isnan(times)
        sigma = self.config.init_moving_frames * frame_interval(cam_times) / self.config.duration
        fields["t_mean"][timed] = (times[timed] / self.config.duration).reshape(-1, 1).to(fields["t_mean"])
        fields["t_log_scale"][timed] = math.log(sigma)

    def extra_fields(self, n: int, train_cfg) -> dict[str, Tensor]:
        return {"t_mean": torch.rand(n, 1),
                "t_log_scale": torch.full((n, 1), math.log(self.config.init_time_scale)),
                "velocity": torch.zeros(n, 3)}

    def extra_lrs(self, train_cfg) -> dict[str, float]:
        """The time fields' rates converted from seconds to normalised time (needs `setup` first;
        a static scene, duration 0, keeps them as given: time does not matter there)."""
        d = self.config.duration if self.config.duration > 0 else 1.0
        return {"t_mean": self.config.t_mean_lr / d, "t_log_scale": self.config.t_scale_lr,
                "velocity": self.config.velocity_lr * d}

    def normalised_time(self, t: float) -> float:
        return float(t) / self.config.duration

    def assignment(self, gaussians: Gaussians) -> tuple[Tensor, Tensor]:
        p = gaussians.params
        return assign_segments(p["t_mean"].detach(), torch.exp(p["t_log_scale"].detach()), self.config.levels,
                               self.config.opacity_threshold)

    def sliced_args(self, gaussians: Gaussians, rows: Tensor | None, tau: float | None, sh_degree: int) -> dict:
        """rasterize arguments of the 3D Gaussians (rows, or all) at normalised time τ (None: static)."""
        p = gaussians.params
        pick = (lambda x: x) if rows is None else (lambda x: x[rows])  # noqa: E731
        means, opac = pick(gaussians.means), pick(gaussians.opacities)
        if tau is not None:
            t_mean = pick(p["t_mean"])
            w = temporal_weight(tau, t_mean, torch.exp(pick(p["t_log_scale"])), self.config.opacity_threshold)
            means = sliced_means(tau, means, pick(p["velocity"]), t_mean)
            opac = opac * w.reshape(-1)
        return {"means": means, "quats": pick(p["quats"]), "scales": pick(gaussians.scales), "opacities": opac,
                "colors": pick(gaussians.sh_coeffs[:, : (sh_degree + 1) ** 2]), "sh_degree": sh_degree}

    def render_passes(self, gaussians: Gaussians, cameras: Cameras, ctx: RenderContext) -> list[RenderPass]:
        if cameras.times is None or self.config.duration <= 0:
            return [RenderPass(self.sliced_args(gaussians, None, None, ctx.sh_degree))]
        level, segment = self.assignment(gaussians)
        passes = []
        for t in torch.unique(cameras.times).tolist():
            tau = self.normalised_time(t)
            rows = active_rows(level, segment, tau, self.config.levels).to(gaussians.device)
            cams = torch.nonzero(cameras.times == t).reshape(-1)
            passes.append(RenderPass(self.sliced_args(gaussians, rows, tau, ctx.sh_degree), cameras=cams,
                                     index=rows))
        return passes

    def gaussians_at(self, gaussians: Gaussians, t: float) -> Gaussians:
        """Plain 3D Gaussians of the moment t (seconds): the active rows, sliced, cut ones dropped."""
        level, segment = self.assignment(gaussians)
        tau = self.normalised_time(t)
        rows = active_rows(level, segment, tau, self.config.levels)
        with torch.no_grad():
            a = self.sliced_args(gaussians, rows, tau, gaussians.sh_degree)
        keep = a["opacities"] > 0
        opac = a["opacities"][keep].clamp(1e-6, 1 - 1e-6)
        fields = {"means": a["means"][keep], "quats": a["quats"][keep],
                  "scales": gaussians.params["scales"].detach()[rows][keep],
                  "opacities": torch.log(opac) - torch.log1p(-opac),
                  "sh0": gaussians.params["sh0"].detach()[rows][keep]}
        if "shN" in gaussians.params:
            fields["shN"] = gaussians.params["shN"].detach()[rows][keep]
        return Gaussians.from_fields(fields)

    def plain_gaussians(self, gaussians: Gaussians) -> Gaussians:
        """Without a moment to slice at: the Gaussians at their time centres (static content exact)."""
        return Gaussians.from_fields({k: gaussians.params[k].detach() for k in CORE_FIELDS if k in gaussians.params})
