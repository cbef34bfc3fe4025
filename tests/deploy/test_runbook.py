"""docs/findings.md and the Alertmanager remedy template are the findings catalogue, rendered."""

from __future__ import annotations

import re

from core.findings import CATALOGUE
from dashboard.runbook import DOCS, TEMPLATE, findings_markdown, remedies_template

REGENERATE = "the findings catalogue changed: run `.venv/bin/python -m dashboard.runbook` and commit the result"


def test_docs_page_is_the_catalogue() -> None:
    assert DOCS.read_text(encoding="utf-8") == findings_markdown(), REGENERATE


def test_alertmanager_remedies_are_the_catalogue() -> None:
    assert TEMPLATE.read_text(encoding="utf-8") == remedies_template(), REGENERATE


def test_one_anchor_per_finding_with_its_remedy() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for spec in CATALOGUE.values():
        section = text.split(f'<a id="{spec.id}"></a>', 1)[1].split("<a id=", 1)[0]
        assert f"**Remedy:** {spec.remedy}\n" in section
        assert spec.severity.value in section


def test_published_text_cites_no_internal_documents() -> None:
    for text in (findings_markdown(), remedies_template()):
        assert "§" not in text and not re.search(r"\bseed\b|DOMAIN", text)

