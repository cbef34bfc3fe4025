"""Load a site file: YAML text → ``Site``, every failure a one-line ``ConfigError``.

Theory of operation: the YAML *events* (libyaml's parser when present) are read one by one into
plain data while recording ``path → line``; pydantic then validates the data and each of its
errors is rewritten from its location and error *type* only. Nothing of the input's text reaches
a message: a value that fails to load may be a secret written wrong (an unquoted ``!S3cret`` is a
YAML tag, a ``*Pw`` an alias), so an error names the file, line, path and the kind of problem.
Hostile input is bounded before any expansion: a size cap checked before reading, NUL bytes and
non-UTF-8 refused, anchors and aliases refused outright (a site file needs none, and an alias is
how a small file grows into billions of nodes), a node budget and a nesting limit while reading.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from core.errors import ConfigError
from core.site.model import Site

#: A site file is a few KB (a 5 000-user site about 1 MB); anything far larger is the wrong file.
MAX_SITE_BYTES = 5 * 1024 * 1024
#: YAML nodes; the largest OSBiz (1 500 users, ~15 nodes each) stays far below.
MAX_NODES = 100_000
#: Nesting of mappings and lists; the schema is 4 deep.
MAX_DEPTH = 64
#: Problems listed one by one; beyond, their count.
MAX_PROBLEMS = 20

PathT = tuple[str | int, ...]
_YAML = "tag:yaml.org,2002:"
_PLAIN_COLLECTION_TAGS = (None, "!", _YAML + "map", _YAML + "seq", _YAML + "omap")
# Explicit tags the safe constructor knows; any other tag text may be a secret written unquoted.
_KNOWN_TAGS = {_YAML + n: f"!!{n}" for n in ("str", "int", "float", "bool", "null", "timestamp", "binary",
                                               "map", "seq", "set", "omap", "pairs", "merge", "value")}
_WHAT = {"int": "an integer", "float": "a number", "bool": "true or false", "timestamp": "a date",
         "binary": "base64 data", "null": "empty", "str": "text"}
#: Keys whose value is a secret: a problem below one names the key, never what is under it.
SECRET_KEYS = frozenset({"api_key", "jwt", "jwt_verify_key", "password"})
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def format_path(path: PathT) -> str:
    """``("users", 2, "did")`` → ``users[2].did``; nothing below a secret key is shown."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
            if part in SECRET_KEYS:
                break
    return out


def _tag_name(tag: str | None) -> str:
    """A tag as a message may show it: the standard ones by name, any other not at all."""
    return _KNOWN_TAGS.get(tag or "", "a custom YAML tag")


def _syntax_problem(text: str) -> str:
    """A YAML parser message without any quoted input (libyaml's are fixed; PyYAML's quote)."""
    text = re.sub(r"'[^'<]{2,}'|\"[^\"<]{2,}\"", "", " ".join(text.split()))
    return text[:120] or "syntax error"


class _Reader:
    """YAML events → dicts/lists/scalars, recording each path's line; refuses what a site file
    never needs (anchors, aliases, custom tags, merge keys, several documents)."""

    def __init__(self, loader: yaml.SafeLoader, name: str) -> None:
        self.loader = loader
        # PyYAML's parser methods carry no annotations: typed views of the three used here
        self.next: Callable[[], Any] = loader.get_event
        self.peek: Callable[[], Any] = loader.peek_event
        self.resolve: Callable[[type[yaml.Node], str, tuple[bool, bool]], str] = loader.resolve
        self.name = name
        self.lines: dict[PathT, int] = {}
        self.budget = MAX_NODES

    def error(self, message: str, path: PathT, event: Any) -> ConfigError:
        return ConfigError(message, format_path(path), event.start_mark.line + 1, self.name)

    def document(self) -> Any:
        loader = self.loader
        self.next()  # stream start
        if loader.check_event(yaml.StreamEndEvent):
            return None
        self.next()  # document start
        value = self.value((), 0)
        self.next()  # document end
        if not loader.check_event(yaml.StreamEndEvent):
            raise self.error("more than one YAML document (---) in a site file", (), self.peek())
        return value

    def value(self, path: PathT, depth: int) -> Any:
        event: Any = self.next()
        self.budget -= 1
        if self.budget < 0:
            raise self.error(f"more than {MAX_NODES} YAML nodes: not a site file", path, event)
        self.lines.setdefault(path, event.start_mark.line + 1)
        if isinstance(event, yaml.AliasEvent):
            raise self.error("YAML aliases (*name) are not allowed in a site file; a value starting "
                             "with * must be quoted", path, event)
        if getattr(event, "anchor", None) is not None:
            raise self.error("YAML anchors (&name) are not allowed in a site file; a value starting "
                             "with & must be quoted", path, event)
        if isinstance(event, yaml.ScalarEvent):
            return self.scalar(event, path)
        if depth >= MAX_DEPTH:
            raise self.error(f"YAML nested too deeply (more than {MAX_DEPTH} levels)", path, event)
        if event.tag not in _PLAIN_COLLECTION_TAGS:
            raise self.error(f"{_tag_name(event.tag)} is not allowed here", path, event)
        if isinstance(event, yaml.SequenceStartEvent):
            items: list[Any] = []
            while not self.loader.check_event(yaml.SequenceEndEvent):
                items.append(self.value((*path, len(items)), depth + 1))
            self.next()
            return items
        out: dict[str, Any] = {}
        while not self.loader.check_event(yaml.MappingEndEvent):
            key_event: Any = self.peek()
            if not isinstance(key_event, yaml.ScalarEvent) or key_event.anchor is not None \
                    or key_event.tag not in (None, "!") or (key_event.implicit[0] and key_event.value == "<<"):
                raise self.error("mapping keys must be plain names", path, key_event)
            self.next()
            key: str = key_event.value
            if key in out:
                secret = any(part in SECRET_KEYS for part in path)
                raise self.error("duplicate key" if secret else f"duplicate key {key[:64]!r}", path, key_event)
            child = (*path, key)
            mark: Any = key_event.start_mark
            self.lines[child] = mark.line + 1
            out[key] = self.value(child, depth + 1)
        self.next()
        return out

    def scalar(self, event: Any, path: PathT) -> Any:
        tag: str = event.tag
        explicit = tag not in (None, "!")
        if not explicit:
            tag = self.resolve(yaml.ScalarNode, event.value, event.implicit)
        if explicit and tag not in _KNOWN_TAGS:
            # e.g. ``password: !S3cret`` — the tag *is* the value the user meant to write
            raise self.error("a value starting with ! is read as a YAML tag, which a site file does "
                             "not allow: quote the value", path, event)
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        try:
            return self.loader.construct_object(node, deep=True)
        except Exception:
            short = str(tag).removeprefix(_YAML)
            what = _WHAT.get(short, "a value of its type")
            if explicit:
                raise self.error(f"the value is not {what}, as its tag {_tag_name(tag)} requires", path,
                                 event) from None
            raise self.error(f"the value looks like {what} but is not a valid one: quote it to keep it "
                             "as text", path, event) from None

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


