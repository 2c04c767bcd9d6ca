"""Schemathesis against the gateway's own OpenAPI: every operation (admin ones with the Bearer
token), no 5xx, statuses and bodies conform to the schema.

Run as the `schemathesis run` CLI in a subprocess (bounded by --max-examples, a request timeout
and a wall-clock timeout); the token reaches it through an environment variable substituted in
a generated schemathesis.toml, so it appears on no command line and in no output.

Fuzzing POST /api/admin/faults with valid specs would inject real faults (an `error` fault on
the gateway turns every later case into a 500), so a hook pins generated fault specs to
probability 0 and a 1 s TTL, and swaps process-level kinds (a bad_release restarts services)
for `latency`. Validation of the spec itself is still fuzzed in full.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from stack.client import Gateway
from stack.common.settings import ServiceName
from stack.native.supervisor import http_ok
from tests.conftest import REPO
from tests.helpers import eventually

HOOKS = textwrap.dedent(
    """
    import schemathesis
    from stack.common.faults.registry import FAULT_KINDS

    @schemathesis.hook
    def map_body(ctx, body):
        op = ctx.operation
        is_fault = op.method.upper() == "POST" and op.path == "/api/admin/faults"
        if is_fault and isinstance(body, dict):
            body["ttl_seconds"] = 1
            body["probability"] = 0.0
            kind = body.get("kind")
            spec = FAULT_KINDS.get(kind) if isinstance(kind, str) else None
            if spec is not None and not spec.per_request:
                body["kind"] = "latency"
        return body
    """
)
MAX_EXAMPLES = 70
MIN_CASES = 500


def test_schemathesis_finds_no_server_errors_or_schema_violations(
    stack, admin: Gateway, tmp_path: Path
) -> None:
    base = stack.url(ServiceName.GATEWAY)
    assert base.startswith("http://127.0.0.1:")
    (tmp_path / "st_workshop_hooks.py").write_text(HOOKS)
    config = tmp_path / "schemathesis.toml"
    config.write_text('headers = { Authorization = "Bearer ${WORKSHOP_FUZZ_TOKEN}" }\n')
    report = tmp_path / "report.json"
    exe = Path(sys.executable).with_name("schemathesis")
    cmd = [
        str(exe),
        "--config-file",
        str(config),
        "run",
        f"{base}/api/openapi.json",
        "--checks",
        "not_a_server_error,status_code_conformance,response_schema_conformance",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--request-timeout",
        "10",
        "--workers",
        "2",
        "--seed",
        "20240601",
        "--generation-database",
        "none",
        "--no-color",
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    env = {
        **os.environ,
        "WORKSHOP_FUZZ_TOKEN": stack.admin_token,
        "SCHEMATHESIS_HOOKS": "st_workshop_hooks",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)]),
    }
    try:
        proc = subprocess.run(
            cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240
        )
    finally:
        admin.clear_faults()
    output = proc.stdout + proc.stderr
    assert stack.admin_token not in output
    assert report.exists(), output[-3000:]
    data = json.loads(report.read_text())
    cases = data["test_cases"]
    print(
        f"schemathesis {data['schemathesis_version']}: operations "
        f"{data['operations']['tested']}/{data['operations']['total']}, cases generated "
        f"{cases['generated']}, with failures {cases['with_failures']}, errors "
        f"{len(data['errors'])}, {data['running_time']:.1f} s"
    )
    for failure in data["failures"]:
        print(f"  {failure['code']} {failure['title']}: {failure['operations']}")
    assert data["operations"]["tested"] == data["operations"]["total"] >= 10
    assert cases["generated"] >= MIN_CASES
    assert not data["errors"], data["errors"]
    assert not data["failures"], output[-4000:]
    assert proc.returncode == 0, output[-4000:]
    # The fuzzer reset the stack and created (inert, expired) faults: leave it healthy.
    eventually(lambda: http_ok(f"{base}/ready"), 30, what="gateway ready after fuzzing")
    eventually(lambda: admin.health()["status"] == "ok", 30, what="stack healthy after fuzzing")
    assert admin.faults() == []
