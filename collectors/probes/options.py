"""Typed probe options: one frozen dataclass per probe module, parsed from loose input.

Options arrive as a mapping from the site's probe configuration, from ``run(**opts)`` or from
the query string of ``/probe``. ``parse_options`` checks them against the module's options
class: an unknown name, a bad value, or (from a URL) an option that is only configurable —
file paths and credentials — is a ``ProbeConfigError`` that says which option and why.
Each field's ``metadata`` holds its parser (``"parse"``) and whether a URL may set it
(``"query"``); credentials are ``repr=False`` so they never appear in a printed options value.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from collectors.probes.target import ProbeConfigError

StatusRanges = tuple[tuple[int, int], ...]


def as_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected true or false")


def as_text(value: object) -> str:
    text = str(value)
    if len(text) > 1000 or any(ord(ch) < 32 for ch in text):
        raise ValueError("expected one line of at most 1000 characters")
    return text


def as_status_ranges(value: object) -> StatusRanges:
    """"200-299,401" → ((200, 299), (401, 401)); codes 100-699."""
    ranges = []
    for part in str(value).split(","):
        low, _, high = part.strip().partition("-")
        if not (low.isascii() and low.isdigit() and len(low) <= 3) or (
                high and not (high.isascii() and high.isdigit() and len(high) <= 3)):
            raise ValueError("expected codes or ranges like 200-299,401")
        pair = (int(low), int(high or low))
        if not 100 <= pair[0] <= pair[1] <= 699:
            raise ValueError("status codes must be 100-699, low-high")
        ranges.append(pair)
    return tuple(ranges)


def as_ca_file(value: object) -> str:
    text = as_text(value)
    if not os.path.isfile(text) or not os.access(text, os.R_OK):
        raise ValueError(f"{text!r} cannot load: not a readable file")
    return text


def as_path(value: object) -> str:
    text = as_text(value)
    if not text.startswith("/") or " " in text:
        raise ValueError("expected an absolute request path without spaces")
    return text


def as_header_name(value: object) -> str:
    text = as_text(value)
    if not text or any(not (ch.isalnum() or ch in "-_") for ch in text):
        raise ValueError("expected an HTTP header name (letters, digits, - and _)")
    return text


def as_choice(*allowed: str) -> Callable[[object], str]:
    def parse(value: object) -> str:
        text = str(value).lower()
        if text not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}")
        return text
    return parse


def parsed_by(parse: Callable[[object], Any], *, query: bool = True) -> dict[str, Any]:
    """Field metadata: how the option is parsed and whether a URL may set it."""
    return {"parse": parse, "query": query}


@dataclass(frozen=True, slots=True)
class ProbeOptions:
    """Options of a module that takes none."""


@dataclass(frozen=True, slots=True)
class TlsOptions(ProbeOptions):
    #: Skip chain and host-name verification (the certificate is still read and reported).
    insecure: bool = field(default=False, metadata=parsed_by(as_bool))
    #: PEM bundle to verify against instead of the system store (a server path: not from a URL).
    ca_file: str | None = field(default=None, metadata=parsed_by(as_ca_file, query=False))
    #: SNI and the name the certificate must match (default: the target host).
    server_name: str | None = field(default=None, metadata=parsed_by(as_text))


OptionsT = TypeVar("OptionsT", bound=ProbeOptions)


def option_names(cls: type[ProbeOptions]) -> tuple[str, ...]:
    return tuple(sorted(f.name for f in dataclasses.fields(cls)))


def parse_options(cls: type[OptionsT], module: str, configured: Mapping[str, object],
                  query: Mapping[str, str] | None = None) -> OptionsT:
    """``cls`` from the configured options, overridden by those of a URL query."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for source, raw in (("configured", configured), ("query", query or {})):
        for key, value in raw.items():
            spec = fields.get(key)
            if spec is None:
                known = ", ".join(sorted(fields)) or "none"
                raise ProbeConfigError(f"probe module {module}: unknown option {key[:40]!r} (known: {known})")
            if source == "query" and not spec.metadata["query"]:
                raise ProbeConfigError(f"probe module {module}: option {key} is set in the probe "
                                       "configuration, not in the URL")
            try:
                values[key] = spec.metadata["parse"](value)
            except ValueError as exc:
                raise ProbeConfigError(f"probe module {module}: option {key}: {exc}") from None
    return cls(**values)
