"""`deblur`: Deblurring 3D Gaussian splatting (Lee et al., ECCV 2024), for blurred training photos.

    splatlab train .cache/scenes/robot-defocus --method deblur
    splatlab train .cache/scenes/garden-motion --method deblur --method-option kernel=motion

Training photos are blurred (defocus, camera shake); the scene should come out sharp. A small
MLP (the *blur kernel*) looks at each Gaussian as one training view saw it and says how that view
blurred it:

* input: the Gaussian's position (normalised by the scene, sin/cos encoded, `pos_freqs` bands),
  a learned per-view embedding (keyed on `cameras.image_ids`: one row per training image), the
  log-scales and the unit quaternion, all detached (the kernel explains the blur; it does not
  move the Gaussians through its inputs);
* `kernel=defocus`: per-Gaussian factors δs (3) and δr (4) in [1, `max_factor`] that multiply the
  scales and the raw quaternion: one render of enlarged Gaussians;
* `kernel=motion`: `copies` + 1 sets of factors and `copies` shifted copies: the image is the mean
  of the renders of the original and the copies (one `RenderPass` each, weight 1/(copies+1)), i.e.
  the camera moved during the exposure. Each copy is shifted by a learned per-view vector in the
  view's image plane (`global_shift`, λg·scene scale·row, rows starting spread along a random
  line per view) plus, as in the paper, an optional per-Gaussian MLP offset (λp·scene scale·output,
  `lambda_p`, default 0). With `rotation`, each copy's camera also turns about its centre by a
  learned per-view rotation vector (λrot·row, camera frame, radians; rows start at 0): a shaking
  camera turns as well as slides, and a turn moves near and far content by the same angle, which
  a translation of the Gaussians cannot do (it barely moves the far ones). The copy's Gaussians
  turn the other way about the camera centre (means and orientations); their SH colours are still
  evaluated from the unturned direction, a difference of the turn's angle (a few degrees).

Differences from the paper, each measured on robot-motion / robot-defocus at 600 steps (the
tuning scene; `scripts/bench_deblur.py`):

* factors are clamp(1 + λs·output, 1, `max_factor`). A softplus form (`factor_form=softplus`)
  drifts to -inf under Adam while the Gaussians are still large, and the kernel stays dead.
* the view embeddings start at std 1 (0.1 left the MLP's output nearly the same for every view)
  and, with the shift table, are trained by `RowAdam` at `view_lr`: a row moves only on the steps
  its view is drawn (plain Adam keeps moving every row on its momentum).
* one shift per view and copy instead of per-Gaussian offsets: camera shake moves everything
  alike; per-Gaussian offsets scatter the copies incoherently, which averages noise away in training
  and leaves it in the sharp render (robot-motion: 21.7 dB with per-Gaussian offsets, 24.0 dB
  without, gs3d 23.4 dB). Copies that start at one point get equal gradients (blur is second
  order in the offsets) and never part, hence the initial spread (`motion_init`).
* `conserve` (off by default) scales the opacity of an enlarged Gaussian by its screen-footprint
  area ratio, so enlargement blurs instead of thickening. With the true per-view blur as factors
  it is needed (20.3 dB without, 23.9 with), but the learned defocus MLP collapses with it
  (factors at `max_factor` everywhere, 14-22 dB).
* `lambda_reg` pulls the scale factors to 1 and the factors saturate softly at `max_factor`: a
  factor every view shares is indistinguishable from a larger Gaussian, and without the pull
  garden-sharp lost 1.31 dB to gs3d with most factors stuck at the 1.1 clamp (−0.08 dB with it).
* `kernel_start`, `init_factor`: warm-up and initial factor for defocus (tried; no gain measured).

Defocus on robot-defocus stays at gs3d's quality: the MLP's factors end at 1 (the Gaussians grow
to fit the blur instead). Even the true thin-lens blur given as factors gains only ~1 dB there.
`lens=true` (opt-in) models the capture's lens instead: per view an aperture and a focus distance,
and a Gaussian at depth z gains σ = aperture·|1 − z/focus| of isotropic spread (`lens_args`). It
recovers the true focus and aperture on garden-defocus and gains +0.5 dB on robot and garden
(the MLP: −0.15), at −0.23 dB on a sharp capture (README, deblur section).

With `training=False` the kernel is off: evaluation renders (test views, `view`, `render`, `compress`)
are plain 3DGS of the Gaussians and depend only on them, which is what a checkpoint or `.ply`
carries. The MLP, the view embeddings and the shift table are method modules (saved in
checkpoints, with their optimizer state), so `--stop-at` / `--resume` continue exactly.

Also from the paper (off by default; measured in `scripts/bench_deblur.py`):

* `add_points=N`: at `add_points_at` (fraction of the run; paper 2500/20k) add up to N points
  spread uniformly in the Gaussians' bounding box, coloured by the distance-weighted 4 nearest
  Gaussians, opacity 0.1; points farther than `add_max_dist`·scene scale from every Gaussian are
  dropped. Blurred photos give sparse SfM points; this fills the holes.
* `depth_prune=T`: at the strategy's refine steps, prune Gaussians whose opacity is below T
  divided by 1..3 with their normalised distance from the cameras' centre (far Gaussians, seen
  blurred and small, are kept more easily).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from splatlab.cameras import Cameras
from splatlab.densify import ops
from splatlab.gaussians import Gaussians
from splatlab.render.projection import quat_multiply, rotation_from_vector

from .base import LossInputs, Method, MethodConfig, RenderContext, RenderPass
from .registry import register_method

__all__ = ["DeblurConfig", "BlurKernel", "DeblurGaussians", "lens_args", "positional_encoding", "turned_args"]


@dataclass
class DeblurConfig(MethodConfig):
    """Deblurring 3DGS options (see the module docstring)."""

    kernel: Literal["defocus", "motion"] = "defocus"
    copies: int = 4  # motion: shifted copies besides the original (paper M=4)
    lambda_s: float = 0.01  # factor = clamp(1 + lambda_s * mlp, 1, max_factor)
    factor_form: Literal["clamp", "softplus"] = "clamp"
    lambda_p: float = 0.0  # per-Gaussian motion offset = lambda_p * scene_scale * mlp (paper 0.01)
    max_factor: float = 1.1
    width: int = 64
    depth: int = 3
    pos_freqs: int = 3
    view_dim: int = 16
    max_views: int = 4096  # rows of the view-embedding table (training images)
    mlp_lr: float = 1e-3
    view_init: float = 1.0  # std of the initial view embeddings (views must be told apart from step 0)
    view_lr: float = 0.05  # per-view rows (embedding, shifts) are updated only when their view is drawn
    kernel_start: float = 0.0  # fraction of the run trained without the kernel (plain renders)
    global_shift: bool = True  # motion: a learned per-view image-plane shift of each copy, shared by all Gaussians
    lambda_g: float = 0.01  # global shift = lambda_g * scene_scale * table row
    init_factor: float = 1.0  # initial scale factor of every Gaussian in every view (clamp form)
    motion_init: float = 1.0  # motion: initial spread of the copies along a line (raw shift units)
    rotation: bool = True  # motion: each copy's camera also turns, by a learned per-view rotation
    lens: bool = False  # defocus: a learned thin lens per view (aperture, focus) adds depth-dependent blur
    lambda_lens: float = 0.05  # lens: aperture = lambda_lens * scene_scale * softplus(row)
    lambda_rot: float = 0.05  # rotation vector (camera frame, radians) = lambda_rot * table row
    seed: int = 0  # initialisation of the MLP and the embeddings (independent of the run's RNG)
    lambda_reg: float = 0.1  # loss lambda_reg * mean(scale factor - 1): blur the data does not ask for
    conserve: bool = False  # enlarged Gaussians keep their screen-space mass (opacity x area ratio)
    add_points: int = 0  # 0: off
    add_points_at: float = 0.125
    add_max_dist: float = 0.1
    depth_prune: float = 0.0  # 0: off

    def validate(self) -> None:
        if self.copies < 1:
            raise ValueError(f"copies must be >= 1, got {self.copies}")
        if not (self.init_factor == 1.0 or 1.0 < self.init_factor < self.max_factor):
            raise ValueError(f"init_factor must be 1 or in (1, max_factor), got {self.init_factor}")
        if not self.max_factor >= 1.0:
            raise ValueError(f"max_factor must be >= 1, got {self.max_factor}")
        if min(self.width, self.depth, self.view_dim, self.max_views) < 1 or self.pos_freqs < 0:
            raise ValueError("width, depth, view_dim, max_views must be >= 1 and pos_freqs >= 0")
        if self.lambda_s < 0 or self.lambda_p < 0 or self.lambda_g < 0 or self.lambda_rot < 0 or self.lambda_lens < 0 or self.lambda_reg < 0 or self.mlp_lr <= 0 or self.view_lr <= 0 or self.view_init < 0:
            raise ValueError("lambda_s, lambda_p, lambda_g, lambda_rot, lambda_lens, lambda_reg, view_init must be >= 0 "
                             "and mlp_lr, view_lr > 0")
        if self.add_points < 0 or not 0 <= self.add_points_at < 1 or self.add_max_dist <= 0:
            raise ValueError("add_points >= 0, 0 <= add_points_at < 1 and add_max_dist > 0 required")
        if not 0 <= self.depth_prune < 1:
            raise ValueError(f"depth_prune must be in [0, 1), got {self.depth_prune}")


def positional_encoding(x: Tensor, freqs: int) -> Tensor:
    """[x, sin(2^k π x), cos(2^k π x)] for k < freqs: (N, D) -> (N, D·(1 + 2·freqs))."""
    out = [x]
    for k in range(freqs):
        out += [torch.sin((2.0 ** k) * math.pi * x), torch.cos((2.0 ** k) * math.pi * x)]
    return torch.cat(out, dim=-1)


class BlurKernel(nn.Module):
    """The blur MLP and the per-view embeddings; raw outputs per Gaussian for one view."""

    def __init__(self, cfg: DeblurConfig) -> None:
        super().__init__()
        self.cfg = cfg
        n_out = 7 if cfg.kernel == "defocus" else 7 * (cfg.copies + 1) + 3 * cfg.copies
        n_in = 3 * (1 + 2 * cfg.pos_freqs) + cfg.view_dim + 3 + 4
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.views = nn.Embedding(cfg.max_views, cfg.view_dim)
            nn.init.normal_(self.views.weight, std=cfg.view_init)
            layers: list[nn.Module] = []
            for i in range(cfg.depth):
                layers += [nn.Linear(n_in if i == 0 else cfg.width, cfg.width), nn.ReLU()]
            self.body = nn.Sequential(*layers)
            self.head = nn.Linear(cfg.width, n_out)
            nn.init.normal_(self.head.weight, std=1e-3)
            nn.init.zeros_(self.head.bias)
            if cfg.init_factor != 1.0 and cfg.lambda_s > 0:  # scale outputs of every set of factors
                for m in range(1 if cfg.kernel == "defocus" else cfg.copies + 1):
                    room = cfg.max_factor - 1.0  # inverse of `factors` at init_factor
                    x = (cfg.init_factor - 1.0) / cfg.lambda_s if cfg.factor_form == "softplus" else \
                        room * math.atanh((cfg.init_factor - 1.0) / room) / cfg.lambda_s
                    self.head.bias.data[7 * m:7 * m + 3] = x
            if cfg.kernel == "motion" and cfg.motion_init and not cfg.global_shift:
                # copies spread along one line (t in [-1, 1] \ {0}, the original at t=0): blur is second
                # order in the offsets, so copies that all start at 0 get equal gradients and never part
                t = _copy_times(cfg.copies)
                u = torch.tensor([1.0, 1.0, 1.0]) / math.sqrt(3.0)
                bias = (cfg.motion_init * t[:, None] * u).reshape(-1)
                self.head.bias.data[7 * (cfg.copies + 1):] = bias
        if cfg.kernel == "motion" and cfg.global_shift:
            # a per-view camera shake moves every Gaussian alike: one learned shift per view and copy
            # (raw offset units), starting spread along a random line per view (see motion_init)
            # in the view's image plane (camera x, y): a shift along the optical axis barely shows
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(cfg.seed + 1)
                u = F.normalize(torch.randn(cfg.max_views, 1, 2), dim=-1)
            t = _copy_times(cfg.copies)
            self.shifts = nn.Parameter(cfg.motion_init * t[None, :, None] * u)
        else:
            self.shifts = None
        # camera shake also turns the camera: a turn shifts near and far content alike, which no
        # translation of the Gaussians can (a learned rotation per view and copy, starting at none)
        self.rotations = nn.Parameter(torch.zeros(cfg.max_views, cfg.copies, 3)) \
            if cfg.kernel == "motion" and cfg.rotation else None
        # a thin lens per view: (raw aperture, log of the focus distance over the scene centre's depth);
        # the aperture starts open (softplus(0)): blur is second order in it, a closed lens never opens
        self.lens = nn.Parameter(torch.zeros(cfg.max_views, 2)) if cfg.kernel == "defocus" and cfg.lens else None
        self.register_buffer("center", torch.zeros(3))
        self.register_buffer("radius", torch.ones(()))

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """As nn.Module's, but a checkpoint made with other per-view tables (e.g. before `rotation`
        became the motion default) is a one-line error naming the option that restores them."""
        for table, option in (("shifts", "global_shift"), ("rotations", "rotation"), ("lens", "lens")):
            saved, here = table in state_dict, getattr(self, table) is not None
            if saved != here:
                raise ValueError(f"deblur: the checkpoint's blur kernel {'has' if saved else 'has no'} {table} table; "
                                 f"resume with --method-option {option}={'true' if saved else 'false'}")
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def forward(self, gaussians: Gaussians, image_id: Tensor) -> Tensor:
        """(N, n_out) raw outputs for the Gaussians seen by training image `image_id` (0-d long)."""
        p = gaussians.params
        pos = (p["means"].detach() - self.center) / self.radius
        quats = F.normalize(p["quats"].detach(), dim=-1)
        view = self.views(image_id.reshape(1)).expand(len(gaussians), -1)
        x = torch.cat([positional_encoding(pos, self.cfg.pos_freqs), view, p["scales"].detach(), quats], dim=-1)
        return self.head(self.body(x))


class RowAdam(torch.optim.Optimizer):
    """Adam that updates only the rows (first index) with a nonzero gradient, like SparseAdam on dense
    gradients. A view's row is seen on 1/n of the steps; plain Adam keeps moving every row on its
    momentum at full step size between visits, and on robot-motion that shrank per-view shifts
    initialised at the true camera shake to a fifth in 600 steps."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-15) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                rows = g.reshape(len(g), -1).ne(0).any(dim=1)
                if not rows.any():
                    continue
                st = self.state[p]
                if not st:
                    st["exp_avg"] = torch.zeros_like(p)
                    st["exp_avg_sq"] = torch.zeros_like(p)
                    st["steps"] = torch.zeros(len(p), dtype=torch.float64)  # per-row step counts
                st["steps"][rows] += 1
                m, v = st["exp_avg"][rows], st["exp_avg_sq"][rows]
                m.mul_(b1).add_(g[rows], alpha=1 - b1)
                v.mul_(b2).addcmul_(g[rows], g[rows], value=1 - b2)
                t = st["steps"][rows].to(p.dtype).reshape(-1, *([1] * (p.dim() - 1)))
                upd = (m / (1 - b1 ** t)) / ((v / (1 - b2 ** t)).sqrt() + group["eps"])
                st["exp_avg"][rows], st["exp_avg_sq"][rows] = m, v
                p[rows] -= group["lr"] * upd
        return None


