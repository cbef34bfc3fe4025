"""The dependency direction dashboard → collectors → traces → core (ARCHITECTURE.md).

An AST check: a package may import only packages to its right; only ``dashboard`` imports
streamlit; only ``dashboard`` imports prometheus_client; nothing in core imports ``core.lab``
except ``core.lab`` itself. The wire codecs (``core/wire``) sit at the bottom: they import the
standard library and the one error type only, the lab and the probes use them, and no module
outside them defines the STUN magic cookie or matches a SIP start line (one codec per protocol).
"""

from __future__ import annotations

import ast
import sys
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
            # ``from core.wire import stun`` imports the module core.wire.stun
            found += [(f"{node.module}.{a.name}", node.lineno) for a in node.names if a.name != "*"]
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


WIRE = ROOT / "core" / "wire"
STUN_MAGIC_COOKIE = 0x2112A442  # RFC 5389 §6


def test_wire_codecs_import_only_the_standard_library_and_the_error_type() -> None:
    """... and ``core.native``, the loader of their compiled parts (itself standard library only)."""
    bad = []
    for path in sorted([*WIRE.rglob("*.py"), ROOT / "core" / "native.py"]):
        for name, line in _imports(path):
            top = name.split(".")[0]
            project = top in ORDER
            allowed = name.split(".")[:2] in (["core", "errors"], ["core", "native"], ["core", "wire"])
            if project and not allowed:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
            if not project and top not in sys.stdlib_module_names:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {name} (not the standard library)")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(("package", "codecs"), [
    ("core/lab", {"core.wire.sip", "core.wire.sip_build", "core.wire.digest", "core.wire.sdp",
                  "core.wire.stun", "core.wire.rtp"}),
    ("collectors/probes", {"core.wire.sip", "core.wire.sip_build", "core.wire.stun"}),
    ("collectors", {"core.wire.sip", "core.wire.sdp", "core.wire.stun", "core.wire.rtp", "core.wire.tls"}),
])
def test_the_lab_the_probes_and_the_analysers_use_the_wire_codecs(package: str, codecs: set[str]) -> None:
    imported = {name for path in (ROOT / package).rglob("*.py") for name, _ in _imports(path)}
    assert codecs <= imported, sorted(codecs - imported)


def _second_codec(path: Path) -> list[str]:
    """Where ``path`` defines the STUN magic cookie or matches a SIP start line itself."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Constant):
            value = node.value
            if (type(value) is int and value == STUN_MAGIC_COOKIE) or (
                    isinstance(value, bytes) and STUN_MAGIC_COOKIE.to_bytes(4, "big") in value):
                found.append(f"{node.lineno}: the STUN magic cookie")
            elif isinstance(value, str | bytes) and ("SIP/2\\.0" if isinstance(value, str) else b"SIP/2\\.0") in value:
                found.append(f"{node.lineno}: a regular expression for a SIP start line")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in ("startswith", "endswith") and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str | bytes)
              and ("SIP/2" if isinstance(node.args[0].value, str) else b"SIP/2") in node.args[0].value):
            found.append(f"{node.lineno}: a SIP start line test")
    return found


def test_no_second_sip_or_stun_codec_outside_core_wire() -> None:
    bad = [f"{path.relative_to(ROOT)}:{where}"
           for package in ORDER for path in _files(package)
           if WIRE not in path.parents for where in _second_codec(path)]
    assert not bad, "\n".join(bad)


def test_the_second_codec_check_sees_what_it_looks_for(tmp_path: Path) -> None:
    sample = tmp_path / "copy.py"
    sample.write_text('import re\nCOOKIE = 0x2112A442\nRAW = b"\\x21\\x12\\xa4\\x42"\n'
                      'LINE = re.compile(r"SIP/2\\.0 (\\d{3})")\nok = "SIP/2.0 200".startswith("SIP/2.0")\n')
    assert sorted(w.split(": ")[1] for w in _second_codec(sample)) == [
        "a SIP start line test", "a regular expression for a SIP start line", "the STUN magic cookie",
        "the STUN magic cookie"]


#: What a face may import from the packages below it: the producer and the Snapshot's types, the
#: runtime it serves, and the renderers of files. No face runs a rule or judges anything itself.
JUDGING_MODULES = ("core.diagnosis", "core.licensing", "core.numbering", "core.media_quality",
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


def test_one_rule_engine() -> None:
    """One registry (core.diagnosis.RULES) with one Rule signature: no second engine, no rule
    module reading the site through string paths."""
    assert not (ROOT / "core" / "rules").exists()
    from core.diagnosis import RULES, RuleContext

    assert len(RULES) == len(set(RULES)) > 20
    for rule in RULES:
        assert rule.__annotations__.get("ctx") in ("RuleContext", RuleContext), rule.__name__
    for path in (ROOT / "core").rglob("*.py"):
        assert "site_get(" not in path.read_text(encoding="utf-8"), path


def test_trace_files_are_read_in_traces() -> None:
    """The OSBiz trace log has one reader, in ``traces/`` with the other trace-file code; the
    trace-profile table stays in ``core`` because the findings catalogue (``core.findings``)
    gives every finding its trace set and core imports nothing above it."""
    readers = [p.relative_to(ROOT).as_posix() for package in ORDER for p in _files(package)
               if "class TraceLogReader" in p.read_text(encoding="utf-8")]
    assert readers == ["traces/tracelog.py"]
    assert not (ROOT / "collectors" / "capture" / "tracelog.py").exists()
    in_core = sorted(p.relative_to(ROOT).as_posix() for p in _files("core")
                     if any(name == "core.trace_profiles" for name, _ in _imports(p)))
    assert in_core == ["core/findings.py"]
