"""api-gateway: the public API under /api — questions, results, feedback, history, admin.

A question goes query-service → validation-service → queue-service and is answered 202 with a
job id; the queue worker finishes it asynchronously. Every downstream failure is answered as
a problem naming the service (502/503/504), never a hang or a stack trace.
"""

# No `from __future__ import annotations`: the routes are declared inside `create_app`, some
# with types built there (request models and limits from the settings), and FastAPI resolves
# string annotations only in the module's globals.

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, cast

import orjson
import redis.asyncio as aioredis
from fastapi import Depends, FastAPI, Query, Request, Response
from opentelemetry import baggage, context, trace

from stack.common import coralogix as cx
from stack.common import room as room_mod
from stack.common import room_proxy
from stack.common.faults import Fault, FaultSpec, catalogue, identity
from stack.common.faults import store as fault_store
from stack.common.faults.engine import request_baggage
from stack.common.problems import Problem, validation_problem
from stack.common.redis import CACHE_PREFIX, JOB_PREFIX, SESSION_PREFIX, Hash, unlink_matching
from stack.common.service import Service
from stack.common.settings import ServiceName, Settings
from stack.common.telemetry import current_trace_id, untraced
from stack.gateway import models as m
from stack.gateway.auth import is_admin, require_admin
from stack.gateway.sessions import Sessions
from stack.gateway.telemetry_api import build_store, telemetry_router

JOB_ID = re.compile(r"^[0-9a-f]{32}$")
R = m.PROBLEM_RESPONSES
Admin = Depends(require_admin)
if TYPE_CHECKING:  # for mypy; at run time `create_app` binds them from `m.request_models`
    QuestionIn = m.QuestionIn
    FeedbackIn = m.FeedbackIn


@contextmanager
def session_baggage(sid: str) -> Iterator[None]:
    """Carry `workshop.session` to every downstream service (span attributes, fault scope)."""
    trace.get_current_span().set_attribute("workshop.session", sid)
    token = context.attach(baggage.set_baggage("workshop.session", sid))
    header = request_baggage.get()
    bag_token = request_baggage.set(
        header
        if "workshop.session=" in header
        else ",".join(filter(None, [header, f"workshop.session={sid}"]))
    )
    try:
        yield
    finally:
        request_baggage.reset(bag_token)
        context.detach(token)


def _from_status(job_id: str, status: dict[str, Any]) -> dict[str, Any]:
    """A poll answer from the job's status hash (`job:<id>`)."""
    return {
        "id": job_id,
        "status": status.get("status", "queued"),
        "question": status.get("question"),
        "query": status.get("query"),
        "intent": status.get("intent"),
        "result": orjson.loads(status["result"]) if status.get("result") else None,
        "error": status.get("error"),
        "created_at": _float(status.get("created_at")),
        "completed_at": _float(status.get("completed_at")),
    }


def _from_stored(job_id: str, stored: dict[str, Any]) -> dict[str, Any]:
    """A poll answer from storage-service's durable row."""
    return {"id": job_id, **{k: stored.get(k) for k in m.QueryStatus.model_fields if k != "id"}}


def _float(value: str | None) -> float | None:
    return float(value) if value else None


