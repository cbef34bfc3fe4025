"""Bounded fuzzing in CI: every parser entry point of ``targets.TARGETS`` on random and mutated
bytes, and the whole capture pipeline (files, gzip, reader, decoders, analysers, report) on
mutated real captures. Any exception other than ``UpscopeError`` fails. The long runs are
``tests/fuzz/fuzz.py`` (atheris), recorded in ``tests/fuzz/README.md``.
"""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.seeds import PCAPS, seeds
from tests.fuzz.targets import TARGETS, Target, runner

FUZZ = settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@st.composite
def mutated(draw: st.DrawFn, seed_list: list[bytes], max_size: int) -> bytes:
    """A seed with a few byte flips, insertions, deletions, a splice or a cut — what damaged and
    hostile inputs look like near valid ones."""
    data = bytearray(draw(st.sampled_from(seed_list))[:max_size])
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "cut", "repeat", "int"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 64))]
        elif op == "cut":
            del data[pos:]
        elif op == "repeat":
            data[pos:pos] = data[pos:pos + draw(st.integers(1, 256))] * draw(st.integers(1, 8))
        elif op == "int" and len(data) >= pos + 4:
            data[pos:pos + 4] = draw(st.sampled_from([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00",
                                                      b"\x7f\xff\xff\xff", b"\x80\x00\x00\x00"]))
    return bytes(data)


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_random_bytes(target: Target) -> None:
    run = runner(target)

    @FUZZ
    @given(st.binary(max_size=target.max_size))
    def check(data: bytes) -> None:
        run(data)

    check()


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_mutated_seeds(target: Target) -> None:
    seed_list = seeds(target.name)
    if not seed_list:
        pytest.skip(f"no seeds for {target.name}: the real captures are in {PCAPS}, absent here")
    run = runner(target)

    @FUZZ
    @given(mutated(seed_list, target.max_size * 4))
    def check(data: bytes) -> None:
        run(data)

    check()


def _real_captures() -> list[Path]:
    if not PCAPS.is_dir():
        return []
    return sorted(p for p in PCAPS.glob("*.pcap*") if p.stat().st_size <= 400_000)[:12]


@pytest.mark.skipif(not _real_captures(), reason=f"the real captures are in {PCAPS}, absent here")
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_pipeline_on_mutated_real_captures(compress: bool) -> None:
    """Whole files through ``analyze_files`` (what every command runs): damaged, cut, spliced."""
    from collectors.analyze import analyze_files
    from collectors.report import to_json_dict

    originals = [p.read_bytes() for p in _real_captures()]

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(mutated(originals, 400_000))
    def check(data: bytes) -> None:
        with tempfile.TemporaryDirectory(prefix="upscope-fuzz-") as tmp:
            path = Path(tmp) / ("cap.pcap.gz" if compress else "cap.pcap")
            path.write_bytes(gzip.compress(data, 1) if compress else data)
            result = analyze_files([path])
            to_json_dict(result)

    check()
