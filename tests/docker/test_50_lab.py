"""The `lab` profile: JupyterLab as attendees get it. No secrets in its environment, terminals
off, a writable data dir, and every lab notebook runs headless inside the jupyter container
(papermill, short mode) with its checks passing — with NO admin token: per-request faults are
attendee-scoped (ATTENDEE_FAULTS=true), process-wide ones are room events this test starts as
the instructor through the admin API."""

from __future__ import annotations

import json
import shlex
import time
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from labs.runtime import all_specs
from labs.runtime.spec import LabSpec
from tests.docker.conftest import DEFAULT_SERVICES, ComposeStack, docker

JUPYTER_TOKEN = "test-jupyter-token"


@pytest.fixture(scope="module")
def lab(stack: ComposeStack) -> ComposeStack:
    """The project's jupyter container (the session stack starts the `lab` profile), with the
    collector's local telemetry copy emptied first: the footprint load wrote hundreds of
    thousands of spans there, and every check would read them all in a 512 MiB container.
    The collector is stopped while the files go (it keeps open files), nothing is recreated."""
    stack.compose("stop", "otel-collector", timeout=120)
    for f in stack.telemetry_dir.iterdir():
        if f.is_file():
            f.unlink()
    stack.compose("start", "otel-collector", timeout=120)
    stack.wait_healthy([*DEFAULT_SERVICES, "jupyter"], timeout=300)
    return stack


def _exec(stack: ComposeStack, *cmd: str, timeout: float = 60) -> str:
    return docker("exec", stack.container("jupyter"), *cmd, timeout=timeout).stdout


def test_no_secrets_in_the_attendees_environment(lab: ComposeStack) -> None:
    env = dict(line.split("=", 1) for line in _exec(lab, "env").splitlines() if "=" in line)
    for name in ("ADMIN_TOKEN", "LAB_ADMIN_TOKEN", "CX_PRIVATE_KEY", "CX_API_KEY"):
        assert name not in env, name
    assert lab.admin_token not in json.dumps(env)


def test_terminals_are_off(lab: ComposeStack) -> None:
    with lab.https() as client:
        r = client.get("/lab/api/terminals", headers={"Authorization": f"token {JUPYTER_TOKEN}"})
        # The REST API answers (the token works) but the terminals handler is not installed.
        assert (
            client.get(
                "/lab/api/status", headers={"Authorization": f"token {JUPYTER_TOKEN}"}
            ).status_code
            == 200
        )
    assert r.status_code == 404, r.status_code


def test_data_dir_is_writable(lab: ComposeStack) -> None:
    _exec(lab, "python", "-c", "import pathlib; p=pathlib.Path('/data/labs'); "
          "p.mkdir(parents=True, exist_ok=True); (p/'probe').write_text('ok')")  # fmt: skip


def _await_waiting(lab: ComposeStack, attendee: str, run: Future, timeout: float = 180) -> None:
    """Until the attendee's lab reports (GET /api/admin/room/progress) that it waits for a
    room event."""
    deadline = time.monotonic() + timeout
    with lab.admin() as admin:
        while time.monotonic() < deadline and not run.done():
            rows = admin.get("/api/admin/room/progress").json()
            if any(r["attendee"] == attendee and r["step"] == "waiting" for r in rows):
                return
            time.sleep(0.5)
    raise AssertionError(f"{attendee}'s lab never said it was waiting for the room event")


def _process_wide(spec: LabSpec) -> list:
    """The steps the lab waits for as room events (the lab runtime's own rule: queue_stall is
    one too, although the engine applies it per consumed job)."""
    return [f for f in spec.faults if f.room_event]


ATTENDEE_LABS = [s for s in all_specs() if s.name != "instructor"]


def test_the_instructor_notebook_is_refused_in_the_attendees_container(lab: ComposeStack) -> None:
    """The jupyter container holds no admin token: the instructor's notebook (room events,
    progress) stops at its first admin call with the reason, it cannot act for the room."""
    cmd = ["papermill", "/app/notebooks/instructor.ipynb", "/tmp/instructor.out.ipynb",
           "--cwd", "/app/notebooks", "-k", "python3", "--no-progress-bar",
           "-y", "short_mode: true", "-p", "gateway_url", "http://api-gateway:8010"]  # fmt: skip
    proc = docker("exec", lab.container("jupyter"), *cmd, timeout=300, check=False)
    assert proc.returncode != 0
    assert "HTTP 401: admin token required" in proc.stdout + proc.stderr


@pytest.mark.parametrize("spec", ATTENDEE_LABS, ids=lambda s: s.name)
def test_notebook_runs_in_the_jupyter_container(lab: ComposeStack, spec: LabSpec) -> None:
    started: list[str] = []
    room = _process_wide(spec)
    attendee = f"docker-{spec.id}"
    params = {
        "short_mode": True, "reveal": True, "attendee": attendee,
        "gateway_url": "http://api-gateway:8010", "telemetry_dir": "/telemetry",
    }  # fmt: skip
    args = []
    for k, v in params.items():
        args += ["-p", k, str(v)] if isinstance(v, str) else ["-y", f"{k}: {json.dumps(v)}"]
    out = f"/tmp/{spec.name}.out.ipynb"
    cmd = ["papermill", f"/app/notebooks/{spec.name}.ipynb", out, "--cwd", "/app/notebooks",
           "-k", "python3", "--no-progress-bar", "--execution-timeout", "240", *args]  # fmt: skip
    with ThreadPoolExecutor(1) as pool:
        run = pool.submit(docker, "exec", lab.container("jupyter"), *cmd, timeout=400, check=False)
        try:
            if room:
                # As an instructor does: the room's progress view says the attendee's lab is
                # waiting for the room event (after its baseline); start it then, for the
                # lab's short fault window (admin API, global scope).
                _await_waiting(lab, attendee, run)
                with lab.admin() as admin:
                    for f in room:
                        target = f.candidates[0] if f.target == "hidden" else f.target
                        r = admin.post("/api/admin/faults", json={
                            "kind": f.kind, "target": target, "params": f.params,
                            "scope": "all", "ttl_seconds": int(f.short.duration_s) + 2,
                        })  # fmt: skip
                        assert r.status_code == 201, r.text
                        started.append(r.json()["id"])
            proc = run.result()
        finally:
            with lab.admin() as admin:
                for fid in started:
                    admin.delete(f"/api/admin/faults/{fid}")
    nb = json.loads(_exec(lab, "cat", out)) if proc.returncode == 0 else None
    assert proc.returncode == 0, f"{shlex.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    assert nb is not None
    errors = [o for c in nb["cells"] if c["cell_type"] == "code"
              for o in c.get("outputs", []) if o.get("output_type") == "error"]  # fmt: skip
    assert not errors, errors
    verdicts = [
        o for c in nb["cells"]
        if c["cell_type"] == "code" and "lab.check(" in "".join(c["source"])
        for o in c.get("outputs", []) if o.get("output_type") == "execute_result"
    ]  # fmt: skip
    assert len(verdicts) == len(spec.questions)
    for v in verdicts:
        data = v["data"]
        text = "".join(data.get("text/markdown", "")) + "".join(data.get("text/plain", ""))
        assert "✅" in text and "❌" not in text, text
