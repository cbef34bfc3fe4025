"""The lab's options (``upscope lab``'s flags) and their checks, before anything is bound."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.lab.addresses import AUTO, DEFAULT_BASE, parse_base
from core.lab.netio import LabError, SipBlock
from core.lab.scenarios import SCENARIOS, Scenario

RTP_RANGE_SIZE = 400


@dataclass(frozen=True, slots=True)
class LabConfig:
    scenario: str = "healthy"
    out: Path = Path("lab-out")
    duration: float | None = None
    users: int = 3
    calls_per_minute: float = 12.0
    call_seconds: float = 4.0
    sip_port: int = 65061
    stun_port: int = 0
    rest_port: int = 0
    https_port: int = 0
    fault_from: float = 0.0
    fault_until: float | None = None
    connector: tuple[str, int] | None = None
    connector_ca: Path | None = None
    loss_pct: float = 5.0
    jitter_ms: float = 40.0
    keepalive: float = 30.0
    register_expires: int = 600
    block_mode: str = "auto"  # auto | netns | blackhole
    capture: bool = True
    system_name: str = "upscope-lab"
    trunk_lines: int = 8  # simultaneous circuit calls of the lab site (load tests raise it)
    rtp_base: int = 0  # first RTP port; 0 = a random even port
    addresses: str = DEFAULT_BASE  # loopback base 127.A.B of the lab's parties, or "auto"


def validate(cfg: LabConfig) -> Scenario:
    scenario = SCENARIOS.get(cfg.scenario)
    if scenario is None:
        raise LabError(f"unknown scenario {cfg.scenario!r}; one of: {', '.join(SCENARIOS)}")
    checks = [
        (cfg.duration is not None and cfg.duration <= 0, "--duration must be > 0"),
        (not 1 <= cfg.users <= 100, "--users must be 1..100"),
        (not 1 <= cfg.trunk_lines <= 500, "--trunk-lines must be 1..500"),
        (cfg.rtp_base != 0 and not (1024 <= cfg.rtp_base <= 65534 - RTP_RANGE_SIZE and cfg.rtp_base % 2 == 0),
         f"--rtp-base must be an even port 1024..{65534 - RTP_RANGE_SIZE}"),
        (not 0 < cfg.calls_per_minute <= 600, "--calls-per-minute must be in (0, 600]"),
        (not 0 <= cfg.loss_pct <= 100, "--loss must be 0..100 (percent)"),
        (not 0 <= cfg.jitter_ms <= 1000, "--jitter must be 0..1000 (ms)"),
        (cfg.fault_from < 0, "--fault-from must be >= 0"),
        (cfg.fault_until is not None and cfg.fault_until <= cfg.fault_from,
         "--fault-until must be after --fault-from"),
        (not 0.5 <= cfg.keepalive <= 3600, "keepalive interval must be 0.5..3600 s"),
        (not 2 <= cfg.register_expires <= 86400, "register expiry must be 2..86400 s"),
        (cfg.block_mode not in ("auto", "netns", "blackhole"), "block mode is auto, netns or blackhole"),
        (cfg.connector_ca is not None and not cfg.connector_ca.is_file(),
         f"--connector-ca {cfg.connector_ca} is not a readable file"),
        (cfg.connector_ca is not None and cfg.connector is None, "--connector-ca needs --connector"),
        (any(not 0 <= p <= 65535 for p in (cfg.sip_port, cfg.stun_port, cfg.rest_port, cfg.https_port)),
         "ports must be 0..65535"),
        (cfg.addresses.strip() != AUTO and parse_base(cfg.addresses) is None,
         f"--addresses {cfg.addresses!r}: expected 127.A.B (A, B in 0..255) or auto"),
    ]
    for bad, msg in checks:
        if bad:
            raise LabError(f"{msg}")
    connector_side = (scenario.block_sip and cfg.block_mode == "blackhole") or scenario.wrong_api_key \
        or scenario.mute_connector_rtp or scenario.impair_connector_rtp or scenario.busy_burst \
        or scenario.port_443 or scenario.flavour != "openscape"
    if cfg.connector is not None and connector_side:
        raise LabError(f"scenario {scenario.name} needs the emulated connector; drop --connector")
    if scenario.block_sip and cfg.block_mode == "netns" and not SipBlock.available():
        raise LabError("the netns block mode needs root and the ip and nft programs "
                       "(no rights for a network namespace); use --block-mode blackhole")
    return scenario
