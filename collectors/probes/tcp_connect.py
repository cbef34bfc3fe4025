"""The TCP connect probe: is the port reachable (SYN answered by SYN-ACK) and how fast."""

from __future__ import annotations

from collectors.probes.options import ProbeOptions
from collectors.probes.record import ProbeRecord
from collectors.probes.spec import ProbeSpec
from collectors.probes.transport import connect
from core.probes import ProbeModule, ProbeResult


def _connect(record: ProbeRecord, options: ProbeOptions, timeout: float) -> ProbeResult:
    connect(record, timeout).close()
    return record.result(True, "")


SPEC = ProbeSpec(ProbeModule.TCP_CONNECT, "TCP connect", None, ProbeOptions, _connect)
