"""Golden JSON of ``upscope analyze`` for small real captures (regenerate: UPSCOPE_UPDATE_GOLDEN=1).

The golden files hold the whole document for review; the comparison covers the contract part
(``sip``, ``calls``, ``rtp_streams``, ``registrations``, ``keepalives``, ``errors``, ``summary``) plus
packets and link types. Fields added after the golden was written are ignored (the contract is
"extend freely, never rename"); a changed or missing value fails.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dashboard.cli import app

REPO = Path(__file__).resolve().parents[2]
PCAPS = REPO / ".." / "shared" / "pcaps"
GOLDEN = REPO / "tests" / "golden" / "analyze"
CASES = ["sipnab_rtp-protocol.pcap", "heplify_sip_ipv4_tcp.pcap", "sngrep_ipv6frag.pcap", "ndpi_sip_hello.pcapng"]
CONTRACT = ["packets", "link_types", "partial", "summary", "sip", "calls", "registrations", "keepalives",
            "rtp_streams", "errors"]


def _missing(actual: Any, golden: Any, path: str = "") -> list[str]:
    """Where ``actual`` lacks or differs from what ``golden`` holds (extra keys in ``actual`` are fine)."""
    if isinstance(golden, dict):
        if not isinstance(actual, dict):
            return [f"{path}: not an object"]
        return [m for k, v in golden.items()
                for m in (_missing(actual[k], v, f"{path}.{k}") if k in actual else [f"{path}.{k}: missing"])]
    if isinstance(golden, list):
        if not isinstance(actual, list) or len(actual) != len(golden):
            return [f"{path}: {len(actual) if isinstance(actual, list) else actual!r} items, golden {len(golden)}"]
        return [m for i, (a, g) in enumerate(zip(actual, golden, strict=True)) for m in _missing(a, g, f"{path}[{i}]")]
    return [] if actual == golden else [f"{path}: {actual!r} != golden {golden!r}"]


def _project(doc: dict[str, Any]) -> dict[str, Any]:
    out = {k: doc[k] for k in CONTRACT}
    for e in out["errors"]:
        e.pop("source", None)  # file names differ between checkouts
    return out


@pytest.mark.parametrize("name", CASES)
def test_golden(name: str) -> None:
    path = PCAPS / name
    if not path.exists():
        pytest.skip(f"shared capture {name} not found in {PCAPS}")
    res = CliRunner().invoke(app, ["analyze", "--format", "json", "--no-progress", str(path)])
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    doc["sources"] = [name]
    golden = GOLDEN / f"{name}.json"
    if os.environ.get("UPSCOPE_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(parents=True, exist_ok=True)
        golden.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    if not golden.exists():
        pytest.fail(f"{golden} missing: run with UPSCOPE_UPDATE_GOLDEN=1")
    problems = _missing(_project(doc), _project(json.loads(golden.read_text(encoding="utf-8"))))
    assert not problems, "\n".join(problems[:20])
