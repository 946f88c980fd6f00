"""Starting a training run: validate, create the run folder, then train in this process or in
`cfg.nproc` data-parallel processes on localhost (torch.multiprocessing, gloo on CPU).

    result = run_training(TrainConfig(scene="scenes/robot", iterations=3000, downscale=4))
"""
from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from splatlab.data import SceneData
from splatlab.render.api import select_backend

from . import outputs
from .config import TrainConfig
from .outputs import METRICS
from .trainer import Trainer, prepare_scene


def run_training(cfg: TrainConfig, scene: SceneData | None = None, checkpoint: dict | None = None) -> dict[str, Any]:
    """Validate config and data, create the run folder, train (in `cfg.nproc` processes)."""
    from splatlab.writable import OutputPathError, check_output_dir

    cfg.validate()
    out = Path(cfg.out) if cfg.out else outputs.default_run_dir(cfg.scene)
    check_output_dir(out)  # a bad --out fails now, not after loading the data
    cfg.out = str(out)
    if cfg.resume is None and outputs.is_complete(out):
        raise FileExistsError(f"{out} already holds a finished run ({METRICS}); choose another --out")
    if cfg.nproc <= 1 and cfg.backend in ("auto", "cpu") and select_backend(cfg.backend) == "cpu":
        from splatlab.render.cpu import compile_ahead
        compile_ahead.start()  # compiles (first run) beside the data loading and initialisation below
    if scene is None:
        scene = prepare_scene(cfg)
    trainer = None
    if cfg.nproc <= 1:  # everything that can refuse the data or the config runs before the folder exists
        trainer = Trainer(cfg, scene, out, checkpoint=checkpoint)
    created = not out.exists()
    try:
        if cfg.resume is None:
            outputs.create_run_dir(out)
        else:
            (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise
    except OSError as err:
        raise OutputPathError(f"{out}: cannot create the run folder: {err.strerror or err}") from None
    if checkpoint is None and cfg.resume is None:
        print(f"training {cfg.iterations} steps ({cfg.preset} preset) on {len(scene.train)} views of "
              f"{scene.width}x{scene.height}; the Gaussian budget is "
              + (f"{cfg.cap_max}" if cfg.cap_max is not None else
                 f"one per {cfg.pixels_per_gaussian:g} training pixels") + f"; run folder {out}", flush=True)
    if trainer is None:
        return launch(cfg, out)
    try:
        return trainer.run()
    except KeyboardInterrupt:  # stopped before the first step (the loop itself saves and returns)
        if created and not any((out / "checkpoints").glob("*.pt")):
            shutil.rmtree(out, ignore_errors=True)  # nothing trained yet: leave nothing behind
        raise


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, cfg_dict: dict, out: str, port: int) -> None:

    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
        try:
            import numba
            numba.set_num_threads(max(1, min(numba.config.NUMBA_NUM_THREADS, (os.cpu_count() or 1) // world)))
        except Exception:
            pass
        cfg = TrainConfig.from_dict(cfg_dict)
        if rank != 0:
            cfg.progress = False
        from .trainer import load_training_scene
        scene = load_training_scene(cfg, log=(lambda *a, **k: None))
        Trainer(cfg, scene, out, rank=rank, world=world).run()
        # Tear down together: a rank that destroys its gloo group while its peer is still writing
        # metrics can make the peer's gloo I/O thread see a closed socket and abort the process
        # ("terminate called without an active exception"). Only on success: after an error the
        # peer may never arrive.
        dist.barrier()
    finally:
        dist.destroy_process_group()


def launch(cfg, out: Path) -> dict[str, Any]:
    """Train in `cfg.nproc` local processes; returns what rank 0 wrote (metrics.json if finished)."""
    import torch.multiprocessing as mp

    port = _free_port()
    # split the cores between ranks before the children import torch/numba (oversubscribed
    # OpenMP/numba pools spin and slow every rank down by orders of magnitude)
    threads = str(max(1, (os.cpu_count() or 1) // cfg.nproc))
    saved = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS")}
    for k, v in saved.items():
        if v is None:
            os.environ[k] = threads
    try:
        mp.spawn(_worker, args=(cfg.nproc, cfg.to_dict(), str(out), port), nprocs=cfg.nproc, join=True)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
    metrics_path = Path(out) / METRICS
    if metrics_path.is_file():
        metrics = json.loads(metrics_path.read_text())
        return {"status": "finished", "step": metrics.get("steps"), "out": str(out), "metrics": metrics}
    return {"status": "stopped", "out": str(out)}
