"""frontend in-process: the UI's page, and `/api/*` forwarded to the gateway."""

from __future__ import annotations

import asyncio

from stack.common.settings import ServiceName, Settings
from stack.frontend.app import create_app
from stack.services import gateway
from tests.unit.inprocess import client_for, serving


def test_serves_the_ui_and_forwards_the_api(route_settings: Settings) -> None:
    async def scenario() -> None:
        async with client_for(create_app(route_settings)) as ui:
            page = await ui.get("/")
            assert page.status_code == 200 and "<html" in page.text.lower()
            assert page.headers["cache-control"] == "no-cache"
            # no gateway listening: a problem naming it, not a hang or a traceback
            down = await ui.get("/api/config")
            assert down.status_code in (502, 503) and down.json()["service"] == "api-gateway"
            port = route_settings.port(ServiceName.GATEWAY)
            async with serving(gateway.create_app(route_settings), port):
                up = await ui.get("/api/config")
                assert up.status_code == 200 and "coralogix" in up.json()

    asyncio.run(scenario())
