"""A probe module's entry in the registry: its name, options class, default port and function."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, Protocol

from collectors.probes.options import OptionsT, option_names, parse_options
from collectors.probes.record import ProbeRecord
from core.probes import ProbeModule, ProbeResult

#: A probe with its options already parsed: record → result.
PreparedProbe = Callable[[ProbeRecord, float], ProbeResult]


class Probe(Protocol):
    """What the registry knows of a module (``ProbeSpec`` of any options class)."""

    @property
    def module(self) -> ProbeModule: ...
    @property
    def description(self) -> str: ...
    @property
    def default_port(self) -> int | None: ...
    @property
    def option_names(self) -> tuple[str, ...]: ...
    def prepare(self, configured: Mapping[str, object], query: Mapping[str, str]) -> PreparedProbe: ...


@dataclass(frozen=True, slots=True)
class ProbeSpec(Generic[OptionsT]):
    module: ProbeModule
    description: str
    default_port: int | None
    options: type[OptionsT]
    probe: Callable[[ProbeRecord, OptionsT, float], ProbeResult]

    @property
    def option_names(self) -> tuple[str, ...]:
        return option_names(self.options)

    def prepare(self, configured: Mapping[str, object], query: Mapping[str, str]) -> PreparedProbe:
        """Parse the options now (a bad one is a ``ProbeConfigError``), run the probe later."""
        options = parse_options(self.options, self.module, configured, query)
        probe = self.probe
        return lambda record, timeout: probe(record, options, timeout)
