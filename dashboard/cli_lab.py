"""``upscope lab``: run the embedded OSBiz ⇄ Unify Phone connector lab on loopback.

Exit codes: 0 = the lab ran and stopped cleanly, 2 = it could not run as asked (unknown
scenario, port taken, no rights for the firewall rule). Errors are one line, no traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError

from core.lab import SCENARIOS, LabConfig, LabError, run_lab
from core.site.model import System


def _fail(message: str) -> typer.Exit:
    sys.stderr.write(f"upscope lab: {' '.join(message.split())}\n")
    return typer.Exit(2)


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise ValueError(f"--connector {text!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def _ready(info: dict[str, Any]) -> None:
    conn = info["connector"]
    sys.stderr.write(
        f"upscope lab: scenario {info['scenario']} running (pid {info['pid']}); connector "
        f"{conn['ip']}:{conn['sip_tls']} (SIP/TLS), PBX {info['pbx']['ip']}; artifacts in "
        f"{info['out_dir']} (Ctrl-C to stop)\n")
    for warning in info.get("warnings", []):
        sys.stderr.write(f"upscope lab: warning: {' '.join(str(warning).split())}\n")
    sys.stderr.flush()


def lab(
    scenario: str = typer.Option("healthy", "--scenario", help="one of: " + ", ".join(SCENARIOS)),
    duration: float | None = typer.Option(None, "--duration", help="seconds to run (default: until Ctrl-C)"),
    out: Path = typer.Option(Path("lab-out"), "--out", help="directory for the artifacts"),
    users: int = typer.Option(3, "--users", help="Unify Phone users of the lab site"),
    calls_per_minute: float = typer.Option(12.0, "--calls-per-minute", help="call attempts per minute"),
    call_seconds: float = typer.Option(4.0, "--call-seconds", help="hold time of an answered call"),
    port: int = typer.Option(65061, "--port", help="connector SIP/TLS port (0 = any free port)"),
    stun_port: int = typer.Option(0, "--stun-port", help="connector STUN port (0 = any free port)"),
    rest_port: int = typer.Option(0, "--rest-port", help="connector REST port (0 = any free port)"),
    https_port: int = typer.Option(0, "--pbx-443-port",
                                   help="port standing in for the PBX's TCP 443 (port-443-open)"),
    fault_from: float = typer.Option(0.0, "--fault-from", help="fault starts S seconds into the run"),
    fault_until: float | None = typer.Option(None, "--fault-until", help="fault ends S seconds into the run"),
    connector: str | None = typer.Option(None, "--connector", help="HOST:PORT of a real SIP/TLS server"),
    connector_ca: Path | None = typer.Option(None, "--connector-ca", help="CA file to verify --connector"),
    loss: float = typer.Option(5.0, "--loss", help="media-impaired: packet loss in percent"),
    jitter: float = typer.Option(40.0, "--jitter", help="media-impaired: jitter (max extra delay) in ms"),
    keepalive: float = typer.Option(30.0, "--keepalive", help="OPTIONS / CRLF / STUN / REST interval, s"),
    register_expires: int = typer.Option(600, "--register-expires", help="requested REGISTER expiry, s"),
    block_mode: str = typer.Option("auto", "--block-mode",
                                   help="sip-tls-blocked: netns (root: own network namespace + nftables DROP) | blackhole | auto"),
    no_capture: bool = typer.Option(False, "--no-capture", help="do not write lab.pcapng"),
    trunk_lines: int = typer.Option(8, "--trunk-lines", help="simultaneous circuit calls of the lab site (load tests)"),
    rtp_base: int = typer.Option(0, "--rtp-base", help="first RTP port of the lab's 400 (0 = random)"),
    addresses: str = typer.Option(
        "127.0.0", "--addresses",
        help="loopback base 127.A.B of the lab: connector .1, PBX .2, clone .3; auto = a random free "
             "127.X.Y, so labs and their monitors side by side never see each other"),
    system_name: str = typer.Option("upscope-lab", "--system-name",
                                    help="system.name of the lab site: the `system` label of its metrics "
                                    "(labs watched side by side need distinct names)"),
) -> None:
    """Run an emulated OSBiz and Unify Phone connector on 127.0.0.x (or --addresses) with one fault scenario."""
    try:
        System.__pydantic_validator__.validate_assignment(System.model_construct(), "name", system_name)
    except ValidationError:
        raise _fail(f"--system-name {system_name!r}: 1-63 letters, digits, '_', '.', '-', starting with a "
                    "letter or digit (the site file's system.name)") from None
    try:
        cfg = LabConfig(
            scenario=scenario, out=out, duration=duration, users=users,
            calls_per_minute=calls_per_minute, call_seconds=call_seconds, sip_port=port,
            stun_port=stun_port, rest_port=rest_port, https_port=https_port, fault_from=fault_from,
            fault_until=fault_until, connector=_host_port(connector) if connector else None,
            connector_ca=connector_ca, loss_pct=loss, jitter_ms=jitter, keepalive=keepalive,
            register_expires=register_expires, block_mode=block_mode, capture=not no_capture,
            trunk_lines=trunk_lines, rtp_base=rtp_base, system_name=system_name, addresses=addresses)
        summary = run_lab(cfg, _ready)
    except (LabError, ValueError) as exc:
        raise _fail(str(exc)) from None
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        raise typer.Exit(130) from None
    sys.stdout.write(json.dumps({"scenario": summary.scenario, "out": str(summary.out),
                                 "stats": summary.stats}, indent=2) + "\n")


def register(app: typer.Typer) -> None:
    app.command("lab")(lab)
