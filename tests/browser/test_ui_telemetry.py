"""Live RED charts (Status) and trace waterfalls (Ask, History) in Debian's chromium, against
the native stack with the real collector writing spans to its local files — in both modes:

- offline: the collector's file exporters are the only destination;
- online: CX_PRIVATE_KEY is set, the production pipeline exports to a local stand-in for
  Coralogix ingress (collector/test/coralogix-sink.yaml, through COLLECTOR_CONFIG_OVERLAYS),
  and the UI reads the local copy the collector keeps beside the export.

Faults are scoped to this test's attendee, so nobody else's traffic slows down. Screenshots
go to reports/screenshots/ at desktop width and 375 px.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from stack.common.settings import ServiceName
from tests.browser.test_ui import Page

pytestmark = [pytest.mark.browser, pytest.mark.stack]

EIGHT = {s.value for s in ServiceName if s is not ServiceName.FRONTEND}
TEAM_URL = "https://acme.app.eu2.coralogix.com"


@pytest.fixture(scope="module", params=["offline", "online"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@dataclasses.dataclass
class _Sink:
    dir: Path
    proc: subprocess.Popen


@pytest.fixture(scope="module")
def sink(mode: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Sink | None]:
    """Online: a second collector on loopback standing in for Coralogix ingress."""
    if mode == "offline":
        yield None
        return
    from stack.native.collector import collector_binary
    from tests.collector.conftest import SINK, base_env, wait_healthy

    base = int(os.environ.get("TEST_PORT_BASE", "18000")) + 600
    out = tmp_path_factory.mktemp("cx-sink")
    env = base_env(
        SINK_GRPC_PORT=str(base + 250), SINK_HEALTH_PORT=str(base + 251), SINK_DIR=str(out)
    )
    log = out / "sink.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [str(collector_binary()), "--config", str(SINK)], env=env, stdout=fh, stderr=fh
        )
    try:
        wait_healthy(base + 251, proc, log)
        yield _Sink(out, proc)
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(15)
        if proc.poll() is None:
            proc.kill()


@pytest.fixture(scope="module")
def stack(stack, mode: str, sink: _Sink | None):
    """Offline: the session's stack. Online: a second stack whose collector runs the
    production pipeline (no offline overlay) into the sink."""
    if mode == "offline" or sink is None:
        yield stack
        return
    from stack.native import launcher
    from tests.collector.conftest import TO_SINK
    from tests.conftest import REPO, StackHandle, test_config

    base = int(os.environ.get("TEST_PORT_BASE", "18000"))
    cfg = test_config(REPO / "data" / f"test-online-stack-{base}", offset=600)
    cfg = cfg.with_env(
        {
            "CX_TEAM_URL": TEAM_URL,
            "SINK_GRPC_PORT": str(base + 600 + 250),
            "COLLECTOR_CONFIG_OVERLAYS": str(TO_SINK),
        }
    )
    launcher.down(cfg)
    shutil.rmtree(cfg.data_dir, ignore_errors=True)
    # The key goes where an instructor puts it: the launching shell (inherited, never written).
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CX_PRIVATE_KEY", "cxtp_BROWSER_ONLINE_TEST")
        result = launcher.up(cfg, collector=True, nginx=False, timeout=90)
    try:
        assert result.online, "CX_PRIVATE_KEY set, yet the collector started offline"
        yield StackHandle(cfg, result.collector, False)
    finally:
        launcher.down(cfg)


def _sink_has_trace(sink: _Sink, trace_id: str) -> bool:
    from labs.telemetry import load_spans

    return any(s.trace_id == trace_id for s in load_spans(sink.dir))


@pytest.fixture(autouse=True)
def _needs_collector(stack) -> None:
    if not stack.collector:
        pytest.skip("collector not built: no spans to chart (`make collector`)")


def _admin(stack) -> dict[str, str]:
    return {"authorization": f"Bearer {stack.admin_token}"}


def _fault(stack, name: str, kind: str, target: str, params: dict) -> str:
    r = requests.post(
        stack.url(ServiceName.GATEWAY) + "/api/admin/faults",
        json={
            "kind": kind,
            "target": target,
            "params": params,
            "scope": "attendee",
            "scope_value": name,
            "ttl_seconds": 300,
        },
        headers=_admin(stack),
        timeout=5,
    )
    assert r.status_code == 201, r.text
    time.sleep(1.2)  # services poll fault state every 0.5 s
    return r.json()["id"]


def _clear(stack, fault_id: str) -> None:
    requests.delete(
        f"{stack.url(ServiceName.GATEWAY)}/api/admin/faults/{fault_id}",
        headers=_admin(stack),
        timeout=5,
    )


@pytest.fixture()
def traffic(stack) -> Iterator[str]:
    """An attendee asking ~4 questions/s in the background for the whole test."""
    name = f"red-{secrets.token_hex(3)}"
    stop = threading.Event()
    gw = stack.url(ServiceName.GATEWAY)

    def run() -> None:
        with requests.Session() as s:
            s.headers["baggage"] = f"workshop.attendee={name}"
            i = 0
            while not stop.is_set():
                i += 1
                with contextlib.suppress(requests.RequestException):
                    s.post(
                        gw + "/api/queries",
                        json={"question": f"count of logs by severity {i}"},
                        timeout=10,
                    )
                stop.wait(0.25)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    yield name
    stop.set()
    t.join(timeout=15)


def _shot(name: str, mode: str) -> str:
    return name if mode == "offline" else f"{name}-online"


def _p95(pg, service: str) -> float | None:
    raw = pg.get_attribute(f"#red-grid .red-tile[data-service='{service}']", "data-p95")
    return float(raw) if raw else None


def _wait_p95(pg, service: str, ok, timeout: float, what: str) -> float:
    deadline = time.monotonic() + timeout
    seen: list[float | None] = []
    while time.monotonic() < deadline:
        v = _p95(pg, service)
        seen.append(v)
        if v is not None and ok(v):
            return v
        pg.wait_for_timeout(1000)
    raise AssertionError(f"{service} p95 never {what} within {timeout:.0f} s: {seen[-15:]}")


def test_latency_fault_raises_the_p95_chart_marks_it_and_clears(
    browser,
    base_url,
    stack,
    traffic,
    mode,
) -> None:
    name = traffic
    target = "validation-service"
    p = Page(browser, base_url, name=name)
    pg = p.page
    p.goto("status")
    pg.wait_for_selector(f"#red-grid .red-tile[data-service='{target}']")
    assert pg.locator("#red-grid .red-tile").count() == 8
    _wait_p95(pg, target, lambda v: v > 0, 40, "appeared")
    # The baseline is the steady state: a freshly started stack's first requests (cold imports,
    # the exporter's first connection) can hold the p95 above 100 ms for a few bins.
    baseline = _wait_p95(pg, target, lambda v: 0 < v < 100, 60, "settled under 100 ms")
    assert pg.locator("#red-big canvas").count() >= 3, "the chosen service's three charts"

    fault_id = _fault(stack, name, "latency", target, {"ms": 400})
    # The fault adds 400 ms to every request: the p95 rises by about that much. (A ratio to
    # the baseline failed when the baseline settled near 90 ms: 5 × 87 > 437 ms measured.)
    rose = 250.0 + baseline
    try:
        raised = _wait_p95(pg, target, lambda v: v > rose, 45, "rose")
        marker = pg.locator(f"#red-faults li[data-fault-id='{fault_id}']")
        marker.wait_for()
        assert marker.get_attribute("data-state") == "active"
        assert "latency" in marker.text_content() and target in marker.text_content()
        # Only my traffic: the same rise, since the faulted requests are mine.
        pg.click(f"#red-grid .red-tile[data-service='{target}']")
        pg.check("#red-mine")
        pg.wait_for_timeout(3500)
        mine = _wait_p95(pg, target, lambda v: v > rose, 15, "rose (mine)")
        p.shot(_shot("status-red", mode))
        pg.uncheck("#red-mine")
    finally:
        _clear(stack, fault_id)
    marker.wait_for(state="attached")
    pg.wait_for_selector(
        f"#red-faults li[data-fault-id='{fault_id}'][data-state='ended']", timeout=15_000
    )
    assert "cleared" in pg.text_content(f"#red-faults li[data-fault-id='{fault_id}']")
    back = _wait_p95(pg, target, lambda v: v < max(100, 3 * baseline), 45, "came back")
    p.shot(_shot("status-red-cleared", mode))
    p.close()
    assert baseline < 100 < raised and mine > 250 and back < raised


def test_status_charts_at_375px(browser, base_url, traffic, mode) -> None:
    p = Page(browser, base_url, width=375, height=800, name=traffic)
    pg = p.page
    p.goto("status")
    _wait_p95(pg, "api-gateway", lambda v: v > 0, 40, "appeared")
    overflow = pg.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"status scrolls sideways by {overflow}px at 375px"
    p.shot(_shot("status-red-375", mode))
    p.close()


def _ask_fresh(p: Page, question: str) -> str:
    pg = p.page
    p.goto("ask")
    pg.fill("#question", question)
    pg.click("#ask-submit")
    pg.wait_for_selector("#trace-card:not([hidden]), #ask-error:not([hidden])")
    assert pg.is_hidden("#ask-error"), pg.text_content("#ask-error")
    return pg.text_content("#trace-card .wf-id")


def test_waterfall_of_a_fresh_question_shows_eight_services_and_the_fault(
    browser,
    base_url,
    stack,
    mode,
    sink,
) -> None:
    name = f"wf-{secrets.token_hex(3)}"
    fault_id = _fault(stack, name, "latency", "processing-service", {"ms": 60})
    try:
        p = Page(browser, base_url, name=name)
        pg = p.page
        question = f"errors from checkout in the last hour by status code {secrets.token_hex(2)}"
        trace_id = _ask_fresh(p, question)
        assert len(trace_id) == 32
        pg.wait_for_selector("#trace-card .wf-state:has-text('complete')", timeout=40_000)
        services = set(pg.get_attribute("#trace-card", "data-services").split(","))
        assert services >= EIGHT, EIGHT - services
        for svc in EIGHT:
            assert pg.locator(f"#trace-card .wf-row[data-service='{svc}']").count() >= 1, svc
        assert pg.locator("#trace-card .wf-row[data-service='queue-worker']").count() >= 1
        faulted = pg.locator("#trace-card .wf-row.has-fault")
        assert faulted.count() >= 1
        assert {faulted.nth(i).get_attribute("data-service") for i in range(faulted.count())} == {
            "processing-service"
        }
        assert pg.locator("#trace-card .wf-row.has-fault .wf-fault").first.is_visible()
        assert "fault injected: latency:processing-service" in pg.text_content(
            "#trace-card .wf-summary"
        )
        cx_links = pg.locator(f"#trace-card a[data-cx-trace='{trace_id}']")
        if mode == "offline":
            assert cx_links.count() == 0, "offline: no Coralogix link"
        else:
            # Online: the card links to the same trace in Coralogix, and the trace really
            # went there (the sink got its spans through the coralogix exporter).
            assert cx_links.first.get_attribute("href").startswith(TEAM_URL + "/explore?")
            deadline = time.monotonic() + 30
            while not _sink_has_trace(sink, trace_id) and time.monotonic() < deadline:
                time.sleep(1)
            assert _sink_has_trace(sink, trace_id), "the trace never reached the Coralogix sink"
        # Clicking a span shows its attributes.
        faulted.first.click()
        detail = pg.locator("#trace-card .wf-detail")
        detail.wait_for()
        assert "fault.injected" in detail.text_content()
        assert name in detail.text_content()  # workshop.attendee, from the baggage
        assert faulted.first.get_attribute("aria-expanded") == "true"
        pg.wait_for_selector("#job-status.pill-done")
        p.shot(_shot("ask-trace", mode))

        # History: the row opens the same trace.
        p.goto("history")
        row = pg.locator("#history-table tbody tr", has_text=question).first
        row.wait_for()
        row.locator(".trace-open").click()
        pg.wait_for_selector("#history-trace .wf-state:has-text('complete')", timeout=20_000)
        assert pg.text_content("#history-trace .wf-id") == trace_id
        assert set(pg.get_attribute("#history-trace", "data-services").split(",")) >= EIGHT
        p.shot(_shot("history-trace", mode))
        p.close()

        m = Page(browser, base_url, width=375, height=800, name=name)
        _ask_fresh(m, f"top 5 slowest endpoints today {secrets.token_hex(2)}")
        m.page.wait_for_selector("#trace-card .wf-state:has-text('complete')", timeout=40_000)
        overflow = m.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"ask with a trace scrolls sideways by {overflow}px at 375px"
        m.page.locator("#trace-card .wf-row").first.click()
        m.shot(_shot("ask-trace-375", mode))
        m.close()
    finally:
        _clear(stack, fault_id)


def test_unknown_and_malformed_trace_ids_through_the_live_gateway(stack) -> None:
    """404 with a clear message for an unknown id, 422 naming the field for a malformed one."""
    gw = stack.url(ServiceName.GATEWAY)
    assert requests.get(f"{gw}/api/traces/{'ab' * 16}", timeout=5).status_code == 404
    bad = requests.get(f"{gw}/api/traces/not-a-trace", timeout=5)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "trace_id"


def test_online_the_trace_card_links_to_the_same_trace_in_coralogix(
    browser,
    base_url,
    mode,
) -> None:
    """Online, /api/config names the team; the card links to this trace in Coralogix Explore.
    (On the offline stack, /api/config is answered as an online gateway answers it.)"""
    import json
    from urllib.parse import parse_qs, urlparse

    p = Page(browser, base_url, name=f"cx-{secrets.token_hex(2)}")
    pg = p.page
    online = {
        "application_name": "dataprime-workshop",
        "coralogix": {
            "enabled": True,
            "domain": "eu2.coralogix.com",
            "team_url": "https://acme.app.eu2.coralogix.com",
        },
        "attendee_faults": False,
    }
    if mode == "offline":
        body = json.dumps(online)
        pg.route(
            "**/api/config",
            lambda route: route.fulfill(status=200, content_type="application/json", body=body),
        )
    trace_id = _ask_fresh(p, f"count of logs by severity {secrets.token_hex(2)}")
    link = pg.locator(f"#trace-card a[data-cx-trace='{trace_id}']")
    link.wait_for()
    url = urlparse(link.get_attribute("href"))
    assert (url.scheme, url.netloc, url.path) == ("https", "acme.app.eu2.coralogix.com", "/explore")
    q = parse_qs(url.query)
    assert q["dataset"] == ["spans"] and trace_id in q["query"][0]
    assert link.get_attribute("rel") == "noopener noreferrer"
    p.close()
