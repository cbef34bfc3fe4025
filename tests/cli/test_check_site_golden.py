"""Golden JSON of ``upscope check-site --format json`` for every example site.

Regenerate after an intended change with ``UPSCOPE_UPDATE_GOLDEN=1 pytest tests/cli/test_check_site_golden.py``
and review the diff. The time is fixed (``--now``) and ``UPSCOPE_API_KEY`` unset, so the output is
stable.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dashboard.cli import app

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
GOLDEN = ROOT / "tests" / "golden" / "check-site"
NOW = "2026-11-26T12:00:00Z"
UPDATE = os.environ.get("UPSCOPE_UPDATE_GOLDEN") == "1"
SITES = sorted(p.name for p in EXAMPLES.glob("site-*.yaml"))


def test_there_is_a_golden_file_per_example() -> None:
    if UPDATE:
        pytest.skip("updating golden files")
    assert sorted(p.stem + ".yaml" for p in GOLDEN.glob("*.json")) == SITES


@pytest.mark.parametrize("name", SITES)
def test_check_site_json_matches_golden(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UPSCOPE_API_KEY", raising=False)
    # examples are passed relative to the repo so the output holds no machine-specific path
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(app, ["check-site", f"examples/{name}", "--format", "json", "--now", NOW])
    assert result.exit_code == (0 if name == "site-healthy.yaml" else 1), result.stderr
    report = json.loads(result.stdout)
    golden = GOLDEN / (Path(name).stem + ".json")
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return
    assert golden.exists(), f"no golden file {golden.name}: run with UPSCOPE_UPDATE_GOLDEN=1"
    assert report == json.loads(golden.read_text(encoding="utf-8"))
