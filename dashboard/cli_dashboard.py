"""``upscope dashboard``: start the Streamlit dashboard on a data source.

Theory of operation: this process is a supervisor. It decides the data source, starts what the
source needs (the lab, for ``--lab`` and for the no-argument default), then runs ``streamlit run
dashboard/app.py`` as a child with the source in ``UPSCOPE_DASHBOARD_SOURCE``. It waits for the
Streamlit child; on exit, Ctrl-C or SIGTERM it stops every child it started (by pid), so no lab or
Streamlit process outlives it.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

import typer

APP = Path(__file__).resolve().with_name("app.py")


def parse_addr(addr: str) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise typer.BadParameter(f"--addr {addr!r}: expected HOST:PORT, e.g. 127.0.0.1:8501")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError as exc:
        raise typer.BadParameter(f"--addr {addr!r}: {host!r} is not an IP address") from exc
    return host, int(port)


def streamlit_command(host: str, port: int, max_upload_mb: int) -> list[str]:
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", host, "--server.port", str(port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.maxUploadSize", str(max_upload_mb),
        "--server.fileWatcherType", "none", "--client.toolbarMode", "viewer",
        "--theme.base", "light",
    ]


def lab_command(scenario: str, out: Path) -> list[str]:
    # The same CLI as the installed ``upscope`` script, without relying on PATH.
    # --port 0: a free port, so the dashboard's lab never collides with another lab on 65061.
    return [sys.executable, "-c", "from dashboard.cli import main; main()", "lab", "--scenario", scenario,
            "--out", str(out), "--port", "0"]


class Children:
    """The processes this command started, stopped in reverse order on exit (by pid)."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(cmd, env=env)
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
) -> None:
    """Open the Streamlit dashboard. With no source option it runs the lab's healthy scenario."""
    host, port = parse_addr(addr)
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
    config: dict[str, Any]
    if service is not None:
        config = {"kind": "service", "url": service}
    elif capture is not None:
        config = {"kind": "files", "captures": [str(capture.resolve())],
                  "keylog": str(keylog.resolve()) if keylog else None, "label": f"capture {capture.name}"}
    elif site is not None:
        config = {"kind": "files", "captures": [], "site": str(site.resolve()), "label": f"site {site.name}"}
    else:
        scenario = lab or "healthy"
        out = lab_dir or Path(tempfile.mkdtemp(prefix=f"upscope-lab-{scenario}-"))
        out.mkdir(parents=True, exist_ok=True)
        children.start(lab_command(scenario, out))
        config = {"kind": "lab", "dir": str(out.resolve()), "label": f"lab {scenario}"}
        typer.echo(f"lab scenario {scenario} writing to {out}", err=True)

    def _term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _term)
    # Imported here: dashboard.data pulls in streamlit and pandas, too slow for every CLI start.
    from dashboard.data import SOURCE_ENV

    env = {**os.environ, SOURCE_ENV: json.dumps(config), "UPSCOPE_MAX_UPLOAD_MB": str(max_upload_mb)}
    try:
        ui = children.start(streamlit_command(host, port, max_upload_mb), env=env)
        typer.echo(f"upscope dashboard on http://{host}:{port}/", err=True)
        code = ui.wait()
    except KeyboardInterrupt:
        code = 0
    finally:
        children.stop()
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("dashboard")(dashboard)
