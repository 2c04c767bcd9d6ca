"""Reliability suite: chaos, persistence, SQLite concurrency, backup/restore, shutdown, fuzzing,
limits and security against the real native stack (the session `stack` fixture).

`steady_load` is the suite's own bounded load generator (not Locust: the tests need the exact
answer to every request to account for each accepted question).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from tests.helpers import questions

SYNTHETIC = {"baggage": "synthetic_request=true"}


@dataclass
class Answer:
    status: int  # 0: no HTTP answer (connection error or client timeout)
    body: Any
    content_type: str
    text: str
    seconds: float
    error: str = ""  # the exception's type name when status is 0
    detail: str = ""  # and its message (errno, peer): what a failure report needs


@dataclass
class LoadResult:
    answers: list[Answer] = field(default_factory=list)

    @property
    def accepted_ids(self) -> list[str]:
        return [a.body["id"] for a in self.answers if a.status == 202]

    def by_status(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for a in self.answers:
            out[a.status] = out.get(a.status, 0) + 1
        return dict(sorted(out.items()))

    @property
    def rejected(self) -> list[Answer]:
        return [a for a in self.answers if a.status != 202]


async def steady_load(
    base_url: str,
    *,
    rate: float,
    duration: float,
    timeout: float = 15,
    headers: dict[str, str] | None = None,
    tag: str = "load",
    max_in_flight: int = 200,
) -> LoadResult:
    """POST /api/queries at `rate` per second for `duration` seconds; every answer recorded."""
    corpus = questions()
    result = LoadResult()
    sem = asyncio.Semaphore(max_in_flight)
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    counter = itertools.count()

    async with aiohttp.ClientSession(
        timeout=client_timeout, headers={**SYNTHETIC, **(headers or {})}
    ) as session:

        async def one(i: int) -> None:
            text = f"{corpus[i % len(corpus)]} ({tag} {i})"
            started = time.monotonic()
            async with sem:
                try:
                    async with session.post(
                        f"{base_url}/api/queries", json={"question": text}
                    ) as resp:
                        raw = await resp.text()
                        ctype = resp.headers.get("content-type", "")
                        try:
                            body: Any = await resp.json(content_type=None)
                        except ValueError:
                            body = None
                        result.answers.append(
                            Answer(resp.status, body, ctype, raw, time.monotonic() - started)
                        )
                except (TimeoutError, aiohttp.ClientError) as exc:
                    seconds = time.monotonic() - started
                    error, detail = type(exc).__name__, str(exc)[:200]
                    result.answers.append(Answer(0, None, "", "", seconds, error, detail))

        tasks = []
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < duration:
            i = next(counter)
            tasks.append(asyncio.create_task(one(i)))
            await asyncio.sleep(max(0.0, (i + 1) / rate - elapsed))
        await asyncio.gather(*tasks)
    return result


def is_clean_problem(answer: Answer) -> bool:
    """A non-2xx answer must be problem JSON with its status, never a traceback or HTML."""
    return (
        answer.content_type.startswith("application/problem+json")
        and isinstance(answer.body, dict)
        and answer.body.get("status") == answer.status
        and "Traceback" not in answer.text
    )
