"""The HTTPS REST probe: one GET over TLS — status code, certificate, and the API's error.

Authenticated as the OSBiz authenticates to the connector's provisioning API (the API key in a
header, the tenant's JWT as a bearer token on the Unify Video flavour), only a 2xx means the API
accepts the credentials; unauthenticated, any answer below 500 proves reachability. The
credentials go on the wire only: the transcript names the header and shows a fingerprint, and a
JSON error body that echoes them is redacted.
"""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass, field

from collectors.probes.options import (
    StatusRanges,
    TlsOptions,
    as_header_name,
    as_path,
    as_status_ranges,
    as_text,
    parsed_by,
)
from collectors.probes.record import ProbeFailed, ProbeRecord, secret_fingerprint
from collectors.probes.spec import ProbeSpec
from collectors.probes.transport import connect, in_ranges, tls_handshake
from core.probes import ProbeModule, ProbeResult

MAX_REST_BODY = 4096


@dataclass(frozen=True, slots=True)
class HttpsRestOptions(TlsOptions):
    path: str = field(default="/", metadata=parsed_by(as_path))
    #: Status codes that count as success; default 200-299 with credentials, 200-499 without.
    valid_status: StatusRanges | None = field(default=None, metadata=parsed_by(as_status_ranges))
    api_key: str | None = field(default=None, repr=False, metadata=parsed_by(as_text, query=False))
    api_key_header: str = field(default="X-Api-Key", metadata=parsed_by(as_header_name))
    bearer: str | None = field(default=None, repr=False, metadata=parsed_by(as_text, query=False))


def _get(record: ProbeRecord, options: HttpsRestOptions, timeout: float) -> ProbeResult:
    sock = tls_handshake(record, connect(record, timeout), options, timeout)
    path = options.path
    host = options.server_name or record.target.host
    # Credentials go on the wire only: the transcript names the header and a fingerprint.
    auth: list[tuple[str, str]] = []
    if options.api_key:
        auth.append((options.api_key_header, options.api_key))
    if options.bearer:
        auth.append(("Authorization", f"Bearer {options.bearer}"))
    record.secrets = tuple(value.removeprefix("Bearer ") for _, value in auth)
    extra = "".join(f"{name}: {value}\r\n" for name, value in auth)
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: upscope-probe\r\n"
               f"Accept: */*\r\n{extra}Connection: close\r\n\r\n").encode()
    t0 = time.monotonic()
    try:
        sock.settimeout(record.require("HTTPS GET to", timeout))
        sock.sendall(request)
        record.note(f"> GET {path} HTTP/1.1 Host: {host}"
                    + "".join(f" {name}: <{secret_fingerprint(value)}>" for name, value in auth))
        response = http.client.HTTPResponse(sock)
        response.begin()
        record.phases["request"] = time.monotonic() - t0
        status = response.status
        record.details["status_code"] = status
        record.details["reason_phrase"] = response.reason
        server = response.getheader("Server")
        if server:
            record.details["server"] = server[:200]
        record.note(f"< HTTP {status} {response.reason} content-type={response.getheader('Content-Type')}")
        error = record.redact(_json_error(response.read(MAX_REST_BODY)))
        if error:
            record.details["error"] = error
            record.note(f"< error: {error}")
    except TimeoutError:
        raise ProbeFailed(f"HTTPS GET {path} to {record.target}: no response within {timeout:g} s") from None
    except (http.client.HTTPException, OSError) as exc:
        raise ProbeFailed(f"HTTPS GET {path} to {record.target}: {type(exc).__name__} {exc}".rstrip()) from None
    finally:
        sock.close()
    # Unauthenticated, any answer below 500 proves reachability; authenticated as the OSBiz is,
    # only a 2xx means the REST API accepts the tenant's credentials.
    default = ((200, 299),) if auth else ((200, 499),)
    if in_ranges(status, options.valid_status or default):
        return record.result(True, "")
    why = f" ({record.details['error']})" if record.details.get("error") else ""
    return record.result(False, f"HTTPS GET {path} to {record.target} answered {status} {response.reason}{why}")


def _json_error(body: bytes) -> str:
    """The ``error``/``message`` of a JSON error body (e.g. ``jwt_expired``), printable and short."""
    try:
        doc = json.loads(body.decode("utf-8", "replace"))
    except ValueError:
        return ""
    if not isinstance(doc, dict):
        return ""
    parts = [str(doc[k]) for k in ("error", "message") if isinstance(doc.get(k), str | int)]
    text = " — ".join(parts)
    return "".join(ch for ch in text if ch.isprintable())[:200]


SPEC = ProbeSpec(ProbeModule.HTTPS_REST, "HTTPS GET: status code and certificate", 443, HttpsRestOptions, _get)
