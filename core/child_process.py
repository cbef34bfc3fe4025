"""Children that must not outlive the upscope process that started them.

A clean stop terminates captures, the lab, the service and Streamlit explicitly. This covers the
unclean stop: when upscope itself is killed (SIGKILL, the OOM killer, a test's ``proc.kill()``),
Linux sends each child SIGTERM (``PR_SET_PDEATHSIG``), so a dumpcap is never left capturing on
``lo`` for hours. Linux ties the signal to the *thread* that forked the child, so such children
must be started from a thread that lives as long as they should (the main thread, or the thread
that also stops them). The setting is dropped when the child execs a program whose file
capabilities exceed the parent's (a non-root user running a capability-enabled dumpcap); there
the explicit stop is all there is.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> Callable[[], None] | None:
    """A ``subprocess.Popen(preexec_fn=...)`` that arms the parent-death signal (None off Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    # Resolved here, in the parent: between fork and exec only async-signal-safe work belongs.
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return arm
