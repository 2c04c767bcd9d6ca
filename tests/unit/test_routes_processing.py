"""processing-service in-process: a query executed against the synthetic data set."""

from __future__ import annotations

import asyncio

from stack.common.settings import Settings
from stack.services.processing import create_app
from tests.unit.inprocess import client_for


def test_execute_answers_rows_and_refuses_a_bad_query(route_settings: Settings) -> None:
    async def scenario() -> None:
        async with client_for(create_app(route_settings)) as c:
            r = await c.post("/execute", json={"query": "source logs | limit 3", "preview": 2})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["kind"] == "rows" and len(body["rows"]) == 2
            assert body["rows_scanned"] >= 3 and body["columns"]
            broken = await c.post("/execute", json={"query": "source logs | fliter x"})
            assert broken.status_code == 422
            problem = broken.json()
            assert problem["service"] == "processing-service" and problem["detail"]
            too_many = await c.post("/execute", json={"query": "source logs", "preview": 999})
            assert too_many.status_code == 422
            assert too_many.json()["errors"][0]["field"] == "preview"

    asyncio.run(scenario())
