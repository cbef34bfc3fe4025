"""Secrets out of everything that leaves upscope: site files, reports, bundles.

A secret value is replaced by a short SHA-256 fingerprint (never the value, never a prefix of
it). References such as ``env:UPSCOPE_API_KEY`` are not secrets themselves but are also
fingerprinted, so a bundle never reveals where a key lives either.
"""

from __future__ import annotations

import re
from typing import Any

from core.secrets import fingerprint as core_fingerprint

#: Site-file keys whose values are secrets (any depth).
SECRET_KEYS = frozenset({"api_key", "jwt", "password", "secret", "token", "sip_password", "key"})

# JWT-looking strings (three base64url parts) and digest responses anywhere in free text.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_DIGEST = re.compile(r'((?:response|nonce|cnonce)\s*=\s*)"?[^",\s]+"?', re.IGNORECASE)


def fingerprint(value: str) -> str:
    """The shown form of a secret: ``sha256:`` + core's 6-hex fingerprint."""
    return "sha256:" + core_fingerprint(value)


def redact_tree(value: Any, secrets: frozenset[str] = SECRET_KEYS) -> Any:
    """A copy of a YAML/JSON tree with every secret-keyed value replaced by its fingerprint.

    Under a secret key everything is secret (e.g. ``sip_credentials: {user, password}``).
    """
    if isinstance(value, dict):
        return {
            k: _redact_all(v) if isinstance(k, str) and k.lower() in secrets else redact_tree(v, secrets)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact_tree(v, secrets) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def _redact_all(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _redact_all(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_all(v) for v in value]
    if value is None or value == "":
        return value
    return f"<redacted {fingerprint(str(value))}>"


def redact_text(text: str, known: tuple[str, ...] = ()) -> str:
    """Remove JWTs, digest responses and any of the ``known`` secret values from free text."""
    for secret in known:
        if secret and len(secret) >= 4:
            text = text.replace(secret, f"<redacted {fingerprint(secret)}>")
    text = _JWT.sub(lambda m: f"<redacted-jwt {fingerprint(m.group(0))}>", text)
    return _DIGEST.sub(lambda m: f"{m.group(1)}<redacted>", text)


#: Headers that carry credentials or challenges (RFC 3261 §20.7, §20.27, §20.28, §20.44).
_AUTH_HEADERS = frozenset({"authorization", "proxy-authorization", "www-authenticate", "proxy-authenticate"})
#: Digest parameters that are secret or single-use (RFC 8760 / RFC 2617 §3.2): never shown.
_AUTH_PARAM = re.compile(r'(?i)\b(response|nonce|cnonce|opaque|nextnonce|rspauth)([ \t]*=[ \t]*)("[^"]*"|[^,\r\n\t ]+)')
#: Header names that suggest a key or token (X-Api-Key, X-Auth-Token, Api-Secret, …): value hidden.
_KEYISH = re.compile(r"(?i)(api[-_]?key|token|secret|password|passwd|credential|session-key)")
_HEADER = re.compile(r"^([A-Za-z0-9!%*_+`'~.-]+)([ \t]*:[ \t]*)(.*)$")


def redact_header(name: str, value: str) -> str:
    """The value of one header fit to show (see ``redact_sip``)."""
    lower = name.lower()
    if lower in _AUTH_HEADERS:
        scheme, _, params = value.partition(" ")
        if scheme.lower() == "digest":
            return f"{scheme} {_AUTH_PARAM.sub(lambda p: f'{p.group(1)}{p.group(2)}<redacted>', params)}"
        if value.strip():
            return f"{scheme} <redacted {fingerprint(params)}>" if params.strip() else f"<redacted {fingerprint(value)}>"
    elif _KEYISH.search(lower) and value.strip():
        return f"<redacted {fingerprint(value.strip())}>"
    return value


def redact_sip(text: str, known: tuple[str, ...] = ()) -> str:
    """A SIP message (start line, headers, body) fit to show: digest responses, nonces and opaque
    values replaced, other credentials (Bearer, Basic, key and token headers) fingerprinted, JWTs
    and the ``known`` secret values removed anywhere. Header order, names and lines stay as sent."""
    lines = text.split("\n")
    for i, line in enumerate(lines[1:], start=1):
        if not line.strip("\r"):
            break  # the body starts
        m = _HEADER.match(line.rstrip("\r"))
        if m is not None:
            name, sep, value = m.groups()
            lines[i] = f"{name}{sep}{redact_header(name, value)}" + ("\r" if line.endswith("\r") else "")
    return redact_text("\n".join(lines), known)


def redact_line(line: str, known: tuple[str, ...] = ()) -> str:
    """One line of free text shaped ``Name: value`` (a decoder's field) fit to show."""
    m = _HEADER.match(line.strip())
    if m is not None:
        name, sep, value = m.groups()
        line = line[:len(line) - len(line.lstrip())] + f"{name}{sep}{redact_header(name, value)}"
    return redact_text(_AUTH_PARAM.sub(lambda p: f"{p.group(1)}{p.group(2)}<redacted>", line), known)
