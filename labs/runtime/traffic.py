"""Traffic for labs and the demo: one small adapter with two engines.

* ``builtin``: a bounded aiohttp generator running in a background thread (its own event loop,
  so it works inside a Jupyter kernel whose loop is already running). It records every request
  (time, latency, status) so notebooks and the demo can draw live stats.
* ``locust``: ``scenarios.runner.run_scenario`` (Locust as a *subprocess*, never imported
  here: gevent's monkey-patching hangs a notebook kernel). Live stats then come from the
  gateway's server spans in local telemetry; the final figures from Locust's own stats.

Every request carries ``baggage: synthetic_request=true,workshop.attendee=<id>``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stack.client import baggage_header
from stack.common.stats import percentile

QUESTIONS_FILE = Path(__file__).resolve().parents[2] / "scenarios" / "questions.txt"
_FALLBACK_QUESTIONS = [
    "errors from checkout in the last hour by status code",
    "slowest endpoints of the payment service today",
    "p95 latency of api-gateway by route in the last 15 minutes",
    "count of logs by severity for the frontend",
    "top 10 users by number of failed logins",
]


def questions() -> list[str]:
    try:
        lines = QUESTIONS_FILE.read_text().splitlines()
    except OSError:
        return list(_FALLBACK_QUESTIONS)
    out = [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    return out or list(_FALLBACK_QUESTIONS)


@dataclass(slots=True)
class Sample:
    t: float  # wall clock (epoch seconds) at the end of the request
    name: str
    latency_ms: float
    status: int  # 0 = connection error / timeout
    ok: bool


@dataclass
class Stats:
    requests: int = 0
    errors: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    rps: float = 0.0

    @property
    def error_ratio(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @classmethod
    def of(cls, samples: Sequence[Sample], seconds: float | None = None) -> Stats:
        lat = [s.latency_ms for s in samples]
        if seconds is None:
            seconds = (max(s.t for s in samples) - min(s.t for s in samples)) if samples else 0
        return cls(
            requests=len(samples),
            errors=sum(1 for s in samples if not s.ok),
            p50_ms=percentile(lat, 0.50),
            p95_ms=percentile(lat, 0.95),
            rps=len(samples) / seconds if seconds and seconds > 0 else 0.0,
        )


ASK = "POST /api/queries"  # the sample name of a question asked


@dataclass
class TrafficRun:
    """A running (or finished) burst of traffic; thread-safe to read while it runs."""

    base_url: str
    users: int
    duration_s: float
    attendees: list[str]
    engine: str = "builtin"
    scenario: str | None = None
    think_s: float | None = None  # builtin: mean pause per user between questions
    started_at: float = 0.0
    ended_at: float | None = None
    samples: list[Sample] = field(default_factory=list)
    error: str | None = None
    result: Any = None  # ScenarioResult from the locust engine
    locust_rows: list[dict[str, str]] = field(default_factory=list)  # Locust's live stats rows
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- reading -------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def elapsed(self) -> float:
        return (self.ended_at or time.time()) - self.started_at if self.started_at else 0.0

    @property
    def progress(self) -> float:
        return min(1.0, self.elapsed / self.duration_s) if self.duration_s else 1.0

    def snapshot(self, since: float | None = None, until: float | None = None) -> list[Sample]:
        with self._lock:
            data = list(self.samples)
        if since is not None:
            data = [s for s in data if s.t >= since]
        if until is not None:
            data = [s for s in data if s.t < until]
        return data

    def asked(self) -> int:
        """Questions the gateway accepted."""
        return sum(1 for x in self.snapshot() if x.name == ASK and x.ok)

    def stats(self, since: float | None = None, until: float | None = None) -> Stats:
        lo = since if since is not None else self.started_at
        hi = until if until is not None else (self.ended_at or time.time())
        if self.engine == "locust" and not self.samples:
            return _locust_stats(self.locust_rows) if since is None and until is None else Stats()
        return Stats.of(self.snapshot(since, until), max(hi - lo, 1e-6))

    def add(self, sample: Sample) -> None:
        with self._lock:
            self.samples.append(sample)

    # -- control -------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    def wait(self, timeout: float | None = None) -> TrafficRun:
        if self._thread:
            self._thread.join(timeout)
        return self


# ------------------------------------------------------------------------------- builtin


async def _user(run: TrafficRun, attendee: str, deadline: float, corpus: list[str]) -> None:
    import aiohttp

    rnd = random.Random()
    headers = {"baggage": baggage_header(attendee, synthetic=True)}
    timeout = aiohttp.ClientTimeout(total=15)
    # A user keeps the gateway's session cookie, as a browser does. aiohttp's default jar
    # refuses cookies from an IP address (127.0.0.1, a VM's), so every ask would start a new
    # session: a Redis key each, for an hour, and a different `workshop.session` per question.
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(
        base_url=run.base_url, headers=headers, timeout=timeout, cookie_jar=jar
    ) as http:
        recent: list[str] = []

        async def call(name: str, method: str, path: str, **kw: Any) -> Any:
            t0 = time.perf_counter()
            status, body = 0, None
            try:
                async with http.request(method, path, **kw) as resp:
                    status = resp.status
                    if "json" in resp.headers.get("content-type", ""):
                        body = await resp.json()
                    else:
                        await resp.read()
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            run.add(
                Sample(time.time(), name, (time.perf_counter() - t0) * 1000, status, _ok(status))
            )
            return body if 0 < status < 400 else None

        while time.time() < deadline and not run._stop.is_set():
            # A unique suffix keeps query-service's cache out of the way (every ask is real work).
            question = f"{rnd.choice(corpus)} (#{rnd.randrange(1_000_000)})"
            body = await call(ASK, "POST", "/api/queries", json={"question": question})
            if body and body.get("id"):
                recent = [body["id"], *recent[:9]]
            roll = rnd.random()
            if recent and roll < 0.35:
                await call("GET /api/queries/{id}", "GET", f"/api/queries/{rnd.choice(recent)}")
            elif recent and roll < 0.5:
                await call(
                    "POST /api/queries/{id}/feedback",
                    "POST",
                    f"/api/queries/{rnd.choice(recent)}/feedback",
                    json={"rating": rnd.randint(1, 5)},
                )
            elif roll < 0.65:
                await call("GET /api/history", "GET", "/api/history", params={"page_size": "20"})
            think = run.think_s
            await asyncio.sleep(
                rnd.uniform(0.5 * think, 1.5 * think) if think else rnd.uniform(0.05, 0.25)
            )


async def _builtin_main(run: TrafficRun) -> None:
    corpus = questions()
    deadline = run.started_at + run.duration_s
    tasks = [
        asyncio.create_task(_user(run, run.attendees[i % len(run.attendees)], deadline, corpus))
        for i in range(run.users)
    ]
    await asyncio.gather(*tasks, return_exceptions=True)


def _run_builtin(run: TrafficRun) -> None:
    try:
        asyncio.run(_builtin_main(run))
    except Exception as exc:
        run.error = f"{type(exc).__name__}: {exc}"
    finally:
        run.ended_at = time.time()


# ------------------------------------------------------------------------------- locust


def locust_available() -> bool:
    """Locust is installed for the runner's subprocess."""
    return importlib.util.find_spec("locust") is not None


