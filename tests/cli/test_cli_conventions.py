"""The CLI conventions a shell user expects: --version, -h everywhere, whole lines when piped,
a closed pipe is a quiet success, no Python ``None`` in tables, every site-file problem listed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PCAPS = ROOT.parent / "shared" / "pcaps"
CLI = [sys.executable, "-c", "from dashboard.cli import main; main()"]
COMMANDS = ["check-site", "analyze", "convert", "diagnose", "firewall", "trace-profiles", "lab", "serve",
            "bundle", "dashboard"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)


def test_version() -> None:
    from importlib import metadata

    for flag in ("--version", "-V"):
        proc = run(flag)
        assert proc.returncode == 0 and proc.stdout == f"upscope {metadata.version('upscope')}\n"


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_short_help_everywhere(command: str) -> None:
    args = [command, "-h"] if command else ["-h"]
    short, long = run(*args), run(*(a if a != "-h" else "--help" for a in args))
    assert short.returncode == 0 and "Usage:" in short.stdout and short.stdout == long.stdout


def _capture() -> Path:
    cap = PCAPS / "sipnab_SIP_CALL_RTP_G711.pcap"
    if not cap.exists():
        pytest.skip(f"{cap} not present (../shared/pcaps holds the real captures)")
    return cap


def test_closed_pipe_is_a_quiet_exit_0() -> None:
    """`upscope analyze X | head -1`, for the table and the JSON (the fast and the typer path)."""
    cap = _capture()
    for args in (["analyze", str(cap), "--no-progress"], ["analyze", str(cap), "--no-progress", "-f", "json"],
                 ["analyze", str(cap), "--progress", "-f", "json"],
                 ["trace-profiles"], ["diagnose", "--capture", str(cap)]):
        proc = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                                bufsize=0)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.read(1)
        proc.stdout.close()  # what `head -c 1` does after its byte
        err = proc.stderr.read().decode()
        assert proc.wait(60) == 0 and err == "", (args, err)


def test_piped_output_is_not_wrapped(tmp_path: Path) -> None:
    """At 80 columns rich would cut the summary line and remedies mid-sentence; piped, each stays whole."""
    cap = _capture()
    env = {"COLUMNS": "80", "PATH": "/usr/bin:/bin"}
    out = run("analyze", str(cap), "--no-progress", env=env).stdout
    first = out.splitlines()[0]
    assert first.startswith(str(cap)) and first.endswith("link types ethernet"), first
    report = run("check-site", str(ROOT / "examples" / "site-broken-licenses.yaml"), env=env).stdout
    remedy_lines = [ln for ln in report.splitlines() if ln.lstrip().startswith("remedy")]
    assert remedy_lines and all(ln.rstrip().endswith((".", ")")) for ln in remedy_lines), remedy_lines
    assert max(len(ln) for ln in report.splitlines()) > 80


def test_tables_never_show_none() -> None:
    if not PCAPS.is_dir():
        pytest.skip("../shared/pcaps not present")
    for cap in sorted(PCAPS.glob("*.pcap*"))[:40]:
        out = run("analyze", str(cap), "--no-progress").stdout
        assert "None" not in out, cap.name


def test_every_site_problem_is_listed(tmp_path: Path) -> None:
    text = (ROOT / "examples" / "site-healthy.yaml").read_text()
    text = text.replace('callno: "100"', "callno: 100").replace('callno: "101"', "callno: x101")
    text = text.replace("upstream_kbps: ", "upstream_kbps: -", 1)
    site = tmp_path / "site.yaml"
    site.write_text(text)
    proc = run("check-site", str(site))
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2 and len(lines) == 3, proc.stderr
    assert all(ln.startswith(f"upscope check-site: {site}:") for ln in lines)
    assert "more problem" not in proc.stderr
