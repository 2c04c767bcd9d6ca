"""Browser fixtures shared by the browser tests: the page's base URL and one Chromium."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stack.common.settings import ServiceName


@pytest.fixture(scope="module")
def base_url(stack) -> str:
    if stack.nginx:
        return f"https://127.0.0.1:{stack.cfg.nginx_https_port}"
    return stack.url(ServiceName.FRONTEND)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from tests.browser.test_ui import ARGS, CHROMIUM, playwright_api

    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (`apt-get install chromium`)")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield b
        b.close()
