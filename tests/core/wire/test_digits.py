"""Numbers in protocol text: bounded before int(), for any text."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from core.wire.digits import MAX_DIGITS, capped, decimal


def test_examples() -> None:
    assert decimal("0") == 0 and decimal("0065535") == 65535 and decimal("9" * 19) == 10**19 - 1
    assert decimal("9" * 20) is None and decimal("") is None and decimal("-1") is None
    assert decimal("٣") is None and decimal("²") is None and decimal(" 1") is None
    assert capped("9" * 5000, 2**31 - 1) == 2**31 - 1 and capped("0" * 5000 + "42", 100) == 42
    assert capped("", 5) is None and capped("4x", 5) is None


@settings(max_examples=500)
@given(st.text(max_size=40) | st.integers(0, 10**30).map(str) | st.integers(1, 6000).map(lambda n: "7" * n))
def test_any_text_gives_a_number_or_none(text: str) -> None:
    value = decimal(text)
    ascii_digits = bool(text) and text.isascii() and text.isdigit()
    assert value == (int(text) if ascii_digits and len(text) <= MAX_DIGITS else None)
    top = capped(text, 2**31 - 1)
    assert top is None if not ascii_digits else 0 <= top <= 2**31 - 1
