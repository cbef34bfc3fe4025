"""``upscope dashboard``: start the Streamlit dashboard on a data source.

Theory of operation: this process is a supervisor. It decides the data source and starts what the
source needs: for ``--lab`` and the no-argument default the lab and ``upscope serve --lab-dir``
against it; for ``--site`` the service on that site; ``--capture`` is analysed inside Streamlit;
``--service`` reads a service already running; ``--prometheus`` adds the Fleet page (and, alone,
starts no source at all). Then it runs ``streamlit run dashboard/app.py`` as a
child with the source in ``UPSCOPE_DASHBOARD_SOURCE``. It waits for the
Streamlit child; on exit, Ctrl-C or SIGTERM it stops every child it started (by pid), so no lab or
Streamlit process outlives it.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import typer

from core.child_process import die_with_parent

APP = Path(__file__).resolve().with_name("app.py")


def parse_addr(addr: str) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise typer.BadParameter(f"--addr {addr!r}: expected HOST:PORT, e.g. 127.0.0.1:8501")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError as exc:
        raise typer.BadParameter(f"--addr {addr!r}: {host!r} is not an IP address") from exc
    return host, int(port)


#: The Streamlit launcher. (1) Streamlit imports a page's modules only when the first browser session
#: runs the script; importing them before the server starts takes pandas/plotly/the diagnosis engine
#: off the first render. (2) A ``pages/`` folder next to the main script switches Streamlit to its
#: old directory-based navigation until ``st.navigation`` first runs, which breaks deep links such as
#: ``/calls`` in a fresh server; the flag ``st.navigation`` itself sets turns that off from the start.
PRELOAD = ("from dashboard.pages import analyze, calls, diagnoses, firewall, fleet, media, overview, registration, "
           "traces, users; from streamlit.runtime.pages_manager import PagesManager; "
           "PagesManager.uses_pages_directory = False; from streamlit.web.cli import main; main()")


def streamlit_command(host: str, port: int, max_upload_mb: int) -> list[str]:
    return [
        sys.executable, "-c", PRELOAD, "run", str(APP),
        "--server.address", host, "--server.port", str(port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.maxUploadSize", str(max_upload_mb),
        "--server.fileWatcherType", "none", "--client.toolbarMode", "viewer",
    ]


#: The same CLI as the installed ``upscope`` script, without relying on PATH.
UPSCOPE = [sys.executable, "-c", "from dashboard.cli import main; main()"]


def lab_command(scenario: str, out: Path) -> list[str]:
    # Loopback addresses and ports of its own: the dashboard's lab never collides with, nor sees,
    # another lab (the service attached to it reads both from the lab's site file).
    return [*UPSCOPE, "lab", "--scenario", scenario, "--out", str(out), "--port", "0", "--addresses", "auto"]


class Children:
    """The processes this command started, stopped in reverse order on exit (by pid)."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(cmd, env=env, preexec_fn=die_with_parent())
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 10
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def dashboard(
    site: Path | None = typer.Option(None, "--site", help="site file of a real OSBiz (live monitoring)"),
    lab: str | None = typer.Option(None, "--lab", help="run this lab scenario and show it (e.g. healthy)"),
    capture: Path | None = typer.Option(None, "--capture", help="analyse this pcap/pcapng/OSBiz trace log"),
    keylog: Path | None = typer.Option(None, "--keylog", help="TLS key log for --capture"),
    service: str | None = typer.Option(None, "--service", help="read a running `upscope serve` at this URL"),
    addr: str = typer.Option("127.0.0.1:8501", "--addr", help="listen address HOST:PORT (loopback by default)"),
    max_upload_mb: int = typer.Option(200, "--max-upload-mb", min=1, help="upload size limit in MB"),
    lab_dir: Path | None = typer.Option(None, "--lab-dir", help="where the lab writes its files (default: temp)"),
    prometheus: str | None = typer.Option(
        None, "--prometheus", help="Prometheus (or Thanos, Mimir, VictoriaMetrics) query URL of a fleet of "
        "`upscope serve`s: adds the Fleet page; alone, the dashboard shows only the fleet"),
) -> None:
    """Open the Streamlit dashboard. With no source option it runs the lab's healthy scenario."""
    host, port = parse_addr(addr)
    fleet_env: dict[str, str] = {}
    if prometheus is not None:
        from dashboard.fleet import PROMETHEUS_ENV
        from dashboard.prometheus_api import PrometheusClient, PrometheusError

        try:
            PrometheusClient(prometheus)
        except PrometheusError as exc:
            raise typer.BadParameter(f"--prometheus: {exc}") from None
        fleet_env = {PROMETHEUS_ENV: prometheus}
    chosen = [o for o in (site, lab, capture, service) if o is not None]
    if len(chosen) > 1:
        raise typer.BadParameter("give at most one of --site, --lab, --capture, --service")
    if keylog is not None and capture is None:
        raise typer.BadParameter("--keylog goes with --capture")
    for path in (site, capture, keylog):
        if path is not None and not path.is_file():
            typer.echo(f"{path}: not a readable file", err=True)
            raise typer.Exit(2)
    if not ipaddress.ip_address(host).is_loopback:
        typer.echo(f"warning: listening on {host}: put the dashboard behind a reverse proxy with "
                   "authentication (see README)", err=True)

    children = Children()

    def _term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _term)
    try:
        # With only --prometheus the dashboard is the fleet view: no lab, no source of its own.
        config = None if prometheus is not None and not chosen else _source(
            children, site=site, lab=lab, capture=capture, keylog=keylog, service=service, lab_dir=lab_dir)
        # Imported here: dashboard.data pulls in streamlit and pandas, too slow for every CLI start.
        from dashboard.data import SOURCE_ENV

        env = {**os.environ, **fleet_env, "UPSCOPE_MAX_UPLOAD_MB": str(max_upload_mb)}
        env.pop(SOURCE_ENV, None)
        if config is not None:
            env[SOURCE_ENV] = json.dumps(config)
        ui = children.start(streamlit_command(host, port, max_upload_mb), env=env)
        typer.echo(f"upscope dashboard on http://{host}:{port}/", err=True)
        code = ui.wait()
    except KeyboardInterrupt:
        code = 0
    except StartError as exc:
        typer.echo(f"upscope dashboard: {exc}", err=True)
        code = 2
    finally:
        children.stop()
    raise typer.Exit(code)