def _run_locust(run: TrafficRun, env: dict[str, str] | None) -> None:
    try:
        from scenarios.runner import run_scenario

        def on_poll(rows: list[dict[str, str]]) -> None:
            run.locust_rows = rows

        run.result = run_scenario(
            run.scenario or "smoke",
            host=run.base_url,
            users=run.users,
            duration=f"{max(1, round(run.duration_s))}s",  # Locust counts whole seconds
            attendee=run.attendees[0],
            extra_args=[],
            env=env,
            timeout=run.duration_s + 90,
            on_poll=on_poll,
        )
        if getattr(run.result, "exit_code", 0) not in (0, None):
            run.error = f"Locust exited with {run.result.exit_code}"
    except Exception as exc:
        run.error = f"{type(exc).__name__}: {exc}"
    finally:
        run.ended_at = time.time()


def start(
    base_url: str,
    *,
    users: int,
    duration_s: float,
    attendees: Sequence[str],
    engine: str = "builtin",
    scenario: str | None = None,
    env: dict[str, str] | None = None,
    think_s: float | None = None,
) -> TrafficRun:
    """Start traffic in the background and return at once."""
    if engine == "auto":
        engine = "locust" if locust_available() else "builtin"
    if engine == "locust" and not locust_available():
        engine = "builtin"
    run = TrafficRun(
        base_url=base_url.rstrip("/"),
        users=users,
        duration_s=duration_s,
        attendees=list(attendees) or ["anonymous"],
        engine=engine,
        scenario=scenario,
        think_s=think_s,
        started_at=time.time(),
    )
    target = _run_locust if engine == "locust" else _run_builtin
    args = (run, env) if engine == "locust" else (run,)
    run._thread = threading.Thread(target=target, args=args, name="lab-traffic", daemon=True)
    run._thread.start()
    return run


def _ok(status: int) -> bool:
    """Server-side failures count as errors; a 4xx (rating an unfinished job) does not —
    except 429, which means the service refused work."""
    return 0 < status < 500 and status != 429


def _locust_stats(rows: list[dict[str, str]]) -> Stats:
    """Stats from Locust's stats rows (the ``Aggregated`` row of its CSV)."""
    row = next((r for r in rows if r.get("Name") == "Aggregated"), None)
    if not row:
        return Stats()

    def num(key: str) -> float | None:
        try:
            return float(row.get(key, "") or "nan")
        except ValueError:
            return None

    requests = int(num("Request Count") or 0)
    return Stats(
        requests=requests,
        errors=int(num("Failure Count") or 0),
        p50_ms=num("50%"),
        p95_ms=num("95%"),
        rps=num("Requests/s") or 0.0,
    )
