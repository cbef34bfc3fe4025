"""docs/findings.md and the Alertmanager remedy template are the findings catalogue, rendered."""

from __future__ import annotations

import re

from core.findings import CATALOGUE
from dashboard.runbook import DOCS, TEMPLATE, findings_markdown, public_text, remedies_template

REGENERATE = "the findings catalogue changed: run `.venv/bin/python -m dashboard.runbook` and commit the result"


def test_docs_page_is_the_catalogue() -> None:
    assert DOCS.read_text(encoding="utf-8") == findings_markdown(), REGENERATE


def test_alertmanager_remedies_are_the_catalogue() -> None:
    assert TEMPLATE.read_text(encoding="utf-8") == remedies_template(), REGENERATE


def test_one_anchor_per_finding_with_its_remedy() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for spec in CATALOGUE.values():
        section = text.split(f'<a id="{spec.id}"></a>', 1)[1].split("<a id=", 1)[0]
        assert f"**Remedy:** {public_text(spec.remedy)}\n" in section
        assert spec.severity.value in section


def test_published_text_cites_no_internal_documents() -> None:
    for text in (findings_markdown(), remedies_template()):
        assert "§" not in text and not re.search(r"\bseed\b|DOMAIN", text)


def test_public_text_keeps_the_sentence() -> None:
    assert public_text("Open the egress rules of seed §4: TCP 65061.") == "Open the egress rules: TCP 65061."
    assert public_text("Close it (seed §4, OSBiz Security Checklist).") == "Close it (OSBiz Security Checklist)."
    assert public_text("Run the wizard (seed §3.2, §3.3.3).") == "Run the wizard."
    assert public_text("Uninstall it (seed §5.3 FAQ).") == "Uninstall it."
