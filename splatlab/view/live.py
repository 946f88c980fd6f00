"""`LiveViewer`: watch (and pause) a training run in the browser.

Trainer side, per step::

    viewer = LiveViewer(port=8080)            # starts a viser server on 127.0.0.1
    for step in ...:
        viewer.wait_while_paused()            # blocks only while paused from the browser
        ... one optimisation step ...
        viewer.update(step, gaussians, {"loss": loss.item(), "psnr": psnr})
    viewer.close()

Cost with nobody connected: `update()` stores three references and returns (no copy, no render,
no message). With a client, at most one snapshot per `min_interval` seconds is taken (a detached
copy of the parameters, O(N)); renders happen on the viewer's own thread.
"""
from __future__ import annotations

import sys
import threading
import time
from typing import Any, Mapping

from ..gaussians import Gaussians


class ViewerStartError(RuntimeError):
    """The live viewer's server did not come up (one-line message)."""


def _start_server(viser, host: str, port: int, timeout: float):
    """`viser.ViserServer(...)` with a deadline: viser waits forever for its server thread to say
    it is ready, and a thread that dies while starting never says so."""
    from .origin import guarded_viser

    result: dict[str, Any] = {}

    def start() -> None:
        try:
            with guarded_viser(host):  # only pages served by this viewer may open its websocket
                result["server"] = viser.ViserServer(host=host, port=port, label="splatlab (training)",
                                                     verbose=False)
        except BaseException as err:  # noqa: BLE001 - reported to the caller below
            result["error"] = err

    thread = threading.Thread(target=start, name="splatlab-live-start", daemon=True)
    thread.start()
    thread.join(timeout)
    if "server" in result:
        return result["server"]
    if "error" in result:
        err = result["error"]
        raise ViewerStartError(f"cannot start the live viewer on {host}:{port}: {type(err).__name__}: {err}")
    raise ViewerStartError(f"the live viewer on {host}:{port} did not start within {timeout:.0f} s")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if hasattr(v, "item") and getattr(v, "numel", lambda: 0)() == 1:
        return f"{v.item():.4g}"
    return str(v)


