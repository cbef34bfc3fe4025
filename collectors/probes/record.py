"""What one probe run records — phase durations, transcript, details — frozen into a ProbeResult.

A probe ends early by raising ``ProbeFailed`` with a one-line reason; ``collectors.probes.run``
turns it into an unsuccessful result, so a failure is data, never an exception to the caller.
The transcript shows what was sent and received with credentials replaced by fingerprints.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from collectors.probes.target import Target
from core.probes import ProbeResult
from core.secrets import fingerprint

MAX_TRANSCRIPT_ENTRIES = 40
MAX_TRANSCRIPT_CHARS = 2000  # per entry; a probe transcript is for reading, not for archiving

# SIP/HTTP headers whose values carry credentials or nonces: never shown, only fingerprinted.
_SECRET_HEADERS = re.compile(
    r"^(authorization|proxy-authorization|www-authenticate|proxy-authenticate)[ \t]*:([^\r\n]*)",
    re.IGNORECASE | re.MULTILINE,
)


class ProbeFailed(Exception):
    """Ends a probe with ``reason`` (caught by ``run``; never leaves ``collectors.probes``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def redact(text: str) -> str:
    """Replace credential/challenge header values by a fingerprint (first 6 hex of SHA-256)."""

    def _fp(match: re.Match[str]) -> str:
        digest = hashlib.sha256(match.group(2).strip().encode()).hexdigest()[:6]
        return f"{match.group(1)}: <redacted sha256:{digest}>"

    return _SECRET_HEADERS.sub(_fp, text)


def secret_fingerprint(secret: str) -> str:
    return "sha256:" + fingerprint(secret)


@dataclass
class ProbeRecord:
    """Mutable scratch state of one probe run, frozen into a ProbeResult at the end."""

    probe: str
    target: Target
    deadline: float
    ts: float = field(default_factory=time.time)
    started: float = field(default_factory=time.monotonic)
    phases: dict[str, float] = field(default_factory=dict)
    transcript: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()  # credentials this probe sends: fingerprinted if a peer echoes them

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def require(self, what: str, timeout: float) -> float:
        left = self.remaining()
        if left <= 0:
            raise ProbeFailed(f"{what} {self.target}: timed out after {timeout:g} s")
        return left

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        t0 = time.monotonic()
        try:
            yield
        finally:
            self.phases[name] = self.phases.get(name, 0.0) + (time.monotonic() - t0)

    def note(self, text: str) -> None:
        if len(self.transcript) >= MAX_TRANSCRIPT_ENTRIES:
            return
        text = self.redact(redact(text.replace("\r\n", "\n")))
        if len(text) > MAX_TRANSCRIPT_CHARS:
            text = text[:MAX_TRANSCRIPT_CHARS] + f"… ({len(text) - MAX_TRANSCRIPT_CHARS} more chars)"
        self.transcript.append(text)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, f"<{secret_fingerprint(secret)}>")
        return text

    def result(self, success: bool, reason: str) -> ProbeResult:
        return ProbeResult(
            probe=self.probe,
            target=str(self.target),
            ts=self.ts,
            success=success,
            reason=reason,
            duration_s=time.monotonic() - self.started,
            phases=dict(self.phases),
            transcript=tuple(self.transcript),
            details=dict(self.details),
        )
