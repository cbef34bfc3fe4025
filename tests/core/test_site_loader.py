"""The site loader: the healthy example, defaults, and one-line errors naming path and line."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import ConfigError
from core.site import MAX_SITE_BYTES, load_site, load_site_text
from core.site.loader import MAX_NODES

ROOT = Path(__file__).resolve().parents[2]
HEALTHY = ROOT / "examples" / "site-healthy.yaml"
SECRET = "sk-live-9f8e7d6c5b4a"


def healthy_text() -> str:
    return HEALTHY.read_text(encoding="utf-8")


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_site_text(text, "site.yaml")
    assert "\n" not in str(info.value)
    return info.value


def test_healthy_example_loads_with_seed_defaults() -> None:
    site = load_site(HEALTHY)
    assert site.system.name == "acme-munich"
    assert site.system.version_tuple == (3, 3, 1)
    assert site.connectivity.simultaneous_calls == 8
    assert [u.callno for u in site.users] == ["100", "101", "102"]
    assert site.users[2].did is None
    assert site.endpoints.connector.port == 65061 and site.endpoints.connector.transport == "tls"
    assert site.connectivity.api_key is not None and site.connectivity.api_key.source == "env:UPSCOPE_API_KEY"
    assert site.licenses.software_support_until is not None
    assert site.wizard is not None and site.wizard.last_run is not None
    assert site.wizard.last_run.tzinfo is not None


def test_minimal_site_gets_seed_endpoint_defaults() -> None:
    site = load_site_text(
        "system: {name: s1, model: S, version: V3R3 FR1}\n"
        "connectivity: {simultaneous_calls: 4, upstream_kbps: 1000, route_location_number: '+43 1 234'}\n"
    )
    assert (site.endpoints.connector.host, site.endpoints.connector.port) == ("35.246.178.13", 65061)
    assert (site.endpoints.stun.host, site.endpoints.stun.port) == ("34.159.228.55", 3478)
    assert (site.endpoints.rest.host, site.endpoints.rest.hostname) == ("34.117.105.255", "phoneapp.unify.com")
    assert (site.endpoints.media_ports.first, site.endpoints.media_ports.last) == (10000, 49999)
    assert site.connectivity.numbering_schema == "international"
    assert site.tenant.flavour == "openscape"
    assert site.bandwidth.per_call_kbps.g711 == pytest.approx(87.2)


def test_public_dict_holds_no_inline_secret() -> None:
    text = healthy_text().replace("api_key: env:UPSCOPE_API_KEY", f"api_key: {SECRET}")
    site = load_site_text(text)
    assert SECRET not in repr(site)
    assert SECRET not in str(site.to_public_dict())
    assert site.to_public_dict()["connectivity"]["api_key"] == "inline"


@pytest.mark.parametrize(
    ("old", "new", "path", "marker", "message"),
    [
        ("  simultaneous_calls: 8 ", '  simultaneous_calls: "eight" ', "connectivity.simultaneous_calls", '"eight"',
         "must be an integer"),
        ('    did: "101"', "    did: 101", "users[1].did", "did: 101", "must be a string"),
        ("  shared_trunk_lines: false", "  shared_trunk_lines: false\n  colour: blue", "connectivity.colour",
         "colour", "unknown key"),
        ('  route_location_number: "+49 89 7007"  ', '  route_location_number: "089 7007"  ',
         "connectivity.route_location_number", '"089 7007"', "country code"),
        ("  model: X5 ", "  model: X9 ", "system.model", "X9", "must be one of"),
        ("  flavour: openscape ", "  flavour: teams ", "tenant.flavour", "teams ", "must be one of"),
        ("    licenses: [ip-user, unify-phone, voicemail]", "    licenses: [ip-user, unify-phone, fax]",
         "users[1].licenses[2]", "fax", "must be one of"),
        ("  last_run: 2026-10-01T10:00:00Z", "  last_run: 2026-10-01T10:00:00", "wizard.last_run",
         "2026-10-01T10:00:00", "time zone"),
        ('      - {callno: "200", device: ip-phone}', '      - {callno: "200", device: fax}',
         "teams[0].members[1].device", "device: fax", "must be one of"),
        ("  media_ports: {first: 10000, last: 49999}", "  media_ports: {first: 50000, last: 49999}",
         "endpoints.media_ports", "first: 50000", "first must not be greater than last"),
        ("  public_ip: 203.0.113.10", "  public_ip: 203.0.113.300", "system.public_ip", "113.300",
         "not an IPv4 or IPv6 address"),
    ],
)
def test_validation_errors_name_path_and_line(old: str, new: str, path: str, marker: str, message: str) -> None:
    text = healthy_text()
    assert text.count(old) == 1, old
    broken = text.replace(old, new)
    line = broken[: broken.index(marker)].count("\n") + 1
    err = error_of(broken)
    assert err.path == path
    assert err.line == line, str(err)
    assert message in str(err)
    assert str(err).startswith(f"site.yaml:{line} {path}: ")


def test_missing_required_key_names_parent() -> None:
    err = error_of("system: {name: s1, model: S}\nconnectivity: {simultaneous_calls: 1, upstream_kbps: 100}\n")
    assert err.path == "system.version" and err.line == 1
    assert "required key missing" in str(err)


def test_duplicate_callno_is_rejected() -> None:
    text = healthy_text().replace('  - callno: "101"', '  - callno: "100"')
    err = error_of(text)
    assert err.path == "users" and "callno 100" in str(err)


def test_duplicate_yaml_key_is_rejected() -> None:
    err = error_of("system: {name: a, model: S, version: V3R3}\nsystem: {}\n")
    assert "duplicate key 'system'" in str(err) and err.line == 2


def test_yaml_syntax_error_has_line() -> None:
    err = error_of(healthy_text().replace("  enabled: true", "  enabled: [true"))
    assert "YAML syntax error" in str(err) and err.line is not None


@pytest.mark.parametrize("text", ["", "42", "- a\n- b\n", "just words"])
def test_not_a_mapping(text: str) -> None:
    assert "must be a YAML mapping" in str(error_of(text))


def test_merge_keys_and_python_tags_are_refused() -> None:
    assert "plain names" in str(error_of("a: {b: 1}\nc:\n  <<: {b: 2}\n"))
    assert "custom YAML tag is not allowed" in str(error_of("system: !!python/object:os.system {}\n"))
    assert "read as a YAML tag" in str(error_of("system: !!python/name:os.system ''\n"))


@pytest.mark.parametrize("text", ["k: &Anc [x, x]\nj: [*Anc, *Anc]\n", "k: *Anc\n", "k: &Anc 1\n"])
def test_anchors_and_aliases_are_refused_before_any_expansion(text: str) -> None:
    err = str(error_of(text))
    assert "are not allowed in a site file" in err and "Anc" not in err


def test_alias_bomb_is_refused_at_its_first_alias() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 8):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    err = error_of("\n".join(lines) + "\n")
    assert err.line == 1 and "anchors" in str(err)


def test_node_budget_stops_a_flat_file_within_the_size_cap() -> None:
    err = error_of("x:\n" + "- 0\n" * (MAX_NODES + 10))
    assert f"more than {MAX_NODES} YAML nodes" in str(err) and err.line == MAX_NODES


def test_deep_nesting_is_refused() -> None:
    assert "nest" in str(error_of("a: " + "[" * 5000 + "]" * 5000 + "\n"))
    assert "nested too deeply" in str(error_of("a: " + "[" * 100 + "]" * 100 + "\n"))


def test_secret_with_wrong_type_is_not_echoed() -> None:
    err = error_of(healthy_text().replace("api_key: env:UPSCOPE_API_KEY", "api_key: [sk-live-123456789]"))
    assert err.path == "connectivity.api_key"
    assert "sk-live" not in str(err)


def test_secret_next_to_an_error_is_not_echoed() -> None:
    text = healthy_text().replace("api_key: env:UPSCOPE_API_KEY", f"api_key: {SECRET}")
    text = text.replace("  upstream_kbps: 2000", "  upstream_kbps: lots")
    err = error_of(text)
    assert SECRET not in str(err) and err.path == "connectivity.upstream_kbps"


# --- files ---------------------------------------------------------------------------------------


def load_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_site(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg
    return msg


def test_missing_file_and_directory(tmp_path: Path) -> None:
    assert "no such file" in load_error(tmp_path / "nope.yaml")
    assert "is a directory" in load_error(tmp_path)


def test_binary_garbage(tmp_path: Path) -> None:
    f = tmp_path / "garbage.yaml"
    f.write_bytes(os.urandom(4096) + b"\x00")
    msg = load_error(f)
    assert "binary data" in msg or "not UTF-8" in msg


def test_non_utf8(tmp_path: Path) -> None:
    f = tmp_path / "latin1.yaml"
    f.write_bytes("system: {name: m\u00fcnchen}\n".encode("latin-1"))
    assert "not UTF-8 text (byte 16)" in load_error(f)


def test_huge_file_is_refused_without_reading(tmp_path: Path) -> None:
    f = tmp_path / "huge.yaml"
    with f.open("wb") as fh:  # sparse: 50 MB on paper, nothing on disk
        fh.truncate(50 * 1024 * 1024)
    assert f"at most {MAX_SITE_BYTES}" in load_error(f)


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    f = tmp_path / "bom.yaml"
    f.write_bytes(b"\xef\xbb\xbf" + HEALTHY.read_bytes())
    assert load_site(f).system.name == "acme-munich"


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_any_text_loads_or_raises_config_error(text: str) -> None:
    try:
        load_site_text(text)
    except ConfigError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_any_file_loads_or_raises_config_error(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "site.yaml"
        f.write_bytes(raw)
        try:
            load_site(f)
        except ConfigError as exc:
            assert "\n" not in str(exc) and str(exc).startswith(str(f))


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 4000), st.binary(min_size=1, max_size=8))
def test_mutated_healthy_file_never_crashes(pos: int, junk: bytes) -> None:
    raw = HEALTHY.read_bytes()
    pos = min(pos, len(raw))
    text = (raw[:pos] + junk + raw[pos:]).decode("utf-8", errors="replace")
    try:
        load_site_text(text)
    except ConfigError as exc:
        assert "\n" not in str(exc)


@pytest.mark.parametrize(("value", "ok"), [
    ("Europe/Berlin", True), ("UTC", True), ("America/Argentina/Buenos_Aires", True), ("Etc/GMT+2", True),
    ("Mars/Olympus_Mons", False), ("../../etc/passwd", False), ("/usr/share/zoneinfo/UTC", False),
    ("Europe/Berlin; rm", False), ("x" * 80, False),
])
def test_system_timezone_is_an_iana_name(value: str, ok: bool) -> None:
    text = healthy_text().replace("timezone: Europe/Berlin", f'timezone: "{value}"')
    if ok:
        assert load_site_text(text, "site.yaml").system.timezone == value
        return
    err = error_of(text)
    assert "system.timezone" in str(err) and ("IANA" in str(err) or "time zone" in str(err))
    assert value not in str(err) or len(value) < 4  # the bad value is named by its path, not quoted


def test_system_timezone_is_optional() -> None:
    text = "\n".join(line for line in healthy_text().splitlines() if "timezone:" not in line)
    assert load_site_text(text, "site.yaml").system.timezone is None
