"""Secrets out of everything that leaves upscope: site files, reports, bundles.

A secret value is replaced by a short SHA-256 fingerprint (DOMAIN §4: never the value, never a
prefix of it). References such as ``env:UPSCOPE_API_KEY`` are not secrets themselves but are also
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
