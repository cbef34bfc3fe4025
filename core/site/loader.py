"""Load a site file: YAML text → ``Site``, every failure a one-line ``ConfigError``.

Theory of operation: the YAML is *composed* (not loaded) so each node keeps its start mark; a
small walker turns the node tree into plain data while recording ``path → line``; pydantic then
validates the data and each of its errors is rewritten from its location and error *type* only —
pydantic's own messages echo the input value, which may be a secret. Hostile input is bounded:
a size cap checked before reading, NUL bytes and non-UTF-8 refused, a node budget against alias
bombs, recursion depth caught.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from core.errors import ConfigError
from core.site.model import Site

#: A site file is a few KB; anything far larger is the wrong file (and must not be read whole).
MAX_SITE_BYTES = 5 * 1024 * 1024
#: Nodes after alias expansion; a few thousand users stay well below, an alias bomb does not.
MAX_NODES = 200_000

PathT = tuple[str | int, ...]
_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


def format_path(path: PathT) -> str:
    """``("users", 2, "did")`` → ``users[2].did``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


class _Walker:
    """Turns a composed YAML node tree into dicts/lists/scalars and records each path's line."""

    def __init__(self, loader: yaml.SafeLoader, name: str) -> None:
        self.loader = loader
        self.name = name
        self.lines: dict[PathT, int] = {}
        self.budget = MAX_NODES

    def walk(self, node: yaml.Node, path: PathT) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise ConfigError(
                f"more than {MAX_NODES} YAML nodes (alias expansion?)", format_path(path),
                node.start_mark.line + 1, self.name,
            )
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.CollectionNode) and node.tag not in _PLAIN_TAGS:
            # e.g. !!python/object on a mapping: SafeLoader would refuse it, so do we.
            raise ConfigError(f"YAML tag {node.tag} is not allowed", format_path(path),
                              node.start_mark.line + 1, self.name)
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    raise ConfigError("mapping keys must be plain names", format_path(path), line, self.name)
                key = key_node.value
                if key in out:
                    raise ConfigError(f"duplicate key {key!r}", format_path(path), line, self.name)
                child = (*path, key)
                self.lines[child] = line
                out[key] = self.walk(value_node, child)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.walk(item, (*path, i)) for i, item in enumerate(node.value)]
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            problem = " ".join((getattr(exc, "problem", None) or "cannot construct value").split())
            raise ConfigError(f"invalid YAML value: {problem}", format_path(path),
                              node.start_mark.line + 1, self.name) from None

    def line_of(self, path: PathT) -> int | None:
        """Line of the deepest recorded prefix of ``path`` (a missing key → its parent's line)."""
        for n in range(len(path), -1, -1):
            line = self.lines.get(path[:n])
            if line is not None:
                return line
        return None


# Messages by pydantic error type, from the location and the schema (ctx) only — never the input.
_MESSAGES: dict[str, str] = {
    "missing": "required key missing",
    "extra_forbidden": "unknown key",
    "string_type": "must be a string (quote numbers, e.g. \"100\")",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "date_type": "must be a date (YYYY-MM-DD)",
    "date_parsing": "must be a date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "must be a date (YYYY-MM-DD)",
    "date_from_datetime_inexact": "must be a date without time",
    "datetime_type": "must be a date-time with time zone (e.g. 2026-10-01T10:00:00Z)",
    "datetime_parsing": "must be a date-time with time zone (e.g. 2026-10-01T10:00:00Z)",
    "datetime_from_date_parsing": "must be a date-time with time zone (e.g. 2026-10-01T10:00:00Z)",
    "timezone_aware": "must carry a time zone (e.g. Z or +01:00)",
    "string_pattern_mismatch": "has the wrong format",
    "string_too_short": "must not be empty",
    "string_too_long": "is too long",
    "too_short": "has too few items",
    "too_long": "has too many items",
    "none_required": "must be empty",
    "finite_number": "must be a finite number",
}

