"""A compiled-kernel build older than its source is not used (it could read other layouts)."""

from __future__ import annotations

import os
from pathlib import Path

from core.native import stale


def test_a_build_older_than_its_source_is_stale(tmp_path: Path) -> None:
    source, built = tmp_path / "_kernels.c", tmp_path / "_kernels.so"
    source.write_text("int x;")
    built.write_bytes(b"\x7fELF")
    os.utime(source, (1_000, 1_000))
    os.utime(built, (2_000, 2_000))
    assert not stale(source, built)
    os.utime(source, (3_000, 3_000))  # the source changed after the build (a pull, a merge)
    assert stale(source, built)


def test_an_installed_package_without_its_source_is_not_stale(tmp_path: Path) -> None:
    built = tmp_path / "_kernels.so"
    built.write_bytes(b"\x7fELF")
    assert not stale(tmp_path / "_kernels.c", built)
