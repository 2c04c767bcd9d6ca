"""The benchmark's own locustfile (only `workshop bench` uses it; the workshop scenarios live in
scenarios/). Closed loop, no think time, FastHttpUser.

- `FullFlowUser`: POST /api/queries with a unique question (a corpus line + a reference the
  generator ignores, so every question misses the query cache and reaches the LLM stand-in),
  then GET /api/queries/{id} every 20 ms until the job is done. The submit→done time is a
  custom event, request_type "JOB", name "submit→done".
- `CheapUser`: GET /health on the gateway — no tracing, no fan-out: the floor of the stack.
- `ChainUser`: POST / on the bare uvicorn chain (workshop/bench_chain.py): the ceiling.

Every request carries `baggage: synthetic_request=true`.
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

import gevent
from locust import constant, task
from locust.contrib.fasthttp import FastHttpUser

QUESTIONS_FILE = Path(__file__).resolve().parents[1] / "scenarios" / "questions.txt"
POLL_INTERVAL = 0.02
POLL_TIMEOUT = float(os.environ.get("BENCH_POLL_TIMEOUT", "30"))
HEADERS = {"baggage": "synthetic_request=true"}


def _questions() -> list[str]:
    lines = (line.strip() for line in QUESTIONS_FILE.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


QUESTIONS = _questions()
_counter = itertools.count()
_run = f"{os.getpid():x}"


def unique_question() -> str:
    n = next(_counter)
    return f"{QUESTIONS[n % len(QUESTIONS)]} (ref b{_run}x{n})"


class FullFlowUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def ask_and_wait(self) -> None:
        started = time.perf_counter()
        with self.client.post(
            "/api/queries",
            json={"question": unique_question()},
            headers=HEADERS,
            name="POST /api/queries",
            catch_response=True,
        ) as resp:
            if resp.status_code != 202:
                resp.failure(f"HTTP {resp.status_code}")
                return
            job_id = resp.json()["id"]
        status = "queued"
        error: Exception | None = None
        while True:
            gevent.sleep(POLL_INTERVAL)
            with self.client.get(
                f"/api/queries/{job_id}",
                headers=HEADERS,
                name="GET /api/queries/{id}",
                catch_response=True,
            ) as resp:
                if resp.status_code != 200:
                    resp.failure(f"HTTP {resp.status_code}")
                    error = RuntimeError(f"poll answered HTTP {resp.status_code}")
                    break
                status = resp.json().get("status", "queued")
            if status == "done":
                break
            if status == "failed":
                error = RuntimeError("job failed")
                break
            if time.perf_counter() - started > POLL_TIMEOUT:
                error = TimeoutError(f"job not done after {POLL_TIMEOUT:.0f} s")
                break
        self.environment.events.request.fire(
            request_type="JOB",
            name="submit→done",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=error,
            context={},
        )


class CheapUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def health(self) -> None:
        self.client.get("/health", headers=HEADERS, name="GET /health")


class ChainUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def forward(self) -> None:
        self.client.post(
            "/", json={"question": unique_question()}, headers=HEADERS, name="POST chain"
        )
