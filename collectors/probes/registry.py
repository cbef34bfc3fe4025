"""Active probes in the blackbox_exporter style: one signature, a registry, failure is data.

``run(module, target, timeout, **opts)`` always returns a ``core.probes.ProbeResult`` for anything
the network does (refused, timed out, reset, bad certificate, malformed answer): the reason is a
one-line sentence, the phase durations say where the time went, the transcript shows what was
sent and received with credentials replaced by fingerprints. Only a request that cannot be run at
all (unknown module, bad target, bad option) raises ``ProbeConfigError``.

The modules are keyed by ``core.probes.ProbeModule``; each has a typed options class
(``collectors.probes.options``) and one file: ``sip_options``, ``stun``, ``tcp_connect``,
``https_rest``. A new kind of probe gets an enum member, a module with its ``ProbeSpec`` and a
line in ``BUILTIN``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from collectors.probes import https_rest, sip_options, stun, tcp_connect
from collectors.probes.record import ProbeFailed, ProbeRecord
from collectors.probes.spec import Probe
from collectors.probes.target import ProbeConfigError, parse_target
from core.probes import ProbeModule, ProbeResult

MAX_TIMEOUT_S = 60.0

BUILTIN: tuple[Probe, ...] = (*sip_options.SPECS, stun.SPEC, tcp_connect.SPEC, https_rest.SPEC)
MODULES: dict[ProbeModule, Probe] = {}


def register(probe: Probe) -> None:
    """Add (or replace) a probe module; its name is what ``/probe?module=`` and the site use."""
    MODULES[probe.module] = probe


for _probe in BUILTIN:
    register(_probe)


def module_of(name: str) -> ProbeModule:
    """The registered module called ``name`` (ProbeConfigError with the known names if none)."""
    try:
        module = ProbeModule(name)
    except ValueError:
        module = None
    if module is None or module not in MODULES:
        known = ", ".join(sorted(MODULES))
        raise ProbeConfigError(f"probe module {name[:40]!r}: unknown (known: {known})")
    return module


def run(module: str, target: str, timeout: float = 5.0, **opts: object) -> ProbeResult:
    """Run one probe. Network failures are data in the result; bad requests raise ProbeConfigError."""
    return run_request(module, target, timeout, opts)


def run_request(module: str, target: str, timeout: float, configured: Mapping[str, object],
                query: Mapping[str, str] | None = None) -> ProbeResult:
    """``run`` for the HTTP face: ``query`` holds options from a URL, which may set only the
    options that are not file paths or credentials, over those ``configured`` for the module."""
    spec = MODULES[module_of(module)]
    if not 0 < timeout <= MAX_TIMEOUT_S:
        raise ProbeConfigError(f"probe timeout {timeout!r}: must be > 0 and ≤ {MAX_TIMEOUT_S:g} s")
    parsed = parse_target(target, spec.default_port)
    probe = spec.prepare(configured, query or {})
    record = ProbeRecord(probe=str(spec.module), target=parsed, deadline=time.monotonic() + timeout)
    try:
        return probe(record, timeout)
    except ProbeFailed as fail:
        return record.result(False, fail.reason)
