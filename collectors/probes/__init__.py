"""Active probes (blackbox_exporter style): ``run(module, target, timeout, **opts) -> ProbeResult``.

Modules: sip_options_udp, sip_options_tcp, sip_options_tls, stun, tcp_connect, https_rest
(``MODULES``; add more with ``register``). ``ProbeHistory`` keeps recent results and failures.
"""

from collectors.probes.history import ProbeHistory
from collectors.probes.runner import MODULES, ProbeModule, register, run
from collectors.probes.target import ProbeConfigError, Target, parse_target

__all__ = [
    "MODULES",
    "ProbeConfigError",
    "ProbeHistory",
    "ProbeModule",
    "Target",
    "parse_target",
    "register",
    "run",
]
