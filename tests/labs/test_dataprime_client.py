"""DataPrime query API client against a local fake speaking the documented NDJSON format."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from labs.dataprime_client import (
    DataPrimeClient,
    DataPrimeError,
    RateLimiter,
    api_base_url,
    region_of,
)

KEY = "cxtp_SECRETKEY1234567890"


class Fake:
    def __init__(self) -> None:
        self.answers: list[tuple[int, dict[str, str], str]] = []
        self.requests: list[dict] = []


def _handler(fake: Fake):
    class H(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            fake.requests.append(
                {"path": self.path, "auth": self.headers.get("authorization"), "body": body}
            )
            status, headers, text = fake.answers.pop(0)
            self.send_response(status)
            self.send_header("content-type", "application/x-ndjson")
            for k, v in headers.items():
                self.send_header(k, v)
            data = text.encode()
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_a):
            pass

    return H


@pytest.fixture()
def fake():
    f = Fake()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(f))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    f.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield f
    server.shutdown()


def ndjson(*lines: dict) -> str:
    return "\n".join(json.dumps(x) for x in lines) + "\n"


def ok_answer(rows: list[dict]) -> str:
    return ndjson(
        {"queryId": {"queryId": "q-123"}},
        {
            "result": {
                "results": [{"metadata": [], "labels": [], "userData": json.dumps(r)} for r in rows]
            }
        },
    )


def client(fake: Fake, **kw) -> DataPrimeClient:
    return DataPrimeClient(KEY, base_url=fake.url, sleep=lambda _s: None, **kw)


def test_normal_answer(fake):
    fake.answers.append(
        (200, {}, ok_answer([{"serviceName": "validation-service", "p95_us": 412000}]))
    )
    result = client(fake).query("source spans | limit 1", start=0, end=60)
    assert result.query_id == "q-123"
    assert result.first("serviceName") == "validation-service"
    req = fake.requests[0]
    assert req["path"] == "/api/v1/dataprime/query"
    assert req["auth"] == f"Bearer {KEY}"
    meta = req["body"]["metadata"]
    assert meta["tier"] == "TIER_FREQUENT_SEARCH" and meta["syntax"] == "QUERY_SYNTAX_DATAPRIME"
    assert meta["startDate"].startswith("1970-01-01T00:00:00") and meta["endDate"].endswith("Z")


def test_error_inside_200(fake):
    fake.answers.append(
        (
            200,
            {},
            ndjson(
                {"queryId": {"queryId": "q"}},
                {"error": {"message": "keypath does not exist", "code": {"validation": {}}}},
            ),
        )
    )
    with pytest.raises(DataPrimeError, match="keypath does not exist"):
        client(fake).query("source spans | bad")


def test_429_then_success(fake):
    slept = []
    fake.answers.append((429, {"Retry-After": "7"}, ""))
    fake.answers.append((200, {}, ok_answer([{"n": 1}])))
    c = DataPrimeClient(KEY, base_url=fake.url, sleep=slept.append)
    assert c.query("source spans").first("n") == 1
    assert slept == [7.0]


def test_limiter_simulated_clock():
    now = [0.0]
    sleeps = []

    def sleep(s):
        sleeps.append(s)
        now[0] += s

    lim = RateLimiter(30, 60.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(30):
        assert lim.acquire() == 0.0
        now[0] += 0.1
    waited = lim.acquire()  # the 31st within the minute waits for the first to age out
    assert waited == pytest.approx(60.0 - 3.0, abs=0.01)
    assert sleeps and sum(sleeps) == pytest.approx(waited)


def test_key_never_in_errors_or_logs(fake, caplog):
    caplog.set_level(logging.DEBUG)
    fake.answers.append((500, {}, f"internal error for key {KEY}"))
    c = client(fake)
    with pytest.raises(DataPrimeError) as info:
        c.query("source spans")
    assert KEY not in str(info.value) and "***" in str(info.value)
    fake.answers.append((401, {}, "unauthorized"))
    with pytest.raises(DataPrimeError) as info:
        c.query("source spans")
    assert KEY not in str(info.value)
    assert KEY not in repr(c) and KEY not in str(c)
    fake.answers.append((429, {"Retry-After": "1"}, ""))
    fake.answers.append((200, {}, ok_answer([])))
    c.query("source spans")
    assert KEY not in caplog.text


def test_unreachable_is_a_clear_error():
    c = DataPrimeClient(KEY, base_url="http://127.0.0.1:9", timeout=1)
    with pytest.raises(DataPrimeError, match="cannot reach") as info:
        c.query("source spans")
    assert KEY not in str(info.value)


@pytest.mark.parametrize(
    ("value", "url"),
    [
        ("EU1", "https://api.eu1.coralogix.com"),
        ("coralogix.com", "https://api.eu1.coralogix.com"),
        ("eu2.coralogix.com", "https://api.eu2.coralogix.com"),
        ("coralogix.us", "https://api.us1.coralogix.com"),
        ("cx498.coralogix.com", "https://api.us2.coralogix.com"),
        ("us3", "https://api.us3.coralogix.com"),
        ("coralogix.in", "https://api.ap1.coralogix.com"),
        ("coralogixsg.com", "https://api.ap2.coralogix.com"),
        ("AP3", "https://api.ap3.coralogix.com"),
    ],
)
def test_regions(value, url):
    assert api_base_url(value) == url


def test_unknown_region():
    with pytest.raises(ValueError, match="unknown Coralogix region"):
        region_of("mars1")
