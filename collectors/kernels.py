"""The compiled kernels of the capture analysis (``collectors/_kernels.c``), or None.

Without them the same walks run in numpy and Python (a source tree that was not installed); a
build older than its source is not used (``core.native``).
"""

from __future__ import annotations

from pathlib import Path

from core.native import load

kernels = load("collectors._kernels", Path(__file__).with_name("_kernels.c"))
