"""The lab's loopback addresses: every party on one base ``127.A.B`` of its own.

Linux routes all of 127.0.0.0/8 to ``lo`` (RFC 1122 §3.2.1.3), so a lab can take any
``127.A.B.0/24`` without setting anything up. The connector is ``.1``, the OSBiz ``.2`` and
the clone of the cloned-system scenario ``.3``. Labs (and their monitors) on different bases
never see each other's listeners, and the capture filter on these addresses keeps another
lab's packets out of ``lab.pcapng``. The default base 127.0.0 keeps the addresses the docs
show; ``auto`` picks a random base that no socket on this host uses.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

from core.lab.netio import LabError

DEFAULT_BASE = "127.0.0"
AUTO = "auto"
_BASE = re.compile(r"127\.(\d{1,3})\.(\d{1,3})")
# /proc/net/{tcp,udp}: "sl local_address rem_address …", IPv4 as little-endian hex "0100007F:1F90"
_PROC_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/udp"))


@dataclass(frozen=True, slots=True)
class LabAddresses:
    base: str  # "127.A.B"

    @property
    def connector(self) -> str:
        return f"{self.base}.1"

    @property
    def pbx(self) -> str:
        return f"{self.base}.2"

    @property
    def clone(self) -> str:
        return f"{self.base}.3"

    def host_bpf(self, *, with_connector: bool) -> str:
        """Packets between the lab's own parties only: the OSBiz or its clone on one end and
        (when the connector is the lab's) the connector on the other."""
        pbx_side = f"(host {self.pbx} or host {self.clone})"
        return f"{pbx_side} and host {self.connector}" if with_connector else pbx_side


def parse_base(spec: str) -> str | None:
    """``127.A.B`` with A, B in 0..255, or None when ``spec`` is not such a base."""
    m = _BASE.fullmatch(spec.strip())
    if m is None or any(int(octet) > 255 for octet in m.groups()):
        return None
    return f"127.{int(m[1])}.{int(m[2])}"


def bases_in_use(tables: tuple[Path, ...] = _PROC_TABLES) -> set[str]:
    """The ``127.A.B`` bases of every IPv4 socket of this host's network namespace (either end)."""
    used: set[str] = set()
    for table in tables:
        try:
            lines = table.read_text(encoding="ascii", errors="replace").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            for field in line.split()[1:3]:
                addr = field.partition(":")[0]
                if len(addr) == 8 and addr.endswith("7F"):  # first octet 127, little-endian
                    used.add(f"127.{int(addr[4:6], 16)}.{int(addr[2:4], 16)}")
    return used


def pick_free_base(rng: random.Random, in_use: set[str]) -> str:
    """A random ``127.X.Y`` (X, Y in 1..254) that no socket uses: far from the default base and
    from the broadcast-looking .255; with 64,516 bases a clash of two labs starting at the same
    instant is about as likely as one in tens of thousands."""
    for _ in range(1000):
        base = f"127.{rng.randint(1, 254)}.{rng.randint(1, 254)}"
        if base not in in_use:
            return base
    raise LabError("no free loopback base 127.X.Y found for --addresses auto")


def resolve(spec: str, rng: random.Random | None = None) -> LabAddresses:
    """``--addresses``: a base ``127.A.B`` or ``auto``."""
    if spec.strip() == AUTO:
        return LabAddresses(pick_free_base(rng or random.Random(), bases_in_use()))
    base = parse_base(spec)
    if base is None:
        raise LabError(f"--addresses {spec!r}: expected 127.A.B (A, B in 0..255) or auto")
    return LabAddresses(base)
