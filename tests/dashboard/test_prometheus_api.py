"""The fleet view's Prometheus client: answers are hostile input (shape, size, time, encoding)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard.prometheus_api import (
    Limits,
    PrometheusClient,
    PrometheusError,
    RangeSeries,
    Sample,
    decode_matrix,
    decode_vector,
)

WHERE = "Prometheus http://p/api/v1/query"
LIMITS = Limits()


def _vector(*series: tuple[dict[str, str], str]) -> bytes:
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": m, "value": [1700000000.5, v]} for m, v in series]}}).encode()


# --- decoding (sans-IO) ----------------------------------------------------------------------------


def test_vector_values_labels_and_special_numbers() -> None:
    got = decode_vector(200, _vector(({"system": "a", "id": "x"}, "1"), ({"system": "b"}, "NaN"),
                                     ({"system": "c"}, "+Inf")), WHERE, LIMITS)
    assert got[0] == Sample((("id", "x"), ("system", "a")), 1.0, 1700000000.5)
    assert got[0].label("system") == "a" and got[0].label("missing") == ""
    assert got[1].value != got[1].value and got[2].value == float("inf")


def test_matrix() -> None:
    body = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {}, "values": [[10, "1"], [25, "3"]]}]}}).encode()
    assert decode_matrix(200, body, WHERE, LIMITS) == (RangeSeries((), ((10.0, 1.0), (25.0, 3.0))),)


@pytest.mark.parametrize(("status", "body", "message"), [
    (400, b'{"status":"error","errorType":"bad_data","error":"parse error at char 3"}',
     "HTTP 400, bad_data: parse error at char 3"),
    (502, b"<html><body>Bad Gateway</body></html>", "answered HTTP 502: <html><body>Bad Gateway</body></html>"),
    (302, b"", "answered HTTP 302 (redirects are not followed)"),
    (200, b"not json", "the answer is not JSON"),
    (200, b"[]", "not a JSON object"),
    (200, b'{"status":"success"}', "has no data"),
    (200, b'{"status":"success","data":{"resultType":"matrix","result":[]}}', "expected a vector, got 'matrix'"),
    (200, b'{"status":"success","data":{"resultType":"vector","result":{}}}', "the result is not a list"),
    (200, b'{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"1"]}]}}',
     "a series without labels"),
    (200, b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":1},"value":[1,"1"]}]}}',
     "a label that is not a short string"),
    (200, b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,1]}]}}',
     "a sample that is not [time, \"value\"]"),
    (200, b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"x"]}]}}',
     "sample value 'x' is not a number"),
    (200, b"[" * 100_000, "the answer is not JSON"),  # nesting deeper than the parser's recursion
])
def test_unusable_answers_are_clear_errors(status: int, body: bytes, message: str) -> None:
    with pytest.raises(PrometheusError) as err:
        decode_vector(status, body, WHERE, LIMITS)
    assert str(err.value).startswith(WHERE + ": ") and message in str(err.value)


def test_series_and_point_limits() -> None:
    many = _vector(*(({"system": str(i)}, "1") for i in range(11)))
    with pytest.raises(PrometheusError, match="11 series, more than the limit 10"):
        decode_vector(200, many, WHERE, Limits(max_series=10))
    body = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {}, "values": [[i, "1"] for i in range(6)]}] * 2}}).encode()
    with pytest.raises(PrometheusError, match="more than 10 samples"):
        decode_matrix(200, body, WHERE, Limits(max_points=10))
    long_label = _vector(({"title": "x" * 5000}, "1"))
    with pytest.raises(PrometheusError, match="not a short string"):
        decode_vector(200, long_label, WHERE, LIMITS)


def test_server_error_text_is_short_and_printable() -> None:
    body = json.dumps({"status": "error", "errorType": "execution", "error": "\x1b[31m" + "y" * 5000}).encode()
    with pytest.raises(PrometheusError) as err:
        decode_vector(422, body, WHERE, LIMITS)
    text = str(err.value)
    assert "\x1b" not in text and len(text) < len(WHERE) + 260


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_decode_or_raise_prometheus_error(body: bytes) -> None:
    for decode in (decode_vector, decode_matrix):
        with suppress(PrometheusError):
            decode(200, body, WHERE, LIMITS)


_json = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                     max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["vector", "matrix"]), st.lists(_json, max_size=4))
def test_any_json_result_decodes_or_raises_prometheus_error(kind: str, result: list[object]) -> None:
    body = json.dumps({"status": "success", "data": {"resultType": kind, "result": result}}).encode()
    decode = decode_vector if kind == "vector" else decode_matrix
    with suppress(PrometheusError):
        decode(200, body, WHERE, LIMITS)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.dictionaries(st.from_regex(r"[a-z_]{1,10}", fullmatch=True), st.text(max_size=20),
                                          max_size=4),
                          st.floats(allow_nan=False)), max_size=20))
def test_valid_vectors_decode_to_what_was_sent(series: list[tuple[dict[str, str], float]]) -> None:
    got = decode_vector(200, _vector(*((m, repr(v)) for m, v in series)), WHERE, LIMITS)
    assert [(dict(s.labels), s.value) for s in got] == series


# --- the exchange over real sockets ------------------------------------------------------------------


@contextmanager
def raw_server(answer: Callable[[socket.socket, bytes], None]) -> Iterator[tuple[str, list[bytes]]]:
    """A TCP server on 127.0.0.1 that reads one request and lets ``answer`` write raw bytes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    requests: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(next((ln.split(b":")[1] for ln in head.split(b"\r\n")
                                   if ln.lower().startswith(b"content-length:")), b"0"))
                while len(body) < length:
                    body += conn.recv(65536)
                requests.append(head + b"\r\n\r\n" + body)
                with suppress(OSError):
                    answer(conn, body)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}", requests
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def _http(body: bytes, status: str = "200 OK", headers: str = "") -> Callable[[socket.socket, bytes], None]:
    def answer(conn: socket.socket, _request: bytes) -> None:
        conn.sendall(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{headers}"
                     f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    return answer


def test_query_is_a_post_with_time_and_timeout_and_no_secret_in_messages() -> None:
    with raw_server(_http(_vector(({"system": "a"}, "1")))) as (addr, requests):
        client = PrometheusClient(f"http://noc:s3cret-pass@{addr}/prom/", Limits(timeout_s=5))
        assert client.url == f"http://{addr}/prom"
        got = client.query("up == 1", at=1700000000.0)
    assert got[0].label("system") == "a"
    head, _, body = requests[0].partition(b"\r\n\r\n")
    assert head.startswith(b"POST /prom/api/v1/query HTTP/1.1")
    assert b"Authorization: Basic bm9jOnMzY3JldC1wYXNz" in head
    assert body == b"query=up+%3D%3D+1&timeout=5s&time=1700000000.000"


def test_unreachable_server_names_the_address_not_the_password() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = PrometheusClient(f"http://noc:s3cret-pass@127.0.0.1:{port}", Limits(timeout_s=2))
    with pytest.raises(PrometheusError) as err:
        client.query("up")
    assert str(err.value).startswith(f"Prometheus http://127.0.0.1:{port}/api/v1/query: unreachable")
    assert "s3cret" not in str(err.value)


def test_a_trickling_server_is_cut_at_the_deadline() -> None:
    def trickle(conn: socket.socket, _request: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(100):  # one byte every 0.1 s: every read succeeds, the whole never ends in time
            conn.sendall(b"1\r\n \r\n")
            time.sleep(0.1)

    with raw_server(trickle) as (addr, _):
        client = PrometheusClient(f"http://{addr}", Limits(timeout_s=1.0))
        started = time.monotonic()
        with pytest.raises(PrometheusError, match="no complete answer within 1 s"):
            client.query("up")
        assert time.monotonic() - started < 3


def test_an_oversized_answer_is_refused() -> None:
    big = _vector(*(({"system": f"s{i}"}, "1") for i in range(3000)))
    with raw_server(_http(big)) as (addr, _), pytest.raises(PrometheusError, match=f"answer of {len(big)} bytes, more than the limit 10000"):
        PrometheusClient(f"http://{addr}", Limits(max_bytes=10_000)).query("up")

    def chunked(conn: socket.socket, _request: bytes) -> None:  # no Content-Length: counted while reading
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i in range(0, len(big), 4096):
            part = big[i:i + 4096]
            conn.sendall(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        conn.sendall(b"0\r\n\r\n")

    with raw_server(chunked) as (addr, _), pytest.raises(PrometheusError, match="larger than the limit of 10000 bytes"):
        PrometheusClient(f"http://{addr}", Limits(max_bytes=10_000)).query("up")


def test_unasked_content_encoding_and_redirects_are_refused() -> None:
    with raw_server(_http(b"\x1f\x8b....", headers="Content-Encoding: gzip\r\n")) as (addr, _), pytest.raises(PrometheusError, match="content encoding 'gzip', which was not asked for"):
        PrometheusClient(f"http://{addr}").query("up")
    with raw_server(_http(b"", "302 Found", "Location: http://169.254.169.254/\r\n")) as (addr, requests), pytest.raises(PrometheusError, match="redirects are not followed"):
        PrometheusClient(f"http://{addr}").query("up")
    assert len(requests) == 1


@pytest.mark.parametrize("url", ["ftp://p:9090", "prometheus:9090", "http://", "http://p:9090/?x=1",
                                 "http://p:99999"])
def test_bad_urls(url: str) -> None:
    with pytest.raises(PrometheusError, match="Prometheus URL"):
        PrometheusClient(url)


def test_range_arguments_are_checked_before_asking() -> None:
    client = PrometheusClient("http://127.0.0.1:9")
    with pytest.raises(PrometheusError, match="not a valid range"):
        client.query_range("up", 10, 5, 1)
    with pytest.raises(PrometheusError, match="not a valid range"):
        client.query_range("up", 0, 5, float("nan"))
