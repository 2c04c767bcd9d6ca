"""Faults the deployment survives without losing a job: a killed worker, a restarted Redis
(AOF keeps the stream and sessions), and down/up (the SQLite volume keeps the rows)."""

from __future__ import annotations

import os
import signal
import threading
import time

from stack.gateway.sessions import COOKIE
from tests.docker.conftest import DEFAULT_SERVICES, ComposeStack, ask_and_wait, docker, wait_done
from tests.helpers import eventually

QUESTIONS = [
    "errors from checkout in the last hour by status code",
    "slowest endpoints of the payment service",
    "count logs by severity for the cart service",
    "top 5 services by error count today",
]


def test_killed_queue_worker_restarts_and_every_accepted_question_finishes(
    stack: ComposeStack,
) -> None:
    accepted: list[str] = []
    stop = threading.Event()

    def ask_loop() -> None:
        with stack.direct() as client:
            i = 0
            while not stop.is_set():
                r = client.post("/api/queries", json={"question": QUESTIONS[i % len(QUESTIONS)]})
                if r.status_code == 202:
                    accepted.append(r.json()["id"])
                i += 1
                time.sleep(0.1)

    worker = stack.container("queue-worker")
    restarts = int(docker("inspect", "-f", "{{.RestartCount}}", worker).stdout)
    thread = threading.Thread(target=ask_loop, daemon=True)
    thread.start()
    time.sleep(3)
    # SIGKILL to the container's main process from the host: a crash (as the OOM killer would
    # end it), which the restart policy answers. `docker kill` itself marks the container as
    # manually stopped, and Docker never restarts those (seen here on engine 20.10: it stays
    # exited), so the crash is what exercises `restart: unless-stopped`.
    pid = int(docker("inspect", "-f", "{{.State.Pid}}", worker).stdout)
    os.kill(pid, signal.SIGKILL)
    time.sleep(8)
    stop.set()
    thread.join(timeout=30)
    assert len(accepted) >= 10, accepted

    # Restarted by the policy; that it works again, every accepted question finishing says.
    # (Its Docker health would take a probe interval, 30 s, to say so.)
    def restarted() -> bool:
        state = docker("inspect", "-f", "{{.State.Status}} {{.RestartCount}}", worker).stdout
        return state.split()[0] == "running" and int(state.split()[1]) > restarts

    eventually(restarted, timeout=60, interval=1, what="queue-worker restarted by its policy")
    with stack.direct() as client:
        statuses = [wait_done(client, job, timeout=120)["status"] for job in accepted]
    assert statuses.count("done") == len(accepted), statuses


def _redis(stack: ComposeStack, *args: str, check: bool = True) -> str:
    return docker("exec", stack.container("redis"), "redis-cli", *args, check=check).stdout.strip()


def test_redis_restart_keeps_stream_and_sessions(stack: ComposeStack) -> None:
    with stack.direct() as client:
        job = ask_and_wait(client, QUESTIONS[0])
        sid = client.cookies[COOKIE]
    stream_before = int(_redis(stack, "XLEN", "stream:jobs"))
    assert stream_before > 0
    assert _redis(stack, "EXISTS", f"session:{sid}") == "1"
    time.sleep(1.5)  # appendfsync everysec
    stack.compose("restart", "redis", timeout=120)
    # Redis answering is what the services need (their clients reconnect); its Docker health
    # would take a probe interval (30 s) to say so. The question below proves the rest.
    eventually(
        lambda: _redis(stack, "ping", check=False) == "PONG",
        timeout=60,
        interval=0.5,
        what="redis answering after its restart",
    )
    assert int(_redis(stack, "XLEN", "stream:jobs")) >= stream_before
    assert _redis(stack, "EXISTS", f"session:{sid}") == "1"
    with stack.direct(cookies={COOKIE: sid}) as client:
        r = client.post("/api/queries", json={"question": QUESTIONS[1]})
        assert r.status_code == 202, r.text
        # The session survived: the gateway kept the same id.
        assert r.cookies.get(COOKIE, sid) == sid
        assert wait_done(client, r.json()["id"])["status"] == "done"
        assert client.get(f"/api/queries/{job['id']}").json()["status"] == "done"


def test_down_then_up_keeps_sqlite_rows(stack: ComposeStack) -> None:
    with stack.direct() as client:
        job = ask_and_wait(client, QUESTIONS[2])
        assert client.post(
            f"/api/queries/{job['id']}/feedback", json={"rating": 5, "comment": "kept"}
        ).status_code in (200, 201, 202)
        sid = client.cookies[COOKIE]
    stack.compose("down", timeout=300)
    stack.compose("up", "-d", timeout=400)
    stack.wait_healthy([*DEFAULT_SERVICES, "sink"])
    with stack.direct(cookies={COOKIE: sid}) as client:
        r = client.get(f"/api/queries/{job['id']}")
        assert r.status_code == 200 and r.json()["status"] == "done", r.text
        history = client.get("/api/history").json()
    rows = {item["job_id"]: item for item in history["items"]}
    assert job["id"] in rows, history
    assert rows[job["id"]]["rating"] == 5
