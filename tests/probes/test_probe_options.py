"""The probe registry and its typed options: names the firewall relies on, parsing, secrets."""

from __future__ import annotations

import dataclasses

import pytest

from collectors.probes import MODULES, ProbeConfigError, run_request
from collectors.probes.https_rest import HttpsRestOptions
from collectors.probes.options import parse_options
from collectors.probes.sip_options import SipOptions, SipTlsOptions
from collectors.probes.stun import StunOptions
from core.firewall import STUN_PROBES, TCP_PROBES
from core.probes import ProbeModule


def test_every_module_name_is_registered_and_the_firewall_uses_only_those() -> None:
    assert set(MODULES) == set(ProbeModule)
    assert set(MODULES) >= TCP_PROBES | STUN_PROBES
    assert all(MODULES[m].module is m for m in MODULES)


@pytest.mark.parametrize("cls", [SipOptions, SipTlsOptions, StunOptions, HttpsRestOptions])
def test_options_are_frozen_slotted_and_typed(cls: type) -> None:
    assert dataclasses.is_dataclass(cls) and "__slots__" in vars(cls)
    value = cls()
    field = dataclasses.fields(value)[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, field.name, None)


def test_parsed_values_have_their_types() -> None:
    tls = parse_options(SipTlsOptions, "sip_options_tls", {"insecure": "yes", "valid_status": "200-299,403"},
                        {"from_user": "ops"})
    assert tls == SipTlsOptions(insecure=True, valid_status=((200, 299), (403, 403)), from_user="ops")
    assert parse_options(StunOptions, "stun", {}, {"transport": "TCP"}).transport == "tcp"
    assert parse_options(HttpsRestOptions, "https_rest", {}).valid_status is None


def test_credentials_never_show_in_a_printed_options_value() -> None:
    opts = parse_options(HttpsRestOptions, "https_rest", {"api_key": "CANARY-KEY-1", "bearer": "CANARY-JWT-2"})
    assert opts.api_key == "CANARY-KEY-1"
    assert "CANARY" not in repr(opts) and "CANARY" not in str(opts)


@pytest.mark.parametrize(("module", "configured", "query", "message"), [
    ("icmp", {}, {}, "unknown (known: https_rest, sip_options_tcp, sip_options_tls, sip_options_udp, stun, "
                     "tcp_connect)"),
    ("stun", {"transport": "quic"}, {}, "option transport: expected one of udp, tcp"),
    ("tcp_connect", {"insecure": True}, {}, "unknown option 'insecure' (known: none)"),
    ("https_rest", {}, {"bearer": "x"}, "option bearer is set in the probe configuration"),
    ("sip_options_udp", {}, {"valid_status": "99"}, "status codes must be 100-699"),
    ("sip_options_udp", {}, {"valid_status": "9" * 5000}, "expected codes or ranges"),
])
def test_bad_options_are_config_errors_that_name_the_option(
        module: str, configured: dict[str, object], query: dict[str, str], message: str) -> None:
    with pytest.raises(ProbeConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_request(module, "127.0.0.1:1", 1.0, configured, query)
