/* Sequential kernels of the capture analysis: the loops numpy cannot express (or only with a
 * dozen passes over every record).
 *
 * - pcap_walk / pcapng_epb_walk: the record chain of a capture file (each record's length says
 *   where the next one starts), whatever the record lengths.
 * - udp_fast_lane: which records are plain IPv4/UDP datagrams, with RTP-like payloads or not, and
 *   their addresses, ports and payload, in one pass (collectors/fast_lane.py fast_rows).
 * - rtp_rows: the RTP stream statistics of collectors/media/rtp.py, row by row over a chunk's
 *   packets grouped by stream; the same statements in the same order as the per-packet path
 *   (RtpAnalyzer._feed / _analyse / _sequence_extras), so the results are equal to the last bit.
 *
 * Only the buffer protocol is used (no numpy headers): the callers pass contiguous int64 /
 * float64 arrays. Compiled with -ffp-contract=off so that no multiply-add is fused and every
 * floating-point operation rounds as Python's does.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <math.h>
#include <string.h>

/* Columns of a stream's state, in the order of rtp_state.py's INT_SLOTS / FLOAT_SLOTS (the module
 * exports both tuples and rtp_state.py checks them at import). */
enum {
    I_TOTAL_NR, I_EVENTS, I_DUPLICATES, I_CLOCK_RATE, I_FIRST_FRAME, I_LAST_FRAME, I_START_SEQ,
    I_STOP_SEQ, I_SEQ_NUM, I_CYCLES, I_SEQUENCE, I_FIRST_TIMESTAMP, I_FIRST_PT, I_PT, I_HI_SEQ,
    I_BAD_SEQ, I_CUR_PACKETS, I_CUR_EXP, I_CUR_JIT_N, I_MAIN_PT, I_UNDER, I_DUP_LO, I_DUP_HI, NI
};
enum {
    F_FIRST_TS, F_LAST_TS, F_TIME, F_LAST_NOMINAL, F_DELTA, F_MAX_DELTA, F_MIN_DELTA, F_MEAN_DELTA,
    F_JITTER, F_MIN_JITTER, F_MAX_JITTER, F_MEAN_JITTER, F_CUR_START, F_CUR_JIT_SUM, F_CUR_JIT_MAX, NF
};
static const char *const INT_NAMES[NI] = {
    "total_nr", "events", "duplicates", "clock_rate", "first_frame", "last_frame", "start_seq",
    "stop_seq", "seq_num", "cycles", "sequence", "first_timestamp", "first_pt", "pt", "hi_seq",
    "bad_seq", "cur_packets", "cur_exp", "cur_jit_n", "main_pt", "under", "dup_lo", "dup_hi"};
static const char *const FLOAT_NAMES[NF] = {
    "first_ts", "last_ts", "time", "last_nominal", "delta", "max_delta", "min_delta", "mean_delta",
    "jitter", "min_jitter", "max_jitter", "mean_jitter", "cur_start", "cur_jit_sum", "cur_jit_max"};

/* One closed 10-s interval per output row: slot, input row, start, packets, expected,
 * jitter sum, jitter count, jitter max, main payload type at the time (-1 = none yet). */
#define CLOSE_COLS 9
#define PT_CN 13
#define PT_CN_OLD 19

typedef unsigned __int128 u128;

