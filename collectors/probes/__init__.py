"""Active probes (blackbox_exporter style): ``run(module, target, timeout, **opts) -> ProbeResult``.

Modules (``core.probes.ProbeModule``): sip_options_udp, sip_options_tcp, sip_options_tls, stun,
tcp_connect, https_rest, each with a typed options class (``MODULES``; add more with
``register``). ``ProbeHistory`` keeps recent results and failures.
"""

from collectors.probes.history import ProbeHistory
from collectors.probes.registry import MODULES, module_of, register, run, run_request
from collectors.probes.target import ProbeConfigError, Target, parse_target
from core.probes import ProbeModule

__all__ = [
    "MODULES",
    "ProbeConfigError",
    "ProbeHistory",
    "ProbeModule",
    "Target",
    "module_of",
    "parse_target",
    "register",
    "run",
    "run_request",
]