class LiveViewer:
    def __init__(self, host: str = "127.0.0.1", port: int = 8080, *, min_interval: float = 0.5,
                 out_dir: str = "splatlab_view", display: str | None = None, max_resolution: int = 512,
                 start_paused: bool = False, verbose: bool = True, start_timeout: float = 30.0) -> None:
        import viser

        from .listen import check_listen_address
        check_listen_address(host, port)  # else viser's server thread dies and this waits forever
        self.min_interval = float(min_interval)
        self._server = _start_server(viser, host, port, start_timeout)
        self.host, self.port = host, self._server.get_port()
        self._app = None
        self._app_kwargs = dict(out_dir=out_dir, max_resolution=max_resolution, splat_upload_interval=2.0)
        self._display = display
        self._n_clients = 0
        self._force_push = False
        self._last_push = 0.0
        self._latest: tuple[int, Gaussians, Mapping[str, Any]] | None = None
        self._paused = threading.Event()
        if start_paused:
            self._paused.set()
        self._closed = False
        self.failed: str | None = None  # why the viewer stopped working (training goes on without it)
        self.pushes = 0  # snapshots sent to the app (tests and diagnostics)
        self.step = -1
        self._build_gui()
        self._server.on_client_connect(self._on_connect)
        self._server.on_client_disconnect(self._on_disconnect)
        if verbose:
            print(f"splatlab view: live training viewer at {self.url}", flush=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def app(self):
        return self._app

    # ---------------------------------------------------------------- trainer API
    def update(self, step: int, gaussians: Gaussians, metrics: Mapping[str, Any] | None = None) -> bool:
        """Offer the current model; returns True when a snapshot was sent to the browser. Never
        raises: a viewer that fails is switched off with one warning and training goes on."""
        if self.failed is not None:
            return False
        self.step = step
        self._latest = (step, gaussians, metrics or {})
        if not self.alive:
            self._fail("its server thread stopped")
            return False
        if self._n_clients == 0 and self._app is not None:
            return False
        now = time.perf_counter()
        if not self._force_push and now - self._last_push < self.min_interval:
            return False
        try:
            self._push()
        except Exception as err:  # noqa: BLE001 - the viewer must never take training down with it
            self._fail(f"{type(err).__name__}: {err}")
            return False
        return True

    @property
    def alive(self) -> bool:
        """Whether viser's server thread still runs (a dead one can neither show nor resume anything)."""
        thread = getattr(getattr(self._server, "_websock_server", None), "_server_thread", None)
        return thread is None or thread.is_alive()

    def _fail(self, reason: str) -> None:
        if self.failed is None:
            self.failed = " ".join(reason.split())
            print(f"warning: live viewer stopped ({self.failed}); training continues without it",
                  file=sys.stderr, flush=True)
        self._paused.clear()
        self._resume.set()

    def should_pause(self) -> bool:
        return self._paused.is_set()

    def wait_while_paused(self, poll: float = 0.1) -> float:
        """Block while the browser has training paused; returns the seconds spent waiting. Returns
        at once when the viewer has failed or its server thread died (nobody could resume)."""
        if not self._paused.is_set() or self.failed is not None:
            return 0.0
        t0 = time.perf_counter()
        try:
            self._set_status()
            while self._paused.is_set() and not self._closed:
                if not self.alive:
                    self._fail("its server thread stopped while training was paused")
                    break
                if self._force_push and self._latest is not None:
                    self._push()  # the trainer is blocked here, so the snapshot is consistent
                self._resume.wait(poll)
            self._set_status()
        except Exception as err:  # noqa: BLE001
            self._fail(f"{type(err).__name__}: {err}")
        return time.perf_counter() - t0

    def pause(self) -> None:
        self._paused.set()
        self._resume.clear()
        self._set_status()

    def resume(self) -> None:
        self._paused.clear()
        self._resume.set()
        self._set_status()

    def close(self) -> None:
        self._closed = True
        self._resume.set()
        try:
            if self._app is not None:
                self._app.stop()
            self._server.stop()
        except Exception as err:  # noqa: BLE001 - closing a broken viewer must not fail the run
            if self.failed is None:
                print(f"warning: live viewer did not close cleanly ({type(err).__name__}: {err})", file=sys.stderr)

    def __enter__(self) -> "LiveViewer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---------------------------------------------------------------- internals
    def _push(self) -> None:
        step, g, metrics = self._latest
        snapshot = Gaussians.from_fields(g.detached_fields())  # copies (the trainer keeps mutating g)
        lines = [f"Step: {step}"] + [f"{k}: {_fmt(v)}" for k, v in metrics.items()]
        if self._app is None:
            from .app import DISPLAY_SERVER, ViewerApp
            from .source import ViewSource

            self._app = ViewerApp(self._server, ViewSource(snapshot, "training (live)", "", 0, "memory", step=step),
                                  display=self._display or DISPLAY_SERVER, **self._app_kwargs)
            self._app.extra_stats = "  \n".join(lines[1:])
        else:
            self._app.source.step = step
            self._app.set_gaussians(snapshot, stats="  \n".join(lines[1:]))
        self._force_push = False
        self._last_push = time.perf_counter()
        self.pushes += 1
        self._set_status()

    def _build_gui(self) -> None:
        gui = self._server.gui
        self._resume = threading.Event()
        if not self._paused.is_set():
            self._resume.set()
        with gui.add_folder("Training", order=-10):
            self._status_md = gui.add_markdown("Waiting for the first training step…")
            self._pause_btn = gui.add_button("Pause training")
            self._interval = gui.add_slider("Update every (s)", 0.1, 10.0, 0.1, self.min_interval)

        @self._pause_btn.on_click
        def _(_):
            self.resume() if self._paused.is_set() else self.pause()

        @self._interval.on_update
        def _(_):
            self.min_interval = float(self._interval.value)

    def _set_status(self) -> None:
        paused = self._paused.is_set()
        self._pause_btn.label = "Resume training" if paused else "Pause training"
        self._status_md.content = f"**{'Paused' if paused else 'Training'}** at step {self.step}"

    def _on_connect(self, client) -> None:
        self._n_clients += 1
        self._force_push = True

    def _on_disconnect(self, client) -> None:
        self._n_clients = max(0, self._n_clients - 1)
