"""Shared by the method tests: installing the example plug-in package for real (pip, into a temp
folder on sys.path) so entry-point discovery is exercised the way a user's package would be."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

FIXTURE = Path(__file__).parent / "fixtures" / "example_method"
_installed: Path | None = None


def install_example_method(target: Path) -> Path:
    """`pip install --target` the fixture package once per session; returns the site folder."""
    global _installed
    if _installed is not None:
        return _installed
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                        "--no-index", "--target", str(target), str(FIXTURE)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, f"pip install of the example method failed:\n{r.stdout}\n{r.stderr}"
    sys.path.insert(0, str(target))
    import importlib

    importlib.invalidate_caches()
    from splatlab.methods import reload_entry_points

    reload_entry_points()
    _installed = target
    return target
