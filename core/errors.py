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
    """An invalid site file or setting; ``path`` is the YAML path, ``line`` 1-based when known.

    A file with several problems raises one ``ConfigError`` whose ``problems`` holds each of them
    (a ``ConfigError`` each; its own fields are the first one's). ``str()`` stays one line.
    """

    def __init__(self, message: str, path: str = "", line: int | None = None, file: str = "",
                 problems: tuple[ConfigError, ...] = ()) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.file = file
        self.problems: tuple[ConfigError, ...] = problems or (self,)
        # one line for logs and status reasons: the problems one after the other
        super().__init__("; ".join(self.lines(limit=5)))

    def single(self) -> str:
        """This problem alone (``file:line path: message``), without the count of the others."""
        place = self.file
        if self.line is not None:
            place = f"{place}:{self.line}" if place else f"line {self.line}"
        if self.path:
            place = f"{place} {self.path}" if place else self.path
        return f"{place}: {self.message}" if place else self.message

    def lines(self, limit: int = 20) -> list[str]:
        """Each problem on its own line, up to ``limit``, then the count of the rest."""
        out = [p.single() for p in self.problems[:limit]]
        if len(self.problems) > limit:
            out.append(f"and {len(self.problems) - limit} more problems")
        return out