class StartError(Exception):
    """A child (lab, service) did not come up; the message says which and where its output is."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(ready: Callable[[], bool], proc: subprocess.Popen[bytes], what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        if proc.poll() is not None:
            raise StartError(f"{what} exited with code {proc.returncode}")
        if time.monotonic() > deadline:
            raise StartError(f"{what} not ready within {timeout_s:.0f} s")
        time.sleep(0.2)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _start_service(children: Children, args: list[str], state_dir: Path) -> dict[str, Any]:
    """``upscope serve`` on a free loopback port; the dashboard reads its JSON API."""
    port = _free_port()
    cmd = [*UPSCOPE, "serve", *args, "--metrics-addr", f"127.0.0.1:{port}", "--db", str(state_dir / "upscope.db")]
    proc = children.start(cmd)
    url = f"http://127.0.0.1:{port}"
    _wait(lambda: _answers(url + "/api/snapshot"), proc, "upscope serve")
    return {"kind": "service", "url": url}


def _source(children: Children, *, site: Path | None, lab: str | None, capture: Path | None,
            keylog: Path | None, service: str | None, lab_dir: Path | None) -> dict[str, Any]:
    """The data source for the Streamlit process, starting the lab and/or the service it needs."""
    if service is not None:
        return {"kind": "service", "url": service}
    if capture is not None:
        return {"kind": "files", "captures": [str(capture.resolve())],
                "keylog": str(keylog.resolve()) if keylog else None, "label": f"capture {capture.name}"}
    if site is not None:
        state = Path(tempfile.mkdtemp(prefix="upscope-dashboard-"))
        return _start_service(children, ["--site", str(site.resolve())], state)
    scenario = lab or "healthy"
    out = (lab_dir or Path(tempfile.mkdtemp(prefix=f"upscope-lab-{scenario}-"))).resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "lab.json").unlink(missing_ok=True)  # a stale one from an earlier run is not "ready"
    typer.echo(f"lab scenario {scenario} writing to {out}", err=True)
    proc = children.start(lab_command(scenario, out))
    _wait((out / "lab.json").exists, proc, f"upscope lab --scenario {scenario}")
    return _start_service(children, ["--lab-dir", str(out)], out)


def register(app: typer.Typer) -> None:
    app.command("dashboard")(dashboard)
