"""The `lab` profile: JupyterLab as attendees get it. No secrets in its environment, terminals
off, a writable data dir, and every lab notebook runs headless inside the jupyter container
(papermill, short mode) with its checks passing — with NO admin token: per-request faults are
attendee-scoped (ATTENDEE_FAULTS=true), process-wide ones are room events this test starts as
the instructor through the admin API."""

from __future__ import annotations

import json
import shlex

import pytest

from labs.runtime import all_specs
from labs.runtime.spec import LabSpec
from stack.common.faults.registry import FAULT_KINDS
from tests.docker.conftest import HERE, ComposeStack, docker

JUPYTER_TOKEN = "test-jupyter-token"


@pytest.fixture(scope="module")
def lab(stack: ComposeStack) -> ComposeStack:
    stack.extra_args = ["-f", str(HERE / "compose.lab-test.yml"), "--profile", "lab"]
    stack.compose("up", "-d", "--build", timeout=1500)
    stack.wait_healthy(["jupyter", "otel-collector", "api-gateway", "nginx"], timeout=300)
    return stack


def _exec(stack: ComposeStack, *cmd: str, timeout: float = 60) -> str:
    return docker("exec", stack.container("jupyter"), *cmd, timeout=timeout).stdout


def test_no_secrets_in_the_attendees_environment(lab: ComposeStack) -> None:
    env = dict(
        line.split("=", 1) for line in _exec(lab, "env").splitlines() if "=" in line
    )
    for name in ("ADMIN_TOKEN", "LAB_ADMIN_TOKEN", "CX_PRIVATE_KEY", "CX_API_KEY"):
        assert name not in env, name
    assert lab.admin_token not in json.dumps(env)


def test_terminals_are_off(lab: ComposeStack) -> None:
    with lab.https() as client:
        r = client.get("/lab/api/terminals", headers={"Authorization": f"token {JUPYTER_TOKEN}"})
        # The REST API answers (the token works) but the terminals handler is not installed.
        assert client.get(
            "/lab/api/status", headers={"Authorization": f"token {JUPYTER_TOKEN}"}
        ).status_code == 200
    assert r.status_code == 404, r.status_code


def test_data_dir_is_writable(lab: ComposeStack) -> None:
    _exec(lab, "python", "-c", "import pathlib; p=pathlib.Path('/data/labs'); "
          "p.mkdir(parents=True, exist_ok=True); (p/'probe').write_text('ok')")  # fmt: skip


def _process_wide(spec: LabSpec) -> list:
    return [f for f in spec.faults if not FAULT_KINDS[f.kind].per_request]


@pytest.mark.parametrize("spec", all_specs(), ids=lambda s: s.name)
def test_notebook_runs_in_the_jupyter_container(lab: ComposeStack, spec: LabSpec) -> None:
    started: list[str] = []
    room = _process_wide(spec)
    if room:
        # The instructor starts the room events the lab waits for (admin API, global scope);
        # they stay on while the notebook runs (the checks see a stall that is still on) and
        # end when the test does.
        with lab.admin() as admin:
            for f in room:
                target = f.candidates[0] if f.target == "hidden" else f.target
                ttl = 300
                r = admin.post("/api/admin/faults", json={
                    "kind": f.kind, "target": target, "params": f.params,
                    "scope": "all", "ttl_seconds": ttl,
                })  # fmt: skip
                assert r.status_code == 201, r.text
                started.append(r.json()["id"])
    params = {
        "short_mode": True, "reveal": True, "attendee": f"docker-{spec.id}",
        "gateway_url": "http://api-gateway:8010", "telemetry_dir": "/telemetry",
    }  # fmt: skip
    args = []
    for k, v in params.items():
        args += ["-p", k, str(v)] if isinstance(v, str) else ["-y", f"{k}: {json.dumps(v)}"]
    out = f"/tmp/{spec.name}.out.ipynb"
    cmd = ["papermill", f"/app/notebooks/{spec.name}.ipynb", out, "--cwd", "/app/notebooks",
           "-k", "python3", "--no-progress-bar", "--execution-timeout", "240", *args]  # fmt: skip
    try:
        proc = docker("exec", lab.container("jupyter"), *cmd, timeout=400, check=False)
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
