"""Type stub of the compiled kernels (``collectors/_kernels.c``)."""

import numpy as np

INT_FIELDS: tuple[str, ...]
FLOAT_FIELDS: tuple[str, ...]
CLOSE_COLS: int

def pcap_walk(buf: bytes, pos: int, big_endian: bool, out: np.ndarray, /) -> tuple[int, int, int]: ...
def pcapng_epb_walk(buf: bytes, pos: int, big_endian: bool, max_block: int, out: np.ndarray, /) -> tuple[int, int]: ...
def rtp_rows(slot: np.ndarray, seq: np.ndarray, rts: np.ndarray, b1: np.ndarray, frame: np.ndarray,
             clock: np.ndarray, event: np.ndarray, ts: np.ndarray, state_i: np.ndarray, state_f: np.ndarray,
             interval_s: float, out: np.ndarray, /) -> int: ...
def udp_fast_lane(buf: bytes, data_off: np.ndarray, caplen: np.ndarray, orig_len: np.ndarray, linktype: np.ndarray,
                  excluded_ports: np.ndarray, excluded_dport: int, out: np.ndarray, head: np.ndarray, /) -> int: ...
