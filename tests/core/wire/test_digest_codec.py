"""Digest authentication: the RFC test vectors, round trips, and hostile header values."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ParseError
from core.wire.digest import (
    DigestChallenge,
    answer,
    format_challenge,
    format_credentials,
    parse_challenge,
    parse_credentials,
    parse_params,
    response_value,
    verify,
)


@pytest.mark.parametrize(("algorithm", "realm", "password", "nonce", "cnonce", "expected"), [
    # RFC 2617 §3.5
    ("MD5", "testrealm@host.com", "Circle Of Life", "dcd98b7102dd2f0e8b11d0f600bfb0c093", "0a4f113b",
     "6629fae49393a05397450978507c4ef1"),
    # RFC 7616 §3.9.1
    ("MD5", "http-auth@example.org", "Circle of Life", "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
     "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", "8ca523f5e9506fed4657c9700eebdbec"),
    ("SHA-256", "http-auth@example.org", "Circle of Life", "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
     "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
     "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
])
def test_rfc_test_vectors(algorithm: str, realm: str, password: str, nonce: str, cnonce: str, expected: str) -> None:
    assert response_value(algorithm=algorithm, username="Mufasa", realm=realm, password=password,
                          method="GET", uri="/dir/index.html", nonce=nonce, qop="auth", cnonce=cnonce,
                          nc="00000001") == expected


def test_challenge_answer_verify_round_trip_and_a_wrong_key() -> None:
    challenge = parse_challenge('Digest realm="phoneapp.unify.com", nonce="abc123", algorithm=MD5, qop="auth"')
    assert challenge == DigestChallenge("phoneapp.unify.com", "abc123", "MD5", ("auth",))
    assert parse_challenge(format_challenge(challenge)) == challenge
    creds = answer(challenge, username="osbiz-lab", password="key-1", method="REGISTER",
                   uri="sip:phoneapp.unify.com", cnonce="c0ffee")
    header = format_credentials(creds)
    assert "key-1" not in header and "key-1" not in repr(creds)
    back = parse_credentials(header)
    assert back == creds and (back.qop, back.nc) == ("auth", "00000001")
    assert verify(back, password="key-1", method="REGISTER")
    assert not verify(back, password="key-2", method="REGISTER")
    assert not verify(back, password="key-1", method="INVITE")


def test_rfc2069_style_without_qop() -> None:
    creds = answer(parse_challenge('Digest realm="r", nonce="n"'), username="u", password="p", method="REGISTER",
                   uri="sip:r", cnonce="x")
    assert (creds.qop, creds.cnonce, creds.nc) == (None, None, None)
    assert verify(parse_credentials(format_credentials(creds)), password="p", method="REGISTER")


def test_quoted_strings_commas_and_escapes() -> None:
    scheme, params = parse_params('Digest realm="a, \\"b\\"", nonce=xyz ,qop="auth,auth-int", opaque=""')
    assert scheme == "Digest" and params == {"realm": 'a, "b"', "nonce": "xyz", "qop": "auth,auth-int", "opaque": ""}


@pytest.mark.parametrize("value", [
    "", "Digest", 'Basic realm="x"', 'Digest realm="x"', 'Digest realm="x", nonce="y', 'Digest =x',
    'Digest realm="x", nonce="y", algorithm=MD5-sess', "Digest " + "a=b," * 40, "Digest realm=" + "x" * 9000,
])
def test_bad_challenges_raise_parse_error(value: str) -> None:
    with pytest.raises(ParseError):
        parse_challenge(value)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300) | st.text(alphabet='Digest realm=",\\ nonce=uxqop', max_size=120))
def test_any_text_parses_or_raises_parse_error(value: str) -> None:
    with contextlib.suppress(ParseError):
        parse_challenge(value)
    with contextlib.suppress(ParseError):
        creds = parse_credentials(value)
        verify(creds, password="p", method="REGISTER")
