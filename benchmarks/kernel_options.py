"""Measure the options for the sequential part of the RTP statistics (the RFC 3550 jitter filter
and the per-packet state), as recorded in benchmarks/README.md.

    python benchmarks/kernel_options.py            # what is installed
    # the alternatives need a scratch venv:  python -m venv /tmp/kv && /tmp/kv/bin/pip install numpy scipy numba
    PYTHONPATH=. /tmp/kv/bin/python benchmarks/kernel_options.py

Workload: 1 M packets of 1000 streams in 50 chunks (20 rows per stream per chunk, the shape of a
trunk capture read in 4 MiB chunks), arrival jitter on every packet. For each option: the cost of
the jitter filter J = J + (|D| − J)/16 with its state carried from chunk to chunk, the one-off
costs (import, compilation) and the resident memory the import adds; and whether it gives the
per-packet path's numbers to the last bit. ``collectors._kernels.rtp_rows`` runs the whole
per-packet statistics (sequence, wraps, duplicates, deltas, jitter, means, intervals), not only
the filter.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

STREAMS, PER_CHUNK, CHUNKS = 1000, 20, 50
N = STREAMS * PER_CHUNK * CHUNKS


def workload() -> tuple[np.ndarray, np.ndarray]:
    """|D| per packet (ms), chunk by chunk, rows of one stream together within a chunk."""
    rng = np.random.default_rng(1)
    d = np.abs(rng.normal(0.0, rng.uniform(0.3, 20.0, STREAMS)[:, None], (STREAMS, PER_CHUNK * CHUNKS)))
    stream = np.repeat(np.arange(STREAMS), PER_CHUNK)
    return d, stream


def reference(d: np.ndarray) -> np.ndarray:
    """The per-packet statement, in Python: J = (15·J + D)/16."""
    out = np.empty(STREAMS)
    for s in range(STREAMS):
        j = 0.0
        for x in d[s].tolist():
            j = (15.0 * j + x) / 16.0
        out[s] = j
    return out


def cpu(fn, *args):  # type: ignore[no-untyped-def]
    t = time.process_time()
    r = fn(*args)
    return time.process_time() - t, r


def rss_after(code: str) -> dict[str, float]:
    """Import time (s) and VmRSS growth (MiB) of ``code`` in a fresh interpreter."""
    probe = ("import re,time,resource;r0=int(re.search(r'VmRSS:\\s+(\\d+)',open('/proc/self/status').read())[1]);"
             f"t=time.perf_counter();{code};t=time.perf_counter()-t;"
             "r1=int(re.search(r'VmRSS:\\s+(\\d+)',open('/proc/self/status').read())[1]);print(t,(r1-r0)/1024)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    return {"import_s": round(float(out[0]), 3), "rss_mib": round(float(out[1]), 1)}


def option_lfilter(d: np.ndarray) -> np.ndarray:
    from scipy.signal import lfilter

    zi = np.zeros((STREAMS, 1))
    last = np.zeros(STREAMS)
    b, a = [1.0 / 16.0], [1.0, -15.0 / 16.0]
    for c in range(CHUNKS):
        part = d[:, c * PER_CHUNK:(c + 1) * PER_CHUNK]
        for s in range(STREAMS):  # one call per stream and chunk: the streams' rows differ in length
            y, zi[s] = lfilter(b, a, part[s], zi=zi[s])
            last[s] = y[-1]
    return last


def option_lfilter_2d(d: np.ndarray) -> np.ndarray:
    """lfilter over a (streams × rows) block per chunk: only possible when every stream has the
    same number of rows in a chunk, which real traffic never has; the lower bound of lfilter."""
    from scipy.signal import lfilter

    zi = np.zeros((STREAMS, 1))
    b, a = [1.0 / 16.0], [1.0, -15.0 / 16.0]
    y = np.zeros((STREAMS, PER_CHUNK))
    for c in range(CHUNKS):
        y, zi = lfilter(b, a, d[:, c * PER_CHUNK:(c + 1) * PER_CHUNK], axis=1, zi=zi)
    return np.asarray(y[:, -1])


NUMBA_SRC = '''
import numpy as np
from numba import njit

@njit(cache=True)
def jitter_rows(slot, d, state):
    for i in range(d.shape[0]):
        s = slot[i]
        state[s] = (15.0 * state[s] + d[i]) / 16.0
'''


def option_numba(d: np.ndarray, stream: np.ndarray, cache_dir: Path) -> tuple[float, np.ndarray]:
    sys.path.insert(0, str(cache_dir))
    (cache_dir / "numba_jitter.py").write_text(NUMBA_SRC)
    import numba_jitter  # type: ignore[import-not-found]

    state = np.zeros(STREAMS)
    numba_jitter.jitter_rows(stream[:1], np.zeros(1), np.zeros(1))  # the first call loads the compiled code
    t = time.process_time()
    for c in range(CHUNKS):
        numba_jitter.jitter_rows(stream, np.ascontiguousarray(d[:, c * PER_CHUNK:(c + 1) * PER_CHUNK]).reshape(-1),
                                 state)
    return time.process_time() - t, state


def option_kernel(d: np.ndarray, stream: np.ndarray) -> tuple[float, int]:
    """The whole per-packet statistics in collectors._kernels.rtp_rows (1 M rows)."""
    from collectors import _kernels

    rows = STREAMS * PER_CHUNK
    ints = np.zeros((STREAMS, len(_kernels.INT_FIELDS)), dtype=np.int64)
    ints[:, _kernels.INT_FIELDS.index("main_pt")] = -1
    floats = np.zeros((STREAMS, len(_kernels.FLOAT_FIELDS)))
    clock = np.full((STREAMS, 128), 8000, dtype=np.int32)
    event = np.zeros((STREAMS, 128), dtype=np.int8)
    out = np.empty((rows, _kernels.CLOSE_COLS))
    k = np.tile(np.arange(PER_CHUNK), STREAMS)
    t = time.process_time()
    for c in range(CHUNKS):
        n = c * PER_CHUNK + k
        head = np.zeros((rows, 3), dtype=">u4")
        head[:, 0] = 0x80080000 | (n & 0xFFFF)
        head[:, 1] = n * 160
        arrival = n * 0.02 + d[:, c * PER_CHUNK:(c + 1) * PER_CHUNK].reshape(-1) / 1000.0
        _kernels.rtp_rows(stream, head.view(np.uint8), n, 1.7e9 + arrival, clock, event, ints, floats, 10.0, out)
    return time.process_time() - t, rows * CHUNKS


def main() -> int:
    d, stream = workload()
    report: dict[str, object] = {"packets": N, "streams": STREAMS, "rows_per_stream_per_chunk": PER_CHUNK}
    t, ref = cpu(reference, d)
    report["python_per_packet"] = {"cpu_s": round(t, 3)}
    try:
        t, _y = cpu(option_lfilter, d)
        t2, y2 = cpu(option_lfilter_2d, d)
        report["scipy_lfilter"] = {"cpu_s_per_stream_calls": round(t, 3), "cpu_s_equal_rows_2d": round(t2, 3),
                                   "bit_equal": bool(np.array_equal(y2, ref)),
                                   "max_abs_diff": float(np.max(np.abs(y2 - ref))),
                                   **rss_after("import scipy.signal")}
    except ImportError:
        report["scipy_lfilter"] = "not installed"
    try:
        import numba  # noqa: F401

        cache = Path("/tmp/upscope-kernel-options")
        cache.mkdir(exist_ok=True)
        for f in cache.glob("*"):
            if f.is_file():
                f.unlink()
        code = (f"import sys,time;sys.path.insert(0,{str(cache)!r});"
                "import numpy as np;import numba_jitter as m;t=time.process_time();"
                "m.jitter_rows(np.zeros(1,np.int64),np.zeros(1),np.zeros(1));print(time.process_time()-t)")
        (cache / "numba_jitter.py").write_text(NUMBA_SRC)
        first = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
        cached = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
        t, y = option_numba(d, stream, cache)
        report["numba"] = {"cpu_s_after_first_call": round(t, 3), "bit_equal": bool(np.array_equal(y, ref)),
                           "first_call_compile_s": round(first, 3), "first_call_cached_s": round(cached, 3),
                           **rss_after("import numba")}
    except ImportError:
        report["numba"] = "not installed"
    try:
        t, rows = option_kernel(d, stream)
        report["c_kernel_whole_statistics"] = {"cpu_s": round(t, 3), "rows": rows,
                                               **rss_after("import collectors._kernels")}
    except ImportError:
        report["c_kernel_whole_statistics"] = "not built"
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
