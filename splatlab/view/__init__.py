"""Browser viewers: the viser app (`app`), the training hook (`live.LiveViewer`) and the static page server.

Nothing here imports viser at package import time, so `from splatlab.view import LiveViewer` is free
for a trainer that never turns the viewer on.
"""
from __future__ import annotations


def __getattr__(name: str):
    if name == "LiveViewer":
        from .live import LiveViewer
        return LiveViewer
    if name == "ViewerApp":
        from .app import ViewerApp
        return ViewerApp
    raise AttributeError(name)


__all__ = ["LiveViewer", "ViewerApp"]
