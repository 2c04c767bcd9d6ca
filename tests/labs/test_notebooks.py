"""Every lab notebook (and the instructor notebook) executes headless with papermill in short
mode against the session's native stack, with every check() passing on local telemetry."""

from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
import pytest

from labs.runtime import all_specs
from labs.runtime.spec import LabSpec
from stack.common.settings import ServiceName

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.stack


def _reads_host_metrics(spec: LabSpec) -> bool:
    """A check over `system.*` metrics reads the collector's hostmetrics receiver: the whole
    machine, so another test worker's load would be in the attendee's baseline and fault
    windows (lab 05 failed that way on two workers)."""
    return any("system." in str(value) for q in spec.questions for value in q.local.args.values())


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(s, id=s.name, marks=[pytest.mark.alone] if _reads_host_metrics(s) else [])
        for s in all_specs()
    ],
)
def test_notebook_executes(spec, stack, tmp_path, monkeypatch):
    import papermill

    if not stack.collector:
        pytest.skip("the checks read local telemetry: build the collector (`make collector`)")
    # The kernel inherits the environment: point the runtime at the test stack.
    monkeypatch.setenv("WORKSHOP_DATA_DIR", str(stack.cfg.data_dir))
    monkeypatch.setenv("WORKSHOP_PORT_BASE", str(stack.cfg.port_base))
    monkeypatch.delenv("CX_API_KEY", raising=False)
    monkeypatch.delenv("CX_PRIVATE_KEY", raising=False)
    src = REPO / "notebooks" / f"{spec.name}.ipynb"
    out = tmp_path / src.name
    started = time.monotonic()
    papermill.execute_notebook(
        str(src),
        str(out),
        parameters={
            "short_mode": True,
            "reveal": True,
            "attendee": f"nb-{spec.id}-{os.getpid()}",
            "gateway_url": stack.url(ServiceName.GATEWAY),
            "admin_token": stack.admin_token,
            "telemetry_dir": str(stack.telemetry_dir),
        },
        cwd=str(REPO / "notebooks"),
        kernel_name="python3",
        progress_bar=False,
        execution_timeout=180,
    )
    nb = nbformat.read(out, as_version=4)
    nbformat.validate(nb)
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors, errors
    verdicts = [
        o
        for c in nb.cells
        if c.cell_type == "code" and "lab.check(" in c.source
        for o in c.get("outputs", [])
        if o.get("output_type") == "execute_result"
    ]
    assert len(verdicts) == len(spec.questions)
    for v in verdicts:
        assert "✅" in v["data"].get("text/markdown", "") or "correct" in v["data"].get(
            "text/plain", ""
        )
    assert time.monotonic() - started < 120
