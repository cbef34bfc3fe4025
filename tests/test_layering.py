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


#: What a face may import from the packages below it: the producer and the Snapshot's types, the
#: runtime it serves, and the renderers of files. No face runs a rule or judges anything itself.
JUDGING_MODULES = ("core.diagnosis", "core.rules", "core.licensing", "core.numbering", "core.media_quality",
                   "core.jwt_status", "core.firewall", "core.bandwidth", "core.registrations")
#: (face module, imported name) allowed although its module judges: options and value types.
FACE_EXCEPTIONS = {
    ("core.diagnosis", "DiagnosisOptions"),  # CLI flags become the rules' options
    ("core.firewall", "FlowVerdict"),  # a Snapshot field's type
    ("core.jwt_status", "JwtStatus"),  # a Snapshot field's type (the metrics' StateSet)
    ("core.bandwidth", "CODEC_NAMES"),  # the lab's --codec choices
}


def _imported_names(path: Path) -> list[tuple[str, str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: list[tuple[str, str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out += [(node.module, a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.Import):
            out += [(a.name, "*", node.lineno) for a in node.names]
    return out


def test_faces_only_render_the_producers_snapshot() -> None:
    bad = [
        f"{path.relative_to(ROOT)}:{line} imports {name} from {module}"
        for path in _files("dashboard")
        for module, name, line in _imported_names(path)
        if module.startswith(JUDGING_MODULES) and (module, name) not in FACE_EXCEPTIONS
    ]
    assert not bad, "\n".join(bad)
