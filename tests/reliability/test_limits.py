"""Input limits at their exact boundaries (tests/integration/test_flow.py covers the obvious
cases — a 40 kB body, a 10 000-char question, page_size=1000 — and tests/nginx the 20 kB body
with a Content-Length through nginx; these add the edges and the chunked paths)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests

from stack.common.settings import ServiceName

MAX_BODY = 16_384  # MAX_BODY_BYTES
MAX_QUESTION = 500  # QUESTION_MAX_CHARS
MAX_COMMENT = 1000  # COMMENT_MAX_CHARS
MAX_PAGE_SIZE = 100  # HISTORY_MAX_PAGE_SIZE
MAX_DEPTH = 10_000  # HISTORY_MAX_DEPTH

SYNTHETIC = {"baggage": "synthetic_request=true"}


def _chunks(total: int, size: int = 4096) -> Iterator[bytes]:
    yield b'{"question": "'
    sent = 0
    while sent < total:
        yield b"x" * min(size, total - sent)
        sent += size
    yield b'"}'


def _problem(resp: requests.Response, status: int) -> dict:
    assert resp.status_code == status, resp.text[:300]
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["status"] == status
    return body


def test_body_cap_boundary_and_chunked_bodies_on_the_gateway(stack) -> None:
    url = f"{stack.url(ServiceName.GATEWAY)}/api/queries"
    headers = {"content-type": "application/json", **SYNTHETIC}
    at_cap = b'{"question": "' + b"x" * (MAX_BODY - 16) + b'"}'
    assert len(at_cap) == MAX_BODY
    # At the cap the body is read and validated (the question is too long: 422, not 413).
    _problem(requests.post(url, data=at_cap, headers=headers, timeout=10), 422)
    _problem(requests.post(url, data=at_cap + b" ", headers=headers, timeout=10), 413)
    # Without Content-Length the cap is enforced while streaming.
    chunked = requests.post(url, data=_chunks(64_000), headers=headers, timeout=10)
    _problem(chunked, 413)
    # Internal services carry the same cap.
    storage = requests.post(
        f"{stack.url(ServiceName.STORAGE)}/feedback",
        data=at_cap + b" ",
        headers=headers,
        timeout=10,
    )
    _problem(storage, 413)


def test_question_and_comment_length_boundaries(stack, gateway) -> None:
    url = f"{stack.url(ServiceName.GATEWAY)}/api/queries"
    tag = uuid.uuid4().hex[:8]
    ok_question = f"errors from checkout {tag} ".ljust(MAX_QUESTION, "x")
    accepted = requests.post(url, json={"question": ok_question}, headers=SYNTHETIC, timeout=10)
    assert accepted.status_code == 202, accepted.text
    too_long = _problem(
        requests.post(url, json={"question": ok_question + "x"}, headers=SYNTHETIC, timeout=10),
        422,
    )
    assert too_long["errors"][0]["field"] == "question"

    job_id = accepted.json()["id"]
    assert gateway.wait(job_id, timeout=30)["status"] in ("done", "failed")
    feedback = f"{url}/{job_id}/feedback"
    ok = requests.post(feedback, json={"rating": 5, "comment": "c" * MAX_COMMENT}, timeout=10)
    assert ok.status_code == 201, ok.text
    long_comment = requests.post(
        feedback, json={"rating": 5, "comment": "c" * (MAX_COMMENT + 1)}, timeout=10
    )
    assert _problem(long_comment, 422)["errors"][0]["field"] == "comment"


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"page_size": MAX_PAGE_SIZE}, 200),
        ({"page_size": MAX_PAGE_SIZE + 1}, 422),
        ({"page_size": 0}, 422),
        ({"page": 0}, 422),
        ({"page": MAX_DEPTH // MAX_PAGE_SIZE, "page_size": MAX_PAGE_SIZE}, 200),
        ({"page": MAX_DEPTH // MAX_PAGE_SIZE + 1, "page_size": MAX_PAGE_SIZE}, 422),
        ({"attendee": "a" * 100}, 200),
        ({"attendee": "a" * 101}, 422),
    ],
)
def test_history_page_size_and_depth_boundaries(stack, params, status) -> None:
    resp = requests.get(f"{stack.url(ServiceName.GATEWAY)}/api/history", params=params, timeout=10)
    if status == 200:
        assert resp.status_code == 200, resp.text
    else:
        _problem(resp, status)


def test_nginx_caps_chunked_bodies_too(stack) -> None:
    if not stack.nginx:
        pytest.skip("the stack runs without nginx (not installed)")
    import urllib3

    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    resp = requests.post(
        f"https://127.0.0.1:{stack.cfg.nginx_https_port}/api/queries",
        data=_chunks(64_000),
        headers={"content-type": "application/json", **SYNTHETIC},
        verify=False,
        timeout=10,
    )
    assert resp.status_code == 413
    assert "Traceback" not in resp.text
