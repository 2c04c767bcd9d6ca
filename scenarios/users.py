"""Who uses the DataPrime Assistant: analysts, explorers and an API client, on FastHttpUser.

- `AnalystUser` asks a question from `questions.txt`, polls until the job is done, reads the
  answer, rates it 1–5 (sometimes with a comment) and thinks before the next question.
- `ExplorerUser` browses: history, stats, health and the frontend's pages and assets.
- `ApiClientUser` is a script: bursts of quick questions, a sweep of polls, then idle.

Every request carries `baggage: synthetic_request=true,workshop.attendee=<id>` so the
attendee can filter their own traces. Options: `--attendee` (env WORKSHOP_ATTENDEE, default
the login name), `--frontend-host` (default: the gateway's port + 10), `--think-scale`
(multiplies every think time; 0 = no think time, for throughput measurements),
`--poll-timeout` (seconds to wait for a job).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from locust import events, task
from locust.contrib.fasthttp import FastHttpUser

from stack.common.attendee import baggage_header, default_attendee

QUESTIONS_FILE = Path(__file__).with_name("questions.txt")
FRONTEND_PORT_OFFSET = 10  # stack.common.settings.PORT_OFFSETS[FRONTEND]

COMMENTS = {
    5: ["exactly what I needed", "spot on", "perfect, thanks"],
    4: ["close enough", "good, minor tweak needed", "useful"],
    3: ["okay-ish", "had to adjust the time range", "partly right"],
    2: ["wrong grouping", "missed the service filter", "not quite"],
    1: ["not what I asked", "wrong intent entirely", "useless"],
}


def load_questions(path: Path = QUESTIONS_FILE) -> list[str]:
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    questions = [line for line in lines if line and not line.startswith("#")]
    if not questions:
        raise RuntimeError(f"no questions in {path}")
    return questions


QUESTIONS = load_questions()


def frontend_from(gateway: str) -> str:
    """The frontend's base URL: the gateway's with the port moved by +10 (8010 → 8020)."""
    parts = urlsplit(gateway)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    netloc = f"{parts.hostname}:{port + FRONTEND_PORT_OFFSET}"
    return urlunsplit((parts.scheme, netloc, "", "", ""))


@events.init_command_line_parser.add_listener
def _add_options(parser: Any) -> None:
    group = parser.add_argument_group("workshop users")
    group.add_argument(
        "--attendee",
        default=default_attendee(),
        help="workshop.attendee baggage on every request (env WORKSHOP_ATTENDEE)",
    )
    group.add_argument(
        "--frontend-host", default="", help="frontend base URL (default: gateway port + 10)"
    )
    group.add_argument(
        "--think-scale",
        type=float,
        default=1.0,
        help="multiply every think time (0 = none, e.g. to measure throughput)",
    )
    group.add_argument(
        "--poll-timeout", type=float, default=30.0, help="seconds to wait for a job to finish"
    )


def rating() -> int:
    """Mostly happy users, a long tail of unhappy ones."""
    return random.choices([5, 4, 3, 2, 1], weights=[35, 30, 15, 10, 10])[0]


class WorkshopUser(FastHttpUser):
    abstract = True
    network_timeout = 15.0
    connection_timeout = 5.0
    think: tuple[float, float] = (1.0, 5.0)

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        opts = environment.parsed_options
        self.attendee = str(getattr(opts, "attendee", None) or default_attendee())
        self.think_scale = float(getattr(opts, "think_scale", 1.0) if opts else 1.0)
        self.poll_timeout = float(getattr(opts, "poll_timeout", 30.0) if opts else 30.0)
        self.headers = {
            "baggage": baggage_header(self.attendee, synthetic=True),
            "accept": "application/json",
        }

    def wait_time(self) -> float:  # type: ignore[override]
        low, high = self.think
        return random.uniform(low, high) * self.think_scale

    def pause(self, low: float, high: float) -> None:
        if self.think_scale > 0:
            time.sleep(random.uniform(low, high) * self.think_scale)  # gevent-patched

    def get(self, path: str, name: str | None = None, **kw: Any) -> Any:
        return self.client.get(path, name=name, headers=self.headers, **kw)

    @contextmanager
    def call(self, method: str, path: str, name: str, ok: tuple[int, ...], **kw: Any) -> Iterator:
        with self.client.request(
            method, path, name=name, headers=self.headers, catch_response=True, **kw
        ) as resp:
            if resp.status_code not in ok:
                resp.failure(f"HTTP {resp.status_code}: {_detail(resp)}")
            yield resp

    def ask(self, question: str) -> str | None:
        with self.call(
            "POST", "/api/queries", "/api/queries", (202, 422), json={"question": question}
        ) as resp:
            if resp.status_code == 422:
                # The assistant could not build a valid query: a product answer, not an
                # outage. Counted as a success; it shows in traces as a validation error.
                return None
            if resp.status_code == 202:
                try:
                    return resp.json()["id"]
                except Exception:
                    resp.failure("202 without a job id")
        return None

    def poll(self, job_id: str) -> dict[str, Any] | None:
        with self.call("GET", f"/api/queries/{job_id}", "/api/queries/[id]", (200,)) as resp:
            if resp.status_code == 200:
                try:
                    return resp.json()
                except Exception:
                    resp.failure("not JSON")
        return None

    def wait_for(self, job_id: str, asked_at: float) -> dict[str, Any] | None:
        """Poll like a browser does (back-off from 0.2 s) until done/failed or the timeout."""
        interval = 0.2
        deadline = asked_at + self.poll_timeout
        while True:
            job = self.poll(job_id)
            status = (job or {}).get("status")
            if status in ("done", "failed"):
                self._job_event(asked_at, None if status == "done" else "job failed")
                return job
            if time.monotonic() > deadline:
                self._job_event(asked_at, f"not done within {self.poll_timeout:.0f} s")
                return None
            time.sleep(interval)
            interval = min(interval * 1.5, 1.0)

    def _job_event(self, asked_at: float, error: str | None) -> None:
        """Question → answer time as its own stats row (`JOB question→done`)."""
        self.environment.events.request.fire(
            request_type="JOB",
            name="question→done",
            response_time=(time.monotonic() - asked_at) * 1000,
            response_length=0,
            exception=RuntimeError(error) if error else None,
            context={},
        )

    def rate(self, job_id: str) -> None:
        stars = rating()
        body: dict[str, Any] = {"rating": stars}
        if random.random() < 0.3:
            body["comment"] = random.choice(COMMENTS[stars])
        with self.call(
            "POST",
            f"/api/queries/{job_id}/feedback",
            "/api/queries/[id]/feedback",
            (201,),
            json=body,
        ):
            pass


def _detail(resp: Any) -> str:
    try:
        body = resp.json()
        return str(body.get("detail") or body.get("title") or "")[:120]
    except Exception:
        return (resp.text or "")[:120] if hasattr(resp, "text") else ""


class AnalystUser(WorkshopUser):
    """Asks, waits for the answer, reads it, rates it."""

    weight = 6
    think = (4.0, 12.0)

    @task
    def question_to_rating(self) -> None:
        asked_at = time.monotonic()
        job_id = self.ask(random.choice(QUESTIONS))
        if job_id is None:
            return
        job = self.wait_for(job_id, asked_at)
        if job is None or job.get("status") != "done":
            return
        self.pause(1.0, 4.0)  # reading the result
        if random.random() < 0.7:
            self.rate(job_id)


class ExplorerUser(WorkshopUser):
    """Browses the frontend, the history, the figures and the health page."""

    weight = 3
    think = (2.0, 8.0)

    def on_start(self) -> None:
        opts = self.environment.parsed_options
        explicit = getattr(opts, "frontend_host", "") if opts else ""
        self.frontend = (explicit or frontend_from(self.host or "http://127.0.0.1:8010")).rstrip(
            "/"
        )
        self.page()

    def page(self) -> None:
        for path, name in (("/", "frontend /"), ("/app.js", "frontend /app.js")):
            with self.call("GET", self.frontend + path, name, (200, 304)):
                pass

    @task(3)
    def history(self) -> None:
        page = random.choice([1, 1, 1, 2, 3])
        with self.call(
            "GET",
            f"/api/history?page={page}&page_size=20",
            "/api/history",
            (200,),
        ):
            pass

    @task(2)
    def stats(self) -> None:
        with self.call("GET", "/api/stats", "/api/stats", (200,)):
            pass

    @task(1)
    def health(self) -> None:
        with self.call("GET", "/api/health", "/api/health", (200,)):
            pass

    @task(2)
    def reload(self) -> None:
        self.page()


class ApiClientUser(WorkshopUser):
    """A script: a burst of quick questions, then polls each job, then goes idle."""

    weight = 1
    think = (10.0, 30.0)  # idle between bursts

    @task
    def burst(self) -> None:
        asked: list[tuple[str, float]] = []
        for _ in range(random.randint(5, 15)):
            started = time.monotonic()
            job_id = self.ask(random.choice(QUESTIONS))
            if job_id:
                asked.append((job_id, started))
            self.pause(0.05, 0.2)
        for job_id, started in asked:
            self.wait_for(job_id, started)
