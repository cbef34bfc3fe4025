"""The lab: an emulated OSBiz trunk side and Unify Phone connector on loopback (ARCHITECTURE).

Real SIP over TLS, STUN, HTTPS REST and G.711 RTP between the OSBiz (127.A.B.2) and the connector
(127.A.B.1) on a loopback base of the lab's own (``core.lab.addresses``; 127.0.0 by default), with
one scenario per FAQ fault (``core.lab.scenarios``). It is the one part of core that runs
sockets; nothing else in core imports it.
"""

from core.lab.config import LabConfig
from core.lab.netio import LabError
from core.lab.runner import LabSummary, run_lab
from core.lab.scenarios import SCENARIOS, Scenario

__all__ = ["SCENARIOS", "LabConfig", "LabError", "LabSummary", "Scenario", "run_lab"]
