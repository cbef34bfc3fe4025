"""OSBiz trace profiles, trace components and data to collect (Unify Phone troubleshooting).

This is the one data table: finding rules, ``upscope trace-profiles``, the dashboard checklist and
the support bundle all read it. Profile spellings are not confirmed by a second source, so they
live here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class TraceProfile(StrEnum):
    BASIC = "Basic"
    VOICE_FAX = "Voice Fax Connections"
    SIP_ITSP = "SIP_Interconnection_Subscriber_ITSP"
    SIP_REGISTRATION = "SIP_Registration"
    LICENSE = "License_problem"


@dataclass(frozen=True, slots=True)
class TraceComponent:
    name: str
    level: int


FP_API_CTI = TraceComponent("FP_API-CTI", 9)
FP_API_IWU = TraceComponent("FP_API_IWU", 9)
PCC = TraceComponent("PCC", 9)

#: Data to collect besides the traces.
DIAGNOSIS_LOGS = "OpenScape Diagnosis Logs (incl. Application Protocols)"
WIRESHARK = "Wireshark traces"
TCP_DUMP = "OpenScape Business TCP Dump"
ITSP_DIAGNOSE = "Service Center >> Status >> ITSP >> Unify Phone (Cloud) >> Diagnose"
CLIENT_LOG = "Unify Phone client log (menu 'Report issue')"


@dataclass(frozen=True, slots=True)
class TraceSet:
    """What to switch on and collect for one kind of problem."""

    profiles: tuple[TraceProfile, ...]
    components: tuple[TraceComponent, ...]
    collect: tuple[str, ...]
    why: str


#: Problem families (docs/findings.md) → trace set. Rules name a family; the table says the rest.
TRACE_SETS: dict[str, TraceSet] = {
    "registration": TraceSet(
        (TraceProfile.BASIC, TraceProfile.SIP_ITSP, TraceProfile.SIP_REGISTRATION),
        (),
        (DIAGNOSIS_LOGS, WIRESHARK, TCP_DUMP, ITSP_DIAGNOSE),
        "registration problems of the Unify Phone (Cloud) trunk",
    ),
    "rest-api": TraceSet(
        (TraceProfile.BASIC, TraceProfile.LICENSE),
        (FP_API_CTI, FP_API_IWU),
        (DIAGNOSIS_LOGS, ITSP_DIAGNOSE, CLIENT_LOG),
        "REST API / provisioning and client login",
    ),
    "calls": TraceSet(
        (TraceProfile.BASIC, TraceProfile.VOICE_FAX, TraceProfile.SIP_ITSP),
        (FP_API_CTI, FP_API_IWU, PCC),
        (DIAGNOSIS_LOGS, WIRESHARK, TCP_DUMP, ITSP_DIAGNOSE, CLIENT_LOG),
        "calls with the Unify Phone client",
    ),
    "license": TraceSet(
        (TraceProfile.BASIC, TraceProfile.LICENSE),
        (),
        (DIAGNOSIS_LOGS, CLIENT_LOG),
        "license issues, e.g. client login",
    ),
    "media": TraceSet(
        (TraceProfile.BASIC, TraceProfile.VOICE_FAX, TraceProfile.SIP_ITSP),
        (PCC,),
        (WIRESHARK, TCP_DUMP, DIAGNOSIS_LOGS, CLIENT_LOG),
        "audio problems (one-way audio, poor quality)",
    ),
    "config": TraceSet(
        (TraceProfile.BASIC,),
        (),
        (DIAGNOSIS_LOGS, ITSP_DIAGNOSE),
        "configuration checks; traces only if the remedy does not help",
    ),
}
