"""Type stub of the compiled kernels (``collectors/_kernels.c``)."""

import numpy as np

INT_FIELDS: tuple[str, ...]
FLOAT_FIELDS: tuple[str, ...]
CLOSE_COLS: int

def pcap_walk(buf: bytes, pos: int, big_endian: bool, out: np.ndarray, /) -> tuple[int, int, int]: ...
def pcapng_epb_walk(buf: bytes, pos: int, big_endian: bool, max_block: int, out: np.ndarray, /) -> tuple[int, int]: ...
def rtp_rows(slot: np.ndarray, head: np.ndarray, frame: np.ndarray, ts: np.ndarray, clock: np.ndarray,
             event: np.ndarray, state_i: np.ndarray, state_f: np.ndarray, interval_s: float, out: np.ndarray, /) -> int: ...
def stream_insert(index_sd: np.ndarray, index_ps: np.ndarray, index_slot: np.ndarray, key_sd: int, key_ps: int,
                  slot: int, /) -> int: ...
def stream_lookup(index_sd: np.ndarray, index_ps: np.ndarray, index_slot: np.ndarray, slot_sd: np.ndarray,
                  slot_ps: np.ndarray, slot_epoch: np.ndarray, epoch: int, row_sd: np.ndarray, row_ps: np.ndarray,
                  out: np.ndarray, /) -> int: ...
def udp_fast_lane(buf: bytes, data_off: np.ndarray, caplen: np.ndarray, orig_len: np.ndarray, linktype: np.ndarray,
                  sip_ports: np.ndarray, tunnel_ports: np.ndarray, tunnel_dport: int, out: np.ndarray, head: np.ndarray,
                  plain: np.ndarray, /) -> tuple[int, int]: ...
