"""`splatlab train SCENE [options]` (wired into the main CLI elsewhere): `train_main(argv) -> exit code`.

Exit codes: 0 finished (or stopped by --stop-at), 1 data / runtime error, 2 bad arguments,
130 interrupted by Ctrl-C (a checkpoint was saved; continue with --resume RUN_DIR).
"""
from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from pathlib import Path

from .config import TrainConfig

PROG = "splatlab train"


class ArgumentError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of usage + message
        raise ArgumentError(message)


def _background(text: str) -> tuple[float, float, float]:
    named = {"white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0), "gray": (0.5, 0.5, 0.5), "grey": (0.5, 0.5, 0.5)}
    if text.lower() in named:
        return named[text.lower()]
    try:
        vals = [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected white, black, gray or 'r,g,b', got {text!r}") from None
    if len(vals) == 1:
        vals *= 3
    if len(vals) != 3:
        raise argparse.ArgumentTypeError(f"expected 3 values, got {text!r}")
    if max(vals) > 1.0:
        vals = [v / 255.0 for v in vals]
    return tuple(vals)  # type: ignore[return-value]


def _method_option(text: str) -> tuple[str, object]:
    """KEY=VALUE -> (key, value); the value becomes an int, float, bool or None when it reads as one."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    value = value.strip()
    low = value.lower()
    if low in ("true", "false"):
        return key, low == "true"
    if low == "none":
        return key, None
    for conv in (int, float):
        try:
            return key, conv(value)
        except ValueError:
            pass
    return key, value


def _method_names() -> str:
    from splatlab.methods import available_methods

    return ", ".join(available_methods())


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    S = argparse.SUPPRESS
    p = _Parser(prog=prog, argument_default=S,
                description="Train Gaussian splats on a scene folder (COLMAP, nerfstudio or Blender layout).")
    p.add_argument("scene", nargs="?", help="scene folder (not needed with --resume)")
    p.add_argument("--out", help="output folder (default outputs/<scene>/<timestamp>)")
    p.add_argument("--preset", choices=("fast", "paper"),
                   help="fast (default): 3000 steps and a Gaussian budget sized to the training pixels, minutes on "
                        "a CPU; paper: the 30k-step 3DGS recipe without a budget (hours on a CPU)")
    p.add_argument("--iterations", type=int, help="training steps (default 3000; --preset paper: 30000)")
    p.add_argument("--resolution", "--downscale", dest="downscale", type=int,
                   help="image downscale factor 1, 2, 4, 8 (uses images_N/ when present)")
    p.add_argument("--strategy", help="densification: default (ADC) or mcmc")
    p.add_argument("--method", help=f"training method (registered: {_method_names()}; default gs3d); "
                                    "`splatlab train --list-methods` shows each with its options")
    p.add_argument("--method-option", dest="method_options", type=_method_option, action="append",
                   metavar="KEY=VALUE", help="method setting, repeatable (e.g. --method sog --method-option grid=256)")
    p.add_argument("--list-methods", dest="list_methods", action="store_true",
                   help="print the registered methods and their options, then exit")
    p.add_argument("--seed", type=int)
    p.add_argument("--batch-size", dest="batch_size", type=int, help="cameras per step (total over processes)")
    p.add_argument("--eval-every", dest="eval_every", type=int, help="test PSNR every N steps (0: only at the end)")
    p.add_argument("--save-every", dest="save_every", type=int, help="checkpoint every N steps (0: only at the end)")
    p.add_argument("--stop-at", dest="stop_at", type=int,
                   help="stop after this many steps with a checkpoint (the schedule still spans --iterations)")
    p.add_argument("--resume", help="checkpoint file or run folder to continue")
    p.add_argument("--sh-degree", dest="sh_degree", type=int)
    p.add_argument("--background", type=_background, help="white, black, gray or r,g,b (RGBA compositing)")
    p.add_argument("--random-background", dest="random_background", action="store_true",
                   help="RGBA data: composite targets on a random colour each step")
    p.add_argument("--init-points", dest="init_num_points", type=int,
                   help="random initial points when the scene has no (or too few) points "
                        "(default: a quarter of the Gaussian budget; --preset paper: 100000)")
    p.add_argument("--no-triangulate", dest="auto_triangulate", action="store_false",
                   help="with --init-sweep off: do not triangulate a scene that has poses but no points (by "
                        "default it is done once and cached beside the scene)")
    p.add_argument("--pixels-per-gaussian", dest="pixels_per_gaussian", type=float,
                   help="the default Gaussian budget: one per this many training pixels (default 20)")
    p.add_argument("--prune-screen-size", dest="prune_screen_size", type=float,
                   help="while densifying, split and prune Gaussians wider than this fraction of the image (0: off)")
    p.add_argument("--background-points", dest="background_points", type=int,
                   help="initial points along training rays beyond the scene, for sky and distant ground "
                        "(default: half of --init-points when the photos are opaque, none with alpha)")
    p.add_argument("--background-layout", dest="background_layout", choices=("disparity", "sphere"),
                   help="where the background points start: disparity (default; uniform in 1/distance from "
                        "beyond the scene to 30x that) or sphere (all at the far distance, a sky dome)")
    p.add_argument("--background-shell", dest="background_shell", type=int,
                   help="Gaussians in a far shell around the cameras that gives every viewing direction a "
                        "background (only their colour trains; unseen ones continue the seen sky); default "
                        "4096 (at most 1/8 of the budget) when the photos are opaque and the method is gs3d, "
                        "ges or hierarchical, 0: none")
    p.add_argument("--prune-view-fraction", dest="prune_view_fraction", type=float,
                   help="while densifying, prune Gaussians inside the camera rig whose centre is in fewer than "
                        "this fraction of the training views (0: off)")
    p.add_argument("--opacity-reg", dest="opacity_reg", type=float,
                   help="loss weight on the mean opacity (default 0; mcmc 0.01)")
    p.add_argument("--scale-reg", dest="scale_reg", type=float,
                   help="loss weight on the mean scale (default 0; mcmc 0.01)")
    p.add_argument("--init-sweep", dest="init_sweep", choices=("auto", "on", "off"),
                   help="start from plane-sweep stereo points of the training views (static ones from each "
                        "camera's temporal median, moving ones per frame with their time); auto (default): for "
                        "multi-view video and for captures without (enough) points, instead of triangulating; "
                        "on: always, added to the scene's points; off: never")
    p.add_argument("--init-radius", dest="init_radius", type=float,
                   help="random init without points: fraction (0, 1] of the ball the views cover (default 1)")
    p.add_argument("--init-opacity", dest="init_opacity", type=float)
    p.add_argument("--init-scale", dest="init_scale", type=float)
    p.add_argument("--grad-threshold", dest="grad_threshold", type=float)
    p.add_argument("--absgrad", action="store_true", help="densify on the absolute 2D gradient")
    p.add_argument("--refine-start", dest="refine_start", type=int)
    p.add_argument("--refine-stop", dest="refine_stop", type=int)
    p.add_argument("--refine-every", dest="refine_every", type=int)
    p.add_argument("--reset-every", dest="reset_every", type=int)
    p.add_argument("--cap-max", dest="cap_max", type=int, help="maximum number of Gaussians (default: one per 20 training pixels; 0: no cap; mcmc: its cap)")
    p.add_argument("--max-eval-views", dest="max_eval_views", type=int)
    p.add_argument("--backend", help="rasterizer backend: auto, cpu, cuda, reference")
    p.add_argument("--nproc", type=int, help="processes for data-parallel training on this machine")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.add_argument("--viewer", action="store_true", default=None,
                   help="watch (and pause) training live in the browser")
    p.add_argument("--viewer-port", dest="viewer_port", type=int, help="live viewer port (default 8080; 0 = any free)")
    p.add_argument("--viewer-host", dest="viewer_host", help="live viewer address (default 127.0.0.1)")
    return p


RUNTIME_KEYS = ("out", "stop_at", "eval_every", "save_every", "progress", "nproc", "backend", "max_eval_views",
                "viewer", "viewer_host", "viewer_port")


def config_from_args(args: argparse.Namespace) -> tuple[TrainConfig, dict | None]:
    given = vars(args)
    ck = None
    if "resume" in given:
        from . import checkpoint as ckpt_io
        path = ckpt_io.find_checkpoint(given["resume"])
        ck = ckpt_io.load_checkpoint(path)
        if not isinstance(ck.get("config"), dict):
            raise ckpt_io.CheckpointError(path, "checkpoint holds no training config")
        cfg = TrainConfig.from_dict(ck["config"])
        cfg.stop_at = None
        cfg.resume = str(path)
        cfg.out = str(ckpt_io.run_dir_of(path))
        for k, v in given.items():
            if k in ("resume", "scene", "list_methods"):
                continue
            if k == "method_options":
                v = {**cfg.method_options, **dict(v)}
            setattr(cfg, k, v)
        return cfg, ck
    if not given.get("scene"):
        raise ArgumentError("the following arguments are required: scene (or --resume)")
    cfg = TrainConfig()
    for k, v in given.items():
        if k == "list_methods":
            continue
        setattr(cfg, k, dict(v) if k == "method_options" else v)
    cfg.apply_preset(explicit=set(given))
    cfg.scene = str(Path(cfg.scene).resolve()) if Path(cfg.scene).exists() else cfg.scene
    return cfg, None


@contextlib.contextmanager
def _sigterm_interrupts():
    """SIGTERM acts like Ctrl-C for the whole command (the training loop turns both into a
    checkpointed stop): before the loop it interrupts with one line instead of killing the process
    in the middle of its setup. The previous handler is restored afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    try:
        old = signal.signal(signal.SIGTERM, interrupt)
    except (ValueError, OSError):
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def train_main(argv=None) -> int:
    """Exit code of `splatlab train` (see the module docstring)."""
    with _sigterm_interrupts():
        return _train_main(argv)


def _train_main(argv=None) -> int:
    from splatlab.checkpoint_file import CheckpointError
    from splatlab.data import DatasetError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if getattr(args, "list_methods", False):
            from splatlab.methods import methods_help
            print(methods_help())
            return 0
        cfg, ck = config_from_args(args)
        cfg.validate()
    except ArgumentError as exc:
        print(f"{PROG}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except CheckpointError as exc:
        print(f"{PROG}: error: cannot resume: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"{PROG}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except (FileNotFoundError, OSError, KeyError) as exc:
        print(f"{PROG}: error: cannot resume: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    if ck is not None and int(ck["step"]) >= cfg.iterations:
        print(f"{PROG}: error: {cfg.resume} is already at step {ck['step']} of {cfg.iterations}", file=sys.stderr)
        return 1
    from splatlab.writable import OutputPathError

    from .launch import run_training
    try:
        result = run_training(cfg, checkpoint=ck)
    except DatasetError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except CheckpointError as exc:
        print(f"{PROG}: error: cannot resume: {exc}", file=sys.stderr)
        return 1
    except (FileExistsError, OutputPathError) as exc:
        print(f"{PROG}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        saved = cfg.out and (Path(cfg.out) / "point_cloud.ply").is_file()
        print(f"{PROG}: interrupted" + (f"; checkpoint and point_cloud.ply are saved in {cfg.out}" if saved else ""),
              file=sys.stderr)
        return 130
    status = result.get("status")
    if status == "interrupted":
        return 130
    if status == "finished" and result.get("metrics"):
        m = result["metrics"]
        test = m["test"]
        msg = f"done: {m['num_gaussians']} Gaussians, {m['wall_time_s']:.1f} s"
        if test.get("psnr") is not None:
            msg += f", test PSNR {test['psnr']:.2f} SSIM {test['ssim']:.4f}"
        print(f"{msg}; results in {result['out']}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(train_main())
