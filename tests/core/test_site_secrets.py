"""Secret references: parsing, lazy resolution, fingerprints, never the value in repr/str/errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.secrets import SecretKind, SecretRef, SecretUnavailable, fingerprint

VALUE = "sk-live-0123456789abcdef"


def test_fingerprint_is_first_six_hex_of_sha256() -> None:
    assert fingerprint(VALUE) == hashlib.sha256(VALUE.encode()).hexdigest()[:6]
    assert len(fingerprint("x")) == 6


def test_inline_value_never_in_repr_or_str() -> None:
    ref = SecretRef.parse(VALUE)
    assert ref.kind is SecretKind.INLINE
    assert VALUE not in repr(ref) and VALUE not in str(ref)
    assert ref.source == "inline"
    assert ref.resolve() == VALUE
    assert ref.to_public_dict() == {"source": "inline", "resolvable": True, "fingerprint": fingerprint(VALUE)}


def test_env_reference_is_resolved_lazily() -> None:
    ref = SecretRef.parse("env:UPSCOPE_TEST_KEY")
    assert ref.source == "env:UPSCOPE_TEST_KEY"
    assert ref.try_resolve({}) is None
    assert ref.to_public_dict({}) == {"source": "env:UPSCOPE_TEST_KEY", "resolvable": False, "fingerprint": None}
    assert ref.resolve({"UPSCOPE_TEST_KEY": f" {VALUE}\n"}) == VALUE
    with pytest.raises(SecretUnavailable, match="environment variable not set"):
        ref.resolve({"UPSCOPE_TEST_KEY": "  "})


def test_file_reference(tmp_path: Path) -> None:
    f = tmp_path / "key"
    f.write_text(VALUE + "\n")
    ref = SecretRef.parse(f"file:{f}")
    assert ref.resolve() == VALUE
    assert ref.fingerprint() == fingerprint(VALUE)
    missing = SecretRef.parse(f"file:{tmp_path / 'nope'}")
    with pytest.raises(SecretUnavailable, match="cannot read"):
        missing.resolve()
    big = tmp_path / "big"
    big.write_bytes(b"a" * 70_000)
    with pytest.raises(SecretUnavailable, match="larger than"):
        SecretRef.parse(f"file:{big}").resolve()
    binary = tmp_path / "bin"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SecretUnavailable, match="not UTF-8"):
        SecretRef.parse(f"file:{binary}").resolve()


@pytest.mark.parametrize("text", ["", "   ", "env:", "env:1ABC", "env:A-B", "file:"])
def test_bad_references_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        SecretRef.parse(text)


@given(st.text(min_size=1).filter(lambda s: s.strip() and not s.strip().startswith(("env:", "file:"))))
def test_any_inline_secret_stays_out_of_repr(value: str) -> None:
    ref = SecretRef.parse(value)
    assert ref.resolve() == value.strip()
    assert repr(ref) == "SecretRef(inline)"
    assert str(ref) == "<secret inline>"