def _from_validation(exc: ValidationError, reader: _Reader) -> ConfigError:
    """Every pydantic error as one ``ConfigError`` (the first as the message, all in ``problems``)."""
    problems = []
    for err in exc.errors(include_url=False, include_input=False):
        path: PathT = tuple(p for p in err["loc"] if isinstance(p, str | int))
        problems.append(ConfigError(_message(err), format_path(path), reader.line_of(path), reader.name))
    first = problems[0]
    return ConfigError(first.message, first.path, first.line, first.file, problems=tuple(problems))


def load_site_text(text: str, name: str = "<site>") -> Site:
    """Parse and validate a site file given as text; ``name`` is used in error messages."""
    if "\x00" in text:
        raise ConfigError("binary data, not a YAML site file", file=name)
    if len(text) > MAX_SITE_BYTES:
        raise ConfigError(f"text too large (a site file is at most {MAX_SITE_BYTES} bytes)", file=name)
    try:
        loader = _Loader(text)
        reader = _Reader(loader, name)
        try:
            data = reader.document()
        finally:
            loader.dispose()
    except yaml.reader.ReaderError as exc:
        at = text.count("\n", 0, exc.position) + 1 if isinstance(exc.position, int) else None
        raise ConfigError(f"character U+{exc.character:04X} is not allowed in YAML" if isinstance(
            exc.character, int) else "a character not allowed in YAML", line=at, file=name) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = _syntax_problem(exc.problem or exc.context or "syntax error")
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
        raise _from_validation(exc, reader) from None
    except RecursionError:
        raise ConfigError("site data nested too deeply", file=name) from None


def load_site(path: str | os.PathLike[str]) -> Site:
    """Read and validate a site file; every failure is a one-line ``ConfigError`` naming the place.

    Only a regular file is read (a FIFO or a device would block or never end), opened without
    blocking so that even the check cannot hang.
    """
    name = str(path)
    try:
        fd = os.open(Path(path), os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ConfigError("no such file", file=name) from None
    except PermissionError:
        raise ConfigError("permission denied", file=name) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a site file", file=name) from None
    except OSError as exc:
        raise ConfigError(f"cannot read ({exc.strerror or type(exc).__name__})", file=name) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ConfigError("is a directory, not a site file", file=name)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError("not a regular file (a FIFO, socket or device), not a site file", file=name)
        if info.st_size > MAX_SITE_BYTES:
            raise ConfigError(f"file too large ({info.st_size} bytes; a site file is at most {MAX_SITE_BYTES})",
                              file=name)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            raw = fh.read(MAX_SITE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read ({exc.strerror or type(exc).__name__})", file=name) from None
    finally:
        os.close(fd)
    if len(raw) > MAX_SITE_BYTES:  # grew between stat and read
        raise ConfigError(f"file too large (a site file is at most {MAX_SITE_BYTES} bytes)", file=name)
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise ConfigError(f"binary data at byte {nul}, not a YAML site file", file=name)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", file=name) from None
    return load_site_text(text, name)
