"""The Overview tiles: each renders one verdict of the Snapshot (ITSP status, JWT, licences,
Software Support, trunk lines, calls, media, findings). The tones map the producer's verdicts to
colours; no tile has a threshold of its own."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dashboard.timefmt import fmt_ago


@dataclass(frozen=True, slots=True)
class Tile:
    label: str
    value: str
    help: str = ""
    state: str = "neutral"  # "ok" | "warn" | "bad" | "neutral"


def _tone(verdict: Any) -> str:
    return {"ok": "ok", "warn": "warn", "bad": "bad"}.get(str(verdict), "neutral")


def itsp_tile(snap: dict[str, Any]) -> Tile:
    it = snap.get("itsp_status") or {}
    state = it.get("state", "unknown")
    help_ = f"{fmt_ago(it.get('since'), snap.get('now', time.time()))}. {it.get('reason', '')}".strip()
    return Tile("ITSP Unify Phone (Cloud)", it.get("label") or "Unknown", help_,
                {"registered": "ok", "not-registered": "bad"}.get(state, "warn"))


#: JWT status (``core.jwt_status.JwtStatus``) → tone.
_JWT_TONES = {"Active": "ok", "Expiring": "warn", "Expired": "bad", "Invalid token": "bad"}


def jwt_tile(snap: dict[str, Any]) -> Tile:
    jwt = snap.get("jwt") or {}
    status = str(jwt.get("status") or "Not set")
    if status == "Not set":
        if jwt.get("required"):
            return Tile("JWT", "Not set", "the Unify Video flavour needs a JWT", "bad")
        return Tile("JWT", "Not needed", "Unify Phone for OpenScape needs no JWT") if snap.get("site") \
            else Tile("JWT", "—", "no JWT data")
    days = jwt.get("days_left")
    detail = f"{status}: {jwt.get('reason', '')}" + (f"; fingerprint {jwt['fingerprint']}" if jwt.get("fingerprint")
                                                    else "")
    return Tile("JWT", status if days is None else f"{days} days left", detail, _JWT_TONES.get(status, "neutral"))


def license_tile(snap: dict[str, Any]) -> Tile:
    pool = ((snap.get("licenses") or {}).get("pools") or {}).get("unify_phone")
    if not pool:
        return Tile("Unify Phone licenses", "—", "no site file")
    bad = pool.get("shortfall", 0) > 0 or pool.get("expired")
    return Tile("Unify Phone licenses", f"{pool['used']} / {pool['total']}", "used / total",
                "bad" if bad else "ok")


def support_tile(snap: dict[str, Any]) -> Tile:
    support = snap.get("software_support") or {}
    days = support.get("days_left")
    if days is None:
        return Tile("Software Support", "—", "not in the site file")
    value = f"{days} days left" if days >= 0 else f"expired {-days} days ago"
    return Tile("Software Support", value, f"until {support.get('until')}", _tone(support.get("verdict")))


def trunk_tile(snap: dict[str, Any]) -> Tile:
    lines = snap.get("trunk_lines") or {}
    used, configured = lines.get("used", 0), lines.get("configured")
    if configured is None:
        return Tile("Trunk lines", f"{used} / —", "in use / configured (no site file)")
    return Tile("Trunk lines", f"{used} / {configured}", "in use / configured", _tone(lines.get("verdict")))


def call_counts(rows: Sequence[dict[str, Any]]) -> tuple[int, int, int]:
    """(answered, failed, all) of completed calls; failed = rejected with a 4xx–6xx other than 487
    (the caller cancelled, RFC 3261 §15)."""
    answered = sum(1 for r in rows if r.get("answered"))
    failed = sum(1 for r in rows if not r.get("answered") and isinstance(r.get("final_code"), int)
                 and r["final_code"] >= 400 and r["final_code"] != 487)
    return answered, failed, len(rows)


def calls_tile(counts: tuple[int, int, int] | None, span: str = "last hour") -> Tile:
    """Completed calls of the time range: answered / failed (see ``call_counts``)."""
    label = f"Calls, {span.lower()}"
    if counts is None:
        return Tile(label, "—", "call history unavailable")
    answered, failed, total = counts
    return Tile(label, f"{answered} / {failed}", f"answered / failed; {total} completed calls in all",
                "warn" if failed else "ok")


#: Open findings that mean the media is bad whatever the streams in view say.
ONE_WAY_FINDINGS = ("media.one-way-audio",)


def media_tile(snap: dict[str, Any]) -> Tile:
    """The producer's media verdict; an open one-way-audio finding (held open a while after its
    call ended) keeps the tile on one-way audio, so the tile never shows a good MOS beside it."""
    media = snap.get("media") or {}
    open_one_way = sorted({str(f.get("subject") or "") for f in snap.get("findings", [])
                           if f.get("id") in ONE_WAY_FINDINGS})
    one_way = media.get("one_way_calls") or []
    if one_way or open_one_way:
        calls = len(set(one_way) | {s for s in open_one_way if s}) or 1
        return Tile("Media quality", "One-way audio", f"one-way audio on {calls} call(s); "
                    f"{media.get('streams') or 0} streams in view", "bad")
    if not media.get("streams"):
        return Tile("Media quality", "—", media.get("reason") or "no RTP streams seen")
    worst = media.get("worst_mos")
    value = f"MOS {worst:.2f}" if worst is not None else "MOS —"
    return Tile("Media quality", value, str(media.get("reason") or f"{media['streams']} streams"),
                _tone(media.get("verdict")))


def findings_by_severity(snap: dict[str, Any]) -> dict[str, int]:
    out = {"critical": 0, "warning": 0, "info": 0}
    for f in snap.get("findings", []):
        out[f.get("severity", "info")] = out.get(f.get("severity", "info"), 0) + 1
    return out


def findings_tile(snap: dict[str, Any]) -> Tile:
    n = findings_by_severity(snap)
    tone = "bad" if n["critical"] else ("warn" if n["warning"] else "ok")
    return Tile("Active findings", f"{n['critical']} critical", f"{n['warning']} warning · {n['info']} info", tone)


def overview_tiles(snap: dict[str, Any], calls: tuple[int, int, int] | None,
                   span: str = "last hour") -> list[Tile]:
    return [itsp_tile(snap), jwt_tile(snap), license_tile(snap), support_tile(snap), trunk_tile(snap),
            calls_tile(calls, span), media_tile(snap), findings_tile(snap)]
