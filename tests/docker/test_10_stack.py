"""The whole stack from `scripts/compose-build.sh` and `docker compose ... up -d`, asked through
nginx exactly as a workshop attendee's browser would."""

from __future__ import annotations

import httpx

from tests.docker.conftest import DEFAULT_SERVICES, ComposeStack, ask_and_wait


def test_every_container_running_and_healthy(stack: ComposeStack) -> None:
    states = stack.wait_healthy(DEFAULT_SERVICES, timeout=30)
    assert set(DEFAULT_SERVICES) <= set(states)
    assert stack.timings["healthy_s"] <= 300, stack.timings


def test_question_through_nginx_443_completes(stack: ComposeStack) -> None:
    with stack.https() as client:
        job = ask_and_wait(client, "errors from checkout in the last hour by status code")
    assert job["status"] == "done", job


def test_http_redirects_to_https(stack: ComposeStack) -> None:
    r = httpx.get("http://127.0.0.1/api/health", follow_redirects=False, timeout=10)
    assert r.status_code == 301
    assert r.headers["location"].startswith("https://")


def test_admin_api_without_token_is_401(stack: ComposeStack) -> None:
    with stack.https() as client:
        assert client.get("/api/admin/faults").status_code == 401
        assert client.post("/api/admin/reset").status_code == 401


def test_security_headers_once_each(stack: ComposeStack) -> None:
    names = [
        "strict-transport-security",
        "x-content-type-options",
        "x-frame-options",
        "content-security-policy",
        "referrer-policy",
        "permissions-policy",
    ]
    with stack.https() as client:
        for path in ("/", "/api/health"):
            r = client.get(path)
            assert r.status_code == 200, (path, r.status_code)
            for name in names:
                assert len(r.headers.get_list(name)) == 1, (path, name, r.headers.get_list(name))
