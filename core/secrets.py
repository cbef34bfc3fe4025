"""Secret references: API key, JWT, SIP digest passwords.

A site file names a secret in one of three ways: inline (``"abc…"``), ``env:VARIABLE`` or
``file:/path``. A secret file is read only when it has the shape of one: a regular file (never a
FIFO or a device, which would block or never end) of at most 64 KiB holding one line of text
(a key, token or password) or one PEM block (a JWT verification key). Anything else — ``/etc/shadow``,
a capture, a directory — is refused with the reason and never fingerprinted, so a site file cannot
turn upscope into an oracle for files that are not secrets of this site. The reference is kept as written and resolved only when a value is really needed
(a healthy site with ``api_key: env:UPSCOPE_API_KEY`` must load on a machine without that
variable). The value never appears in ``repr``/``str``, in an error message or in a public dict:
only ``fingerprint()`` — the first 6 hex characters of its SHA-256 — identifies it.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from core.errors import UpscopeError
from core.smallfile import UnreadableFile, read_small_file

#: A secret file larger than this is not a secret but a mistake (e.g. a path to a capture).
MAX_SECRET_FILE_BYTES = 64 * 1024


_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]{1,40}-----\n[A-Za-z0-9+/=\n]{1,65536}-----END [A-Z0-9 ]{1,40}-----")


def _read_secret_file(path: Path, source: str) -> str:
    """The value of a secret file of the allowed shape; ``SecretUnavailable`` naming why not."""
    try:
        raw = read_small_file(path, MAX_SECRET_FILE_BYTES, "secret", shown_as=source)
    except UnreadableFile as exc:
        raise SecretUnavailable(str(exc)) from None
    try:
        value = raw.decode("utf-8").strip().replace("\r\n", "\n")
    except UnicodeDecodeError:
        raise SecretUnavailable(f"secret {source}: not UTF-8 text") from None
    if not value:
        raise SecretUnavailable(f"secret {source}: file is empty")
    one_line = "\n" not in value and value.isprintable()
    if not one_line and _PEM.fullmatch(value) is None:
        raise SecretUnavailable(f"secret {source}: not one line of text or one PEM block, so not a "
                                "secret file (refused, not read further)")
    return value


class SecretKind(StrEnum):
    INLINE = "inline"
    ENV = "env"
    FILE = "file"


class SecretUnavailable(UpscopeError):
    """A reference could not be resolved; the message names the reference, never a value."""


def fingerprint(value: str) -> str:
    """First 6 hex characters of SHA-256 of ``value``: enough to tell two keys apart, not to guess one."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:6]


@dataclass(frozen=True, slots=True)
class SecretRef:
    """A reference to a secret as written in the site file.

    ``target`` is the variable name or file path for ``env``/``file`` (not secret) and the value
    itself for ``inline`` (secret: excluded from repr and comparisons shown to users).
    """

    kind: SecretKind
    target: str = field(repr=False)

    @classmethod
    def parse(cls, text: str) -> SecretRef:
        """Parse a reference; raises ``ValueError`` with a message free of the value."""
        if not isinstance(text, str):
            raise ValueError("a secret must be a string (inline, env:VARIABLE or file:PATH)")
        stripped = text.strip()
        if not stripped:
            raise ValueError("a secret must not be empty")
        if stripped.startswith("env:"):
            name = stripped[4:].strip()
            if not name or not all(c.isalnum() or c == "_" for c in name) or name[0].isdigit():
                raise ValueError("env: must name an environment variable (letters, digits, _)")
            return cls(SecretKind.ENV, name)
        if stripped.startswith("file:"):
            path = stripped[5:].strip()
            if not path:
                raise ValueError("file: must name a file")
            return cls(SecretKind.FILE, path)
        return cls(SecretKind.INLINE, stripped)

    @property
    def source(self) -> str:
        """Where the secret comes from, safe to show: ``inline``, ``env:NAME`` or ``file:PATH``."""
        if self.kind is SecretKind.INLINE:
            return "inline"
        return f"{self.kind.value}:{self.target}"

    def resolve(self, environ: Mapping[str, str] | None = None) -> str:
        """The secret value; raises ``SecretUnavailable`` naming the reference only."""
        if self.kind is SecretKind.INLINE:
            return self.target
        if self.kind is SecretKind.ENV:
            env = os.environ if environ is None else environ
            value = env.get(self.target)
            if value is None or not value.strip():
                raise SecretUnavailable(f"secret {self.source}: environment variable not set")
            return value.strip()
        return _read_secret_file(Path(self.target), self.source)

    def try_resolve(self, environ: Mapping[str, str] | None = None) -> str | None:
        try:
            return self.resolve(environ)
        except SecretUnavailable:
            return None

    def fingerprint(self, environ: Mapping[str, str] | None = None) -> str | None:
        """Fingerprint of the value, or None when it cannot be resolved."""
        value = self.try_resolve(environ)
        return None if value is None else fingerprint(value)

    def to_public_dict(self, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
        value = self.try_resolve(environ)
        return {
            "source": self.source,
            "resolvable": value is not None,
            "fingerprint": None if value is None else fingerprint(value),
        }

    def __str__(self) -> str:
        return f"<secret {self.source}>"

    def __repr__(self) -> str:
        return f"SecretRef({self.source})"
