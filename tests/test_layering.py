"""The dependency direction dashboard → collectors → traces → core (ARCHITECTURE.md).

An AST check: a package may import only packages to its right; only ``dashboard`` imports
streamlit; only ``dashboard`` imports prometheus_client; nothing in core imports ``core.lab``
except ``core.lab`` itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["dashboard", "collectors", "traces", "core"]
FACE_ONLY = {"streamlit", "prometheus_client"}


def _imports(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno))
    return found


def _files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", ORDER)
def test_imports_follow_the_dependency_direction(package: str) -> None:
    allowed = set(ORDER[ORDER.index(package):])
    bad = []
    for path in _files(package):
        for name, line in _imports(path):
            top = name.split(".")[0]
            if top in ORDER and top not in allowed:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
            if top in FACE_ONLY and package != "dashboard":
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {name} (faces only)")
    assert not bad, "\n".join(bad)


def test_core_does_not_import_the_lab() -> None:
    bad = []
    for path in _files("core"):
        if "lab" in path.relative_to(ROOT / "core").parts:
            continue
        for name, line in _imports(path):
            if name == "core.lab" or name.startswith("core.lab."):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not bad, "\n".join(bad)


def test_no_package_imports_tests_or_benchmarks() -> None:
    bad = [
        f"{p.relative_to(ROOT)}:{line} imports {name}"
        for package in ORDER
        for p in _files(package)
        for name, line in _imports(p)
        if name.split(".")[0] in {"tests", "benchmarks"}
    ]
    assert not bad, "\n".join(bad)
