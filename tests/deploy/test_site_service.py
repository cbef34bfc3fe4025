"""deploy/systemd and deploy/container: one `upscope serve` per site, as a unit and as an image.

The unit is checked by systemd-analyze (with the ExecStart binary pointed at this checkout); the
command lines of both are parsed by the real `upscope serve` option parser. The image itself is not
built here (no container engine on the test machine): its recipe is checked for what it copies.
"""

from __future__ import annotations

import configparser
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from dashboard.cli import build

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "systemd" / "upscope-serve.service"
CONTAINERFILE = ROOT / "deploy" / "container" / "Containerfile"
UPSCOPE = Path(sys.executable).with_name("upscope")


def _parse_serve(args: list[str]) -> dict[str, object]:
    """The options `upscope serve` would run with (a UsageError for anything it does not know)."""
    group = typer.main.get_command(build(["dashboard.cli_serve"]))
    command = group.commands["serve"]  # type: ignore[attr-defined]
    ctx = command.make_context("serve", list(args))
    return dict(ctx.params)


def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser


def test_unit_passes_systemd_analyze(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze (Debian package systemd) is not installed")
    if not UPSCOPE.exists():
        pytest.skip("the upscope script of this checkout's venv is missing")
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace("/opt/upscope/.venv/bin/upscope", str(UPSCOPE)))
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and not proc.stdout.strip() and not proc.stderr.strip(), proc.stdout + proc.stderr


def test_unit_runs_serve_with_options_it_knows() -> None:
    service = _unit()["Service"]
    env = dict(kv.split("=", 1) for kv in shlex.split(service["Environment"]))
    argv = shlex.split(re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], service["ExecStart"]))
    assert argv[:2] == ["/opt/upscope/.venv/bin/upscope", "serve"]
    params = _parse_serve(argv[2:])
    assert str(params["site"]) == "/etc/upscope/site.yaml" and params["interface"] == "eth0"
    assert str(params["db"]).startswith("/var/lib/upscope/")  # StateDirectory=upscope
    assert service["StateDirectory"] == "upscope" and service["User"] == "upscope"
    assert "api-key:/etc/upscope/api-key" in service["LoadCredential"]
    assert set(service["CapabilityBoundingSet"].split()) == {"CAP_NET_RAW", "CAP_NET_ADMIN"}


def test_container_entrypoint_and_cmd_are_serve_options() -> None:
    text = CONTAINERFILE.read_text()
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    assert entry[:2] == ["/opt/upscope/bin/upscope", "serve"]
    params = _parse_serve(entry[2:] + cmd)
    assert params["metrics_addr"] == "0.0.0.0:9661" and str(params["db"]) == "/var/lib/upscope/upscope.db"
    for source in re.findall(r"^COPY (.+) /src/", text, re.M):
        for path in source.split():
            assert (ROOT / path).exists(), path
    assert "USER upscope" in text  # not root: capture rights come from the wireshark group / capabilities