def footprint_ratio(base: dict, blurred: dict, camera: Cameras) -> Tensor:
    """sqrt(det Σ2d / det Σ2d') per Gaussian in `camera` (one camera), both footprints with the
    rasterizer's eps2d dilation; in (0, 1] when the blurred Gaussians are larger."""
    from splatlab.render.projection import project

    def det(args):
        p = project(args["means"], args["quats"], args["scales"], args["opacities"], camera.viewmats, camera.Ks,
                    camera.width, camera.height)
        c = p.cov2d[0]
        return c[:, 0, 0] * c[:, 1, 1] - c[:, 0, 1] * c[:, 1, 0]

    return (det(base) / det(blurred).clamp_min(1e-12)).clamp(1e-6, 1.0).sqrt()


def _copy_times(copies: int) -> Tensor:
    """Where along the exposure each shifted copy starts: `copies` values in [-1, 1] without 0 (the original)."""
    t = torch.linspace(-1.0, 1.0, copies + 1)
    return torch.cat([t[: copies // 2], t[copies // 2 + 1:]]) if copies % 2 == 0 else t[1:]


def factors(raw: Tensor, lambda_s: float, max_factor: float, form: str = "clamp") -> Tensor:
    """Blur factors in [1, max_factor] from raw MLP outputs.

    `clamp`: 1 + λs·raw clamped below at 1 (the paper's form, shifted so raw 0 is factor 1) and
    saturating smoothly at max_factor (1 + room·tanh(·/room)). Outputs below 1 get no gradient, so
    they stay where they are. `softplus`: 1 + λs·softplus(raw);
    its gradient never vanishes but shrinks exponentially, and Adam rescales the small gradient to full
    steps: on blurred captures the outputs drift to -inf early (while the Gaussians are still large)
    and the kernel is dead for the rest of the run (measured: every factor 1.000 at step 600)."""
    if form == "softplus":
        return (1.0 + lambda_s * F.softplus(raw)).clamp(max=max_factor)
    if max_factor <= 1.0:
        return torch.ones_like(raw)
    room = max_factor - 1.0  # soft at the top: a hard clamp there also has no gradient, and a
    # factor pushed to the top early (garden-sharp: 1.1 for most Gaussians in every view) stayed
    return 1.0 + room * torch.tanh(F.relu(lambda_s * raw) / room)


@register_method("deblur", aliases=("deblur3dgs",))
class DeblurGaussians(Method):
    """Deblurring 3DGS: a blur-kernel MLP enlarges (defocus) or shifts (motion) Gaussians per training view; off at evaluation."""

    Config = DeblurConfig
    # not measured with the background shell yet: its depth-scaled pruning and point adding were
    # tuned on scenes without one, so the benchmark numbers hold only without it
    supports_pinned_rows = False

    def __init__(self, config: DeblurConfig | None = None) -> None:
        super().__init__(config)
        self.kernel = BlurKernel(self.config)
        self.scene_scale = 1.0
        self.iterations = 0
        self._excess: list[Tensor] = []  # mean scale factor - 1 of each blurred pass of the last render

    # -- parameters -----------------------------------------------------------------------------
    def setup(self, scene, train_cfg) -> None:
        self.scene_scale = float(scene.scene_scale)
        self.iterations = int(train_cfg.iterations)
        n = len(scene.train)
        if n > self.config.max_views:
            raise ValueError(f"deblur: {n} training images but max_views={self.config.max_views} "
                             f"(--method-option max_views={n})")
        with torch.no_grad():  # normalisation of the encoded positions: the cameras' centre and spread
            centers = scene.train.cameras.centers.float()
            self.kernel.center.copy_(centers.mean(0))
            self.kernel.radius.fill_(max(float(scene.scene_scale), 1e-6))

    def modules(self) -> dict[str, nn.Module]:
        return {"blur_kernel": self.kernel}

    def extra_optimizers(self, train_cfg) -> dict[str, torch.optim.Optimizer]:
        k = self.kernel
        per_view = [k.views.weight] + [t for t in (k.shifts, k.rotations, k.lens) if t is not None]
        mlp = [p for n, p in k.named_parameters() if not (n.startswith("views.") or n in ("shifts", "rotations", "lens"))]
        return {"blur_kernel": torch.optim.Adam(mlp, lr=self.config.mlp_lr, eps=1e-15),
                "blur_views": RowAdam(per_view, lr=self.config.view_lr, eps=1e-15)}

    # -- rendering ------------------------------------------------------------------------------
    def render_passes(self, gaussians: Gaussians, cameras: Cameras, ctx: RenderContext) -> list[RenderPass]:
        if not ctx.training:  # evaluation: sharp, plain 3DGS of the Gaussians
            return super().render_passes(gaussians, cameras, ctx)
        if ctx.step is not None and ctx.step < self.config.kernel_start * self.iterations:
            return super().render_passes(gaussians, cameras, ctx)  # warm-up: Gaussians first
        if cameras.image_ids is None:
            raise ValueError("deblur: training renders need cameras with image_ids (Cameras.with_ids)")
        cfg = self.config
        base = self.raster_args(gaussians, cameras, ctx)
        passes = []
        self._excess = []
        for c in range(len(cameras)):
            image_id = cameras.image_ids[c]
            if int(image_id) >= cfg.max_views or int(image_id) < 0:
                raise ValueError(f"deblur: image id {int(image_id)} outside the embedding table "
                                 f"(max_views={cfg.max_views})")
            raw = self.kernel(gaussians, image_id)
            cam = torch.tensor([c], dtype=torch.long)
            if cfg.kernel == "defocus":
                args = self.blurred_args(base, raw[:, :7], camera=cameras[c:c + 1])
                if self.kernel.lens is not None:
                    aperture = cfg.lambda_lens * self.scene_scale * F.softplus(self.kernel.lens[image_id, 0])
                    args = lens_args(args, cameras[c:c + 1], aperture, self.kernel.lens[image_id, 1], self.kernel.center)
                passes.append(RenderPass(args, cameras=cam))
                continue
            k = cfg.copies + 1
            offsets = raw[:, 7 * k:].reshape(len(gaussians), cfg.copies, 3) * (cfg.lambda_p * self.scene_scale)
            if self.kernel.shifts is not None:
                c2w_rot = cameras.viewmats[c, :3, :3].transpose(0, 1).to(offsets)  # camera axes in world
                shift = self.kernel.shifts[image_id] @ c2w_rot[:, :2].transpose(0, 1)  # (copies, 3)
                offsets = offsets + shift * (cfg.lambda_g * self.scene_scale)
            for m in range(k):
                shift = None if m == 0 else offsets[:, m - 1]
                args = self.blurred_args(base, raw[:, 7 * m:7 * m + 7], shift, cameras[c:c + 1])
                if m > 0 and self.kernel.rotations is not None:
                    args = turned_args(args, cameras.viewmats[c].to(offsets),
                                       self.kernel.rotations[image_id, m - 1] * cfg.lambda_rot)
                passes.append(RenderPass(args, cameras=cam, weight=1.0 / k))
        return passes

    def blurred_args(self, base: dict, raw: Tensor, shift: Tensor | None = None,
                     camera: Cameras | None = None) -> dict:
        """`base` rasterize args with scales and raw quaternions multiplied by the factors from
        `raw` (N, 7), and the means moved by `shift` (N, 3) when given. With `conserve` (and the
        `camera` given), opacities are scaled by sqrt(det Σ2d / det Σ2d') of the footprints in that
        camera: an enlarged Gaussian spreads the same ink over more pixels, as a blur does, rather
        than painting a thicker stroke (measured on robot-defocus with the true per-view blur as
        factors: 20.28 dB without, 23.89 dB with)."""
        f = factors(raw, self.config.lambda_s, self.config.max_factor, self.config.factor_form)
        self._excess.append((f[:, :3] - 1.0).mean())
        args = dict(base, scales=base["scales"] * f[:, :3], quats=base["quats"] * f[:, 3:7])
        if self.config.conserve and camera is not None:
            args["opacities"] = base["opacities"] * footprint_ratio(base, args, camera)
        if shift is not None:
            args["means"] = base["means"] + shift
        return args

    def loss_terms(self, x: LossInputs, train_cfg) -> dict[str, Tensor]:
        """Photometric loss + λreg·mean(scale factor − 1) of the step's blurred renders. A factor
        shared by every view is the same as a larger Gaussian, so the data cannot tell them apart;
        the pull to 1 leaves the kernel only the blur that differs between views (without it,
        garden-sharp lost 1.31 dB to gs3d with every factor at the 1.1 top)."""
        terms = super().loss_terms(x, train_cfg)
        if self.config.lambda_reg and self._excess:
            terms["blur_reg"] = self.config.lambda_reg * torch.stack(self._excess).mean()
        self._excess = []
        return terms

    # -- densification extras -----------------------------------------------------------------
    def after_step(self, gaussians: Gaussians, optimizers, step: int, train_cfg) -> None:
        cfg = self.config
        if cfg.add_points and step == max(1, int(cfg.add_points_at * train_cfg.iterations)):
            add_points(gaussians, optimizers, cfg.add_points, cfg.add_max_dist * self.scene_scale,
                       seed=cfg.seed * 1_000_003 + step)
        c = train_cfg.resolved()
        if (cfg.depth_prune and c.refine_start < step < c.refine_stop and step % c.refine_every == 0):
            depth_prune(gaussians, optimizers, cfg.depth_prune, self.kernel.center)


def lens_args(args: dict, camera: Cameras, aperture: Tensor, log_focus: Tensor, center: Tensor) -> dict:
    """`args` seen through a thin lens of radius `aperture` (world units) focused at exp(`log_focus`)
    times the depth of `center` in `camera` (one camera). A point at depth z is blurred into a disk of
    world radius aperture·|1 − z/focus| at its own depth; as a Gaussian of that σ, it adds σ²·I to
    each covariance (an isotropic 3D dilation: the rotation stays, scales become sqrt(s² + σ²)),
    and the opacity keeps the splat's ink (sqrt(det Σ2d / det Σ2d'), as a blur spreads it)."""
    rot, trans = camera.viewmats[0, :3, :3].to(args["means"]), camera.viewmats[0, :3, 3].to(args["means"])
    depth = args["means"] @ rot[2] + trans[2]
    focus = torch.exp(log_focus) * (center.to(rot) @ rot[2] + trans[2]).abs().clamp_min(1e-6)
    sigma = aperture * (1.0 - depth / focus).abs()
    blurred = dict(args, scales=torch.sqrt(args["scales"] ** 2 + sigma[:, None] ** 2 + 1e-20))
    blurred["opacities"] = args["opacities"] * footprint_ratio(args, blurred, camera)
    return blurred


def turned_args(args: dict, viewmat: Tensor, rotation: Tensor) -> dict:
    """Rasterize `args` as the camera `viewmat` (world-to-camera) sees them after it turned about its
    centre by the rotation vector `rotation` (camera frame, radians): the camera stays, and the
    Gaussians turn the other way about its centre (means and orientations; the covariance turns
    with the quaternion)."""
    c2w = viewmat[:3, :3].transpose(0, 1)
    center = -c2w @ viewmat[:3, 3]
    matrix, quat = rotation_from_vector(-(c2w @ rotation))  # the inverse turn, in world axes
    means = center + (args["means"] - center) @ matrix.transpose(0, 1)
    return dict(args, means=means, quats=quat_multiply(quat.expand_as(args["quats"]), args["quats"]))


@torch.no_grad()
def add_points(gaussians: Gaussians, optimizers, count: int, max_dist: float, seed: int = 0) -> int:
    """Add up to `count` points uniformly in the Gaussians' bounding box (the paper's point adding);
    colour (all SH bands) = inverse-distance-weighted 4 nearest Gaussians, opacity 0.1, scale = the
    distance to the nearest Gaussian; points farther than `max_dist` from every Gaussian are
    dropped. Returns how many were added."""
    means = gaussians.params["means"]
    lo, hi = means.min(0).values, means.max(0).values
    gen = torch.Generator().manual_seed(int(seed) % (2 ** 63))
    pts = lo + (hi - lo) * torch.rand(count, 3, generator=gen, dtype=means.dtype).to(means.device)
    dist, idx = _knn(pts, means, k=min(4, len(means)))
    keep = dist[:, 0] <= max_dist
    pts, dist, idx = pts[keep], dist[keep], idx[keep]
    n = len(pts)
    if n == 0:
        return 0
    w = 1.0 / dist.clamp_min(1e-8)
    w = w / w.sum(1, keepdim=True)
    p = gaussians.params
    fields = {}
    for name, value in p.items():
        if name == "means":
            fields[name] = pts
        elif name == "quats":
            fields[name] = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=value.dtype).to(value).expand(n, 4).clone()
        elif name == "scales":
            fields[name] = torch.log(dist[:, :1].clamp_min(1e-7)).expand(n, 3).clone().to(value)
        elif name == "opacities":
            fields[name] = torch.full((n, *value.shape[1:]), math.log(0.1 / 0.9), dtype=value.dtype,
                                      device=value.device)
        else:  # colours and any extra per-Gaussian field: distance-weighted neighbours
            v = value.detach()[idx]  # (n, k, ...)
            fields[name] = (v * w.reshape(n, -1, *([1] * (v.ndim - 2)))).sum(1).to(value.dtype)
    ops.append(gaussians, optimizers, fields)
    return n


def _knn(query: Tensor, points: Tensor, k: int, chunk: int = 4096) -> tuple[Tensor, Tensor]:
    dists, idxs = [], []
    for s in range(0, len(query), chunk):
        d = torch.cdist(query[s:s + chunk], points)
        v, i = d.topk(k, dim=1, largest=False)
        dists.append(v)
        idxs.append(i)
    return torch.cat(dists), torch.cat(idxs)


@torch.no_grad()
def depth_prune(gaussians: Gaussians, optimizers, threshold: float, center: Tensor) -> int:
    """Prune opacity < threshold / (1 + 2·d), d = distance from `center` normalised to [0, 1]."""
    dist = (gaussians.params["means"] - center).norm(dim=-1)
    d = (dist - dist.min()) / (dist.max() - dist.min()).clamp_min(1e-12)
    prune = torch.sigmoid(gaussians.params["opacities"].reshape(len(gaussians))) < threshold / (1.0 + 2.0 * d)
    n = int(prune.sum())
    if n == 0 or n == len(gaussians):  # never empty the scene
        return 0
    ops.remove(gaussians, optimizers, prune)
    return n
