"""The rule registry: pure functions ``RuleContext → [Finding]``.

``RULES`` runs in order; each rule returns nothing when its input is absent (a site rule with no
site, an evidence rule with no analysis), so one registry serves ``check-site``, capture analysis
and the live service alike. Site-only rules live in ``core.rules.site_rules``; evidence-based
rules go in their own module and are appended to ``RULES`` here.
"""

from __future__ import annotations

from core.findings import Finding, sort_findings
from core.rules.context import Rule, RuleContext
from core.rules.site_rules import SITE_RULES

RULES: list[Rule] = [*SITE_RULES]


def evaluate(ctx: RuleContext, rules: list[Rule] | None = None) -> list[Finding]:
    """Run ``rules`` (default: all of ``RULES``) and return the findings, most severe first."""
    found: list[Finding] = []
    for rule in RULES if rules is None else rules:
        found.extend(rule(ctx))
    return sort_findings(found)


__all__ = ["RULES", "Rule", "RuleContext", "evaluate"]