static int get_buffer(PyObject *obj, Py_buffer *view, int writable, Py_ssize_t itemsize,
                      Py_ssize_t min_items, const char *what) {
    if (PyObject_GetBuffer(obj, view, writable ? PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS : PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    if (view->len % itemsize || view->len / itemsize < min_items) {
        PyErr_Format(PyExc_ValueError, "%s: %zd bytes, need %zd items of %zd bytes", what, view->len,
                     min_items, itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* The two buffers of a record walk: the capture bytes (read) and the int64 positions (written);
 * on failure neither is held. */
static int walk_buffers(PyObject *buf_obj, Py_buffer *buf, PyObject *out_obj, Py_buffer *out) {
    if (get_buffer(buf_obj, buf, 0, 1, 0, "buf") < 0)
        return -1;
    if (get_buffer(out_obj, out, 1, 8, 0, "out") < 0) {
        PyBuffer_Release(buf);
        return -1;
    }
    return 0;
}

static inline uint32_t read_u32(const unsigned char *p, int big) {
    return big ? ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3])
               : ((uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0]);
}

/* Bytes ahead of the record being read that the walk asks the CPU to fetch: records follow one
 * another, but each position is known only once the previous length is read, so without it
 * every record waits for memory (on the 1 M-packet benchmarks: the walk 30 -> 10 ms ideal,
 * 23 -> 13 ms realistic; the whole analysis about -10 ms, as later passes then find less in cache). */
#define WALK_AHEAD 2048
/* pcap_walk(buf, pos, big_endian, out) -> (records, next position, caplen that did not fit or -1) */
static PyObject *pcap_walk(PyObject *self, PyObject *args) {
    Py_buffer buf, out;
    Py_ssize_t pos;
    int big;
    PyObject *buf_obj, *out_obj;
    if (!PyArg_ParseTuple(args, "OnpO", &buf_obj, &pos, &big, &out_obj))
        return NULL;
    if (walk_buffers(buf_obj, &buf, out_obj, &out) < 0)
        return NULL;
    const unsigned char *b = buf.buf;
    int64_t *o = out.buf;
    Py_ssize_t size = buf.len, cap = out.len / 8, count = 0;
    long long cut = -1;
    while (pos >= 0 && pos + 16 <= size && count < cap) {
        if (pos + WALK_AHEAD < size)
            __builtin_prefetch(b + pos + WALK_AHEAD);
        uint32_t n = read_u32(b + pos + 8, big);
        Py_ssize_t nxt = pos + 16 + (Py_ssize_t)n;
        if (nxt > size) {
            cut = n;
            break;
        }
        o[count++] = pos;
        pos = nxt;
    }
    PyBuffer_Release(&buf);
    PyBuffer_Release(&out);
    return Py_BuildValue("nnL", count, pos, cut);
}

/* pcapng_epb_walk(buf, pos, big_endian, max_block, out) -> (blocks, next position): the run of
 * complete Enhanced Packet Blocks from pos whose type and length look sane (32..max_block, a
 * multiple of 4); the caller decodes and checks them, and handles whatever block stops the run. */
static PyObject *pcapng_epb_walk(PyObject *self, PyObject *args) {
    Py_buffer buf, out;
    Py_ssize_t pos, max_block;
    int big;
    PyObject *buf_obj, *out_obj;
    if (!PyArg_ParseTuple(args, "OnpnO", &buf_obj, &pos, &big, &max_block, &out_obj))
        return NULL;
    if (walk_buffers(buf_obj, &buf, out_obj, &out) < 0)
        return NULL;
    const unsigned char *b = buf.buf;
    int64_t *o = out.buf;
    Py_ssize_t end = buf.len, cap = out.len / 8, count = 0;
    while (pos >= 0 && pos + 12 <= end && count < cap) {
        uint32_t btype = read_u32(b + pos, big), blen = read_u32(b + pos + 4, big);
        if (btype != 6 || blen < 32 || (Py_ssize_t)blen > max_block || (blen & 3) || pos + (Py_ssize_t)blen > end)
            break;
        o[count++] = pos;
        pos += blen;
    }
    PyBuffer_Release(&buf);
    PyBuffer_Release(&out);
    return Py_BuildValue("nn", count, pos);
}

static inline uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The stream index: open addressing with linear probing over three arrays of a power-of-two
 * size (key halves and table row, -1 = empty), filled by stream_insert, read by stream_lookup. */
static inline uint64_t mix_key(uint64_t sd, uint64_t ps) {
    uint64_t h = sd * 0x9E3779B97F4A7C15ULL ^ ps * 0xC2B2AE3D27D4EB4FULL;
    return h ^ (h >> 31);
}

/* stream_insert(index_sd, index_ps, index_slot, key_sd, key_ps, slot) -> 1 new entry, 0 updated,
 * -1 full */
static PyObject *stream_insert(PyObject *self, PyObject *args) {
    PyObject *o_sd, *o_ps, *o_slot;
    unsigned long long key_sd, key_ps;
    long long slot;
    if (!PyArg_ParseTuple(args, "OOOKKL", &o_sd, &o_ps, &o_slot, &key_sd, &key_ps, &slot))
        return NULL;
    Py_buffer isd, ips, isl;
    if (get_buffer(o_sd, &isd, 1, 8, 1, "index_sd") < 0)
        return NULL;
    if (get_buffer(o_ps, &ips, 1, 8, isd.len / 8, "index_ps") < 0) {
        PyBuffer_Release(&isd);
        return NULL;
    }
    if (get_buffer(o_slot, &isl, 1, 8, isd.len / 8, "index_slot") < 0) {
        PyBuffer_Release(&isd);
        PyBuffer_Release(&ips);
        return NULL;
    }
    uint64_t *sd = isd.buf, *ps = ips.buf;
    int64_t *sl = isl.buf;
    const uint64_t size = (uint64_t)(isd.len / 8), mask = size - 1;
    long result = -1;
    if (size & mask) {
        PyErr_SetString(PyExc_ValueError, "index size must be a power of two");
    } else {
        uint64_t at = mix_key(key_sd, key_ps) & mask;
        for (uint64_t probes = 0; probes < size; probes++, at = (at + 1) & mask) {
            if (sl[at] < 0) {
                sd[at] = key_sd, ps[at] = key_ps, sl[at] = slot;
                result = 1;
                break;
            }
            if (sd[at] == key_sd && ps[at] == key_ps) {
                sl[at] = slot;
                result = 0;
                break;
            }
        }
    }
    PyBuffer_Release(&isd);
    PyBuffer_Release(&ips);
    PyBuffer_Release(&isl);
    if (result == -1 && PyErr_Occurred())
        return NULL;
    return PyLong_FromLong(result);
}

/* stream_lookup(index_sd, index_ps, index_slot, slot_sd, slot_ps, slot_epoch, epoch, row_sd, row_ps, out)
 *   out[i] = the table row of row i's stream key, when the index has it and that row still holds
 *   the key in this epoch; else -1. */
static PyObject *stream_lookup(PyObject *self, PyObject *args) {
    PyObject *objs[9], *out_obj;
    long long epoch;
    if (!PyArg_ParseTuple(args, "OOOOOOLOOO", &objs[0], &objs[1], &objs[2], &objs[3], &objs[4], &objs[5], &epoch,
                          &objs[6], &objs[7], &out_obj))
        return NULL;
    static const char *const names[8] = {"index_sd", "index_ps", "index_slot", "slot_sd", "slot_ps",
                                         "slot_epoch", "row_sd", "row_ps"};
    Py_buffer in[8], out;
    int got = 0;
    PyObject *result = NULL;
    PyObject *order[8] = {objs[0], objs[1], objs[2], objs[3], objs[4], objs[5], objs[6], objs[7]};
    for (; got < 8; got++)
        if (get_buffer(order[got], &in[got], 0, 8, 0, names[got]) < 0)
            goto release;
    const Py_ssize_t size = in[0].len / 8, slots = in[3].len / 8, n = in[6].len / 8;
    if (in[1].len / 8 != size || in[2].len / 8 != size || (size & (size - 1)) || size == 0 ||
        in[4].len / 8 != slots || in[5].len / 8 != slots || in[7].len / 8 != n) {
        PyErr_SetString(PyExc_ValueError, "stream_lookup: inconsistent array lengths");
        goto release;
    }
    if (get_buffer(out_obj, &out, 1, 8, n, "out") < 0)
        goto release;
    const uint64_t *isd = in[0].buf, *ips = in[1].buf, *ssd = in[3].buf, *sps = in[4].buf, *rsd = in[6].buf,
                   *rps = in[7].buf;
    const int64_t *isl = in[2].buf, *sep = in[5].buf;
    int64_t *o = out.buf;
    const uint64_t mask = (uint64_t)size - 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        const uint64_t sd = rsd[i], ps = rps[i];
        int64_t found = -1;
        uint64_t at = mix_key(sd, ps) & mask;
        for (Py_ssize_t probes = 0; probes < size && isl[at] >= 0; probes++, at = (at + 1) & mask) {
            if (isd[at] == sd && ips[at] == ps) {
                int64_t s = isl[at];
                if (s < slots && sep[s] == epoch && ssd[s] == sd && sps[s] == ps)
                    found = s;
                break;
            }
        }
        o[i] = found;
    }
    result = PyLong_FromLong(0);
    PyBuffer_Release(&out);
release:
    for (int k = 0; k < got; k++)
        PyBuffer_Release(&in[k]);
    return result;
}

/* rtp_rows(slot, head, frame, ts, clock, event, state_i, state_f, interval_s, out) -> closed intervals
 *
 * Row i is one datagram of a batch: slot[i] is the table row (of state_i: NI int64 columns,
 * state_f: NF float64 columns) of its RTP stream, or < 0 to skip the row; head holds its first 12
 * payload bytes (the RTP fixed header, already checked); rows of one stream are in capture order.
 * clock / event (int32 / int8, 128 per table row): the clock rate (0 = none) and the
 * telephone-event flag of each payload type on that stream's endpoint; every one a row needs
 * must be looked up (>= 0) before the call. A stream with total_nr 0 starts at its first row.
 * out holds CLOSE_COLS float64 per row (a row closes at most one interval). */
static PyObject *rtp_rows(PyObject *self, PyObject *args) {
    PyObject *o_slot, *o_head, *o_frame, *o_ts, *o_clock, *o_event, *si_obj, *sf_obj, *out_obj;
    double interval_s;
    if (!PyArg_ParseTuple(args, "OOOOOOOOdO", &o_slot, &o_head, &o_frame, &o_ts, &o_clock, &o_event, &si_obj,
                          &sf_obj, &interval_s, &out_obj))
        return NULL;
    Py_buffer b_slot, b_head, b_frame, b_ts, b_clock, b_event, si, sf, out;
    PyObject *result = NULL;
    if (get_buffer(o_slot, &b_slot, 0, 8, 0, "slot") < 0)
        return NULL;
    const Py_ssize_t n = b_slot.len / 8;
    if (get_buffer(o_head, &b_head, 0, 12, n, "head") < 0)
        goto r0;
    if (get_buffer(o_frame, &b_frame, 0, 8, n, "frame") < 0)
        goto r1;
    if (get_buffer(o_ts, &b_ts, 0, 8, n, "ts") < 0)
        goto r2;
    if (get_buffer(si_obj, &si, 1, 8 * NI, 0, "state_i") < 0)
        goto r3;
    const Py_ssize_t slots = si.len / (8 * NI);
    if (get_buffer(sf_obj, &sf, 1, 8 * NF, slots, "state_f") < 0)
        goto r4;
    if (get_buffer(o_clock, &b_clock, 0, 4 * 128, slots, "clock") < 0)
        goto r5;
    if (get_buffer(o_event, &b_event, 0, 128, slots, "event") < 0)
        goto r6;
    if (get_buffer(out_obj, &out, 1, 8 * CLOSE_COLS, n, "out") < 0)
        goto r7;
    if (!(interval_s > 0)) {
        PyErr_SetString(PyExc_ValueError, "interval_s must be positive");
        goto r8;
    }
    const int64_t *slot = b_slot.buf, *frames = b_frame.buf;
    const unsigned char *heads = b_head.buf;
    const double *tss = b_ts.buf;
    const int32_t *clocks = b_clock.buf;
    const int8_t *events = b_event.buf;
    for (Py_ssize_t i = 0; i < n; i++) { /* check everything before changing anything */
        if (slot[i] < 0)
            continue;
        if (slot[i] >= slots) {
            PyErr_Format(PyExc_IndexError, "row %zd: stream slot %lld out of range", i, (long long)slot[i]);
            goto r8;
        }
        if (clocks[slot[i] * 128 + (heads[i * 12 + 1] & 0x7F)] < 0) {
            PyErr_Format(PyExc_ValueError, "row %zd: payload type clock not looked up", i);
            goto r8;
        }
    }
    double *o = out.buf;
    Py_ssize_t closes = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (slot[i] < 0)
            continue;
        int64_t *S = (int64_t *)si.buf + slot[i] * NI;
        double *F = (double *)sf.buf + slot[i] * NF;
        const unsigned char *h = heads + i * 12;
        const int64_t seq = (int64_t)h[2] << 8 | h[3], rtp_ts = be32(h + 4), pt = h[1] & 0x7F;
        const int64_t clock = clocks[slot[i] * 128 + pt];
        const int is_event = events[slot[i] * 128 + pt] != 0;
        const int marker = (h[1] & 0x80) != 0;
        const double ts = tss[i];
        const int64_t frame = frames[i];
        /* RtpAnalyzer._feed */
        if (is_event)
            S[I_EVENTS] += 1;
        if (S[I_MAIN_PT] < 0 && pt != PT_CN && pt != PT_CN_OLD && !is_event) {
            S[I_MAIN_PT] = pt;
            if (clock)
                S[I_CLOCK_RATE] = clock;
        }
        if (S[I_TOTAL_NR] == 0) { /* _Stream.first */
            double now = ts * 1000.0;
            S[I_FIRST_FRAME] = S[I_LAST_FRAME] = frame;
            F[F_FIRST_TS] = F[F_LAST_TS] = ts;
            S[I_START_SEQ] = S[I_STOP_SEQ] = S[I_SEQ_NUM] = seq;
            S[I_CYCLES] = 0;
            S[I_UNDER] = 0;
            S[I_SEQUENCE] = 0;
            F[F_TIME] = now;
            S[I_FIRST_TIMESTAMP] = rtp_ts;
            F[F_LAST_NOMINAL] = 0.0;
            S[I_FIRST_PT] = S[I_PT] = pt;
            F[F_DELTA] = F[F_MAX_DELTA] = 0.0;
            F[F_MIN_DELTA] = -1.0;
            F[F_MEAN_DELTA] = 0.0;
            F[F_JITTER] = 0.0;
            F[F_MIN_JITTER] = -1.0;
            F[F_MAX_JITTER] = F[F_MEAN_JITTER] = 0.0;
            S[I_TOTAL_NR] = 1;
            if (clock)
                S[I_CLOCK_RATE] = clock;
            S[I_HI_SEQ] = 0x10000 + seq;
            S[I_DUP_LO] = 1;
            S[I_DUP_HI] = 0;
            S[I_BAD_SEQ] = -1;
            F[F_CUR_START] = ts;
            S[I_CUR_PACKETS] = 1;
            S[I_CUR_EXP] = 1;
            F[F_CUR_JIT_SUM] = 0.0;
            S[I_CUR_JIT_N] = 0;
            F[F_CUR_JIT_MAX] = 0.0;
            continue;
        }
        /* RtpAnalyzer._analyse */
        double now = ts * 1000.0;
        S[I_LAST_FRAME] = frame;
        F[F_LAST_TS] = ts;
        int64_t nominal_units = (rtp_ts - S[I_FIRST_TIMESTAMP]) & 0xFFFFFFFF;
        int in_time = nominal_units < 0x80000000LL;
        if (in_time) {
            if (!S[I_UNDER] && (seq < S[I_START_SEQ] || (seq == 0 && S[I_STOP_SEQ] == 65535))) {
                S[I_CYCLES] += 1;
                S[I_UNDER] = 1;
            } else if (seq > S[I_START_SEQ] && S[I_UNDER]) {
                S[I_UNDER] = 0;
            }
        }
        int64_t last = S[I_SEQ_NUM];
        if (in_time && (last + 1 == seq || (last == 65535 && seq == 0))) {
            S[I_SEQ_NUM] = seq;
        } else if (in_time && (last + 1 < seq || last - seq > 0xFF00)) {
            S[I_SEQ_NUM] = seq;
            S[I_SEQUENCE] += 1;
        } else if (last + 1 > seq) {
            S[I_SEQUENCE] += 1;
        }
        int regular = in_time && !marker && pt != PT_CN && pt != PT_CN_OLD;
        if (S[I_PT] == PT_CN || S[I_PT] == PT_CN_OLD)
            regular = 0;
        S[I_PT] = pt;
        double jitter = 0.0;
        if (in_time) {
            F[F_DELTA] = now - F[F_TIME];
            if (clock) {
                S[I_CLOCK_RATE] = clock;
                double nominal = (double)nominal_units / (double)(clock / 1000);
                double d = now - (F[F_TIME] + nominal - F[F_LAST_NOMINAL]);
                jitter = (15.0 * F[F_JITTER] + fabs(d)) / 16.0;
                F[F_JITTER] = jitter;
                F[F_LAST_NOMINAL] = nominal;
            }
            F[F_TIME] = now;
        }
        int64_t nr = S[I_TOTAL_NR];
        if (regular) {
            double delta = F[F_DELTA];
            if (delta > F[F_MAX_DELTA])
                F[F_MAX_DELTA] = delta;
            if (F[F_MIN_DELTA] == -1.0 || delta < F[F_MIN_DELTA])
                F[F_MIN_DELTA] = delta;
            F[F_MEAN_DELTA] = (F[F_MEAN_DELTA] * (double)(nr - 1) + delta) / (double)nr;
            if (clock) {
                if (F[F_JITTER] > F[F_MAX_JITTER])
                    F[F_MAX_JITTER] = F[F_JITTER];
                F[F_MEAN_JITTER] = (F[F_MEAN_JITTER] * (double)(nr - 1) + jitter) / (double)nr;
                if (F[F_MIN_JITTER] == -1.0 || F[F_JITTER] < F[F_MIN_JITTER])
                    F[F_MIN_JITTER] = F[F_JITTER];
            }
        }
        S[I_STOP_SEQ] = seq;
        S[I_TOTAL_NR] = nr + 1;
        if (ts - F[F_CUR_START] >= interval_s) {
            if (S[I_CUR_PACKETS] != 0) { /* _close_interval: the rest is done in Python */
                double *c = o + closes * CLOSE_COLS;
                c[0] = (double)slot[i];
                c[1] = (double)i;
                c[2] = F[F_CUR_START];
                c[3] = (double)S[I_CUR_PACKETS];
                c[4] = (double)S[I_CUR_EXP];
                c[5] = F[F_CUR_JIT_SUM];
                c[6] = (double)S[I_CUR_JIT_N];
                c[7] = F[F_CUR_JIT_MAX];
                c[8] = (double)S[I_MAIN_PT];
                closes++;
                S[I_CUR_PACKETS] = S[I_CUR_EXP] = S[I_CUR_JIT_N] = 0;
                F[F_CUR_JIT_SUM] = F[F_CUR_JIT_MAX] = 0.0;
            }
            F[F_CUR_START] = F[F_FIRST_TS] + (double)(int64_t)((ts - F[F_FIRST_TS]) / interval_s) * interval_s;
        }
        S[I_CUR_PACKETS] += 1;
        if (regular && clock) {
            F[F_CUR_JIT_SUM] += jitter;
            S[I_CUR_JIT_N] += 1;
            if (jitter > F[F_CUR_JIT_MAX])
                F[F_CUR_JIT_MAX] = jitter;
        }
        /* our extended sequence number: duplicates and expected per interval */
        int64_t hi = S[I_HI_SEQ];
        int64_t d = (int64_t)((uint64_t)(seq - hi) & 0xFFFF);
        u128 mask = (u128)(uint64_t)S[I_DUP_LO] | ((u128)(uint64_t)S[I_DUP_HI] << 64);
        if (d == 1) {
            S[I_HI_SEQ] = hi + 1;
            S[I_CUR_EXP] += 1;
            mask = (mask << 1) | 1;
            S[I_BAD_SEQ] = -1;
        } else if (d == 0) {
            S[I_DUPLICATES] += 1;
        } else {
            int64_t back = 0x10000 - d;
            if (d <= 3000 || (d < 0x8000 && S[I_BAD_SEQ] == seq)) {
                if (d > 3000) {
                    S[I_CUR_EXP] += 2;
                    mask = 1;
                } else {
                    S[I_CUR_EXP] += d;
                    mask = d >= 128 ? (u128)1 : (mask << d) | 1;
                }
                S[I_HI_SEQ] = hi + d;
                S[I_BAD_SEQ] = -1;
            } else if (back < 128) {
                u128 bit = (u128)1 << back;
                if (mask & bit)
                    S[I_DUPLICATES] += 1;
                else
                    mask |= bit;
            } else if (S[I_BAD_SEQ] == seq) {
                S[I_HI_SEQ] = hi - back;
                S[I_CUR_EXP] += 2;
                mask = 1;
                S[I_BAD_SEQ] = -1;
            } else {
                S[I_BAD_SEQ] = (seq + 1) & 0xFFFF;
            }
        }
        S[I_DUP_LO] = (int64_t)(uint64_t)mask;
        S[I_DUP_HI] = (int64_t)(uint64_t)(mask >> 64);
    }
    result = PyLong_FromSsize_t(closes);
r8:
    PyBuffer_Release(&out);
r7:
    PyBuffer_Release(&b_event);
r6:
    PyBuffer_Release(&b_clock);
r5:
    PyBuffer_Release(&sf);
r4:
    PyBuffer_Release(&si);
r3:
    PyBuffer_Release(&b_ts);
r2:
    PyBuffer_Release(&b_frame);
r1:
    PyBuffer_Release(&b_head);
r0:
    PyBuffer_Release(&b_slot);
    return result;
}

/* Records ahead whose headers the fast lane asks the CPU to fetch (their offsets are known):
 * 22 -> 15 ms ideal, 20 -> 17 ms realistic on the 1 M-packet benchmarks. */
#define LANE_AHEAD 16
static inline unsigned be16(const unsigned char *p) { return (unsigned)p[0] << 8 | p[1]; }

/* udp_fast_lane(buf, data_off, caplen, orig_len, linktype, sip_ports, tunnel_ports, tunnel_dport,
 *               out, head, plain) -> (lane rows, plain rows)
 *
 * The pipeline's fast lane (collectors/fast_lane.py, fast_rows, which it must equal): records
 * that are whole (caplen == orig_len, at least 40 bytes after the link header) plain IPv4 (IHL 5,
 * no fragment) / UDP datagrams whose UDP length matches the IP length (at least 20), not a tunnel
 * (tunnel_ports on either side, tunnel_dport as destination). Link types: Ethernet (untagged or
 * one 802.1Q tag), Linux SLL / SLL2, BSD loopback (AF_INET in either byte order for DLT_NULL,
 * network order for DLT_LOOP), raw IP. Those whose payload starts like RTP/RTCP version 2 and that use none of sip_ports go to the
 * lane: in record order, the (7, n) int64 out gets one value in each row (record, source
 * address, destination address, source port, destination port, payload offset in buf, payload
 * length) and head the payload's first 12 bytes. The others (SIP, mostly) go to plain, the same
 * 7 rows: the pipeline hands them to its UDP analysers without decoding the frame again. */
static PyObject *udp_fast_lane(PyObject *self, PyObject *args) {
    PyObject *objs[7], *out_obj, *head_obj, *plain_obj;
    long long tunnel_dport;
    if (!PyArg_ParseTuple(args, "OOOOOOOLOOO", &objs[0], &objs[1], &objs[2], &objs[3], &objs[4], &objs[5],
                          &objs[6], &tunnel_dport, &out_obj, &head_obj, &plain_obj))
        return NULL;
    static const char *const names[7] = {"buf", "data_off", "caplen", "orig_len", "linktype", "sip_ports",
                                         "tunnel_ports"};
    Py_buffer in[7], out, head, plain;
    int got = 0;
    PyObject *result = NULL;
    for (; got < 7; got++)
        if (get_buffer(objs[got], &in[got], 0, got == 0 ? 1 : 8, 0, names[got]) < 0)
            goto release_inputs;
    Py_ssize_t n = in[1].len / 8;
    if (in[2].len / 8 != n || in[3].len / 8 != n || in[4].len / 8 != n) {
        PyErr_SetString(PyExc_ValueError, "record columns of different lengths");
        goto release_inputs;
    }
    if (get_buffer(out_obj, &out, 1, 8 * 7, n, "out") < 0)
        goto release_inputs;
    if (get_buffer(head_obj, &head, 1, 12, n, "head") < 0) {
        PyBuffer_Release(&out);
        goto release_inputs;
    }
    if (get_buffer(plain_obj, &plain, 1, 8 * 7, n, "plain") < 0) {
        PyBuffer_Release(&head);
        PyBuffer_Release(&out);
        goto release_inputs;
    }
    const unsigned char *b = in[0].buf;
    const Py_ssize_t size = in[0].len;
    const int64_t *off = in[1].buf, *cap = in[2].buf, *orig = in[3].buf, *lts = in[4].buf, *sip = in[5].buf,
                  *tun = in[6].buf;
    const Py_ssize_t n_sip = in[5].len / 8, n_tun = in[6].len / 8;
    int64_t *o = out.buf, *p = plain.buf;
    unsigned char *hd = head.buf;
    Py_ssize_t count = 0, plains = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        const int64_t c = cap[i], at = off[i], lt = lts[i];
        if (i + LANE_AHEAD < n && off[i + LANE_AHEAD] >= 0 && off[i + LANE_AHEAD] + 64 <= size)
            __builtin_prefetch(b + off[i + LANE_AHEAD] + 32);
        if (c < 40 || c != orig[i] || at < 0 || at + c > size)
            continue;
        const unsigned char *r = b + at;
        int64_t ipo = -1;
        if (lt == 1) {
            unsigned et = be16(r + 12);
            if (et == 0x0800)
                ipo = 14;
            else if (et == 0x8100 && be16(r + 16) == 0x0800)
                ipo = 18;
        } else if (lt == 113) {
            if (be16(r + 14) == 0x0800)
                ipo = 16;
        } else if (lt == 276) {
            if (be16(r) == 0x0800)
                ipo = 20;
        } else if (lt == 0 || lt == 108) {
            uint32_t word = (uint32_t)r[0] << 24 | (uint32_t)r[1] << 16 | (uint32_t)r[2] << 8 | r[3];
            /* DLT_NULL: AF_INET = 2 in the capturing host's byte order, either; DLT_LOOP: in
             * network order only (as the per-frame decoder reads them) */
            if (word == 2 || (word == 0x02000000 && lt == 0))
                ipo = 4;
        } else if (lt == 12 || lt == 14 || lt == 101 || lt == 228) {
            ipo = 0;
        }
        if (ipo < 0 || ipo + 40 > c)
            continue;
        const unsigned char *h = r + ipo;
        if (h[0] != 0x45 || h[9] != 17 || (h[6] & 0x3F) || h[7])
            continue;
        int64_t iplen = be16(h + 2), udplen = be16(h + 24);
        if (udplen != iplen - 20 || udplen < 20 || iplen + ipo > c)
            continue;
        int64_t sport = be16(h + 20), dport = be16(h + 22);
        int tunnel = dport == tunnel_dport;
        for (Py_ssize_t k = 0; k < n_tun && !tunnel; k++)
            tunnel = sport == tun[k] || dport == tun[k];
        if (tunnel)
            continue;
        int lane = (h[28] & 0xC0) == 0x80;
        for (Py_ssize_t k = 0; k < n_sip && lane; k++)
            lane = sport != sip[k] && dport != sip[k];
        /* (7, n) arrays: one row per field, so the caller takes each as a contiguous view */
        int64_t *dst = lane ? o + count : p + plains;
        dst[0] = i;
        dst[n] = (int64_t)((uint32_t)h[12] << 24 | (uint32_t)h[13] << 16 | (uint32_t)h[14] << 8 | h[15]);
        dst[2 * n] = (int64_t)((uint32_t)h[16] << 24 | (uint32_t)h[17] << 16 | (uint32_t)h[18] << 8 | h[19]);
        dst[3 * n] = sport;
        dst[4 * n] = dport;
        dst[5 * n] = at + ipo + 28;
        dst[6 * n] = udplen - 8;
        if (lane)
            memcpy(hd + count++ * 12, h + 28, 12);
        else
            plains++;
    }
    result = Py_BuildValue("nn", count, plains);
    PyBuffer_Release(&plain);
    PyBuffer_Release(&head);
    PyBuffer_Release(&out);
release_inputs:
    for (int k = 0; k < got; k++)
        PyBuffer_Release(&in[k]);
    return result;
}

