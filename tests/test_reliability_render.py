"""Issue 13, group 7 (render): PNGs get the usual file mode, not mkstemp's 0600; NaN arguments refused."""
from __future__ import annotations

import os
import stat

import pytest
import torch

from splatlab.render.cli import render_main, save_png


def test_png_mode_follows_umask(tmp_path):
    old = os.umask(0o022)
    try:
        save_png(torch.zeros(4, 4, 3), str(tmp_path / "a.png"))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.png").stat().st_mode) == 0o644


def test_nan_elevation_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        render_main([str(tmp_path / "x.ply"), "--elevation", "nan", "--out", str(tmp_path / "o.png")])
    assert info.value.code == 2 and "elevation" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()
