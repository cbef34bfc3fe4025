"""The one error hierarchy of upscope.

Messages follow ``<what> <where> <problem>`` and never contain a secret.
"""

from __future__ import annotations


class UpscopeError(Exception):
    """Base class of every error upscope raises on purpose."""


class ParseError(UpscopeError):
    """Bytes that a sans-IO parser could not make sense of.

    ``offset`` is the byte offset in the input the parser was given (or in the file, for readers),
    so a user can find the damaged spot with a hex viewer.
    """

    def __init__(self, message: str, offset: int | None = None) -> None:
        self.offset = offset
        where = f" at byte {offset}" if offset is not None else ""
        super().__init__(f"{message}{where}")


class ConfigError(UpscopeError):
    """An invalid site file or setting; ``path`` is the YAML path, ``line`` 1-based when known."""

    def __init__(self, message: str, path: str = "", line: int | None = None, file: str = "") -> None:
        self.path = path
        self.line = line
        self.file = file
        place = file
        if line is not None:
            place = f"{place}:{line}" if place else f"line {line}"
        if path:
            place = f"{place} {path}" if place else path
        super().__init__(f"{place}: {message}" if place else message)
