"""Pathological input gets a clear refusal, quickly, and never takes the validator down.

In-process (`validate`, `parse`, `execute`) and through the validation service's ASGI app
(no sockets). CPU time is measured with `time.process_time`, which a busy machine does not
inflate the way wall time is; the bound is the issue's 100 ms.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from stack.dataprime import QueryError, execute, validate
from stack.dataprime.parser import MAX_NESTING

CPU_BUDGET_S = 0.1

PATHOLOGICAL = {
    "nested-parens-10000": "source logs | filter " + "(" * 10_000 + "1" + ")" * 10_000,
    "nested-unclosed-10000": "source logs | filter " + "(" * 10_000,
    "nested-brackets-10000": "source logs | filter $d.a in " + "[" * 10_000,
    "nested-case-2000": "source logs | filter " + "case { " * 2_000,
    "64KiB": "source logs | filter $d.a == '" + "x" * 65_536 + "'",
    "64KiB-of-pipes": "source logs" + " | limit 1" * 6_600,
    "nul-byte": "source logs | filter $d.a == 'a\x00b'",
    "only-nul": "\x00" * 100,
    "lone-surrogate": "source logs | filter $d.a == '\udcff'",
    "replacement-char": "source logs | filter $d.a == '\ufffd'",
    "long-operator-chain": "source logs | filter " + " + ".join(["1"] * 5_000),
    "unterminated-regex": "source logs | redact $d.a /" + "a" * 20_000,
}


@pytest.mark.parametrize("name", list(PATHOLOGICAL))
def test_validate_refuses_quickly_with_a_position(name: str) -> None:
    query = PATHOLOGICAL[name]
    started = time.process_time()
    result = validate(query)
    spent = time.process_time() - started
    assert not result.valid
    first = result.errors[0]
    assert first.line >= 1 and first.column >= 1 and first.message
    assert "internal" not in first.message
    assert spent < CPU_BUDGET_S, f"{name}: {spent * 1000:.1f} ms CPU"


@pytest.mark.parametrize("name", list(PATHOLOGICAL))
def test_execute_refuses_with_query_error(name: str) -> None:
    with pytest.raises(QueryError):
        execute(PATHOLOGICAL[name])


def test_invalid_utf8_bytes_named() -> None:
    result = validate(b"source logs | filter $d.a == '\xff\xfe'")  # type: ignore[arg-type]
    assert not result.valid and "UTF-8" in result.errors[0].message


def test_nesting_limit_is_generous_for_real_queries() -> None:
    ok = "source logs | filter " + "(" * (MAX_NESTING - 1) + "$d.a == 1" + ")" * (MAX_NESTING - 1)
    assert validate(ok + " | limit 1").valid
    too_deep = "source logs | filter " + "(" * (MAX_NESTING + 1) + "1" + ")" * (MAX_NESTING + 1)
    first = validate(too_deep).errors[0]
    assert "nested deeper" in first.message and first.column == 22 + MAX_NESTING


@pytest.fixture(scope="module")
def validation_app() -> Iterator[Any]:
    # No exporter threads in a unit test — for this module only: OTEL_SDK_DISABLED left in the
    # process environment silences every later SDK user (the doctor, stacks started later).
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OTEL_SDK_DISABLED", "true")
        from stack.services.validation import create_app

        yield create_app()


async def _post(client: httpx.AsyncClient, body: object, raw: bytes | None = None) -> Any:
    if raw is not None:
        return await client.post(
            "/validate", content=raw, headers={"content-type": "application/json"}
        )
    return await client.post("/validate", json=body)


def test_service_answers_4xx_and_stays_responsive(validation_app: Any) -> None:
    async def scenario() -> None:
        transport = httpx.ASGITransport(app=validation_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://validation") as c:
            # a lone surrogate cannot even be encoded as JSON; it is covered in-process
            sendable = [q for k, q in PATHOLOGICAL.items() if k != "lone-surrogate"]
            bad = [_post(c, {"query": q}) for q in sendable]
            bad.append(_post(c, None, raw=b'{"query": "source logs \xff\xfe"}'))
            good = [_post(c, {"query": "source logs | limit 1"}) for _ in range(5)]
            answers = await asyncio.gather(*bad, *good)
        refused, fine = answers[: len(bad)], answers[len(bad) :]
        for r in refused:
            assert 400 <= r.status_code < 500 or (
                r.status_code == 200 and r.json()["valid"] is False
            ), r.text
            kind = r.headers["content-type"]
            assert kind.startswith(("application/problem+json", "application/json"))
            assert "Traceback" not in r.text
        assert sum(1 for r in refused if 400 <= r.status_code < 500) >= 6
        for r in fine:
            assert r.status_code == 200 and r.json()["valid"] is True

    asyncio.run(scenario())


def test_service_refusal_names_field_reason_and_position(validation_app: Any) -> None:
    async def scenario() -> None:
        transport = httpx.ASGITransport(app=validation_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://validation") as c:
            nested = await _post(c, {"query": PATHOLOGICAL["nested-unclosed-10000"]})
            nul = await _post(c, {"query": "source logs | filter $d.a == 'a\x00b'"})
            big = await _post(c, {"query": PATHOLOGICAL["64KiB"]})
            utf8 = await _post(c, None, raw=b'{"query": "source logs \xff"}')
        assert nested.status_code == 422
        err = nested.json()["errors"][0]
        assert err["field"] == "query" and "nested deeper" in err["reason"] and err["column"] > 1
        assert nul.status_code == 422 and "NUL" in nul.json()["detail"]
        assert nul.json()["errors"][0]["column"] == 32
        assert big.status_code in (413, 422)
        assert utf8.status_code in (400, 422)

    asyncio.run(scenario())
