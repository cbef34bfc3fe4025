"""The lab: an emulated OSBiz trunk side and Unify Phone connector on loopback (ARCHITECTURE).

Real SIP over TLS, STUN, HTTPS REST and G.711 RTP between 127.0.0.2 (the OSBiz) and 127.0.0.1
(the connector), with one scenario per FAQ fault (``core.lab.scenarios``). It is the one part of
core that runs sockets; nothing else in core imports it.
"""

from core.lab.netio import LabError
from core.lab.runner import LabConfig, LabSummary, run_lab
from core.lab.scenarios import SCENARIOS, Scenario

__all__ = ["SCENARIOS", "LabConfig", "LabError", "LabSummary", "Scenario", "run_lab"]
