"""The site's tables as the pages show them: users with their call numbers and licences, licence
pools, firewall verdicts, findings grouped by problem and the trace checklist.

Pure mapping from the JSON form of a Snapshot, like ``dashboard.frames``: every value is the
producer's; nothing is judged or derived again here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from core.findings import CATALOGUE
from core.trace_profiles import TRACE_SETS
from dashboard.frames import site


def users_frame(snap: dict[str, Any]) -> pd.DataFrame:
    """Users with the call number the numbering plan derived, its verdict and the licence state —
    as the producer judged them (``Snapshot.numbering``, ``Snapshot.licenses``)."""
    cols = ["callno", "name", "did", "station_type", "call_number", "numbering", "problems", "licenses",
            "license_state"]
    users = site(snap).get("users") or []
    numbers = {n.get("index"): n for n in snap.get("numbering") or []}
    licences = {u.get("index"): u for u in (snap.get("licenses") or {}).get("users") or []}
    rows = []
    for i, user in enumerate(users):
        number, lic = numbers.get(i) or {}, licences.get(i) or {}
        state = str(lic.get("state") or "—")
        lacking = [*lic.get("missing", []), *lic.get("expired", [])]
        name = " ".join(p for p in (user.get("first_name"), user.get("last_name")) if p)
        rows.append({
            "callno": user.get("callno"), "name": name, "did": user.get("did"),
            "station_type": user.get("station_type"), "call_number": number.get("derived"),
            "numbering": number.get("verdict"), "problems": ", ".join(number.get("problems") or []),
            "licenses": ", ".join(user.get("licenses") or []),
            "license_state": state + (f" ({', '.join(lacking)})" if state not in ("ok", "—") else ""),
        })
    return pd.DataFrame(rows, columns=cols)


def license_pools(snap: dict[str, Any]) -> pd.DataFrame:
    cols = ["pool", "used", "free", "total", "needed", "expired"]
    pools = (snap.get("licenses") or {}).get("pools") or {}
    return pd.DataFrame([{"pool": name, "used": p["used"], "free": max(0, p["total"] - p["used"]),
                          "total": p["total"], "needed": p["needed"], "expired": p["expired"]}
                         for name, p in pools.items()], columns=cols)


def firewall_frame(snap: dict[str, Any]) -> pd.DataFrame:
    """The firewall verdicts of the diagnosis, one per flow; the verdict first (the table is wider
    than the page and the verdict is what matters)."""
    rows = [{
        "flow": v.get("flow"), "verdict": v.get("verdict"), "as required": bool(v.get("ok")),
        "reason": v.get("reason"), "proto": v.get("proto"), "source": v.get("source"),
        "destination": v.get("destination"), "description": v.get("description"),
    } for v in snap.get("firewall") or []]
    return pd.DataFrame(rows, columns=["flow", "verdict", "as required", "reason", "proto", "source",
                                       "destination", "description"])


def trace_checklist(snap: dict[str, Any]) -> list[dict[str, Any]]:
    """What to switch on and collect for the current findings, each item once, with the finding
    ids that need it."""
    order: dict[tuple[str, str], list[str]] = {}
    for f in snap.get("findings", []):
        spec = CATALOGUE.get(f["id"])
        traces = TRACE_SETS[spec.trace_family] if spec else None
        items: list[tuple[str, str]] = [("trace profile", p) for p in f.get("trace_profiles", [])]
        items += [("trace component", c) for c in f.get("trace_components", [])]
        if traces is not None:
            items += [("collect", c) for c in traces.collect]
        for kind, item in items:
            ids = order.setdefault((kind, item), [])
            if f["id"] not in ids:
                ids.append(f["id"])
    return [{"kind": k, "item": i, "for": ", ".join(ids)} for (k, i), ids in order.items()]


_SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}


def group_findings(findings: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Open findings grouped by id, worst first: one entry per problem with how often it is open
    and what it affects (the findings' subjects — calls, users, pools — in order, each once), so
    nine one-way calls read as one problem with one remedy, not nine."""
    groups: dict[str, dict[str, Any]] = {}
    for f in findings:
        g = groups.get(f["id"])
        if g is None:
            g = groups[f["id"]] = {"id": f["id"], "severity": f.get("severity", "info"), "title": f.get("title", ""),
                                   "remedy": f.get("remedy", ""), "count": 0, "affected": [], "calls": [],
                                   "since": None}
        g["count"] += 1
        subject = f.get("subject")
        if subject and subject not in g["affected"]:
            g["affected"].append(subject)
        for e in f.get("evidence") or []:
            cid = e.get("call_id")
            if cid and cid not in g["calls"]:
                g["calls"].append(cid)
        since = f.get("since")
        if isinstance(since, int | float) and (g["since"] is None or since < g["since"]):
            g["since"] = since
    return sorted(groups.values(), key=lambda g: (_SEVERITY_RANK.get(g["severity"], 3), g["id"]))
