"""DataPrime query API client against a local fake speaking the documented NDJSON format."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from stack.common.dataprime_client import (
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
        def do_POST(self):
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


# --------------------------------------------------------------------- error lines, statistics


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({"error": {"queryError": {"message": "Keypath $d.nope does not exist"}}}, "$d.nope"),
        ({"error": {"message": "compilation failed", "code": {"validation": {}}}}, "compilation"),
        ({"error": {"code": {"rateLimitReached": {}}}}, "rateLimitReached"),
        ({"error": "plain text failure"}, "plain text failure"),
    ],
)
def test_error_lines_fail_with_the_products_message(fake, line, message):
    rows = json.loads(ok_answer([{"n": 1}]).splitlines()[1])
    fake.answers.append((200, {}, ndjson({"queryId": {"queryId": "q"}}, rows, line)))
    with pytest.raises(DataPrimeError) as info:
        client(fake).query("source spans")
    text = str(info.value)
    assert message in text and "None" not in text


@pytest.mark.parametrize("status", ["CANCELLED", "FAILED", "TIMED_OUT", "QUERY_STATUS_FAILED"])
def test_incomplete_statistics_is_a_failure_even_with_rows(fake, status):
    answer = ok_answer([{"n": 1}]) + ndjson(
        {"statistics": {"status": status, "message": "scanned too much data"}}
    )
    fake.answers.append((200, {}, answer))
    with pytest.raises(DataPrimeError, match=f"did not complete \\(status {status}\\)") as info:
        client(fake).query("source spans")
    assert "scanned too much data" in str(info.value)


def test_completed_statistics_is_success(fake):
    answer = ok_answer([{"n": 1}]) + ndjson({"statistics": {"status": "COMPLETED"}})
    fake.answers.append((200, {}, answer))
    result = client(fake).query("source spans")
    assert result.first("n") == 1 and result.status == "COMPLETED"


# --------------------------------------------------------------------- room-wide limiter, cache


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    """A real redis-server on loopback (TEST_PORT_BASE + 690), torn down after the module."""
    import os

    from tests.helpers import redis_server

    port = int(os.environ.get("TEST_PORT_BASE", "18000")) + 690
    with redis_server(port, tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture()
def rdb(redis_url):
    import redis as redis_lib

    r = redis_lib.Redis.from_url(redis_url)
    r.flushdb()
    return r


def test_limiter_is_shared_across_processes(rdb, redis_url):
    """Two processes with the same key share one window: the room stays under the limit."""
    import subprocess
    import sys

    from stack.common.dataprime_client import RedisRateLimiter

    mine = RedisRateLimiter(rdb, KEY, limit=3, per=60.0)
    assert mine.try_acquire() == 0 and mine.try_acquire() == 0
    code = (
        "import redis, sys; from stack.common.dataprime_client import RedisRateLimiter as L; "
        f"r = redis.Redis.from_url({redis_url!r}); l = L(r, {KEY!r}, limit=3, per=60.0); "
        "print(l.try_acquire(), l.try_acquire())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    first, second = map(float, out.stdout.split())
    assert first == 0.0  # the 3rd slot of the minute
    assert 55.0 < second <= 60.0  # the 4th waits for the oldest to age out
    assert 55.0 < mine.try_acquire() <= 60.0
    # another key is another budget; the key itself is never stored
    assert RedisRateLimiter(rdb, "another-key", limit=3).try_acquire() == 0
    assert not any(KEY.encode() in k for k in rdb.keys("*"))


def test_queued_check_is_told_before_it_waits(fake, rdb):
    """Over the room's budget a check waits for a slot — and says so first ("checking…")."""
    import time

    from stack.common.dataprime_client import RedisRateLimiter

    waits = []
    fake.answers += [(200, {}, ok_answer([{"n": 1}])), (200, {}, ok_answer([{"n": 2}]))]
    c = DataPrimeClient(
        KEY,
        base_url=fake.url,
        on_wait=waits.append,
        limiter=RedisRateLimiter(rdb, KEY, limit=1, per=0.5),  # real sleep: 0.5 s at most
    )
    assert c.query("source spans | limit 1").first("n") == 1
    t0 = time.monotonic()
    assert c.query("source spans | limit 2").first("n") == 2
    assert waits and 0 < waits[0] <= 0.5
    assert time.monotonic() - t0 >= waits[0] * 0.9
    assert len(fake.requests) == 2


def test_room_cache_answers_the_same_question_once(fake, rdb):
    fake.answers.append((200, {}, ok_answer([{"n": 42}])))
    a = DataPrimeClient(KEY, base_url=fake.url, redis=rdb, sleep=lambda _s: None)
    b = DataPrimeClient(KEY, base_url=fake.url, redis=rdb, sleep=lambda _s: None)
    assert a.shared and b.shared
    assert a.query("source spans | count", start=0, end=60).first("n") == 42
    assert b.query("source spans | count", start=0, end=60).first("n") == 42
    assert len(fake.requests) == 1  # the second attendee's check cost no query
    keys = [k.decode() for k in rdb.keys("cache:dataprime:*")]
    assert len(keys) == 1 and 0 < rdb.ttl(keys[0]) <= 60


def test_without_redis_the_client_falls_back_to_a_local_limiter(fake):
    fake.answers.append((200, {}, ok_answer([{"n": 1}])))
    env = {"CX_API_KEY": KEY, "DATAPRIME_API_URL": fake.url, "REDIS_URL": "redis://127.0.0.1:9/0"}
    c = DataPrimeClient.from_env(env)
    assert not c.shared and isinstance(c.limiter, RateLimiter)
    assert c.query("source spans").first("n") == 1


def test_lab_check_waits_for_the_rooms_budget_and_says_checking(
    fake, rdb, redis_url, tmp_path, capsys
):
    """The room has used its 30 queries of the minute: an attendee's check queues (and says
    "checking…") instead of failing, then gets its verdict from Coralogix."""
    import time

    from labs.runtime.lab import Lab
    from stack.common.dataprime_client import key_tag

    sec, usec = rdb.time()
    now_ms = sec * 1000 + usec // 1000
    key = f"ratelimit:dataprime:{key_tag(KEY)}"
    # 30 queries by other attendees, the oldest frees its slot in ~0.6 s
    rdb.zadd(key, {f"other-{i}": now_ms - 59_400 for i in range(30)})
    fake.answers.append((200, {}, ok_answer([{"serviceName": "validation-service"}])))
    env = {
        "CX_API_KEY": KEY,
        "DATAPRIME_API_URL": fake.url,
        "REDIS_URL": redis_url,
        "WORKSHOP_DATA_DIR": str(tmp_path),
    }
    lab = Lab.load("02", env=env, state_dir=tmp_path, attendee="alice")
    lab.state.traffic_start, lab.state.traffic_end = time.time() - 120, time.time() - 10
    verdict = lab.check("slow_service", "validation-service")
    assert verdict.correct and verdict.source.startswith("Coralogix")
    assert "checking… queued behind the room's DataPrime queries" in capsys.readouterr().out
    assert "alice" in fake.requests[0]["body"]["query"]
