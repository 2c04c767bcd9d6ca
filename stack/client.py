"""The kit's client library: a small synchronous client for the gateway, used by the CLI,
the demo, the labs, the scenarios and the tests, with the one admin-token lookup."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from typing import Any

import requests

from stack.common.attendee import baggage_header, default_attendee
from stack.common.settings import ServiceName
from stack.native.config import NativeConfig

__all__ = [
    "ApiError",
    "Gateway",
    "Unreachable",
    "admin_token",
    "baggage_header",
    "default_attendee",
    "failure_reason",
    "require_reachable",
    "unreachable",
]


def admin_token(
    cfg: NativeConfig | None = None, env: Mapping[str, str] | None = None
) -> str | None:
    """The instructor's token, for callers acting as the instructor: LAB_ADMIN_TOKEN (a lab
    kernel the instructor configured), then ADMIN_TOKEN, then the native stack's token file.
    None where there is none (an attendee's kernel): admin calls then answer 401."""
    e = os.environ if env is None else env
    for name in ("LAB_ADMIN_TOKEN", "ADMIN_TOKEN"):
        token = e.get(name, "").strip()
        if token:
            return token
    path = (cfg or NativeConfig.from_env(e)).admin_token_file
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def failure_reason(exc: BaseException) -> str:
    """Why a request got no answer, in a few words ("connection refused", "timed out"),
    instead of requests' nested repr of urllib3's exceptions."""
    if isinstance(exc, requests.Timeout):
        return "timed out"
    errno = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(exc))
    return errno[1].strip().lower() if errno else type(exc).__name__


def unreachable(url: str, timeout: float = 3.0) -> str | None:
    """Why nothing answers HTTP at `url`, or None when something does (any status: only
    whether a server is there is asked, not whether it is healthy)."""
    try:
        requests.get(url.rstrip("/") + "/health", timeout=timeout).close()
    except requests.exceptions.SSLError:
        return None  # a TLS server answered (nginx's self-signed certificate)
    except requests.RequestException as exc:
        return failure_reason(exc)
    return None


class Unreachable(ConnectionError):
    """Nothing answers at the gateway's URL: said before traffic starts, with the fix."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"nothing answers at {url} ({reason}): start the stack with `workshop up`, "
            "or point the gateway URL at a running one"
        )
        self.url = url


def require_reachable(url: str) -> None:
    """Unreachable (with the reason and the fix) unless something answers at `url`: asked
    before traffic that would otherwise fail request by request for a whole run."""
    if reason := unreachable(url):
        raise Unreachable(url, reason)


class ApiError(RuntimeError):
    def __init__(self, status: int, body: Any) -> None:
        detail = body.get("detail") if isinstance(body, dict) else str(body)[:200]
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.body = body


class Gateway:
    def __init__(
        self,
        base_url: str,
        *,
        admin_token: str | None = None,
        attendee: str | None = None,
        synthetic: bool = False,
        timeout: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.admin_token = admin_token
        self.timeout = timeout
        self.http = requests.Session()
        bag = baggage_header(attendee, synthetic)
        if bag:
            self.http.headers["baggage"] = bag

    @classmethod
    def for_native(cls, cfg: NativeConfig | None = None, **kw: Any) -> Gateway:
        cfg = cfg or NativeConfig.from_env()
        token = kw.pop("admin_token", None) or admin_token(cfg)
        return cls(cfg.url(ServiceName.GATEWAY), admin_token=token, **kw)

    def _call(self, method: str, path: str, *, admin: bool = False, **kw: Any) -> Any:
        headers = kw.pop("headers", {})
        if admin and self.admin_token:
            headers["authorization"] = f"Bearer {self.admin_token}"
        resp = self.http.request(
            method, self.base_url + path, headers=headers, timeout=self.timeout, **kw
        )
        body = (
            resp.json()
            if resp.content and "json" in resp.headers.get("content-type", "")
            else resp.text
        )
        if resp.status_code >= 400:
            raise ApiError(resp.status_code, body)
        return body

    # -- public API ----------------------------------------------------------------------
    def ask(self, question: str) -> dict[str, Any]:
        return self._call("POST", "/api/queries", json={"question": question})

    def get(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/queries/{job_id}")

    def wait(self, job_id: str, timeout: float = 30.0, interval: float = 0.05) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job["status"] in ("done", "failed") or time.monotonic() > deadline:
                return job
            time.sleep(interval)

    def rate(self, job_id: str, rating: int, comment: str | None = None) -> dict[str, Any]:
        return self._call(
            "POST", f"/api/queries/{job_id}/feedback", json={"rating": rating, "comment": comment}
        )

    def history(self, page: int = 1, page_size: int = 20, **params: Any) -> dict[str, Any]:
        return self._call(
            "GET", "/api/history", params={"page": page, "page_size": page_size, **params}
        )

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/api/stats")

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/api/health")

    # -- admin ---------------------------------------------------------------------------
    def catalogue(self) -> list[dict[str, Any]]:
        return self._call("GET", "/api/admin/faults/catalogue", admin=True)

    def faults(self) -> list[dict[str, Any]]:
        return self._call("GET", "/api/admin/faults", admin=True)

    def add_fault(self, kind: str, target: str, **spec: Any) -> dict[str, Any]:
        return self._call(
            "POST", "/api/admin/faults", admin=True, json={"kind": kind, "target": target, **spec}
        )

    def remove_fault(self, fault_id: str) -> dict[str, Any]:
        return self._call("DELETE", f"/api/admin/faults/{fault_id}", admin=True)

    def clear_faults(self) -> dict[str, Any]:
        return self._call("DELETE", "/api/admin/faults", admin=True)

    def reset(self) -> dict[str, Any]:
        return self._call("POST", "/api/admin/reset", admin=True)

    # -- room ----------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        return self._call("GET", "/api/config")

    def room_events(self) -> list[dict[str, Any]]:
        return self._call("GET", "/api/room/events")

    def start_room_event(self, kind: str, **spec: Any) -> dict[str, Any]:
        return self._call("POST", "/api/admin/room/events", admin=True, json={"kind": kind, **spec})

    def report_progress(self, **body: Any) -> dict[str, Any]:
        return self._call("POST", "/api/room/progress", json=body)

    def room_progress(self) -> list[dict[str, Any]]:
        return self._call("GET", "/api/admin/room/progress", admin=True)

    def clear_room_progress(self) -> dict[str, Any]:
        return self._call("DELETE", "/api/admin/room/progress", admin=True)

    def room_check(self, **body: Any) -> dict[str, Any]:
        return self._call("POST", "/api/room/check", json=body)
