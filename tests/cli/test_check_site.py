"""``upscope check-site``: exit codes, output shapes, one-line errors, no secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.secrets import fingerprint
from dashboard.cli import app

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
HEALTHY = EXAMPLES / "site-healthy.yaml"
NOW = "2026-11-26T12:00:00Z"
SECRET = "sk-live-4b1d9c0ffee5eed"


@pytest.fixture(autouse=True)
def _no_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UPSCOPE_API_KEY", raising=False)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["check-site", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.stdout, result.stderr


def test_healthy_site_exit_0_table() -> None:
    code, out, err = run(str(HEALTHY), "--now", NOW)
    assert code == 0, err
    assert "acme-munich" in out and "+49897007100" in out and "No findings." in out
    assert "env:UPSCOPE_API_KEY (not resolvable here)" in " ".join(out.split())  # rich wraps at 80 columns


def test_healthy_site_json_shape() -> None:
    code, out, _ = run(str(HEALTHY), "--format", "json", "--now", NOW)
    assert code == 0
    report = json.loads(out)
    assert {"system", "jwt", "licenses", "users", "findings", "bandwidth", "connectivity"} <= set(report)
    assert report["findings"] == []
    assert [(u["callno"], u["call_number"], u["numbering"], u["licenses"]["state"]) for u in report["users"]] == [
        ("100", "+49897007100", "ok", "ok"),
        ("101", "+49897007101", "ok", "ok"),
        ("102", "+49897007300", "ok", "ok"),
    ]
    assert report["connectivity"]["api_key"] == {"source": "env:UPSCOPE_API_KEY", "resolvable": False,
                                                 "fingerprint": None}
    assert report["now"] == "2026-11-26T12:00:00+00:00"


def test_broken_site_exit_1_with_finding_shape() -> None:
    code, out, _ = run(str(EXAMPLES / "site-broken-licenses.yaml"), "-f", "json", "--now", NOW)
    assert code == 1
    findings = json.loads(out)["findings"]
    assert findings and all({"id", "severity", "title", "evidence", "remedy", "trace_profiles"} <= set(f)
                            for f in findings)
    assert "License_problem" in findings[0]["trace_profiles"]


def test_table_lists_findings_with_remedies_and_traces() -> None:
    code, out, _ = run(str(EXAMPLES / "site-broken-jwt-expired.yaml"), "--now", NOW)
    assert code == 1
    flat = " ".join(out.split())
    assert "rest-api.jwt-expired" in flat and "JWT creation portal" in flat and "License_problem" in flat


def test_now_defaults_to_the_clock() -> None:
    code, out, _ = run(str(HEALTHY), "-f", "json")
    assert code == 0 and json.loads(out)["now"].startswith("20")


def test_api_key_from_env_shows_fingerprint_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSCOPE_API_KEY", SECRET)
    for fmt in ("json", "table"):
        code, out, err = run(str(HEALTHY), "-f", fmt, "--now", NOW)
        assert code == 0 and SECRET not in out + err
        assert fingerprint(SECRET) in out


def test_inline_secrets_never_printed(tmp_path: Path) -> None:
    jwt_text = (EXAMPLES / "site-broken-jwt-expired.yaml").read_text(encoding="utf-8")
    token = next(line.split("jwt: ", 1)[1].strip() for line in jwt_text.splitlines() if "  jwt: eyJ" in line)
    site = tmp_path / "site.yaml"
    site.write_text(jwt_text.replace("api_key: env:UPSCOPE_API_KEY", f"api_key: {SECRET}"), encoding="utf-8")
    for fmt in ("json", "table"):
        code, out, err = run(str(site), "-f", fmt, "--now", NOW)
        assert code == 1
        assert SECRET not in out + err and token not in out + err
        assert token[:20] not in out
        assert fingerprint(token) in out
    # and not in an error either
    site.write_text(site.read_text().replace("upstream_kbps: 2000", "upstream_kbps: many"), encoding="utf-8")
    code, out, err = run(str(site), "--now", NOW)
    assert code == 2 and SECRET not in out + err and token not in out + err


def _bad_sites(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    text = HEALTHY.read_text(encoding="utf-8")
    cases: dict[str, tuple[Path, str]] = {}

    def write(name: str, body: str | bytes, expect: str) -> None:
        p = tmp_path / f"{name}.yaml"
        p.write_bytes(body if isinstance(body, bytes) else body.encode("utf-8"))
        cases[name] = (p, expect)

    def line(marker: str) -> int:
        return text[: text.index(marker)].count("\n") + 1

    write("wrong-type", text.replace("  upstream_kbps: 2000", "  upstream_kbps: fast"),
          f":{line('  upstream_kbps')} connectivity.upstream_kbps: must be an integer")
    write("unknown-key", text.replace("  enabled: true", "  enabled: true\n  turbo: on"),
          f":{line('  enabled: true') + 1} connectivity.turbo: unknown key")
    write("missing-country-code", text.replace('route_location_number: "+49 89 7007"',
                                               'route_location_number: "89 7007"'),
          f":{line('  route_location_number')} connectivity.route_location_number: must include the country code")
    write("yaml-syntax", text.replace("  - callno: \"101\"", "  - callno: \"101"), "YAML syntax error")
    write("binary", bytes(range(256)) * 16, "binary data at byte 0")
    write("not-utf8", text.encode("utf-8").replace(b"Anna", b"\xc4nna"), "not UTF-8 text")
    big = tmp_path / "fifty-mb.yaml"
    with big.open("wb") as fh:
        fh.write(b"system: {}\n")
        fh.truncate(50 * 1024 * 1024)
    cases["fifty-mb"] = (big, "file too large")
    cases["directory"] = (tmp_path, "is a directory")
    cases["missing"] = (tmp_path / "no-such.yaml", "no such file")
    return cases


@pytest.mark.parametrize(
    "case",
    ["wrong-type", "unknown-key", "missing-country-code", "yaml-syntax", "binary", "not-utf8", "fifty-mb",
     "directory", "missing"],
)
def test_bad_site_exit_2_one_line(tmp_path: Path, case: str) -> None:
    path, expect = _bad_sites(tmp_path)[case]
    code, out, err = run(str(path), "--now", NOW)
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    # one line per problem: the wizard's copy of the location number is wrong as well
    assert len(lines) == (2 if case == "missing-country-code" else 1), err
    assert all(line.startswith(f"upscope check-site: {path}") for line in lines)
    assert expect in lines[0]
    assert "Traceback" not in err


def test_bad_now_exit_2() -> None:
    code, _, err = run(str(HEALTHY), "--now", "yesterday")
    assert code == 2 and len(err.splitlines()) == 1 and "--now" in err


def test_naive_now_is_utc() -> None:
    code, out, _ = run(str(HEALTHY), "-f", "json", "--now", "2026-11-26T12:00:00")
    assert code == 0 and json.loads(out)["now"] == "2026-11-26T12:00:00+00:00"


def _upscope() -> list[str]:
    script = Path(sys.executable).parent / "upscope"
    return [str(script)] if script.exists() else [sys.executable, "-c", "from dashboard.cli import main; main()"]


def test_console_script_exit_codes_and_no_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "UPSCOPE_API_KEY"}
    garbage = tmp_path / "garbage.yaml"
    garbage.write_bytes(os.urandom(2048))
    for args, code in (
        ([str(HEALTHY), "--now", NOW], 0),
        ([str(EXAMPLES / "site-broken-team.yaml"), "--now", NOW, "-f", "json"], 1),
        ([str(garbage)], 2),
    ):
        proc = subprocess.run([*_upscope(), "check-site", *args], capture_output=True, text=True, env=env,
                              timeout=60, check=False)
        assert proc.returncode == code, proc.stderr
        assert "Traceback" not in proc.stderr
        if code == 2:
            assert len(proc.stderr.splitlines()) == 1 and str(garbage) in proc.stderr
