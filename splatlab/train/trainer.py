"""One training loop for every method and strategy.

    result = run_training(TrainConfig(scene="scenes/robot", iterations=3000, downscale=4))  # splatlab.train

Per step: pick `batch_size` training cameras (an epoch-wise shuffle), render them in one
`rasterize` call, loss = method terms ((1-λ)·L1 + λ·D-SSIM for 3DGS) + strategy regularisers,
backward, (all-reduce gradients when distributed), Adam step, then the densification strategy.
The 2D-mean gradients the strategy needs come from the same render: no extra renders per step.
"""
from __future__ import annotations

import math
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from splatlab.cameras import Cameras
from splatlab.data import SceneData, load_scene
from splatlab.gaussians import Gaussians
from splatlab.methods import LossInputs, make_method
from splatlab.metrics import LPIPS, psnr, ssim_metric
from splatlab.render import RenderOutput, render

from . import checkpoint as ckpt_io
from . import outputs
from .config import TrainConfig
from .init import init_gaussians


# ----------------------------------------------------------------------------------- pieces

class CameraSampler:
    """Training views in a fresh random order every epoch, from its own generator (checkpointed)."""

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.generator = torch.Generator().manual_seed(seed)
        self.perm: list[int] = []
        self.pos = 0

    def next(self, k: int) -> list[int]:
        out = []
        while len(out) < k:
            if self.pos >= len(self.perm):
                self.perm = torch.randperm(self.n, generator=self.generator).tolist()
                self.pos = 0
            out.append(self.perm[self.pos])
            self.pos += 1
        return out

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "perm": list(self.perm), "pos": self.pos, "n": self.n}

    def load_state_dict(self, d: dict) -> None:
        self.generator.set_state(d["generator"])
        self.perm = list(d["perm"])
        self.pos = int(d["pos"])


def base_lrs(cfg: TrainConfig, scene_scale: float) -> dict[str, float]:
    return {"means": cfg.means_lr * scene_scale, "quats": cfg.quats_lr, "scales": cfg.scales_lr,
            "opacities": cfg.opacities_lr, "sh0": cfg.sh0_lr, "shN": cfg.shN_lr}


def gaussian_adam(groups: list[dict]) -> torch.optim.Adam:
    """Adam over the Gaussian fields (one group per field). Fused: torch's default per-tensor Adam
    runs ~10 elementwise passes per field; the fused kernel does one (50k Gaussians, SH 3, 2 threads:
    15.6 -> 3.8 ms a step). Same update up to float rounding."""
    return torch.optim.Adam(groups, eps=1e-15, fused=True)


# ----------------------------------------------------------------------------------- trainer

#: steps left out of the first time estimate: the first steps compile the CPU kernels (numba,
#: ~40 s on a fresh install); counted, they made a 4-minute run announce "about 20.8 min to go"
WARMUP_STEPS = 10


def remaining_seconds(a: float, b: float, n_now: int, cap: int, step: int, grow_until: int, end: int) -> float:
    """Seconds for steps `step`..`end`-1 at `a + b * N` seconds per step, with N growing linearly from
    `n_now` to `cap` until `grow_until` (densification) and staying at `cap` after it."""
    growing = max(0, min(end, grow_until) - step)
    full = max(0, end - max(step, grow_until))
    cap = max(cap, n_now)
    return growing * (a + b * (n_now + cap) / 2) + full * (a + b * cap)


