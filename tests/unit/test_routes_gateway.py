"""api-gateway in-process: a question answered end to end, and what the API refuses.

The services behind the gateway are this test's own apps, served on their ports in the same
event loop (the gateway and the worker reach them over HTTP, as on the stack)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx

from stack.common.settings import ServiceName, Settings
from stack.services import gateway, processing, query, queue, storage, validation, worker
from tests.unit.inprocess import client_for, serving

BEHIND = {
    ServiceName.QUERY: query,
    ServiceName.VALIDATION: validation,
    ServiceName.QUEUE: queue,
    ServiceName.PROCESSING: processing,
    ServiceName.STORAGE: storage,
}


@asynccontextmanager
async def whole_stack(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with AsyncExitStack() as stack:
        for name, module in BEHIND.items():
            await stack.enter_async_context(
                serving(module.create_app(settings), settings.port(name))
            )
        await stack.enter_async_context(client_for(worker.create_app(settings)))
        yield await stack.enter_async_context(client_for(gateway.create_app(settings)))


def test_question_is_answered_end_to_end(route_settings: Settings) -> None:
    settings = route_settings.model_copy(update={"query_engine": "rules"})

    async def scenario() -> None:
        async with whole_stack(settings) as gw:
            r = await gw.post("/api/queries", json={"question": "errors from checkout"})
            assert r.status_code == 202, r.text
            accepted = r.json()
            assert accepted["status"] == "queued" and accepted["query"].startswith("source ")
            assert accepted["validation"]["valid"] is True and accepted["source"] == "rules"
            assert "dp_session" in r.cookies
            job_id = accepted["id"]
            deadline = time.monotonic() + 20
            while (poll := (await gw.get(f"/api/queries/{job_id}")).json())["status"] not in (
                "done",
                "failed",
            ):
                assert time.monotonic() < deadline, poll
                await asyncio.sleep(0.05)
            assert poll["status"] == "done" and poll["query"] == accepted["query"]
            assert poll["result"]["kind"] == "rows"
            fb = await gw.post(f"/api/queries/{job_id}/feedback", json={"rating": 5})
            assert fb.status_code == 201 and fb.json() == {
                "id": fb.json()["id"],
                "job_id": job_id,
                "rating": 5,
            }
            history = (await gw.get("/api/history")).json()
            assert [i["job_id"] for i in history["items"]] == [job_id]
            assert history["items"][0]["rating"] == 5
            health = (await gw.get("/api/health")).json()
            for name in BEHIND:
                assert health["services"][name.value]["status"] == "ready"

    asyncio.run(scenario())


def test_bad_input_is_refused_before_any_downstream_call(route_settings: Settings) -> None:
    settings = route_settings.model_copy(
        update={"question_max_chars": 20, "history_max_page_size": 10}
    )

    async def scenario() -> None:
        # nothing behind the gateway: every answer below is its own
        async with client_for(gateway.create_app(settings)) as gw:
            blank = await gw.post("/api/queries", json={"question": "   "})
            assert blank.status_code == 422
            assert blank.json()["errors"] == [{"field": "question", "reason": "must not be blank"}]
            long = await gw.post("/api/queries", json={"question": "errors " * 4})
            assert long.status_code == 422 and long.json()["errors"][0]["field"] == "question"
            broken = await gw.post(
                "/api/queries",
                content=b'{"question": "x"',
                headers={"content-type": "application/json"},
            )
            # (the field was pydantic's character offset, "16")
            reason = "the body is not valid JSON (at character 16: Expecting ',' delimiter)"
            assert broken.status_code == 422
            assert broken.json()["errors"] == [{"field": "body", "reason": reason}]
            extra = await gw.post("/api/queries", json={"question": "errors", "x": 1})
            assert extra.status_code == 422 and extra.json()["errors"][0]["field"] == "x"
            page = await gw.get("/api/history", params={"page_size": 11})
            assert page.status_code == 422 and page.json()["errors"][0]["field"] == "page_size"
            unknown = await gw.get("/api/queries/not-a-job")
            assert unknown.status_code == 404
            admin = await gw.delete("/api/admin/faults")
            assert admin.status_code == 401 and admin.headers["www-authenticate"] == "Bearer"
            comment = await gw.post(f"/api/queries/{'a' * 32}/feedback", json={"rating": 0})
            assert comment.status_code == 422 and comment.json()["errors"][0]["field"] == "rating"
            config = (await gw.get("/api/config")).json()
            assert config["coralogix"]["enabled"] is False and config["attendee_faults"] is False
            schema = (await gw.get("/api/openapi.json")).json()["components"]["schemas"]
            assert schema["QuestionIn"]["properties"]["question"]["maxLength"] == 20

    asyncio.run(scenario())


def test_a_refused_fault_names_the_field_to_fix(route_settings: Settings, monkeypatch) -> None:
    """The fault model checks kind, target and params itself; its refusals used to name the
    whole body (`body`: "Value error, params.ms: …"), now the field a caller changes."""
    from stack.gateway import auth as gateway_auth

    monkeypatch.setattr(gateway_auth, "admin_token", lambda settings=None: "t" * 32)
    auth = {"authorization": "Bearer " + "t" * 32}

    async def scenario() -> None:
        async with client_for(gateway.create_app(route_settings)) as gw:
            cases = {
                "kind": {"kind": "nosuch", "target": "query-service"},
                "target": {"kind": "latency", "target": "nosuch"},
                "params.ms": {"kind": "latency", "target": "query-service", "params": {"ms": "x"}},
                "params.nokey": {
                    "kind": "latency", "target": "query-service", "params": {"nokey": 1}
                },
                "scope_value": {"kind": "latency", "target": "query-service", "scope": "attendee"},
            }  # fmt: skip
            for field, spec in cases.items():
                r = await gw.post("/api/admin/faults", json=spec, headers=auth)
                assert r.status_code == 422, r.text
                (error,) = r.json()["errors"]
                assert error["field"] == field, r.text
                assert not error["reason"].startswith(("Value error", field)), r.text
                assert r.json()["detail"] == f"`{field}`: {error['reason']}"
            event = await gw.post("/api/admin/room/events", json={"kind": "nosuch"}, headers=auth)
            assert event.status_code == 422
            assert event.json()["errors"][0]["field"] == "kind", event.text

    asyncio.run(scenario())
