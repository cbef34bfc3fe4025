"""Named Linux network namespaces (``ip netns``), and running a thread inside one for a while.

The lab puts a fault that needs a firewall rule into a namespace of its own, so the rule can
never touch the host's firewall and dies with the namespace; ``upscope serve --lab-dir`` joins
that namespace to capture and probe what the lab's parties see. ``setns(2)`` moves only the
calling thread, and threads or processes it creates afterwards inherit the namespace; sockets
stay in the namespace they were created in. Needs CAP_SYS_ADMIN (root).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from core.errors import UpscopeError

_CLONE_NEWNET = 0x40000000
RUN_DIR = Path("/run/netns")


class NamespaceError(UpscopeError):
    """A namespace cannot be created, entered or left (no rights, no ``ip``)."""


def available() -> bool:
    return os.geteuid() == 0 and shutil.which("ip") is not None


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("ip")
    if exe is None:
        raise NamespaceError("network namespaces need the ip program (iproute2)")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=10)


def _last_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit status {proc.returncode}"


def create(name: str) -> None:
    """A new namespace with its loopback up (127.0.0.0/8 and ::1, nothing else)."""
    made = _ip("netns", "add", name)
    if made.returncode != 0:
        raise NamespaceError(f"network namespace {name} not created: {_last_line(made)}")
    up = _ip("-n", name, "link", "set", "lo", "up")
    if up.returncode != 0:
        delete(name)
        raise NamespaceError(f"network namespace {name}: loopback not brought up: {_last_line(up)}")


def delete(name: str) -> None:
    """Remove the name; the namespace itself goes when its last socket and thread have left."""
    _ip("netns", "delete", name)


def names() -> list[str]:
    if shutil.which("ip") is None:
        return []
    # "NAME" or "NAME (id: 3)" per line
    return [line.split()[0] for line in _ip("netns", "list").stdout.splitlines() if line.strip()]


def exec_argv(name: str, argv: list[str]) -> list[str]:
    """``argv`` run inside the namespace (for programs started from any thread)."""
    return [shutil.which("ip") or "ip", "netns", "exec", name, *argv]


def _setns(fd: int, what: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise NamespaceError(f"cannot enter network namespace {what}: {os.strerror(err)}"
                             + (" (needs root)" if err == 1 else ""))


@contextlib.contextmanager
def entered(name: str | None) -> Iterator[None]:
    """Run the calling thread inside namespace ``name`` (None: stay where it is), then come back."""
    if name is None:
        yield
        return
    try:
        target = os.open(RUN_DIR / name, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise NamespaceError(f"network namespace {name}: {exc.strerror}") from None
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(target, name)
        try:
            yield
        finally:
            _setns(own, "of this process")
    finally:
        os.close(target)
        os.close(own)
