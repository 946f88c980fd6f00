"""`splatlab <command>`: one entry point; each command lives with the module it drives."""
from __future__ import annotations

import argparse
import importlib
import sys

# command -> (module, function, one-line help). Modules are imported only when their command runs.
COMMANDS = {
    "process": ("splatlab.data.cli", "process_main", "photos -> COLMAP scene with camera poses (pycolmap SfM)"),
    "triangulate": ("splatlab.data.cli", "triangulate_main", "known poses -> sparse points3d.ply for initialisation"),
    "train": ("splatlab.train.cli", "train_main", "train a splat scene from a dataset folder"),
    "render": ("splatlab.render.cli", "render_main", "render a splat file to PNG"),
    "export": ("splatlab.io.cli", "export_main", "convert between .ply, compressed .ply, .sog, .spz, .splat"),
    "info": ("splatlab.io.cli", "info_main", "print count, SH degree, bounds and size of a splat file"),
    "compress": ("splatlab.compress.cli", "compress_main", "self-organizing grid compression to .sog"),
    "view": ("splatlab.view.cli", "view_main", "browser viewer for splat files and training runs"),
    "predict": ("splatlab.models.cli", "predict_main", "splats from a learned model (e.g. one photo -> 3D object)"),
    "refine": ("splatlab.models.cli", "refine_main", "SplatFormer: repair a trained scene for unseen viewpoints"),
}


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line (`prog: error: message`, exit 2) instead of the usage
    block plus the message, so a bad flag reads like every other splatlab error."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {' '.join(str(message).split())}\n")


def usage() -> str:
    lines = ["usage: splatlab <command> [options]", "", "commands:"]
    lines += [f"  {name:<12} {help_}" for name, (_, _, help_) in COMMANDS.items()]
    lines += ["", "`splatlab <command> --help` describes each command."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"splatlab: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module_name, func_name, _ = COMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and err.name.startswith("splatlab"):
            print(f"splatlab: command {name!r} is not available in this build ({err.name} missing)", file=sys.stderr)
            return 2
        raise
    try:
        return int(getattr(module, func_name)(rest) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
