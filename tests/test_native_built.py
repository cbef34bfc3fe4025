"""`make setup` builds both C extensions. Where either is missing or older than its source, the
Python twins run (same results, slower) and the tests holding the two equal skip themselves — so
this test says it out loud instead of letting those skips pass quietly."""

from __future__ import annotations

import core.wire.sip as sip
from collectors.kernels import kernels


def test_the_compiled_kernels_are_built_and_current() -> None:
    assert kernels is not None, "collectors/_kernels.c is not built, or newer than its build: run `make setup`"


def test_the_compiled_sip_header_scanner_is_built_and_current() -> None:
    assert sip._sipscan is not None, "core/wire/_sipscan.c is not built, or newer than its build: run `make setup`"
