"""The instructor's Room progress view updates, live, while an attendee's lab runs."""

from __future__ import annotations

import pytest

from labs.runtime import Lab
from tests.browser.test_ui import Page

pytestmark = [pytest.mark.browser, pytest.mark.stack]


def test_room_progress_updates_while_a_lab_runs(browser, base_url, stack, tmp_path) -> None:
    p = Page(browser, base_url)
    pg = p.page
    p.goto("instructor")
    pg.fill("#admin-token", stack.admin_token)
    pg.click("#token-save")
    pg.wait_for_selector("#room-progress-card")
    row = "#room-progress-table tr[data-attendee='pia']"
    assert pg.locator(row).count() == 0

    lab = Lab.load(
        "02",
        attendee="pia",
        gateway_url=stack.gateway().base_url,
        admin_token=stack.admin_token,
        telemetry_dir=stack.telemetry_dir,
        state_dir=tmp_path,
        short_mode=True,
        env={"WORKSHOP_DATA_DIR": str(tmp_path)},
        seed=1,
    )
    try:
        lab.run()
        # The page polls: the attendee appears with their step while the traffic runs.
        pg.wait_for_selector(f"{row} .progress-step:has-text('traffic')", timeout=10_000)
        assert lab.traffic is not None and lab.traffic.running
        lab.wait()
        pg.wait_for_selector(f"{row} .progress-step:has-text('answering')", timeout=10_000)
        lab.check("slow_service", "api-gateway")  # a wrong answer: the view shows ✗
        pg.wait_for_selector(f"{row} .check.bad[title^='02/slow_service']", timeout=10_000)
        p.shot("room-progress")
    finally:
        lab.cleanup()
        p.close()
