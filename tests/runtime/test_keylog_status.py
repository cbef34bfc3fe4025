"""``serve --keylog`` with a key log that cannot decrypt anything: a collector reason, not silence."""

from __future__ import annotations

import time
from pathlib import Path

from collectors.runtime.service import ServeConfig, Service

ROOT = Path(__file__).resolve().parents[2]


def test_garbage_keylog_is_the_keylog_collectors_reason(tmp_path: Path) -> None:
    keys = tmp_path / "keys.log"
    keys.write_text("this is not\na key log\n")
    cap = tmp_path / "empty.pcap"
    cap.write_bytes(bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000"))
    service = Service(ServeConfig(site_path=ROOT / "examples" / "site-healthy.yaml", db_path=tmp_path / "h.db",
                                  keylog=keys, captures=(cap,), probes=()))
    snap = service.run_once()
    keylog = next(c for c in snap.collectors if c.name == "keylog")
    assert not keylog.up and str(keys) in keylog.reason and "no line in the key log format" in keylog.reason
    keys.write_text("CLIENT_RANDOM " + "ab" * 32 + " " + "cd" * 48 + "\n")
    service.clock = lambda: time.time() + 120  # two minutes later: checked again
    snap = service.run_once()
    assert next(c for c in snap.collectors if c.name == "keylog").up
    service.stop()
