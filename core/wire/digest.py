"""Digest authentication as SIP uses it (RFC 3261 §22.4 on RFC 2617 / RFC 7616, RFC 8760).

``parse_challenge`` reads a WWW-Authenticate / Proxy-Authenticate value, ``answer`` computes the
credentials for it and ``format_credentials`` writes the Authorization value; a server side
uses ``parse_credentials`` and ``verify``. The cnonce is the caller's (this module draws no
randomness). Algorithms MD5 and SHA-256 (RFC 8760), qop ``auth`` or none (RFC 2069 style).
Values are hostile input: bounded in size, and only ``ParseError`` escapes.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field

from core.errors import ParseError

MAX_VALUE = 8192
MAX_PARAMS = 32
ALGORITHMS = {"MD5": "md5", "SHA-256": "sha256"}
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


@dataclass(frozen=True, slots=True)
class DigestChallenge:
    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()  # offered quality-of-protection values; empty: RFC 2069 style
    opaque: str | None = None


@dataclass(frozen=True, slots=True)
class DigestCredentials:
    username: str
    realm: str
    nonce: str
    uri: str
    response: str = field(repr=False)
    algorithm: str = "MD5"
    qop: str | None = None
    cnonce: str | None = None
    nc: str | None = None
    opaque: str | None = None


def parse_params(value: str) -> tuple[str, dict[str, str]]:
    """``Digest realm="x", nonce="y"`` → ("Digest", {"realm": "x", "nonce": "y"}); names in
    lower case, quoted-strings unescaped (RFC 7235 §2.1 auth-param)."""
    if len(value) > MAX_VALUE:
        raise ParseError(f"digest header value longer than {MAX_VALUE} characters", 0)
    text = value.strip()
    scheme, _, rest = text.partition(" ")
    if not scheme or any(ch not in _TOKEN for ch in scheme):
        raise ParseError("digest header value without an auth scheme", 0)
    params: dict[str, str] = {}
    pos, end = 0, len(rest)
    while pos < end:
        while pos < end and rest[pos] in " \t,":
            pos += 1
        if pos == end:
            break
        start = pos
        while pos < end and rest[pos] in _TOKEN:
            pos += 1
        name = rest[start:pos].lower()
        while pos < end and rest[pos] in " \t":
            pos += 1
        if not name or pos == end or rest[pos] != "=":
            raise ParseError("digest parameter without name=value", len(scheme) + 1 + start)
        pos += 1
        while pos < end and rest[pos] in " \t":
            pos += 1
        if pos < end and rest[pos] == '"':
            pos += 1
            chars: list[str] = []
            while pos < end and rest[pos] != '"':
                if rest[pos] == "\\" and pos + 1 < end:
                    pos += 1
                chars.append(rest[pos])
                pos += 1
            if pos == end:
                raise ParseError("digest parameter with an unterminated quoted string", len(scheme) + 1 + start)
            pos += 1
            param = "".join(chars)
        else:
            start_value = pos
            while pos < end and rest[pos] not in ", \t":
                pos += 1
            param = rest[start_value:pos]
        if len(params) >= MAX_PARAMS:
            raise ParseError(f"digest header value with more than {MAX_PARAMS} parameters", 0)
        params.setdefault(name, param)
    return scheme, params


def _digest_params(value: str) -> dict[str, str]:
    scheme, params = parse_params(value)
    if scheme.lower() != "digest":
        raise ParseError(f"auth scheme {scheme[:20]!r} is not Digest", 0)
    algorithm = params.get("algorithm", "MD5").upper()
    if algorithm not in ALGORITHMS:
        raise ParseError(f"digest algorithm {algorithm[:20]!r} not supported", 0)
    params["algorithm"] = algorithm
    return params


def parse_challenge(value: str) -> DigestChallenge:
    p = _digest_params(value)
    if "realm" not in p or "nonce" not in p:
        raise ParseError("digest challenge without realm or nonce", 0)
    qop = tuple(q.strip() for q in p.get("qop", "").split(",") if q.strip())
    return DigestChallenge(p["realm"], p["nonce"], p["algorithm"], qop, p.get("opaque"))


def parse_credentials(value: str) -> DigestCredentials:
    p = _digest_params(value)
    missing = [k for k in ("username", "realm", "nonce", "uri", "response") if k not in p]
    if missing:
        raise ParseError(f"digest credentials without {', '.join(missing)}", 0)
    return DigestCredentials(p["username"], p["realm"], p["nonce"], p["uri"], p["response"],
                             p["algorithm"], p.get("qop"), p.get("cnonce"), p.get("nc"), p.get("opaque"))


def _hash(algorithm: str, text: str) -> str:
    return hashlib.new(ALGORITHMS[algorithm], text.encode("utf-8"), usedforsecurity=False).hexdigest()


def response_value(*, algorithm: str, username: str, realm: str, password: str, method: str, uri: str,
                   nonce: str, qop: str | None, cnonce: str | None, nc: str | None) -> str:
    """The ``response`` of RFC 7616 §3.4.1 (RFC 2069 form without qop)."""
    ha1 = _hash(algorithm, f"{username}:{realm}:{password}")
    ha2 = _hash(algorithm, f"{method}:{uri}")
    if qop is None:
        return _hash(algorithm, f"{ha1}:{nonce}:{ha2}")
    return _hash(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def answer(challenge: DigestChallenge, *, username: str, password: str, method: str, uri: str,
           cnonce: str, nc: int = 1) -> DigestCredentials:
    """Credentials for ``challenge`` (qop ``auth`` when offered)."""
    qop = "auth" if "auth" in challenge.qop else None
    count = f"{nc:08x}" if qop else None
    response = response_value(algorithm=challenge.algorithm, username=username, realm=challenge.realm,
                              password=password, method=method, uri=uri, nonce=challenge.nonce, qop=qop,
                              cnonce=cnonce if qop else None, nc=count)
    return DigestCredentials(username, challenge.realm, challenge.nonce, uri, response, challenge.algorithm,
                             qop, cnonce if qop else None, count, challenge.opaque)


def format_challenge(challenge: DigestChallenge) -> str:
    qop = f', qop="{",".join(challenge.qop)}"' if challenge.qop else ""
    opaque = f', opaque="{challenge.opaque}"' if challenge.opaque is not None else ""
    return (f'Digest realm="{challenge.realm}", nonce="{challenge.nonce}", '
            f"algorithm={challenge.algorithm}{qop}{opaque}")


def format_credentials(c: DigestCredentials) -> str:
    """The Authorization / Proxy-Authorization header value."""
    text = (f'Digest username="{c.username}", realm="{c.realm}", nonce="{c.nonce}", uri="{c.uri}", '
            f'response="{c.response}", algorithm={c.algorithm}')
    if c.qop is not None:
        text += f', cnonce="{c.cnonce}", qop={c.qop}, nc={c.nc}'
    if c.opaque is not None:
        text += f', opaque="{c.opaque}"'
    return text


def verify(credentials: DigestCredentials, *, password: str, method: str) -> bool:
    """True when ``credentials`` were computed with ``password`` for ``method``."""
    want = response_value(algorithm=credentials.algorithm, username=credentials.username,
                          realm=credentials.realm, password=password, method=method, uri=credentials.uri,
                          nonce=credentials.nonce, qop=credentials.qop, cnonce=credentials.cnonce,
                          nc=credentials.nc)
    return secrets.compare_digest(want.encode(), credentials.response.encode("utf-8", "replace"))
