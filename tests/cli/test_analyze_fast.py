"""``upscope analyze`` without typer (``dashboard.analyze_fast.fast_main``): which spellings it takes,
that it hands everything else to typer, and that a real process gives the typer path's output and
exit code without importing typer, pydantic or rich."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dashboard.analyze_fast import parse_argv
from dashboard.analyze_run import Format
from dashboard.cli import app

REPO = Path(__file__).resolve().parents[2]
PCAPS = REPO / ".." / "shared" / "pcaps"
EXE = Path(sys.executable).parent / "upscope"


def capture(name: str) -> Path:
    path = PCAPS / name
    if not path.exists():
        pytest.skip(f"shared capture {name} not found in {PCAPS}")
    return path


def test_plain_spellings_are_parsed() -> None:
    assert parse_argv(["--format", "json", "--no-progress", "a.pcap", "b.pcap"]) == {
        "files": [Path("a.pcap"), Path("b.pcap")], "format": Format.JSON, "progress": False}
    assert parse_argv(["a.pcap", "-f", "html", "--out=o", "--site", "s.yaml", "--keylog", "k",
                       "--call", "x@y", "--export-pcap", "c.pcap", "--progress"]) == {
        "files": [Path("a.pcap")], "format": Format.HTML, "out": Path("o"), "site": Path("s.yaml"),
        "keylog": Path("k"), "call": "x@y", "export_pcap": Path("c.pcap"), "progress": True}


@pytest.mark.parametrize("argv", [
    [], ["--no-progress"], ["--help", "a.pcap"], ["-h", "a.pcap"], ["--", "a.pcap"], ["-", "a.pcap"],
    ["--format", "JSON", "a.pcap"], ["--format", "yaml", "a.pcap"], ["-fjson", "a.pcap"], ["-f=json", "a.pcap"],
    ["a.pcap", "--format"], ["a.pcap", "--out", ""], ["a.pcap", "--out", "--no-progress"],
    ["--format", "json", "--format", "table", "a.pcap"], ["--progress", "--no-progress", "a.pcap"],
    ["--no-progress=1", "a.pcap"], ["--formats", "json", "a.pcap"], ["--verbose", "a.pcap"],
])
def test_anything_else_is_left_to_typer(argv: list[str]) -> None:
    assert parse_argv(argv) is None


def _both(args: list[str], cwd: Path) -> tuple[tuple[int, str, str], tuple[int, str, str]]:
    """(exit code, stdout, stderr) of a real ``upscope analyze`` process and of the typer app."""
    if not EXE.exists():
        pytest.skip(f"console script {EXE} not installed")
    proc = subprocess.run([str(EXE), "analyze", *args], capture_output=True, text=True, timeout=120, cwd=cwd)
    res = CliRunner().invoke(app, ["analyze", *args])
    return (proc.returncode, proc.stdout, proc.stderr), (res.exit_code, res.stdout, res.stderr)


@pytest.mark.parametrize("args", [
    ["--format", "json", "--no-progress", "CAP"],
    ["-f", "html", "CAP"],
    ["--format=json", "CAP", "missing.pcap"],
    ["--format", "json", "missing.pcap"],
    ["--call", "x", "CAP"],
    ["--format", "json", "TRUNCATED"],
])
def test_same_output_and_exit_code_as_typer(args: list[str], tmp_path: Path) -> None:
    cap = capture("sipnab_rtp-protocol.pcap")
    (tmp_path / "truncated.pcap").write_bytes(cap.read_bytes()[:5000])
    args = [str(cap) if a == "CAP" else str(tmp_path / "truncated.pcap") if a == "TRUNCATED" else a for a in args]
    fast, typer_run = _both(args, tmp_path)
    assert fast == typer_run


def test_out_directory_same_report(tmp_path: Path) -> None:
    cap = str(capture("sngrep_aaa.pcap"))
    fast, typer_run = _both(["--out", str(tmp_path / "fast"), cap], tmp_path)
    assert fast[0] == typer_run[0] == 0
    (tmp_path / "typer").mkdir()
    CliRunner().invoke(app, ["analyze", "--out", str(tmp_path / "typer"), cap])
    assert (tmp_path / "fast" / "analysis.txt").read_text() == (tmp_path / "typer" / "analysis.txt").read_text()


def test_json_run_imports_no_cli_frameworks() -> None:
    cap = capture("sipnab_rtp-protocol.pcap")
    code = ("import sys\nfrom dashboard.cli import main\n"
            f"sys.argv = ['upscope', 'analyze', '--format', 'json', '--no-progress', {str(cap)!r}]\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
            "loaded = sorted({m.split('.')[0] for m in sys.modules} & {'typer', 'pydantic', 'rich', 'pandas', 'plotly'})\n"
            "print(loaded, file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "[]"


def test_site_findings_table_and_export_same_as_typer(tmp_path: Path) -> None:
    """The options with side paths: --site (findings, exit 1), the table on stdout, and
    --call/--export-pcap (the written pcap and the message)."""
    site = REPO / "examples" / "site-healthy.yaml"
    auth = str(capture("sipnab_sip-auth-failure.pcapng"))
    # the LAN Asterisk of that capture is not the site's connector: no trunk finding ...
    fast, typer_run = _both(["-f", "json", "--site", str(site), auth], tmp_path)
    assert fast == typer_run and fast[0] == 0 and '"findings": []' in fast[1]
    # ... unless named as the connector
    fast, typer_run = _both(["-f", "json", "--site", str(site), "--connector", "172.16.98.101:5060", auth], tmp_path)
    assert fast == typer_run and fast[0] == 1 and '"itsp.not-registered.auth"' in fast[1]
    fast, typer_run = _both(["--no-progress", auth], tmp_path)
    assert fast == typer_run and "Registrations" in fast[1]
    pcap = str(capture("heplify_sip_ipv4_tcp.pcap"))
    call_id = json.loads(_both(["-f", "json", pcap], tmp_path)[0][1])["calls"][0]["call_id"]
    fast, typer_run = _both(["--call", call_id, "--export-pcap", str(tmp_path / "call.pcap"), "-f", "json", pcap],
                            tmp_path)
    assert fast == typer_run and fast[0] == 0 and "wrote" in fast[2]
    fast, typer_run = _both(["--call", "nope", "--export-pcap", str(tmp_path / "x.pcap"), pcap], tmp_path)
    assert fast == typer_run and fast[0] == 2
