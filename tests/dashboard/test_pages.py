"""Every page rendered by Streamlit's AppTest against healthy and fault snapshots."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import data, frames, sources
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
    assert metrics["Calls last hour"] == "1 / 1"  # answered / failed
    assert metrics["Media quality"] == "MOS 3.90"
    assert metrics["Active findings"] == "0 critical"
    page = texts(at)
    # The media verdict is the producer's: two streams, 3.90 above the rules' 3.6, 0.4 % below 3 %.
    assert "2 streams, loss 0.4 %" in page and "0 warning · 0 info" in page
    assert metrics["JWT"] == "Not needed"
    assert metrics["Software Support"].endswith("days left")
    assert "since 2026-09-21 14:03:20 UTC (9 min ago)" in texts(at)
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
        def history(self) -> list[dict[str, Any]]:
            return sources.history_from_events([
                {"ts": 100.0, "event": "opened", "finding_id": "media.one-way-audio", "subject": "c1",
                 "severity": "critical", "title": "t"},
                {"ts": 400.0, "event": "closed", "finding_id": "media.one-way-audio", "subject": "c1"},
            ])

    at = render("diagnoses", source=Service(snapshots.healthy()))
    hist = at.dataframe[0].value
    assert list(hist["finding"]) == ["media.one-way-audio"]
    assert list(hist["opened"]) == ["1970-01-01 00:01:40 UTC"] and list(hist["closed"]) == ["1970-01-01 00:06:40 UTC"]


def test_calls_list_filter_and_ladder(render: Callable[..., AppTest]) -> None:
    at = render("calls")
    table = at.dataframe[0].value
    assert list(table["call_id"]) == [snapshots.CALL_ID, "b77-failed@osbiz"]
    assert "2 of 2 calls" in texts(at)
    at.text_input(key="calls.search").input("503").run()
    assert list(at.dataframe[0].value["call_id"]) == ["b77-failed@osbiz"]
    at.text_input(key="calls.search").input("").run()
    at.multiselect(key="calls.states").select("answered").run()
    assert list(at.dataframe[0].value["call_id"]) == [snapshots.CALL_ID]
    # The ladder of the selected call: one arrow per message, methods and codes on the arrows.
    chart = at.get("plotly_chart")[0]
    assert "INVITE" in chart.proto.spec and "180 Ringing" in chart.proto.spec
    assert at.selectbox(key=f"msg.{snapshots.CALL_ID}").options[0].startswith("#5 INVITE")
    assert "Call-ID: a84b4c76e66710@osbiz" in at.code[0].value
    # The call history of the last hour (completed calls), newest first.
    hist = at.dataframe[1].value
    assert list(hist["final_code"]) == [503, 200]
    # Its two RTP streams.
    assert len(at.dataframe[2].value) == 2


def test_calls_no_match(render: Callable[..., AppTest]) -> None:
    at = render("calls")
    at.text_input(key="calls.search").input("nothing-matches-this").run()
    assert "0 of 2 calls" in texts(at)
    assert not at.get("plotly_chart")


def test_media_marks_one_way_audio(render: Callable[..., AppTest]) -> None:
    at = render("media", "one-way-audio")
    assert "One-way audio" in at.error[0].value and snapshots.CALL_ID in at.error[0].value
    assert bool(at.dataframe[0].value["one_way_audio"].all())
    assert len(at.get("plotly_chart")) == 3  # loss, jitter, MOS per 10 s


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
    assert list(df["codec"]) == ["PCMA", "PCMA"] and list(df["lost"]) == [0, 12]


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
