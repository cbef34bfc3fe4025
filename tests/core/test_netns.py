"""core.netns: a thread enters a named namespace, what it binds stays there, and it comes back."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import netns

pytestmark = pytest.mark.skipif(not netns.available(), reason="network namespaces need root and ip (iproute2)")


def _own() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


@pytest.fixture()
def name() -> Iterator[str]:
    made = f"upscope-test-{os.getpid()}"
    netns.create(made)
    try:
        yield made
    finally:
        netns.delete(made)
    assert made not in netns.names()


def test_a_listener_bound_inside_is_not_reachable_outside(name: str) -> None:
    before = _own()
    with netns.entered(name):
        assert _own() == os.stat(netns.RUN_DIR / name).st_ino
        inside = socket.socket()
        inside.bind(("127.0.0.1", 0))
        inside.listen(1)
        port = inside.getsockname()[1]
        # a thread started inside is inside too (the lab's and the service's workers rely on it)
        seen: list[int] = []
        worker = threading.Thread(target=lambda: seen.append(_own()))
        worker.start()
        worker.join()
        assert seen == [_own()]
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
    assert _own() == before
    with inside, pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_none_stays_and_a_missing_namespace_is_a_clear_error() -> None:
    before = _own()
    with netns.entered(None):
        assert _own() == before
    with pytest.raises(netns.NamespaceError, match="upscope-missing-ns"), netns.entered("upscope-missing-ns"):
        pass
    assert _own() == before


def test_create_twice_is_an_error(name: str) -> None:
    with pytest.raises(netns.NamespaceError, match=name):
        netns.create(name)
    assert Path(netns.RUN_DIR / name).exists()
