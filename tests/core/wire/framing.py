"""Every event a stream framer has ready, errors included, as the framer tests compare them."""

from __future__ import annotations

from typing import Protocol

from core.errors import ParseError
from core.wire.stream import NEED_DATA


class Framer(Protocol):
    def next_event(self) -> object: ...


def drain(framer: Framer) -> list[object]:
    """The events until NEED_DATA; a ParseError is kept as ("error", offset) and framing goes on."""
    out: list[object] = []
    while True:
        try:
            ev = framer.next_event()
        except ParseError as exc:
            out.append(("error", exc.offset))
            continue
        if ev is NEED_DATA:
            return out
        out.append(ev)