class Trainer:
    def __init__(self, cfg: TrainConfig, scene: SceneData, out_dir: str | os.PathLike | None = None,
                 rank: int = 0, world: int = 1, checkpoint: dict | None = None) -> None:
        import dataclasses

        sized = dataclasses.replace(cfg).resolve_budget(len(scene.train) * scene.width * scene.height)
        self.cfg = sized.resolved()
        self.scene = scene
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.rank, self.world = rank, world
        self.method = make_method(self.cfg.method, self.cfg.method_options)
        self.strategy = self.cfg.make_strategy()
        if hasattr(self.strategy, "set_views"):  # the views its visibility pruning counts
            cams = scene.train.cameras
            self.strategy.set_views(cams.viewmats, cams.Ks, cams.width, cams.height)
        self.history: list[dict] = []
        self.evals: list[dict] = []
        self.elapsed = 0.0
        self.step = 0
        self._stop_requested = False
        self._finalizing = False
        self._in_commit = False
        if checkpoint is None and self.cfg.resume:
            checkpoint = ckpt_io.load_checkpoint(ckpt_io.find_checkpoint(self.cfg.resume))
        if checkpoint is not None:
            self._load(checkpoint)
        else:
            self._fresh()
        self.method.setup(scene, self.cfg)
        self.gaussians.method = self.method.spec()  # travels into checkpoints and the .ply
        if self.world > 1:
            from .distributed import broadcast_model
            broadcast_model(self.gaussians, self.optimizers, self.strategy_state, self.rank)

    # -- setup ----------------------------------------------------------------------------------
    def _seed(self) -> None:
        seed = self.cfg.seed
        torch.manual_seed(seed)
        np.random.seed(seed % (2 ** 32))
        random.seed(seed)

    def _fresh(self) -> None:
        self._seed()
        gen = torch.Generator().manual_seed(self.cfg.seed + 1)
        self.gaussians, shell_seen = init_gaussians(self.scene, self.cfg, self.method, gen)
        self._build_optimizers()
        center = self.scene.train.cameras.centers.double().mean(0).tolist()
        self.strategy_state = self.strategy.initialize_state(self.scene.scene_scale, self.cfg.seed, center)
        if shell_seen is not None:  # the background shell: the first rows, pinned (train/shell.py)
            self.strategy_state.update(pinned=len(shell_seen), shell_seen=shell_seen.to(torch.uint8))
        self.sampler = CameraSampler(len(self.scene.train), self.cfg.seed)

    def _build_optimizers(self) -> None:
        cfg = self.cfg
        lrs = {**base_lrs(cfg, self.scene.scene_scale), **self.method.extra_lrs(cfg)}
        bs = math.sqrt(cfg.batch_size)
        self.base_lrs = {k: v * bs for k, v in lrs.items()}
        groups = self.gaussians.param_groups(self.base_lrs)
        self.optimizers = {"gaussians": gaussian_adam(groups)}
        self.optimizers.update(self.method.extra_optimizers(cfg))
        self._find_means_group()

    def _find_means_group(self) -> None:
        # (load_state_dict replaces the group dicts, so look it up again after loading)
        self._means_group = next(g for g in self.optimizers["gaussians"].param_groups if g["name"] == "means")

    def _load(self, ck: dict) -> None:
        self.gaussians = Gaussians.from_fields(ck["params"])
        # the method's modules first: a checkpoint made with other method options fails there with
        # the clearer message (which option differs), before the optimizers' group sizes disagree
        for name, sd in ck.get("method_modules", {}).items():
            try:
                self.method.modules()[name].load_state_dict(sd)
            except (KeyError, ValueError, RuntimeError) as exc:
                raise ckpt_io.CheckpointError(self.cfg.resume or "checkpoint", f"method module {name!r}: {exc}") from exc
        self._build_optimizers()
        for name, sd in ck["optimizers"].items():
            try:
                self.optimizers[name].load_state_dict(sd)
            except (KeyError, ValueError) as exc:
                raise ckpt_io.CheckpointError(self.cfg.resume or "checkpoint", f"optimizer {name!r}: {exc}") from exc
        for group in self.optimizers["gaussians"].param_groups:  # a checkpoint's groups carry their own
            group["fused"], group["foreach"] = True, None  # flags; older ones were saved unfused
        self._find_means_group()
        self.strategy_state = ck["strategy_state"]
        self.sampler = CameraSampler(len(self.scene.train), self.cfg.seed)
        self.sampler.load_state_dict(ck["sampler"])
        self.step = int(ck["step"])
        self.history = list(ck.get("history", []))
        self.evals = list(ck.get("evals", []))
        self.elapsed = float(ck.get("elapsed", 0.0))
        ckpt_io.set_rng_states(ck["rng"])

    def state_payload(self) -> dict[str, Any]:
        return {
            "version": 1,
            "step": self.step,
            "config": self.cfg.to_dict(),
            "method": self.method.spec().to_dict(),
            "params": {k: v.detach().clone() for k, v in self.gaussians.params.items()},
            "optimizers": {k: opt.state_dict() for k, opt in self.optimizers.items()},
            "method_modules": {k: m.state_dict() for k, m in self.method.modules().items()},
            "strategy_state": self.strategy_state,
            "sampler": self.sampler.state_dict(),
            "rng": ckpt_io.rng_states(),
            "history": self.history,
            "evals": self.evals,
            "elapsed": self.elapsed,
            "scene_scale": self.scene.scene_scale,
        }

    def save_checkpoint(self) -> Path | None:
        if self.rank != 0 or self.out_dir is None:
            return None
        return ckpt_io.save_checkpoint(self.out_dir / "checkpoints" / ckpt_io.checkpoint_name(self.step),
                                       self.state_payload())

    # -- one step -----------------------------------------------------------------------------
    def _targets(self, idx: list[int], bgs: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        views = self.scene.train
        if bgs is None:
            return torch.stack([views.load_image(i) for i in idx]), self.scene.background
        imgs = []
        for i, bg in zip(idx, bgs):
            rgb, alpha = views.load(i, composite=False)
            imgs.append(rgb if alpha is None else rgb * alpha + bg * (1.0 - alpha))
        return torch.stack(imgs), bgs

    def active_sh_degree(self, step: int) -> int:
        return min(step // max(1, self.cfg.sh_degree_interval), self.gaussians.sh_degree)

    def render(self, cameras: Cameras, step: int, backgrounds, *, training: bool, absgrad: bool = False,
               sh_degree: int | None = None) -> RenderOutput:
        """The one render path with this run's method, backend and SH schedule."""
        deg = self.active_sh_degree(step) if sh_degree is None else sh_degree
        return render(self.gaussians, cameras, method=self.method, training=training, step=step,
                      sh_degree=deg, background=backgrounds, backend=self.cfg.backend, absgrad=absgrad)

    def train_step(self, step: int) -> tuple[float, float]:
        cfg = self.cfg
        self._means_group["lr"] = self.base_lrs["means"] * cfg.means_lr_final_factor ** (step / cfg.iterations)
        idx = self.sampler.next(cfg.batch_size)
        bgs = torch.rand(cfg.batch_size, 3, generator=self.sampler.generator) if cfg.random_background else None
        local = idx[self.rank::self.world]
        local_bgs = None if bgs is None else bgs[self.rank::self.world]
        gt, bg = self._targets(local, local_bgs)
        cams = self.scene.train.cameras[torch.as_tensor(local, dtype=torch.long)]
        out = self.render(cams, step, bg, training=True, absgrad=self.strategy.wants_absgrad)
        img, alpha, meta = out.images, out.alphas, out.meta
        strategy = not self.method.owns_densification  # else the method edits rows in after_step
        if strategy:
            self.strategy.step_pre_backward(self.gaussians, self.optimizers, self.strategy_state, step, meta)
        terms = self.method.loss_terms(LossInputs(img, alpha, gt, self.gaussians, step, meta, cams), cfg)
        if strategy:
            terms.update(self.strategy.loss_terms(self.gaussians, self.strategy_state, step))
        loss = sum(terms.values())
        loss.backward()
        with torch.no_grad():
            mse = torch.mean((img.detach() - gt) ** 2)
        logged = torch.stack([loss.detach(), mse])
        self._in_commit = True
        if self.world > 1:
            from .distributed import allreduce_grads, post_backward
            logged = allreduce_grads(self._all_params(), logged, self.world)
        self._hold_pinned()
        for opt in self.optimizers.values():
            opt.step()
            opt.zero_grad(set_to_none=True)
        if not strategy:
            pass
        elif self.world > 1:
            post_backward(self.strategy, self.gaussians, self.optimizers, self.strategy_state, step, meta,
                          self.rank)
        else:
            self.strategy.step_post_backward(self.gaussians, self.optimizers, self.strategy_state, step, meta)
        self.method.after_step(self.gaussians, self.optimizers, step, cfg)
        self._in_commit = False
        loss_v, mse_v = logged.tolist()
        return loss_v, (-10.0 * math.log10(mse_v) if mse_v > 0 else 99.0)

    def _hold_pinned(self) -> None:
        """Only the colour of pinned Gaussians (the background shell) trains: zero the other gradients
        of their rows (Adam then leaves them where they are)."""
        n = int(self.strategy_state.get("pinned", 0))
        if n == 0:
            return
        for name, p in self.gaussians.params.items():
            if name != "sh0" and p.grad is not None:
                p.grad[:n] = 0

    def refill_shell(self) -> None:
        """Unseen shell Gaussians take the colour of the trained seen ones around them (train/shell.py);
        once training is over (it changes the model, so a checkpoint taken after it would not resume exactly)."""
        from .shell import refill_unseen
        refill_unseen(self.gaussians, self.strategy_state.get("shell_seen"), self.strategy_state.get("scene_center"))

    def _all_params(self) -> list[torch.nn.Parameter]:
        params = []
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                params.extend(group["params"])
        return params

    # -- evaluation ----------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, views, max_views: int = 0, save_dir: Path | None = None, lpips: LPIPS | None = None) -> dict:
        n = len(views)
        if n == 0:
            return {"psnr": None, "ssim": None, "lpips": None, "views": 0}
        idx = list(range(n))
        if max_views and n > max_views:
            idx = [round(i * (n - 1) / (max_views - 1)) for i in range(max_views)] if max_views > 1 else [0]
        ps, ss, ls = [], [], []
        if save_dir is not None:
            save_dir.mkdir(parents=True, exist_ok=True)
        for i in idx:
            out = self.render(views.cameras[i], self.step, self.scene.background, training=False)
            gt = views.load_image(i)
            pred = out.images[0].clamp(0, 1)
            ps.append(psnr(pred, gt))
            ss.append(ssim_metric(pred, gt))
            if lpips is not None and lpips.available:
                ls.append(lpips(pred, gt))
            if save_dir is not None:
                outputs.save_image(save_dir / f"{i:04d}.png", torch.cat([pred, gt], dim=1))
        return {"psnr": float(np.mean(ps)), "ssim": float(np.mean(ss)),
                "lpips": float(np.mean(ls)) if ls else (lpips.reason if lpips is not None else None),
                "views": len(idx)}

    # -- loop ----------------------------------------------------------------------------------
    STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def _install_stop_handlers(self) -> dict:
        """Ctrl-C and SIGTERM (a scheduler, `kill`, a closed terminal session) both stop training at
        the end of the current step with a checkpoint; a second one, or one during the final
        evaluation (when the results are already saved), interrupts at once."""
        if self.world > 1 or threading.current_thread() is not threading.main_thread():
            return {}

        def handler(signum, frame):
            if self._stop_requested or self._finalizing:
                raise KeyboardInterrupt
            self._stop_requested = True

        old = {}
        for sig in self.STOP_SIGNALS:
            try:
                old[sig] = signal.signal(sig, handler)
            except (ValueError, OSError):
                pass
        return old

    @staticmethod
    def _restore_handlers(old: dict) -> None:
        for sig, h in old.items():
            signal.signal(sig, h)

    def _start_viewer(self):
        """The live viewer on rank 0 when asked for; its per-step cost is ~zero with no browser."""
        if not self.cfg.viewer or self.rank != 0:
            return None
        from splatlab.view.listen import ListenAddressError
        from splatlab.view.live import LiveViewer, ViewerStartError

        try:
            return LiveViewer(host=self.cfg.viewer_host, port=self.cfg.viewer_port,
                              out_dir=str(self.out_dir / "viewer") if self.out_dir else "splatlab_view")
        except (ViewerStartError, ListenAddressError, OSError) as err:  # the run does not depend on it
            print(f"warning: {' '.join(str(err).split())}; training continues without the live viewer",
                  file=sys.stderr, flush=True)
            return None

    def run(self) -> dict[str, Any]:
        cfg = self.cfg
        end = cfg.iterations if cfg.stop_at is None else min(cfg.iterations, cfg.stop_at)
        bar = None
        if self.rank == 0 and cfg.progress:
            from tqdm import tqdm
            bar = tqdm(total=cfg.iterations, initial=self.step, dynamic_ncols=True, unit="it", desc="train")
        viewer = self._start_viewer()
        old_handlers = self._install_stop_handlers()
        try:
            return self._run_loop(cfg, end, bar, viewer)
        finally:
            self._restore_handlers(old_handlers)

    def _run_loop(self, cfg: TrainConfig, end: int, bar, viewer) -> dict[str, Any]:
        status = "finished"
        t0 = time.perf_counter()
        first = self.step
        # per-step cost over the 100 steps after the warm-up, for the time estimate
        window_start, cost = t0, None
        ema_loss = ema_psnr = None
        try:
            while self.step < end:
                step = self.step
                if viewer is not None:
                    viewer.wait_while_paused()
                loss, p = self.train_step(step)
                self.step = step + 1
                if viewer is not None:
                    viewer.update(self.step, self.gaussians, {"loss": loss, "psnr": p, "gaussians": len(self.gaussians)})
                ema_loss = loss if ema_loss is None else 0.9 * ema_loss + 0.1 * loss
                ema_psnr = p if ema_psnr is None else 0.9 * ema_psnr + 0.1 * p
                if self.rank == 0:
                    self.history.append({"step": self.step, "loss": loss, "psnr": p, "n": len(self.gaussians)})
                if bar is not None:
                    bar.update(1)
                    if self.step % 10 == 0 or self.step == end:
                        bar.set_postfix(loss=f"{ema_loss:.4f}", psnr=f"{ema_psnr:.2f}", n=len(self.gaussians),
                                        refresh=False)
                done = self.step - first
                if done == WARMUP_STEPS:
                    window_start = time.perf_counter()
                if (self.rank == 0 and done > WARMUP_STEPS and (done - WARMUP_STEPS) % 100 == 0 and self.step < end
                        and cost is not False):
                    now = time.perf_counter()
                    per_step, n_now = (now - window_start) / 100, len(self.gaussians)
                    window_start = now
                    if cost is None:  # after the first 100 steps past the warm-up
                        cost = (per_step, n_now)
                        print(self._time_estimate(per_step, 0.0, end, first=True), flush=True)
                    elif n_now >= 3 * cost[1]:  # the scene has grown: fit a + b * N from the two sizes
                        b = max(0.0, (per_step - cost[0]) / (n_now - cost[1]))
                        a = max(1e-6, per_step - b * n_now)
                        (bar.write if bar is not None else print)(self._time_estimate(a, b, end, first=False))
                        cost = False
                if cfg.eval_every and self.step % cfg.eval_every == 0 and self.step < cfg.iterations and self.rank == 0:
                    ev = self.evaluate(self.scene.test, max_views=cfg.max_eval_views or 8)
                    ev["step"] = self.step
                    self.evals.append(ev)
                    if bar is not None and ev["psnr"] is not None:
                        bar.write(f"step {self.step}: test PSNR {ev['psnr']:.2f} SSIM {ev['ssim']:.4f} "
                                  f"({len(self.gaussians)} Gaussians)")
                if cfg.save_every and self.step % cfg.save_every == 0 and self.step < cfg.iterations:
                    self.elapsed_add(t0)
                    t0 = time.perf_counter()
                    self.save_checkpoint()
                if self._stop_requested:
                    status = "interrupted"
                    break
        except KeyboardInterrupt:
            status = "interrupted"
            if self._in_commit and self.rank == 0:
                print("warning: interrupted during an optimizer step; the checkpoint may not resume exactly")
        finally:
            if bar is not None:
                bar.close()
            if viewer is not None:
                viewer.close()
        self.elapsed_add(t0)
        if status == "finished" and self.step < cfg.iterations:
            status = "stopped"
        result: dict[str, Any] = {"status": status, "step": self.step, "out": str(self.out_dir) if self.out_dir else None}
        if status != "finished":
            self._finalizing = True  # a further signal interrupts the saving below
            path = self.save_checkpoint()
            if self.rank == 0 and self.out_dir is not None:
                self._write_splats()
                outputs.write_plot(self.out_dir / "plot.png", self.history)
                print(f"{status} at step {self.step}: checkpoint {path} (resume with --resume {self.out_dir})")
            return result
        self._finalizing = True
        result["metrics"] = self.finalize()
        return result

    def _time_estimate(self, a: float, b: float, end: int, first: bool) -> str:
        """Time to go for a step cost of `a + b * Gaussians` seconds (`remaining_seconds`). The first
        estimate (after the warm-up and 100 steps) knows only the current cost, so it says so; once densification has
        grown the scene, the cost measured at two sizes gives `b`, and an update is printed."""
        n_now = max(1, len(self.gaussians))
        cap = self.cfg.cap_max or 4 * n_now
        seconds = remaining_seconds(a, b, n_now, cap, self.step, min(end, self.cfg.refine_stop), end)
        if first:
            return (f"{end} steps, up to {cap} Gaussians: about {seconds / 60:.1f} min to go at the current speed "
                    f"({1 / a:.1f} steps/s with {n_now} Gaussians; longer if densification grows the scene)")
        return (f"update: roughly {seconds / 60:.1f} min to go ({1 / (a + b * n_now):.1f} steps/s now with "
                f"{n_now} Gaussians)")

    def _write_splats(self) -> None:
        """The `.ply`; a copy with the unseen shell recoloured, so an interrupted run resumes exactly."""
        from splatlab.io import write_splats
        from .shell import refill_unseen

        model = self.gaussians
        if self.strategy_state.get("shell_seen") is not None:
            model = Gaussians.from_fields(model.detached_fields(), method=model.method)
            refill_unseen(model, self.strategy_state["shell_seen"], self.strategy_state.get("scene_center"))
        write_splats(self.out_dir / "point_cloud.ply", model)

    def elapsed_add(self, t0: float) -> None:
        self.elapsed += time.perf_counter() - t0

    def finalize(self) -> dict[str, Any] | None:
        """Final checkpoint, point cloud, renders, plot, then metrics.json (rank 0)."""
        sync = None
        if self.world > 1:
            from .distributed import max_param_diff
            sync = max_param_diff(self.gaussians, self.rank)
        self.refill_shell()
        if self.rank != 0:
            return None
        if self.out_dir is not None:  # the results first: an interrupted evaluation loses nothing
            self.save_checkpoint()
            self._write_splats()
        t0 = time.perf_counter()
        lpips = LPIPS()
        test = self.evaluate(self.scene.test, self.cfg.max_eval_views,
                             self.out_dir / "renders" if self.out_dir else None, lpips)
        train = self.evaluate(self.scene.train, self.cfg.max_eval_views, None, lpips)
        metrics = {
            "status": "complete",
            "steps": self.step,
            "num_gaussians": len(self.gaussians),
            "train": train,
            "test": test,
            "lpips": lpips.reason or "computed",
            "wall_time_s": self.elapsed,
            "train_it_per_s": self.step / self.elapsed if self.elapsed > 0 else None,
            "evals": self.evals,
            "scene": str(self.cfg.scene),
            "config": self.cfg.to_dict(),
        }
        if sync is not None:
            metrics["distributed"] = {"world_size": self.world, "max_param_diff_across_ranks": sync}
        if self.out_dir is not None:
            outputs.write_plot(self.out_dir / "plot.png", self.history)
            metrics["eval_time_s"] = time.perf_counter() - t0
            outputs.write_json_atomic(self.out_dir / outputs.METRICS, metrics)
        return metrics


# ----------------------------------------------------------------------------------- entry

def triangulates(scene: SceneData, cfg: TrainConfig) -> bool:
    """Whether a capture with poses but no points is triangulated first (`cfg.auto_triangulate`):
    not when the plane sweep initialises it instead (`init.use_sweep`, the default for such captures)."""
    from .init import use_sweep
    return cfg.auto_triangulate and not use_sweep(scene, cfg)


def load_training_scene(cfg: TrainConfig, log=print) -> SceneData:
    """The dataset as training sees it: with points, triangulated once and cached when it has
    poses but none (`triangulates`)."""
    scene = load_scene(cfg.scene, downscale=cfg.downscale, background=cfg.background,
                       cache_images=cfg.cache_images)
    if triangulates(scene, cfg):
        from splatlab.data.triangulate import ensure_points
        scene = ensure_points(scene, log=log)
    return scene


def prepare_scene(cfg: TrainConfig) -> SceneData:
    """Load and validate the dataset (DatasetError before anything is written)."""
    scene = load_scene(cfg.scene, downscale=cfg.downscale, background=cfg.background,
                       cache_images=cfg.cache_images)
    scene.validate()
    if cfg.resume is None and triangulates(scene, cfg):
        from splatlab.data.triangulate import ensure_points
        scene = ensure_points(scene)
    if len(scene.train) == 0:
        from splatlab.data import DatasetError
        raise DatasetError(f"{cfg.scene}: no training images")
    return scene
