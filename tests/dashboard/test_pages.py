"""Every page rendered by Streamlit's AppTest against healthy and fault snapshots."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import data, frames, service_source, sources
from tests.dashboard import snapshots
from tests.dashboard.conftest import texts

PAGES = ["overview", "diagnoses", "calls", "media", "registration", "users", "firewall", "traces", "analyze"]


@pytest.mark.parametrize("scenario", sorted(snapshots.SCENARIOS))
@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_every_scenario(render: Callable[..., AppTest], page: str, scenario: str) -> None:
    at = render(page, scenario)
    assert at.title[0].value


def test_overview_healthy_tiles(render: Callable[..., AppTest]) -> None:
    at = render("overview")
    metrics = {m.label.split(" ", 1)[1]: m.value for m in at.metric}
    assert metrics["ITSP Unify Phone (Cloud)"] == "Registered"
    assert metrics["Unify Phone licenses"] == "3 / 10"  # three users in the example site
    assert metrics["Trunk lines"] == "0 / 8"
    assert metrics["Calls, whole capture"] == "1 / 1"  # answered / failed, of the picked time range
    assert metrics["Media quality"] == "MOS 3.90"
    assert metrics["Active findings"] == "0 critical"
    page = texts(at)
    # The media verdict is the producer's: two streams, 3.90 above the rules' 3.6, 0.4 % below 3 %.
    assert "2 streams, loss 0.4 %" in page and "0 warning · 0 info" in page
    assert metrics["JWT"] == "Not needed"
    assert metrics["Software Support"].endswith("days left")
    # in the site's time zone (system.timezone: Europe/Berlin), not UTC
    assert "since 2026-09-21 16:03:20 CEST (9 min ago)" in texts(at)
    assert "No findings" in texts(at)
    assert "In the OSBiz Assistant: Registriert" in texts(at)


def test_overview_blocked_trunk(render: Callable[..., AppTest]) -> None:
    at = render("overview", "sip-tls-blocked")
    assert at.metric[0].value == "Not registered"
    page = texts(at)
    assert "itsp.not-registered.firewall" in page
    assert "TCP SYN unanswered to 127.0.0.3:65061" in page
    assert {m.label.split(" ", 1)[1]: m.value for m in at.metric}["Active findings"] == "1 critical"


def test_overview_license_faults(render: Callable[..., AppTest]) -> None:
    at = render("overview", "license-numbering")
    metrics = {m.label.split(" ", 1)[1]: m.value for m in at.metric}
    assert metrics["Software Support"] == "expired 20 days ago"
    assert metrics["Unify Phone licenses"] == "2 / 10"  # Ben lost his
    assert metrics["Active findings"] == "3 critical"


def test_diagnoses_shows_evidence_remedy_traces_and_history(render: Callable[..., AppTest]) -> None:
    at = render("diagnoses", "sip-tls-blocked")
    page = texts(at)
    assert "itsp.not-registered.firewall" in at.expander[0].label
    assert "frames 1" in page
    assert "TCP 65061" in page  # the remedy
    assert "SIP_Registration" in page and "SIP_Interconnection_Subscriber_ITSP" in page


def test_diagnoses_links_the_call_behind_a_finding(render: Callable[..., AppTest]) -> None:
    at = render("diagnoses", "one-way-audio")
    assert f"Open call {snapshots.CALL_ID}" in texts(at)


def test_diagnoses_history_from_the_service(render: Callable[..., AppTest]) -> None:
    class Service(sources.OfflineSource):
        def history(self, start: float | None = None, end: float | None = None) -> list[dict[str, Any]]:
            return service_source.history_from_events([
                {"ts": 100.0, "event": "opened", "finding_id": "media.one-way-audio", "subject": "c1",
                 "severity": "critical", "title": "t"},
                {"ts": 400.0, "event": "closed", "finding_id": "media.one-way-audio", "subject": "c1"},
            ])

    at = render("diagnoses", source=Service(snapshots.healthy()))
    hist = at.dataframe[0].value
    assert list(hist["finding"]) == ["media.one-way-audio"]
    assert list(hist["opened"]) == ["1970-01-01 01:01:40 CET"] and list(hist["closed"]) == ["1970-01-01 01:06:40 CET"]


def test_calls_list_filter_and_ladder(render: Callable[..., AppTest]) -> None:
    at = render("calls")
    table = at.dataframe[0].value
    # the completed calls of the time range, newest first, and what the list covers
    assert list(table["callee"]) == ["+4940999", "+4930123456"] and list(table["final_code"]) == [503, 200]
    assert list(table["status"]) == ["failed", "answered"]
    assert "2 completed calls — completed calls of the analysed files; 0 calls not ended yet" in texts(at)
    at.text_input(key="calls.search").input("4940999").run()  # part of a number
    assert list(at.dataframe[0].value["callee"]) == ["+4940999"]
    at.text_input(key="calls.search").input(snapshots.CALL_ID).run()  # a whole Call-ID
    assert list(at.dataframe[0].value["callee"]) == ["+4930123456"]
    at.text_input(key="calls.search").input("").run()
    at.multiselect(key="calls.states").select("answered").run()
    assert list(at.dataframe[0].value["status"]) == ["answered"]
    # The ladder of the selected call: one arrow per message, methods and codes on the arrows.
    chart = at.get("plotly_chart")[0]
    assert "INVITE" in chart.proto.spec and "180 Ringing" in chart.proto.spec
    assert at.selectbox(key=f"msg.{snapshots.CALL_ID}").options[0].startswith("#5 INVITE")
    # no capture file behind this snapshot: the summary, and why the full message is missing
    assert "Call-ID: a84b4c76e66710@osbiz" in at.code[0].value
    assert "not at hand" in texts(at)
    # Its two RTP streams.
    assert len(at.dataframe[1].value) == 2


def test_calls_no_match(render: Callable[..., AppTest]) -> None:
    at = render("calls")
    at.text_input(key="calls.search").input("nothing-matches-this").run()
    assert "0 completed calls" in texts(at)
    assert not at.get("plotly_chart")


def test_media_marks_one_way_audio(render: Callable[..., AppTest]) -> None:
    at = render("media", "one-way-audio")
    assert "One-way audio" in at.error[0].value and snapshots.CALL_ID in at.error[0].value
    assert bool(at.dataframe[0].value["one_way_audio"].all())
    # one chart for the one stream: loss, jitter and MOS per 10 s on one time axis
    assert len(at.get("plotly_chart")) == 1


def test_media_opens_on_the_call_of_a_link(monkeypatch: pytest.MonkeyPatch) -> None:
    snap = snapshots.healthy()
    snap["analysis"]["rtp_streams"][1]["call_id"] = "other@osbiz"
    monkeypatch.setattr(data, "current_source", lambda: sources.OfflineSource(snap))
    at = AppTest.from_string("from dashboard.pages import media\nmedia.render()", default_timeout=30)
    at.query_params["call"] = "other@osbiz"
    at.run()
    assert at.selectbox(key="media.call").value == "other@osbiz"
    assert list(at.dataframe[0].value["ssrc"]) == ["0x0BADCAFE"]
    at.selectbox(key="media.call").select("all calls").run()
    assert len(at.dataframe[0].value) == 2


def test_media_healthy_has_no_one_way_mark(render: Callable[..., AppTest]) -> None:
    at = render("media")
    assert not at.error
    df = at.dataframe[0].value
    # worst first: the stream with loss and MOS 3.90 before the clean one
    assert list(df["codec"]) == ["PCMA", "PCMA"] and list(df["lost"]) == [12, 0]


def test_registration_page(render: Callable[..., AppTest]) -> None:
    at = render("registration")
    page = texts(at)
    assert "**ITSP status:** Registered" in page
    assert len(at.get("plotly_chart")) == 2  # timeline and keepalive RTT
    reg = at.dataframe[0].value
    assert reg["last_code"][0] == 200 and reg["challenges"][0] == 1


def test_registration_blocked(render: Callable[..., AppTest]) -> None:
    at = render("registration", "sip-tls-blocked")
    assert "Not registered" in texts(at)
    tls = at.dataframe[1].value
    assert not tls["syn_answered"][0]


def test_users_and_licenses(render: Callable[..., AppTest]) -> None:
    at = render("users", "license-numbering")
    users = at.dataframe[0].value.set_index("callno")
    assert users.loc["100", "call_number"] == "+49897007100"
    assert users.loc["100", "findings"] == "calls.numbering-mismatch"
    assert users.loc["101", "license_state"] == "missing (unify-phone)"
    assert users.loc["101", "findings"] == "calls.license-missing"
    assert users.loc["102", "findings"] == ""
    assert at.dataframe[1].value["check"][0] == "ok"
    assert at.get("plotly_chart")  # license pools as bars


def test_users_without_site(render: Callable[..., AppTest]) -> None:
    snap = {**snapshots.healthy(), "site": None}
    assert "No site file" in texts(render("users", snap))


def test_firewall_verdicts(render: Callable[..., AppTest]) -> None:
    ok = render("firewall").dataframe[0].value.set_index("flow")
    assert ok.loc["sip-tls", "verdict"] == "working" and ok.loc["rtp-ingress", "verdict"] == "working"
    assert bool(ok["as required"].all())
    blocked = render("firewall", "sip-tls-blocked")
    df = blocked.dataframe[0].value.set_index("flow")
    assert df.loc["sip-tls", "verdict"] == "blocked" and not df.loc["sip-tls", "as required"]
    assert "itsp.not-registered.firewall" in blocked.error[0].value
    one_way = render("firewall", "one-way-audio").dataframe[0].value.set_index("flow")
    assert one_way.loc["rtp-ingress", "verdict"] == "one-way"


def test_trace_checklist_and_bundle(render: Callable[..., AppTest]) -> None:
    at = render("traces", "sip-tls-blocked")
    labels = [c.label for c in at.checkbox]
    assert any("SIP_Registration" in label_ for label_ in labels)
    assert any("Wireshark traces" in label_ for label_ in labels)
    at.button(key="traces.prep").click().run()
    assert at.get("download_button")


def test_healthy_trace_page_says_nothing_to_switch_on(render: Callable[..., AppTest]) -> None:
    assert "No findings" in texts(render("traces"))


def test_call_streams_by_sdp_index_or_call_id() -> None:
    snap = snapshots.healthy()
    snap["analysis"]["rtp_streams"][1]["call_id"] = None  # associated only through the call's list
    assert list(frames.call_streams(snap, snapshots.CALL_ID)["stream"]) == [0, 1]
    assert frames.call_streams(snap, "b77-failed@osbiz").empty


def _with_findings(snap: dict[str, Any], findings: list[dict[str, Any]]) -> dict[str, Any]:
    return {**snap, "findings": findings}


def _one_way(call_id: str, since: float) -> dict[str, Any]:
    f = snapshots.one_way_audio()["findings"][0]
    return {**f, "subject": call_id, "since": since,
            "evidence": [{**e, "call_id": call_id} for e in f["evidence"]]}


def _expiring() -> dict[str, Any]:
    return {"id": "jwt.expiring", "severity": "warning", "title": "JWT expires within one month", "symptom": "",
            "subject": None, "evidence": [{"text": "JWT expires in 12 days"}],
            "remedy": "Create a new JWT before the expiry date and replace the current one.", "trace_profiles": [],
            "trace_components": [], "since": None}


def test_overview_groups_a_finding_open_on_many_calls(render: Callable[..., AppTest]) -> None:
    """Nine one-way calls are one problem: one box with its count, the calls it affects and one
    remedy — not nine copies."""
    calls = [f"call-{n}@osbiz" for n in range(9)]
    snap = _with_findings(snapshots.one_way_audio(), [_one_way(c, snapshots.NOW - 100 + n) for n, c in enumerate(calls)])
    at = render("overview", snap)
    (box,) = at.error
    assert "9×" in box.value and "media.one-way-audio" in box.value
    assert box.value.count("**Remedy:**") == 1 and "STUN 3478" in box.value
    assert all(f"`{c}`" in box.value for c in calls[:8]) and "and 1 more" in box.value
    assert "Open since 2026-09-21 16:11:40 CEST" in box.value  # the earliest, in the site's zone


def test_overview_lists_warnings_when_nothing_is_critical(render: Callable[..., AppTest]) -> None:
    at = render("overview", _with_findings(snapshots.healthy(), [_expiring()]))
    assert not at.error
    assert [s.value for s in at.subheader] == ["Warnings"]
    (box,) = at.warning
    assert "JWT expires within one month" in box.value and "Remedy" in box.value
    assert "No findings" not in texts(at)


def test_overview_media_tile_agrees_with_an_open_one_way_finding(render: Callable[..., AppTest]) -> None:
    """The service holds a finding open for a while after its call left the window: the streams in
    view may be fine, the media tile still says one-way audio (never a green MOS beside it)."""
    snap = _with_findings(snapshots.healthy(), [_one_way("gone@osbiz", snapshots.NOW - 50)])
    assert snap["media"]["verdict"] == "ok" and not snap["media"]["one_way_calls"]
    at = render("overview", snap)
    media = next(m for m in at.metric if "Media quality" in m.label)
    assert media.value == "One-way audio" and ":red[" in media.label
    active = next(m for m in at.metric if "Active findings" in m.label)
    assert active.value == "1 critical"
    healthy = next(m for m in render("overview").metric if "Media quality" in m.label)
    assert healthy.value == "MOS 3.90" and ":green[" in healthy.label


def test_times_in_the_site_zone_else_utc_with_utc_on_hover(render: Callable[..., AppTest]) -> None:
    at = render("overview")
    banner = next(c for c in at.caption if "data of" in c.value)
    assert banner.value.endswith("data of 2026-09-21 16:13:20 CEST")
    assert "2026-09-21 14:13:20 UTC" in banner.proto.help and "Europe/Berlin (the site's time zone)" in banner.proto.help
    no_zone = snapshots.healthy()
    no_zone["site"]["system"]["timezone"] = None
    at = render("overview", no_zone)  # no site zone and no browser zone (AppTest has none): UTC
    banner = next(c for c in at.caption if "data of" in c.value)
    assert banner.value.endswith("data of 2026-09-21 14:13:20 UTC")
    calls = render("calls")
    assert list(calls.dataframe[0].value["start"]) == ["2026-09-21 16:08:20 CEST", "2026-09-21 16:03:25 CEST"]
