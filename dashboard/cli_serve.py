"""``upscope serve`` (the monitoring service) and ``upscope bundle`` (support bundle)."""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import typer

from collectors.runtime.service import ServeConfig, Service
from core import netns
from core.errors import UpscopeError
from dashboard.http_server import UpscopeHttpServer, parse_addr
from dashboard.metrics import DEFAULT_METRICS_PORT, make_registry
from dashboard.probe_endpoint import ProbeAccess

DEFAULT_METRICS_ADDR = f"127.0.0.1:{DEFAULT_METRICS_PORT}"


def _fail(message: str) -> typer.Exit:
    typer.echo(f"upscope serve: {message}", err=True)
    return typer.Exit(2)


def config_from_lab(lab_dir: Path) -> dict[str, Any]:
    """Settings to attach to a running lab (``upscope lab``'s ``lab.json``)."""
    info_path = lab_dir / "lab.json"
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UpscopeError(f"{info_path}: not found — is `upscope lab --out {lab_dir}` running?") from None
    except (OSError, ValueError) as exc:
        raise UpscopeError(f"{info_path}: unreadable ({exc})") from None
    # As root we capture lo ourselves (a ring, like on a real site); otherwise follow the lab's file.
    live = os.geteuid() == 0 and bool(shutil.which("dumpcap") or shutil.which("tcpdump"))
    captures = (Path(info["capture"]),) if info.get("capture") and not live else ()
    pbx_443 = (info.get("pbx") or {}).get("https_443")
    ca = info.get("ca_file")
    tls_opts: dict[str, Any] = {"ca_file": ca} if ca else {"insecure": True}
    return {
        "site_path": lab_dir / "site.yaml",
        "trace_log": Path(info["trace"]) if info.get("trace") else None,
        "keylog": Path(info["keylog"]) if info.get("keylog") else None,
        # The lab's site file names its JWT itself (tenant.jwt: file:…/jwt.txt), as a real site would.
        "captures": captures,
        "interface": "lo" if live else None,
        "osbiz_https_ports": (int(pbx_443),) if pbx_443 else (443,),
        "probe_options": {"sip_options_tls": tls_opts, "https_rest": tls_opts},
        # sip-tls-blocked as root: the lab lives in a network namespace of its own
        "netns": info.get("netns") or None,
    }


