"""The rule registry of ``core.rules`` (site-only rules, issue 2) as the diagnosis engine runs it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.analysis import AnalysisResult
from core.findings import Finding
from core.rules import RuleContext, evaluate
from core.site.model import Site


def site_findings(site: Any, analysis: AnalysisResult | None, now: datetime) -> list[Finding]:
    """Findings of every rule in ``core.rules.RULES``; the registry needs a validated ``Site``
    (a plain mapping, as some callers hand the evidence rules, has no site rules to run)."""
    if not isinstance(site, Site):
        return []
    return evaluate(RuleContext(now=now, site=site, analysis=analysis))
