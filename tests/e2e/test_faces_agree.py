"""Every published value from the real producer to every face: the faces must agree.

Four lab scenarios run side by side, each watched by an ``upscope serve`` with the default
settings. Once the scenario's finding is open, one Snapshot is read from ``/api/snapshot`` and at
the same moment ``/metrics``, the dashboard's pages (AppTest, reading the same service) and
``upscope diagnose --format json`` over the lab's own files judged at the Snapshot's time. The
ITSP status and since-when, the JWT state and expiry, the licences, the findings, the one-way
calls and the MOS must be the same value in each. A real Prometheus scrapes the four services
with the shipped alert rules (``for:`` shortened): UpscopeJwtExpiring fires for the expiring JWT
and UpscopeJwtExpired for the expired one, and neither for the others.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import service_source
from tests.dashboard.conftest import texts
from tests.live import CLI, Lab, Serve, http_get, metric_values, wait_for

# one worker runs the module: its tests share one expensive module fixture
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("faces_agree")]

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = {"jwt-expiring": 45000, "jwt-expired": 45500, "one-way-audio": 46000, "license-missing": 46500}


@dataclass
class Seen:
    lab: Lab
    serve: Serve
    expected: tuple[str, ...] = ()


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Seen]]:
    for tool in ("dumpcap", "prometheus"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} (Debian packages tshark, prometheus) is not installed")
    root = tmp_path_factory.mktemp("faces")
    with ExitStack() as stack:
        seen: dict[str, Seen] = {}
        for name, rtp in SCENARIOS.items():
            lab = stack.enter_context(Lab(root / name, name, "--duration", "240", "--rtp-base", str(rtp),
                                          "--calls-per-minute", "20"))
            serve = stack.enter_context(Serve(lab.out, root / f"{name}.db"))
            expected = tuple(json.loads((lab.out / "scenario.json").read_text())["expected_findings"])
            seen[name] = Seen(lab, serve, expected)
        for name, s in seen.items():
            wait_for(lambda s=s: set(s.expected) <= {f["id"] for f in s.serve.snapshot()["findings"]}, 120,
                     f"{name}: its finding")
        yield seen


def _diagnose(lab: Path, at: float) -> dict[str, Any]:
    now = datetime.fromtimestamp(at, UTC).isoformat()
    proc = subprocess.run([*CLI, "diagnose", "--site", str(lab / "site.yaml"), "--capture", str(lab / "lab.pcapng"),
                           "--trace-log", str(lab / "osbiz-trace.log"), "--now", now, "--format", "json"],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode in (0, 1), proc.stderr
    doc = json.loads(proc.stdout)
    assert isinstance(doc, dict)
    return doc


def _one(values: dict[str, float], **labels: str) -> float:
    found = [v for k, v in values.items() if all(f'{n}="{x}"' in k for n, x in labels.items())]
    assert len(found) == 1, (labels, values)
    return found[0]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_face_shows_the_same_values(scenario: str, running: dict[str, Seen],
                                          render: Callable[..., AppTest]) -> None:
    s = running[scenario]
    # A Snapshot whose window holds calls that ended (their streams' MOS is final).
    snap = wait_for(lambda: (x if _ended_streams(x := s.serve.snapshot()) else None), 120, "an ended call")
    text = s.serve.metrics()
    source = service_source.ServiceSource(s.serve.base)
    overview = render("overview", source=source)
    users = render("users", source=source)
    diagnoses = render("diagnoses", source=source)
    offline = _diagnose(s.lab.out, snap["now"])
    tiles = {m.label.split(" ", 1)[1]: m.value for m in overview.metric}
    since_now = snap["itsp_status"]["since"]

    # ITSP status and since-when.
    state = snap["itsp_status"]["state"]
    assert state == "registered" == offline["itsp_status"]["state"]
    assert _one(metric_values(text, "upscope_itsp_status"), upscope_itsp_status=state) == 1
    assert tiles["ITSP Unify Phone (Cloud)"] == snap["itsp_status"]["label"]
    assert next(iter(metric_values(text, "upscope_itsp_status_since_timestamp_seconds").values())) == since_now
    assert datetime.fromtimestamp(since_now, UTC).strftime("%Y-%m-%d %H:%M:%S") in texts(overview)

    # JWT state and expiry.
    jwt = snap["jwt"]
    assert jwt["status"] == offline["jwt"]["status"] and jwt.get("expires_at") == offline["jwt"].get("expires_at")
    state_label = {"Not set": "not-set", "Active": "active", "Expiring": "expiring", "Expired": "expired",
                   "Invalid token": "invalid"}[jwt["status"]]
    assert _one(metric_values(text, "upscope_jwt_status"), upscope_jwt_status=state_label) == 1
    if jwt.get("expires_at"):
        expiry = datetime.fromisoformat(jwt["expires_at"]).timestamp()
        assert next(iter(metric_values(text, "upscope_jwt_expiry_timestamp_seconds").values())) == expiry
        assert tiles["JWT"] == f"{jwt['days_left']} days left"

    # Licences.
    pools = snap["licenses"]["pools"]
    assert pools == offline["licenses"]["pools"]
    licences = metric_values(text, "upscope_licenses")
    for name, pool in pools.items():
        assert _one(licences, type=name, state="total") == pool["total"]
        assert _one(licences, type=name, state="used") == pool["used"]
    licence_states = {u["callno"]: u["state"] for u in snap["licenses"]["users"]}
    shown = users.dataframe[0].value.set_index("callno")
    assert {c: str(shown.loc[c, "license_state"]).split(" ")[0] for c in shown.index} == licence_states
    assert tiles["Unify Phone licenses"] == f"{pools['unify_phone']['used']} / {pools['unify_phone']['total']}"

    # Findings: the scenario's ids everywhere, and nothing the evidence files do not show too.
    ids = {f["id"] for f in snap["findings"]}
    assert set(s.expected) <= ids <= {f["id"] for f in offline["findings"]}
    active = {k: v for k, v in metric_values(text, "upscope_finding_active").items() if v > 0}
    assert {re.search(r'id="([^"]+)"', k).group(1) for k in active} == ids  # type: ignore[union-attr]
    page = "\n".join(str(e.label) for e in diagnoses.expander)
    assert all(i in page for i in ids)

    # One-way calls and MOS: the service's window is part of the lab's whole capture.
    one_way = set(snap["media"]["one_way_calls"])
    assert one_way <= set(offline["media"]["one_way_calls"])
    assert bool(one_way) == (scenario == "one-way-audio")
    if one_way:
        assert tiles["Media quality"] == "One-way audio"
    whole = {(x["src"], x["src_port"], x["dst"], x["dst_port"], x["ssrc"]): x["mos"]
             for x in _diagnose_streams(s.lab.out, snap["now"])}
    ended = _ended_streams(snap)
    compared = [(x["mos"], whole.get((x["src"], x["src_port"], x["dst"], x["dst_port"], x["ssrc"]), "absent"))
                for x in ended]
    assert compared and all(a == b for a, b in compared), compared


def _ended_streams(snap: dict[str, Any]) -> list[dict[str, Any]]:
    return [x for x in (snap.get("analysis") or {}).get("rtp_streams", []) if x["last_ts"] < snap["now"] - 5]


def _diagnose_streams(lab: Path, at: float) -> list[dict[str, Any]]:
    proc = subprocess.run([*CLI, "analyze", "--format", "json", "--no-progress", str(lab / "lab.pcapng")],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode in (0, 1), proc.stderr
    return [x for x in json.loads(proc.stdout)["rtp_streams"] if x["first_ts"] <= at]


def test_prometheus_fires_the_jwt_alerts_of_the_service(running: dict[str, Seen], tmp_path: Path) -> None:
    rules = (ROOT / "deploy" / "prometheus" / "rules" / "upscope.rules.yml").read_text()
    (tmp_path / "upscope.rules.yml").write_text(re.sub(r"for: \d+[mh]", "for: 2s", rules))
    targets = ", ".join(f"'{s.serve.base.removeprefix('http://')}'" for s in running.values())
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\nrule_files: [upscope.rules.yml]\n"
        f"scrape_configs:\n  - job_name: upscope\n    static_configs:\n      - targets: [{targets}]\n")
    port = _free_port()
    with subprocess.Popen(["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
                           f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
                           "--log.level=warn"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as prom:
        try:
            base = f"http://127.0.0.1:{port}"

            wait_for(lambda: _ready(base), 30, "Prometheus to be ready")

            def firing() -> dict[tuple[str, str], str]:
                doc = json.loads(http_get(f"{base}/api/v1/alerts"))
                return {(a["labels"]["alertname"], a["labels"].get("instance", "")): a["state"]
                        for a in doc["data"]["alerts"]}

            instance = {name: s.serve.base.removeprefix("http://") for name, s in running.items()}
            wanted = {("UpscopeJwtExpiring", instance["jwt-expiring"]), ("UpscopeJwtExpired", instance["jwt-expired"])}
            wait_for(lambda: all(firing().get(w) == "firing" for w in wanted), 90, "the JWT alerts to fire")
            jwt_alerts = {k for k, v in firing().items() if k[0].startswith("UpscopeJwt") and v == "firing"}
            assert jwt_alerts == wanted, jwt_alerts
            query = urllib.parse.urlencode({"query": "upscope_jwt_expiry_timestamp_seconds"})
            series = json.loads(http_get(f"{base}/api/v1/query?{query}"))["data"]["result"]
            assert {r["metric"]["instance"] for r in series} == {instance["jwt-expiring"], instance["jwt-expired"]}
        finally:
            prom.terminate()


def _ready(base: str) -> bool:
    try:
        return http_get(f"{base}/-/ready") is not None
    except OSError:
        return False


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