static PyMethodDef methods[] = {
    {"pcap_walk", pcap_walk, METH_VARARGS, "Offsets of the complete classic-pcap records from pos."},
    {"pcapng_epb_walk", pcapng_epb_walk, METH_VARARGS, "Offsets of the run of Enhanced Packet Blocks from pos."},
    {"rtp_rows", rtp_rows, METH_VARARGS, "RTP stream statistics over a chunk's rows, grouped by stream."},
    {"stream_insert", stream_insert, METH_VARARGS, "Add or update a stream key in the stream index."},
    {"stream_lookup", stream_lookup, METH_VARARGS, "The table row of each row's stream key, or -1."},
    {"udp_fast_lane", udp_fast_lane, METH_VARARGS, "The pipeline's fast lane: plain IPv4/UDP datagrams with RTP-like payloads."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "collectors._kernels",
                                    "Sequential kernels of the capture analysis (see _kernels.c).", -1, methods};

static PyObject *names_tuple(const char *const *names, int count) {
    PyObject *t = PyTuple_New(count);
    if (!t)
        return NULL;
    for (int k = 0; k < count; k++) {
        PyObject *s = PyUnicode_FromString(names[k]);
        if (!s) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, k, s);
    }
    return t;
}

PyMODINIT_FUNC PyInit__kernels(void) {
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    PyObject *ints = names_tuple(INT_NAMES, NI), *floats = names_tuple(FLOAT_NAMES, NF);
    if (!ints || !floats || PyModule_AddObject(m, "INT_FIELDS", ints) < 0) {
        Py_XDECREF(ints);
        Py_XDECREF(floats);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddObject(m, "FLOAT_FIELDS", floats) < 0 || PyModule_AddIntConstant(m, "CLOSE_COLS", CLOSE_COLS) < 0) {
        Py_DECREF(floats);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