# Friendlier format descriptions for the patterns of core.site.model.
_PATTERN_HINTS: dict[str, str] = {
    r"^[0-9]{1,15}$": "must be 1–15 digits, quoted (e.g. \"100\")",
    r"^\+?[0-9 ()/-]{1,40}$": "must be a phone number: digits, optional leading +, spaces",
    r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$": "must be a name of letters, digits, _ . - (max 63)",
    r"^[^@\s]+@[^@\s]+$": "must be an e-mail address",
}


def _message(err: Any) -> str:
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '?')}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        op = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}[kind]
        bound = next(iter(ctx.values()), "?")
        return f"must be {op} {bound}"
    if kind == "string_pattern_mismatch":
        return _PATTERN_HINTS.get(str(ctx.get("pattern", "")), _MESSAGES[kind])
    if kind == "value_error":
        # Raised by our own validators, whose messages never include a value.
        msg = str(err.get("msg", "invalid value"))
        return msg.removeprefix("Value error, ")
    return _MESSAGES.get(kind, f"invalid value ({kind})")


def _from_validation(exc: ValidationError, walker: _Walker) -> ConfigError:
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    path: PathT = tuple(p for p in first["loc"] if isinstance(p, str | int))
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return ConfigError(_message(first) + more, format_path(path), walker.line_of(path), walker.name)


def load_site_text(text: str, name: str = "<site>") -> Site:
    """Parse and validate a site file given as text; ``name`` is used in error messages."""
    if "\x00" in text:
        raise ConfigError("binary data, not a YAML site file", file=name)
    try:
        loader = yaml.SafeLoader(text)
        walker = _Walker(loader, name)
        try:
            node = loader.get_single_node()
            data = walker.walk(node, ()) if node is not None else None
        finally:
            loader.dispose()
    except yaml.reader.ReaderError as exc:
        at = text.count("\n", 0, exc.position) + 1
        raise ConfigError(f"character U+{exc.character:04X} is not allowed in YAML" if isinstance(
            exc.character, int) else "invalid character in YAML", line=at, file=name) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join((exc.problem or exc.context or "syntax error").split())
        raise ConfigError(f"YAML syntax error: {problem}", line=line, file=name) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not a YAML text: {type(exc).__name__}", file=name) from None
    except RecursionError:
        raise ConfigError("YAML nested too deeply", file=name) from None
    if not isinstance(data, dict):
        raise ConfigError("a site file must be a YAML mapping (system:, connectivity:, …)", file=name,
                          line=1 if data is not None else None)
    try:
        return Site.model_validate(data)
    except ValidationError as exc:
        raise _from_validation(exc, walker) from None
    except RecursionError:
        raise ConfigError("site data nested too deeply", file=name) from None


def load_site(path: str | os.PathLike[str]) -> Site:
    """Read and validate a site file; every failure is a one-line ``ConfigError`` naming the place."""
    p = Path(path)
    name = str(path)
    try:
        if p.is_dir():
            raise ConfigError("is a directory, not a site file", file=name)
        size = p.stat().st_size
        if size > MAX_SITE_BYTES:
            raise ConfigError(f"file too large ({size} bytes; a site file is at most {MAX_SITE_BYTES})",
                              file=name)
        with p.open("rb") as fh:
            raw = fh.read(MAX_SITE_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError("no such file", file=name) from None
    except PermissionError:
        raise ConfigError("permission denied", file=name) from None
    except OSError as exc:
        raise ConfigError(f"cannot read ({exc.strerror or type(exc).__name__})", file=name) from None
    if len(raw) > MAX_SITE_BYTES:  # grew between stat and read, or a device
        raise ConfigError(f"file too large (a site file is at most {MAX_SITE_BYTES} bytes)", file=name)
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise ConfigError(f"binary data at byte {nul}, not a YAML site file", file=name)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", file=name) from None
    return load_site_text(text, name)
