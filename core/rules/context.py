"""What a rule sees: the site, the time, and whatever evidence has been gathered so far."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from core.analysis import AnalysisResult
from core.findings import Finding
from core.site.model import Site
from core.snapshot import Snapshot


@dataclass(frozen=True, slots=True)
class RuleContext:
    """Input of every rule. Rules must not read the clock or the network: ``now`` is given.

    ``site`` may be None for evidence-only runs (a capture without a site file); ``analysis`` and
    ``snapshot`` are None for site-only runs. ``environ`` resolves ``env:`` secrets (None = the
    process environment).
    """

    now: datetime
    site: Site | None = None
    analysis: AnalysisResult | None = None
    snapshot: Snapshot | None = None
    environ: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise ValueError("RuleContext.now must be timezone-aware")


Rule = Callable[[RuleContext], list[Finding]]