def probe_access(service: Service, allow: list[str], debug: bool) -> ProbeAccess:
    """/probe may reach the site's endpoints (connector SIP, STUN, REST, as the site file names
    them right now) and the OSBiz's own addresses, plus ``--probe-allow``."""

    def site() -> Any:
        snap = service.snapshot()
        return snap.site if snap is not None else None

    def endpoints() -> list[str]:
        ep = getattr(site(), "endpoints", None)
        if ep is None:
            return []
        return [f"{e.host}:{e.port}" for e in (ep.connector, ep.stun, ep.rest)]

    def hosts() -> list[str]:
        system = getattr(site(), "system", None)
        return [ip for ip in (getattr(system, "public_ip", None), getattr(system, "private_ip", None)) if ip]

    return ProbeAccess(endpoints, hosts, tuple(allow), debug)


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        site: Path | None = typer.Option(None, "--site", help="Site file (YAML) of the OSBiz to watch."),
        interface: str | None = typer.Option(
            None, "--interface", "-i", help="Capture live on this interface (ring buffer via dumpcap/tcpdump)."
        ),
        trace_log: Path | None = typer.Option(None, "--trace-log", help="OSBiz SIP trace log to follow."),
        keylog: Path | None = typer.Option(None, "--keylog", help="TLS key log (SSLKEYLOGFILE) for SIP/TLS."),
        jwt_file: Path | None = typer.Option(None, "--jwt-file", help="File holding the tenant's JWT."),
        capture: list[Path] = typer.Option([], "--capture", help="Capture file(s) written by another tool to follow."),
        db: Path = typer.Option(Path("upscope.db"), "--db", help="SQLite history (survives restarts)."),
        lab_dir: Path | None = typer.Option(None, "--lab-dir", help="Attach to a running `upscope lab --out DIR`."),
        metrics_addr: str = typer.Option(DEFAULT_METRICS_ADDR, "--metrics-addr",
                                         help="Where /metrics, /probe and /api/* listen."),
        window: float = typer.Option(60.0, "--window", help="Seconds of recent evidence the live diagnosis judges "
                                     "(calls, media, flows). The ITSP status follows the registration instead: "
                                     "Registered from a 2xx until its granted expiry."),
        hold: float = typer.Option(30.0, "--hold", help="Seconds a finding stays open after its evidence is gone."),
        registration_grace: float = typer.Option(
            30.0, "--registration-grace",
            help="Seconds a registration still counts after its granted expiry (a late or late-read refresh)."),
        analysis_interval: float = typer.Option(5.0, "--analysis-interval", help="Seconds between capture analyses."),
        probe_interval: float = typer.Option(15.0, "--probe-interval", help="Seconds between active probes."),
        retention_days: float = typer.Option(14.0, "--retention-days", help="History older than this is pruned."),
        ring_files: int = typer.Option(10, "--ring-files", help="Live capture: number of ring files."),
        ring_mb: int = typer.Option(20, "--ring-mb", help="Live capture: size of one ring file in MB."),
        no_probes: bool = typer.Option(False, "--no-probes", help="Passive only: send nothing to the connector."),
        probe_allow: list[str] = typer.Option([], "--probe-allow", help="Let /probe also reach this CIDR or "
                                              "HOST:PORT (repeatable; by default only the site's endpoints)."),
        no_probe_endpoint: bool = typer.Option(False, "--no-probe-endpoint", help="Serve no /probe at all."),
        probe_debug: bool = typer.Option(False, "--probe-debug", help="Allow /probe?debug=true (reason and "
                                         "transcript of the probe)."),
        verbose: bool = typer.Option(False, "--verbose", "-v", help="Log collector activity to stderr."),
    ) -> None:
        """Watch one site: collectors on schedules, live diagnosis, history, /metrics and a JSON API.

        Stops cleanly on SIGTERM/SIGINT; SIGHUP re-reads the site file.
        """
        logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                            format="%(asctime)s %(name)s %(levelname)s %(message)s")
        try:
            settings: dict[str, Any] = config_from_lab(lab_dir) if lab_dir is not None else {}
            if site is not None:
                settings["site_path"] = site
            if "site_path" not in settings:
                raise UpscopeError("--site SITE.yaml or --lab-dir DIR is required")
            for key, value in (("trace_log", trace_log), ("keylog", keylog), ("jwt_file", jwt_file)):
                if value is not None:
                    settings[key] = value
            if capture:
                settings["captures"] = tuple(capture)
            if interface is not None:
                settings["interface"] = interface
            cfg = ServeConfig(
                db_path=db, window_s=window, hold_s=hold, registration_grace_s=registration_grace,
                analysis_interval_s=analysis_interval,
                probe_interval_s=probe_interval, retention_s=retention_days * 86400, ring_files=ring_files,
                ring_file_mb=ring_mb, probes=() if no_probes else ServeConfig.probes, **settings,
            )
            host, port = parse_addr(metrics_addr)
            service = Service(cfg)
        except UpscopeError as exc:
            raise _fail(str(exc)) from None

        from dashboard import api

        try:
            access = probe_access(service, probe_allow, probe_debug)
            server = UpscopeHttpServer(make_registry(service.snapshot), host, port, probe_access=access,
                                       probe_endpoint=not no_probe_endpoint)
        except UpscopeError as exc:
            raise _fail(str(exc)) from None
        except OSError as exc:
            raise _fail(f"--metrics-addr {metrics_addr}: {exc.strerror or exc}") from None
        for path, handler in api.ROUTES.items():
            server.add_route(path, functools.partial(handler, service))
        stop = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            if signum == signal.SIGHUP:
                service.reload()
            else:
                stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, on_signal)
        try:
            # The HTTP socket stays where it was bound (reachable from here); the thread serving it,
            # and so /probe, runs where the site's parties are.
            with netns.entered(cfg.netns):
                server.start()
            service.start()
        except UpscopeError as exc:
            server.stop()
            raise _fail(str(exc)) from None
        print(f"upscope serve: watching {cfg.site_path} — {server.url}/metrics, {server.url}/api/snapshot",
              file=sys.stderr, flush=True)
        try:
            while not stop.wait(0.5):
                pass
        finally:
            server.stop()
            ring = service.stop()
            if ring is not None and ring.packets is not None:
                print(f"upscope serve: capture: {ring.packets} packets received, {ring.dropped or 0} dropped "
                      f"({ring.tool})", file=sys.stderr, flush=True)
            print("upscope serve: stopped", file=sys.stderr, flush=True)
