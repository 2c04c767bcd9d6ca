"""The web UI in a real browser (Playwright + Debian chromium) against the native stack.

Through nginx when the stack runs it (so the CSP is enforced and any inline script would be
reported), otherwise straight to the frontend port. Screenshots of every page, at desktop
width and at 375 px, land in reports/screenshots/.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import pytest
import requests

from stack.common.settings import REPO_ROOT, ServiceName

pytestmark = [pytest.mark.browser, pytest.mark.stack]

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = REPO_ROOT / "reports" / "screenshots"
QUESTION = "count of logs by severity"


class Page:
    """A page plus the console problems it reported (CSP violations, uncaught errors)."""

    def __init__(
        self, browser, base_url: str, width: int = 1280, height: int = 900, name: str | None = None
    ) -> None:
        self.ctx = browser.new_context(
            viewport={"width": width, "height": height}, ignore_https_errors=True
        )
        self.page = self.ctx.new_page()
        self.page.set_default_timeout(15_000)
        self.base = base_url
        self.problems: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.problems.append(f"pageerror: {exc}"))
        self.page.on("dialog", self._dialog)
        if name:
            self.page.add_init_script(
                f"localStorage.setItem('workshop.attendee', {json.dumps(name)})"
            )

    def _console(self, msg) -> None:
        if msg.type == "error" and "Failed to load resource" not in msg.text:
            self.problems.append(msg.text)

    def _dialog(self, dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def goto(self, route: str) -> None:
        self.page.goto(f"{self.base}/#/{route}")

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.evaluate("document.activeElement && document.activeElement.blur()")
        self.page.evaluate("window.scrollTo(0, 0)")
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.ctx.close()
        assert not self.problems, self.problems


def ask(p: Page, question: str) -> str:
    pg = p.page
    p.goto("ask")
    pg.fill("#question", question)
    pg.click("#ask-submit")
    pg.wait_for_selector("#answer:not([hidden])")
    pg.wait_for_selector("#job-status.pill-done, #job-status.pill-failed", timeout=30_000)
    return pg.text_content("#job-meta").split()[1]


def test_ask_shows_query_result_and_rating_lands_in_history(browser, base_url) -> None:
    p = Page(browser, base_url, name="ada")
    pg = p.page
    job_id = ask(p, QUESTION)
    query = pg.text_content("#query-text")
    assert query.startswith("source "), query
    assert pg.locator("#query-text .tok-keyword").count() >= 1, "query is highlighted"
    assert "Valid DataPrime" in pg.text_content("#validation")
    assert pg.text_content("#job-status") == "done"
    assert pg.locator("#result-table tbody tr").count() >= 1
    assert "rows scanned" in pg.text_content("#result-note")
    pg.click(".star[data-rating='4']")
    assert pg.get_attribute(".star[data-rating='4']", "aria-pressed") == "true"
    pg.fill("#rate-comment", "spot on")
    p.shot("ask")
    pg.click("#rate-submit")
    pg.wait_for_selector("#rate-result:has-text('Rated 4/5')")

    p.goto("history")
    row = pg.locator("#history-table tbody tr", has_text=QUESTION).first
    row.wait_for()
    assert "★★★★☆" in row.text_content()
    assert "done" in row.text_content()
    assert "ada" in row.text_content()
    p.shot("history")
    assert len(job_id) == 32
    p.close()


def test_instructor_injects_latency_fault_sees_countdown_and_clears_it(
    browser,
    base_url,
    stack,
) -> None:
    p = Page(browser, base_url, name="instructor")
    pg = p.page
    p.goto("status")
    pg.wait_for_selector("#status-faults:has-text('Instructor token needed to list faults')")

    p.goto("instructor")
    pg.fill("#admin-token", stack.admin_token)
    pg.click("#token-save")
    pg.wait_for_selector("#instructor-tools:not([hidden])")
    # The form is generated from the catalogue's params_schema.
    pg.select_option("#fault-kind", "latency")
    pg.select_option("#fault-target", "validation-service")
    ms = pg.locator("#param-ms")
    assert ms.get_attribute("type") == "number"
    assert ms.get_attribute("min") == "1" and ms.get_attribute("max") == "30000"
    assert pg.locator("#param-jitter_ms").count() == 1
    ms.fill("40")
    pg.fill("#fault-ttl", "300")
    pg.select_option("#fault-kind", "error")  # an enum param becomes a select
    assert pg.locator("select#param-status option").all_text_contents() == ["500", "503"]
    pg.select_option("#fault-kind", "latency")
    pg.select_option("#fault-target", "validation-service")
    pg.fill("#param-ms", "40")
    pg.click("#fault-submit")
    pg.wait_for_selector("#fault-result:has-text('Injected latency-')")
    fault_id = pg.text_content("#fault-result").split()[1]
    item = pg.locator(f"#instructor-faults [data-fault-id='{fault_id}']")
    item.wait_for()
    p.shot("instructor")

    p.goto("status")
    status_item = pg.locator(f"#status-faults [data-fault-id='{fault_id}']")
    status_item.wait_for()
    assert "validation-service" in status_item.text_content()
    first = status_item.locator(".countdown").text_content()
    pg.wait_for_timeout(2_100)
    second = status_item.locator(".countdown").text_content()

    def secs(t: str) -> int:
        m, s = t.split(":")
        return int(m) * 60 + int(s)

    assert 0 < secs(second) < secs(first) <= 300, (first, second)
    pg.wait_for_selector("#services .svc.ready >> nth=7")
    assert pg.locator("#services .svc").count() == 8
    p.shot("status")

    p.goto("instructor")
    pg.click(f"#instructor-faults [data-fault-id='{fault_id}'] button")
    pg.wait_for_selector(f"#instructor-faults [data-fault-id='{fault_id}']", state="detached")
    # Reset asks first; dismissing the confirm changes nothing.
    pg.click("#reset-stack")
    assert p.dialogs and p.dialogs[-1].startswith("confirm:")
    assert pg.text_content("#reset-result") == ""
    p.close()
    active = requests.get(
        stack.url(ServiceName.GATEWAY) + "/api/admin/faults",
        headers={"authorization": f"Bearer {stack.admin_token}"},
        timeout=5,
    ).json()
    assert fault_id not in {f["id"] for f in active}


def test_attendee_name_reaches_the_trace(browser, base_url, stack) -> None:
    name = f"Ada Lovelace {secrets.token_hex(2)}"
    p = Page(browser, base_url)
    pg = p.page
    p.goto("ask")
    pg.click("#who-button")
    pg.fill("#identity-name", name)
    pg.click("#identity-save")
    assert pg.text_content("#who-label") == name
    assert name in pg.text_content("#traces-body")  # the "Find my traces" panel
    job_id = ask(p, "errors from checkout in the last hour by status code")
    p.close()

    # The gateway read the attendee from the baggage and stored it with the job.
    page = requests.get(
        stack.url(ServiceName.GATEWAY) + "/api/history",
        params={"attendee": name},
        timeout=5,
    ).json()
    assert job_id in {i["job_id"] for i in page["items"]}

    if not stack.collector:
        pytest.skip("collector not built: baggage checked through the gateway only")
    deadline = time.monotonic() + 15
    services: set[str] = set()
    while time.monotonic() < deadline:
        services = _services_with_attendee(stack.telemetry_dir, name)
        if {"api-gateway", "query-service"} <= services:
            break
        time.sleep(0.5)
    assert {"api-gateway", "query-service"} <= services, services


def _services_with_attendee(directory: Path, name: str) -> set[str]:
    found: set[str] = set()
    for path in directory.glob("traces*.json*"):
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if name not in line:
                    continue
                try:
                    doc = json.loads(line)
                except json.JSONDecodeError:
                    continue
                for rs in doc.get("resourceSpans", []):
                    svc = next(
                        (
                            a["value"].get("stringValue")
                            for a in rs.get("resource", {}).get("attributes", [])
                            if a["key"] == "service.name"
                        ),
                        "?",
                    )
                    for ss in rs.get("scopeSpans", []):
                        for span in ss.get("spans", []):
                            for a in span.get("attributes", []):
                                if (
                                    a["key"] == "workshop.attendee"
                                    and a["value"].get("stringValue") == name
                                ):
                                    found.add(svc)
    return found


def test_ui_escapes_html(browser, base_url) -> None:
    payload = "<img src=x onerror=alert(1)>"
    p = Page(browser, base_url, name="<b id=injected>x</b>")
    pg = p.page
    p.goto("ask")
    pg.fill("#question", payload)
    pg.click("#ask-submit")
    pg.wait_for_selector("#answer:not([hidden]), #ask-error:not([hidden])")
    pg.wait_for_timeout(1_500)
    p.goto("history")
    pg.wait_for_selector("#history-table tbody tr")
    assert pg.locator("#history-table", has_text=payload).count() == 1, "shown as text"
    assert pg.locator("main img").count() == 0
    assert pg.locator("#injected").count() == 0
    assert pg.text_content("#who-label") == "<b id=injected>x</b>"
    assert not [d for d in p.dialogs if d.startswith("alert")], p.dialogs
    p.close()


@pytest.mark.parametrize("route", ["ask", "history", "status", "instructor"])
def test_mobile_375px_has_no_horizontal_overflow(browser, base_url, stack, route) -> None:
    p = Page(browser, base_url, width=375, height=800, name="mo")
    pg = p.page
    p.goto(route)
    # Keyboard: the first Tab lands on the skip link.
    pg.wait_for_selector(f"#page-{route}:not([hidden])")
    pg.keyboard.press("Tab")
    assert pg.evaluate("document.activeElement.className") == "skip"
    if route == "instructor":
        pg.fill("#admin-token", stack.admin_token)
        pg.click("#token-save")
        pg.wait_for_selector("#instructor-tools:not([hidden])")
    if route == "status":
        pg.wait_for_selector("#services .svc")
    if route == "ask":
        pg.fill("#question", QUESTION)
        pg.click("#ask-submit")
        pg.wait_for_selector("#job-status.pill-done", timeout=30_000)
    if route == "history":
        pg.wait_for_selector("#history-table tbody tr, #history-empty:not([hidden])")
    overflow = pg.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{route} scrolls sideways by {overflow}px at 375px"
    p.shot(f"{route}-375")
    p.close()


def test_frontend_port_serves_ui_and_forwards_api(stack) -> None:
    """Without nginx, http://127.0.0.1:<frontend> still works: UI plus an /api pass-through."""
    base = stack.url(ServiceName.FRONTEND)
    ui = requests.get(base + "/", timeout=5)
    assert ui.status_code == 200 and 'src="app.js"' in ui.text
    assert (
        requests.get(base + "/app.js", timeout=5)
        .headers["content-type"]
        .startswith(("text/javascript", "application/javascript"))
    )
    name = f"proxy-{secrets.token_hex(3)}"
    with requests.Session() as s:
        asked = s.post(
            base + "/api/queries",
            json={"question": QUESTION},
            headers={"baggage": f"workshop.attendee={name}"},
            timeout=10,
        )
        assert asked.status_code == 202, asked.text
        assert "dp_session" in s.cookies or asked.headers.get("set-cookie") is not None
        missing = s.get(base + "/api/queries/" + "0" * 32, timeout=5)
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
        denied = s.get(base + "/api/admin/faults", timeout=5)
        assert denied.status_code == 401
        page = s.get(base + "/api/history", params={"attendee": name}, timeout=5).json()
        assert page["total"] >= 1


