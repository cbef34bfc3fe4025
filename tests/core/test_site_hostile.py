"""Hostile site files: a value that fails to load is never quoted; secret files have a shape.

Each case writes a secret-looking canary the wrong way (a YAML tag, an alias, an anchor, a tag
that does not fit, a date or number that is not one) under a secret key and checks the error
names file, line and path and the kind of problem — and holds no part of the canary.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.secrets import SecretRef, SecretUnavailable
from core.site import load_site, load_site_text

ROOT = Path(__file__).resolve().parents[2]
HEALTHY = (ROOT / "examples" / "site-healthy.yaml").read_text(encoding="utf-8")
CANARY = "S3cr3tPW9-canary"
SIP_LINE = HEALTHY.count("\n") + 3  # the password line of the block appended below

BAD_VALUES = {
    "tag": f"!{CANARY}",
    "verbatim tag": f"!<tag:{CANARY}> x",
    "alias": f"*{CANARY}",
    "anchor": f"&{CANARY} x",
    "int tag": f"!!int {CANARY}",
    "float tag": f"!!float {CANARY}",
    "timestamp tag": "!!timestamp 2026-13-45",
    "implicit bad date": "2026-13-45",
    "4301 digits": "9" * 4301,
    "binary tag": f"!!binary {CANARY}!",
    "mapping": f"{{{CANARY}: 1}}",
    "list": f"[{CANARY}]",
}


def _with_password(value: str) -> str:
    return HEALTHY + f"sip_credentials:\n  username: osbiz\n  password: {value}\n"


@pytest.mark.parametrize("kind", sorted(BAD_VALUES))
def test_a_secret_that_fails_to_load_is_never_quoted(kind: str) -> None:
    value = BAD_VALUES[kind]
    with pytest.raises(ConfigError) as info:
        load_site_text(_with_password(value), "site.yaml")
    err = info.value
    text = str(err) + "".join(err.lines())
    assert CANARY not in text and CANARY[:6] not in text and value not in text
    assert "\n" not in str(err)
    assert (err.file, err.line, err.path) == ("site.yaml", SIP_LINE, "sip_credentials.password"), text


def test_secret_errors_keep_their_cause_out_of_the_chain() -> None:
    """No ``__cause__``/``__context__`` carrying the value (a logger printing the chain would leak it)."""
    with pytest.raises(ConfigError) as info:
        load_site_text(_with_password(f"!!int {CANARY}"), "site.yaml")
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_every_problem_is_listed() -> None:
    text = HEALTHY.replace('callno: "100"', "callno: 100").replace('callno: "101"', "callno: x101")
    text = text.replace("upstream_kbps: ", "upstream_kbps: -", 1)
    with pytest.raises(ConfigError) as info:
        load_site_text(text, "site.yaml")
    lines = info.value.lines()
    assert len(lines) == 3 and all(line.startswith("site.yaml:") for line in lines)
    assert {"connectivity.upstream_kbps", "users[0].callno", "users[1].callno"} == {
        p.path for p in info.value.problems}
    assert "more problem" not in str(info.value)


def test_problems_beyond_the_limit_are_counted() -> None:
    users = "".join(f'  - {{callno: x{i}}}\n' for i in range(30))
    text = ("system: {name: s1, model: S, version: V3R3 FR1}\n"
            "connectivity: {simultaneous_calls: 4, upstream_kbps: 1000}\nusers:\n" + users)
    with pytest.raises(ConfigError) as info:
        load_site_text(text, "site.yaml")
    lines = info.value.lines(limit=20)
    assert len(lines) == 21 and lines[-1].startswith("and ") and lines[-1].endswith("more problems")


def test_site_file_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "site.yaml"
    os.mkfifo(fifo)
    result: list[str] = []
    worker = threading.Thread(target=lambda: result.append(_load_error(fifo)), daemon=True)
    worker.start()
    worker.join(10)
    assert result and "not a regular file" in result[0]


def _load_error(path: Path) -> str:
    try:
        load_site(path)
    except ConfigError as exc:
        return str(exc)
    return "loaded"


@pytest.mark.parametrize("content,problem", [
    (b"root:$6$salt$hash:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n", "not one line of text"),
    (b"", "empty"),
    (b"\xff\xfe", "not UTF-8"),
])
def test_secret_file_of_the_wrong_shape_is_refused(tmp_path: Path, content: bytes, problem: str) -> None:
    f = tmp_path / "secret"
    f.write_bytes(content)
    ref = SecretRef.parse(f"file:{f}")
    with pytest.raises(SecretUnavailable, match=problem):
        ref.resolve()
    assert ref.fingerprint() is None


def test_secret_file_shapes_that_are_read(tmp_path: Path) -> None:
    key = tmp_path / "api_key"
    key.write_text("0f0e0d0c-aaaa-bbbb\n")
    pem = tmp_path / "jwt.pem"
    pem.write_text("-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n")
    assert SecretRef.parse(f"file:{key}").resolve() == "0f0e0d0c-aaaa-bbbb"
    assert SecretRef.parse(f"file:{pem}").resolve().startswith("-----BEGIN PUBLIC KEY-----")


@pytest.mark.parametrize("special", ["fifo", "/dev/zero", "/dev/null", "dir"])
def test_secret_file_special_files_are_refused_without_blocking(tmp_path: Path, special: str) -> None:
    if special == "fifo":
        target = tmp_path / "fifo"
        os.mkfifo(target)
    elif special == "dir":
        target = tmp_path
    else:
        target = Path(special)
    ref = SecretRef.parse(f"file:{target}")
    result: list[str] = []

    def resolve() -> None:
        try:
            ref.resolve()
            result.append("read")
        except SecretUnavailable as exc:
            result.append(str(exc))

    worker = threading.Thread(target=resolve, daemon=True)
    worker.start()
    worker.join(10)
    assert result and "not a regular file" in result[0]


@pytest.mark.skipif(not Path("/etc/shadow").exists(), reason="no /etc/shadow on this system")
def test_etc_shadow_is_never_fingerprinted() -> None:
    ref = SecretRef.parse("file:/etc/shadow")
    assert ref.fingerprint() is None and ref.to_public_dict()["fingerprint"] is None
