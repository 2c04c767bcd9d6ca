"""The whole question flow against the real native stack."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import requests

from stack.client import ApiError, Gateway
from stack.common.settings import ServiceName
from stack.native.supervisor import Supervisor
from tests.helpers import eventually, questions, stored_job_ids, submit_many


def test_health_reports_every_service_ready(gateway: Gateway) -> None:
    health = gateway.health()
    assert health["status"] == "ok"
    expected = {s.value for s in ServiceName if s is not ServiceName.FRONTEND}
    assert set(health["services"]) == expected
    assert all(s["status"] == "ready" for s in health["services"].values())


def test_question_is_answered_stored_rated_and_in_history(gateway: Gateway) -> None:
    question = f"p95 latency of checkout in the last hour ({uuid.uuid4().hex[:6]})"
    accepted = gateway.ask(question)
    assert accepted["status"] == "queued"
    assert accepted["validation"]["valid"] is True
    assert "percentile" in accepted["query"]
    assert accepted["intent"] == "latency_percentile"

    job = gateway.wait(accepted["id"], timeout=20)
    assert job["status"] == "done", job
    assert job["query"] == accepted["query"]
    assert job["result"]["rows_scanned"] > 0
    assert isinstance(job["result"]["rows"], list)

    rated = gateway.rate(accepted["id"], 4, "spot on")
    assert rated["rating"] == 4
    page = gateway.history(page_size=50)
    mine = [i for i in page["items"] if i["job_id"] == accepted["id"]]
    assert mine and mine[0]["rating"] == 4 and mine[0]["question"] == question
    stats = gateway.stats()
    assert stats["jobs"]["done"] >= 1 and stats["feedback"]["count"] >= 1


def test_session_cookie_is_issued_and_kept(stack) -> None:
    session = requests.Session()
    url = stack.url(ServiceName.GATEWAY)
    first = session.post(f"{url}/api/queries", json={"question": "errors from cart"}, timeout=10)
    assert first.status_code == 202
    cookie = session.cookies.get("dp_session")
    assert cookie and len(cookie) == 32
    second = session.post(f"{url}/api/queries", json={"question": "errors from auth"}, timeout=10)
    assert second.status_code == 202
    assert "dp_session" not in second.headers.get("set-cookie", "")


def test_500_concurrent_questions_are_stored_exactly_once(stack) -> None:
    corpus = questions()
    texts = [f"{corpus[i % len(corpus)]} #{i}" for i in range(500)]
    answers = asyncio.run(submit_many(stack.url(ServiceName.GATEWAY), texts, concurrency=20))
    statuses = [s for s, _ in answers]
    assert statuses.count(202) == 500, {s: statuses.count(s) for s in set(statuses)}
    ids = [body["id"] for _, body in answers]
    assert len(set(ids)) == 500

    def all_stored() -> bool:
        stored = stored_job_ids(stack.cfg)
        return all(i in stored for i in ids)

    eventually(all_stored, timeout=120, interval=1, what="500 results stored")
    stored = stored_job_ids(stack.cfg)
    counts = [stored[i] for i in ids]
    lost = sum(1 for i in ids if i not in stored)
    duplicated = sum(1 for c in counts if c > 1)
    print(f"submitted=500 stored={len(counts)} lost={lost} duplicated={duplicated}")
    assert lost == 0 and duplicated == 0


@pytest.mark.parametrize(
    ("body", "headers", "field"),
    [
        ({"question": ""}, {}, "question"),
        ({"question": "   "}, {}, "question"),
        ({"question": "x" * 10_000}, {}, "question"),
        ({}, {}, "question"),
        ({"question": 42}, {}, "question"),
        ({"question": "ok", "extra": 1}, {}, "extra"),
    ],
)
def test_bad_questions_get_422_naming_the_field(stack, body, headers, field) -> None:
    resp = requests.post(
        f"{stack.url(ServiceName.GATEWAY)}/api/queries", json=body, headers=headers, timeout=10
    )
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    problem = resp.json()
    assert {"type", "title", "status", "detail"} <= problem.keys()
    assert problem["status"] == 422
    assert any(e["field"] == field for e in problem["errors"]), problem


def test_malformed_json_and_wrong_content_type_are_422(stack) -> None:
    url = f"{stack.url(ServiceName.GATEWAY)}/api/queries"
    bad_json = requests.post(
        url, data=b'{"question": ', timeout=10, headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 422
    assert "JSON" in bad_json.json()["detail"]
    wrong_type = requests.post(
        url,
        data=b"question=hi",
        timeout=10,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert wrong_type.status_code == 422
    assert "Traceback" not in wrong_type.text


def test_bad_ratings_and_unknown_ids(gateway: Gateway, stack) -> None:
    accepted = gateway.ask("count of logs by severity today")
    gateway.wait(accepted["id"])
    before = stored_job_ids(stack.cfg)
    for rating in (0, 6, "five"):
        with pytest.raises(ApiError) as err:
            gateway._call(
                "POST", f"/api/queries/{accepted['id']}/feedback", json={"rating": rating}
            )
        assert err.value.status == 422
        assert err.value.body["errors"][0]["field"] == "rating"
    with pytest.raises(ApiError) as err:
        gateway.get(uuid.uuid4().hex)
    assert err.value.status == 404
    with pytest.raises(ApiError) as err:
        gateway.get("not-an-id")
    assert err.value.status == 404
    with pytest.raises(ApiError) as err:
        gateway.rate(uuid.uuid4().hex, 3)
    assert err.value.status == 404
    # Nothing accepted before was lost.
    after = stored_job_ids(stack.cfg)
    assert before.keys() <= after.keys()
    assert gateway.get(accepted["id"])["status"] == "done"


def test_oversized_body_is_413(stack) -> None:
    resp = requests.post(
        f"{stack.url(ServiceName.GATEWAY)}/api/queries", json={"question": "x" * 40_000}, timeout=10
    )
    assert resp.status_code == 413
    assert resp.json()["status"] == 413


def test_history_limits(gateway: Gateway) -> None:
    with pytest.raises(ApiError) as err:
        gateway.history(page_size=1000)
    assert err.value.status == 422
    with pytest.raises(ApiError) as err:
        gateway.history(page=5000, page_size=100)
    assert err.value.status == 422 and "depth" in err.value.body["detail"]


def test_unavailable_downstream_is_named(stack, gateway: Gateway) -> None:
    sup = Supervisor(stack.cfg)
    sup.ctl("stop", ServiceName.VALIDATION.value)
    try:
        with pytest.raises(ApiError) as err:
            gateway.ask(f"errors from payment {uuid.uuid4().hex[:6]}")
        assert err.value.status == 503
        assert err.value.body["service"] == "validation-service"
        health = gateway.health()
        assert health["status"] == "degraded"
        assert health["services"]["validation-service"]["status"] == "unavailable"
    finally:
        sup.ctl("start", ServiceName.VALIDATION.value)
    eventually(lambda: gateway.health()["status"] == "ok", 20, what="validation back")