def create_app(settings: Settings | None = None, *, redis: aioredis.Redis | None = None) -> FastAPI:
    """The public API's app (run by `python -m stack.run api-gateway`)."""
    service = Service(
        ServiceName.GATEWAY,
        uses_redis=True,
        title="DataPrime Assistant API",
        public_api=True,
        settings=settings,
        redis=redis,
    )
    app = service.app
    cfg = service.settings
    assert service.redis is not None
    client: aioredis.Redis = service.redis
    http = service.http
    if not TYPE_CHECKING:  # the request models with this deployment's length limits
        QuestionIn, FeedbackIn = m.request_models(cfg)
    # Live RED charts and trace waterfalls for the UI (reads the collector's local span files).
    traces = build_store(cfg)
    app.include_router(telemetry_router(client, traces))

    sessions = Sessions(client, cfg.session_ttl_seconds, lazy=cfg.session_refresh == "lazy")

    async def current_session(request: Request, response: Response) -> str:
        return await sessions.current(request, response)

    # ---- questions -----------------------------------------------------------------------------
    @app.post(
        "/api/queries",
        status_code=202,
        response_model=m.QueryAccepted,
        responses=R,
        tags=["queries"],
        summary="Ask a question; answered 202 with a job id",
    )
    async def ask(
        body: QuestionIn, sid: Annotated[str, Depends(current_session)]
    ) -> dict[str, Any]:
        attendee, _ = identity()
        with session_baggage(sid):
            generated = await http.post(
                ServiceName.QUERY, "/generate", json={"question": body.question}
            )
            validation = await http.post(
                ServiceName.VALIDATION, "/validate", json={"query": generated["query"]}
            )
            if not validation["valid"]:
                raise Problem(
                    422,
                    "the generated query did not validate: " + validation["errors"][0]["message"],
                    errors=[
                        {"field": "query", "reason": e["message"]} for e in validation["errors"]
                    ],
                    service=ServiceName.VALIDATION.value,
                    slug="invalid-query",
                )
            job_id = uuid.uuid4().hex
            trace.get_current_span().set_attribute("workshop.job_id", job_id)
            if trace_id := current_trace_id():
                traces.expect(trace_id)
            await http.post(
                ServiceName.QUEUE,
                "/jobs",
                json={
                    "job_id": job_id,
                    "question": body.question,
                    "query": generated["query"],
                    "intent": generated["intent"],
                    "attendee": attendee,
                    "session": sid,
                },
            )
        return {
            "id": job_id,
            "status": "queued",
            "query": generated["query"],
            "intent": generated["intent"],
            "confidence": generated["confidence"],
            "explanation": generated["explanation"],
            "source": generated.get("source", "rules"),
            "cached": generated.get("cached", False),
            "validation": validation,
            "trace_id": current_trace_id(),
        }

    @app.get(
        "/api/queries/{job_id}",
        response_model=m.QueryStatus,
        responses=R,
        tags=["queries"],
        summary="Poll a question's job",
    )
    async def get_query(job_id: str) -> dict[str, Any]:
        """Answered from the job's status hash in Redis (one round trip: polls are the most
        frequent request); storage-service is asked only when the hash is gone (expired, or
        reset) — it holds the durable record."""
        if not JOB_ID.match(job_id):
            raise Problem(404, f"no question with id `{job_id[:40]}`")
        if cfg.gateway_poll_via == "services":
            return await _poll_via_services(job_id)
        status = await cast("Awaitable[Hash]", client.hgetall(f"{JOB_PREFIX}{job_id}"))
        done = status.get("status") in ("done", "failed")
        if status and (not done or "result" in status or status.get("status") == "failed"):
            return _from_status(job_id, status)
        try:
            return _from_stored(job_id, await http.get(ServiceName.STORAGE, f"/results/{job_id}"))
        except Problem as exc:
            if exc.status == 404:
                raise Problem(404, f"no question with id `{job_id}`") from None
            raise

    async def _poll_via_services(job_id: str) -> dict[str, Any]:
        """The poll path before profiling (GATEWAY_POLL_VIA=services): two HTTP hops per poll.
        Kept only as the benchmark's baseline for the fix."""
        try:
            status = await http.get(ServiceName.QUEUE, f"/jobs/{job_id}")
        except Problem as exc:
            if exc.status != 404:
                raise
            status = None
        if status is None or status.get("status") in ("done", "failed"):
            try:
                return _from_stored(
                    job_id, await http.get(ServiceName.STORAGE, f"/results/{job_id}")
                )
            except Problem as exc:
                if exc.status != 404:
                    raise
        if status is None:
            raise Problem(404, f"no question with id `{job_id}`")
        return _from_status(job_id, status)

    @app.post(
        "/api/queries/{job_id}/feedback",
        status_code=201,
        response_model=m.FeedbackOut,
        responses=R,
        tags=["queries"],
        summary="Rate a result 1–5 with an optional comment",
    )
    async def feedback(job_id: str, body: FeedbackIn) -> dict[str, Any]:
        if not JOB_ID.match(job_id):
            raise Problem(404, f"no question with id `{job_id[:40]}`")
        ctx = trace.get_current_span().get_span_context()
        return await http.post(
            ServiceName.STORAGE,
            "/feedback",
            json={
                "job_id": job_id,
                "rating": body.rating,
                "comment": body.comment,
                "trace_id": format(ctx.trace_id, "032x") if ctx.is_valid else None,
            },
        )

    @app.get(
        "/api/history",
        response_model=m.HistoryPage,
        responses=R,
        tags=["queries"],
        summary="Past questions, newest first",
    )
    async def history(
        page: Annotated[int, Query(ge=1, le=10_000)] = 1,
        page_size: Annotated[int, Query(ge=1, le=cfg.history_max_page_size)] = 20,
        attendee: Annotated[str | None, Query(max_length=100)] = None,
    ) -> dict[str, Any]:
        if page * page_size > cfg.history_max_depth:
            raise Problem(
                422,
                f"history is available to a depth of {cfg.history_max_depth} entries",
                errors=[
                    {
                        "field": "page",
                        "reason": f"page × page_size must be ≤ {cfg.history_max_depth}",
                    }
                ],
            )
        params: dict[str, Any] = {"page": page, "page_size": page_size}
        if attendee:
            params["attendee"] = attendee
        return await http.get(ServiceName.STORAGE, "/history", params=params)

    @app.get("/api/stats", tags=["status"], summary="Job, feedback and stream figures")
    async def stats() -> dict[str, Any]:
        storage, queue = await asyncio.gather(
            http.get(ServiceName.STORAGE, "/stats"), http.get(ServiceName.QUEUE, "/stats")
        )
        return {**storage, "queue": queue}

    @app.get(
        "/api/health",
        response_model=m.HealthOut,
        tags=["status"],
        summary="Readiness of every service in one answer",
    )
    async def health() -> dict[str, Any]:
        async def probe(name: ServiceName) -> tuple[str, dict[str, Any]]:
            url = cfg.url(name)
            try:
                with untraced():
                    await http.request(name, "GET", "/ready", read_timeout=2.0)
                return name.value, {"status": "ready", "url": url}
            except Problem as exc:
                return name.value, {"status": "unavailable", "detail": exc.detail, "url": url}

        names = [s for s in ServiceName if s is not ServiceName.FRONTEND]
        results = dict(await asyncio.gather(*(probe(n) for n in names)))
        ok = all(r["status"] == "ready" for r in results.values())
        return {"status": "ok" if ok else "degraded", "services": results}

    @app.get("/api/config", tags=["status"], summary="What the UI needs to link to Coralogix")
    async def ui_config() -> dict[str, Any]:
        # Team host through the kit's region table (stack.common.coralogix); no host -> no links,
        # only the hint. Infrastructure Explorer has no deep link: the host to pick there.
        host = cx.team_host(cfg.cx_team_url, cfg.cx_team_name, cfg.cx_region or cfg.cx_domain)
        me = cx.local_host(cfg.data_dir / "telemetry", cfg.workshop_host_name, cfg.workshop_host_id)
        return {
            "application_name": cfg.cx_application_name,
            "coralogix": {
                "enabled": cfg.coralogix_enabled,
                "domain": cfg.cx_domain if cfg.coralogix_enabled else None,
                "team_url": cfg.cx_team_url or None,
                "team_host": host,
                "hint": None if host else cx.NO_TEAM_HINT,
                "infrastructure": {"menu": cx.INFRA_MENU, "host_name": me.name, "host_id": me.id},
            },
            "attendee_faults": cfg.attendee_faults,
            "online_checks": bool(cfg.cx_api_key.get_secret_value()),
        }

    # ---- admin ---------------------------------------------------------------------------------

    def _require_fault_rights(request: Request) -> str | None:
        """None for the admin; the attendee id when ATTENDEE_FAULTS lets attendees self-serve.

        A dependency, so authentication is decided before the body is validated: a caller
        without rights gets 401/403, never a 422 describing the schema.
        """
        if is_admin(request):
            return None
        attendee, _ = identity()
        if cfg.attendee_faults and attendee and request.headers.get("authorization") is None:
            return attendee
        require_admin(request)
        return None

    FaultRights = Annotated[str | None, Depends(_require_fault_rights)]

    @app.get(
        "/api/admin/faults/catalogue",
        tags=["admin"],
        responses=R,
        summary="Fault kinds with their parameter schema",
    )
    async def fault_catalogue(_: FaultRights) -> list[dict[str, Any]]:
        return catalogue()

    @app.get("/api/admin/faults", tags=["admin"], responses=R, summary="Active faults")
    async def list_faults(_: FaultRights) -> list[dict[str, Any]]:
        return [f.public() for f in await fault_store.list_faults(client)]

    @app.post(
        "/api/admin/faults", status_code=201, tags=["admin"], responses=R, summary="Inject a fault"
    )
    async def add_fault(attendee: FaultRights, spec: FaultSpec) -> dict[str, Any]:
        if attendee is not None and (spec.scope != "attendee" or spec.scope_value != attendee):
            raise Problem(
                403,
                "attendees may only create faults scoped to their own attendee id",
                errors=[{"field": "scope", "reason": "must be `attendee` with your id"}],
            )
        fault = Fault.create(spec, created_by=f"attendee:{attendee}" if attendee else "admin")
        await fault_store.add_fault(client, fault)
        return fault.public()

    @app.delete(
        "/api/admin/faults/{fault_id}", tags=["admin"], responses=R, summary="Clear one fault"
    )
    async def remove_fault(attendee: FaultRights, fault_id: str) -> dict[str, Any]:
        if attendee is not None:
            owned = {
                f.id
                for f in await fault_store.list_faults(client)
                if f.created_by == f"attendee:{attendee}"
            }
            if fault_id not in owned:
                raise Problem(403, "attendees may only clear their own faults")
        if not await fault_store.remove_fault(client, fault_id):
            raise Problem(404, f"no active fault `{fault_id[:60]}`")
        return {"cleared": fault_id}

    @app.delete(
        "/api/admin/faults",
        tags=["admin"],
        responses=R,
        dependencies=[Admin],
        summary="Clear every fault",
    )
    async def clear_faults() -> dict[str, Any]:
        return {"cleared": await fault_store.clear_faults(client)}

    @app.post(
        "/api/admin/reset",
        tags=["admin"],
        responses=R,
        dependencies=[Admin],
        summary="Faults, queue, cache, sessions and database back to empty",
    )
    async def reset() -> dict[str, Any]:
        started = time.perf_counter()
        faults = await fault_store.clear_faults(client)
        removed = 0
        for prefix in (CACHE_PREFIX, SESSION_PREFIX):
            removed += await unlink_matching(client, f"{prefix}*")
        sessions.forget()
        queue = await http.post(ServiceName.QUEUE, "/admin/reset")
        storage = await http.post(ServiceName.STORAGE, "/admin/reset")
        return {
            "faults_cleared": faults,
            "keys_removed": removed,
            "queue": queue,
            "storage": storage,
            "elapsed_ms": round((time.perf_counter() - started) * 1000, 1),
        }

    # ---- room: events, progress, online checks (logic in stack.common.room) --------------------

    @app.get("/api/room/events", tags=["room"], summary="Active room events (instructor-started)")
    async def room_events() -> list[dict[str, Any]]:
        return room_mod.room_events(await fault_store.list_faults(client))

    @app.post(
        "/api/admin/room/events",
        status_code=201,
        tags=["room"],
        responses=R,
        dependencies=[Admin],
        summary="Start a room event: a fault for the whole room",
    )
    async def start_room_event(body: room_mod.RoomEventIn) -> dict[str, Any]:
        from pydantic import ValidationError

        try:
            spec = FaultSpec(**body.fault_fields())
        except ValidationError as exc:
            raise validation_problem(exc) from None
        fault = Fault.create(spec, created_by="admin")
        await fault_store.add_fault(client, fault)
        return room_mod.room_event(fault)

    @app.post(
        "/api/room/progress",
        status_code=201,
        tags=["room"],
        responses=R,
        summary="A lab reports its step or a check verdict",
    )
    async def report_progress(body: room_mod.ProgressIn) -> dict[str, Any]:
        attendee, _ = identity()
        if attendee and attendee != body.attendee:
            raise Problem(
                403,
                "a lab may only report progress for its own attendee id",
                errors=[{"field": "attendee", "reason": "must match baggage workshop.attendee"}],
            )
        return await room_mod.record_progress(client, body)

    @app.get(
        "/api/admin/room/progress",
        tags=["room"],
        responses=R,
        dependencies=[Admin],
        summary="Every attendee's lab step and check verdicts",
    )
    async def room_progress() -> list[dict[str, Any]]:
        return await room_mod.room_progress(client)

    @app.delete(
        "/api/admin/room/progress",
        tags=["room"],
        responses=R,
        dependencies=[Admin],
        summary="Forget the room's progress (next cohort)",
    )
    async def clear_room_progress() -> dict[str, Any]:
        return {"removed": await room_mod.clear_progress(client)}

    @app.post(
        "/api/room/check",
        tags=["room"],
        responses=R,
        summary="Run one online check with the room's Coralogix key (rate-limited, cached)",
    )
    async def room_check(body: room_mod.CheckIn) -> dict[str, Any]:
        attendee, _ = identity()
        if (why := room_mod.check_scope_error(body, attendee)) is not None:
            raise Problem(422, f"{why[0]}: {why[1]}", errors=[{"field": why[0], "reason": why[1]}])
        if not room_proxy.configured(cfg):
            raise Problem(503, "online checks are off: the room has no CX_API_KEY")
        from stack.common.dataprime_client import DataPrimeError, RateLimited

        try:
            return await room_proxy.run_check(client, body, cfg)
        except RateLimited as exc:
            raise Problem(
                429, str(exc), headers={"retry-after": str(int(exc.retry_after) or 1)}
            ) from None
        except DataPrimeError as exc:
            raise Problem(502, str(exc), service="coralogix") from None

    return app
