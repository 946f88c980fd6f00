"""`splatlab predict MODEL INPUT --out scene.ply [--weights DIR] [--view] [model options]`.

Exit codes: 0 written, 1 bad input or weights (one line naming the file; nothing written),
2 bad arguments, 130 interrupted.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

PROG = "splatlab predict"


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise _UsageError(message)


class _UsageError(Exception):
    pass


def build_parser(model_cls=None) -> argparse.ArgumentParser:
    from .registry import available_models

    names = ", ".join(available_models()) or "none installed"
    p = _Parser(prog=PROG, description=f"Predict splats with a learned model ({names}).")
    p.add_argument("model", help=f"model name ({names})")
    p.add_argument("input", help="input file (a photo for image models, a splat file for refiners)")
    p.add_argument("--out", required=True, help="output splat file (.ply, .sog, .spz, .splat, ...)")
    p.add_argument("--weights", help="weights folder (default: the weights shipped with splatlab)")
    p.add_argument("--view", action="store_true", help="open the result in the browser viewer")
    p.add_argument("--port", type=int, default=8080, help="viewer port with --view (default 8080)")
    if model_cls is not None:
        model_cls.add_predict_arguments(p)
    return p


def predict_main(argv: list[str] | None = None) -> int:
    from splatlab.io import SplatFormatError, detect_format, write_splats

    from .base import InputError, WeightsError
    from .registry import model_class

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        first = [a for a in argv if not a.startswith("-")][:1]
        cls = None
        if first and not any(a in ("-h", "--help") for a in argv[:1]):
            try:
                cls = model_class(first[0])
            except ValueError as exc:
                raise _UsageError(str(exc)) from None
        args = build_parser(cls).parse_args(argv)
        if cls is None:
            cls = model_class(args.model)
        detect_format(args.out, for_write=True)
        out_dir = os.path.dirname(os.path.abspath(args.out)) or "."
        if not os.path.isdir(out_dir):
            raise _UsageError(f"--out: folder {out_dir} does not exist")
        from splatlab.writable import OutputPathError, check_splat_output
        try:
            check_splat_output(args.out)
        except OutputPathError as exc:
            raise _UsageError(f"--out {exc}") from None
    except _UsageError as exc:
        print(f"{PROG}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except SplatFormatError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    if not os.path.isfile(args.input):
        print(f"{PROG}: error: {args.input}: no such file", file=sys.stderr)
        return 1
    try:
        t0 = time.perf_counter()
        model = cls.from_pretrained(args.weights)
        t1 = time.perf_counter()
        gaussians = model.predict_path(args.input, vars(args))
        t2 = time.perf_counter()
        write_splats(args.out, gaussians)
    except (WeightsError, InputError, SplatFormatError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{PROG}: error: {exc.filename or args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print(f"wrote {args.out}: {len(gaussians)} Gaussians (load {t1 - t0:.2f} s, predict {t2 - t1:.2f} s)")
    if args.view:
        from splatlab.view.cli import view_main
        return view_main([args.out, "--port", str(args.port)])
    return 0


def refine_main(argv: list[str] | None = None) -> int:
    """`splatlab refine SCENE --out OUT [--weights DIR] [--view]`: SplatFormer on a trained splat file
    (the same as `splatlab predict splatformer SCENE ...`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["-h"], ["--help"]):
        print("usage: splatlab refine SCENE --out OUT [--weights DIR] [--view] [--port PORT]\n\n"
              "Refine a trained splat scene with SplatFormer so views outside the capture's band look better.")
        return 0
    return predict_main(["splatformer", *argv])