def test_error_names_the_failing_service(browser, base_url, stack) -> None:
    """A fault scoped to this attendee only: the Ask page names the service that failed."""
    name = f"err-{secrets.token_hex(3)}"
    admin = {"authorization": f"Bearer {stack.admin_token}"}
    gw = stack.url(ServiceName.GATEWAY)
    fault = requests.post(
        gw + "/api/admin/faults",
        json={
            "kind": "error",
            "target": "query-service",
            "params": {"status": 503},
            "scope": "attendee",
            "scope_value": name,
            "ttl_seconds": 60,
        },
        headers=admin,
        timeout=5,
    )
    assert fault.status_code == 201, fault.text
    try:
        time.sleep(1.2)  # services poll fault state every 0.5 s
        p = Page(browser, base_url, name=name)
        pg = p.page
        p.goto("ask")
        pg.fill("#question", QUESTION)
        pg.click("#ask-submit")
        box = pg.locator("#ask-error")
        box.wait_for()
        assert "query-service" in box.locator("code").first.text_content()
        assert pg.is_hidden("#answer")
        p.shot("ask-error")
        p.problems.clear()  # the failed fetch is logged by the browser; that is the point
        p.close()
    finally:
        requests.delete(f"{gw}/api/admin/faults/{fault.json()['id']}", headers=admin, timeout=5)
