"""The room on a real native stack: room events, waiting labs, progress, the check proxy, and
two attendees running lab 02 at once without seeing each other's fault."""

from __future__ import annotations

import random
import threading
import time

import pytest
import requests

from labs.runtime import Lab
from stack.client import ApiError, Gateway

pytestmark = pytest.mark.stack


def _lab(stack, lab_id: str, attendee: str, tmp_path, *, admin: bool, **kw) -> Lab:
    env = {
        "WORKSHOP_DATA_DIR": str(tmp_path / attendee),  # no admin-token file there
        "LAB_ROOM_EVENT_POLL": "0.2",
    }
    return Lab.load(
        lab_id,
        attendee=attendee,
        gateway_url=stack.gateway().base_url,
        admin_token=stack.admin_token if admin else None,
        telemetry_dir=stack.telemetry_dir,
        state_dir=tmp_path / "state",
        short_mode=True,
        env=env,
        **kw,
    )


def test_room_events_contract(stack, admin, gateway):
    admin.clear_faults()
    plain = admin.add_fault("latency", "queue-service", params={"ms": 5}, ttl_seconds=60)
    event = admin.start_room_event("slow_db", duration_s=60)
    mine = admin.add_fault(
        "latency", "queue-service", params={"ms": 5}, scope="attendee", scope_value="alice"
    )
    try:
        listed = requests.get(gateway.base_url + "/api/room/events", timeout=5).json()
        by_id = {e["id"]: e for e in listed}
        assert set(by_id) == {plain["id"], event["id"]}  # the attendee-scoped fault is not one
        assert by_id[event["id"]]["kind"] == "slow_db"
        for e in listed:
            assert e["expires"] > e["started"] > time.time() - 60
        with pytest.raises(ApiError) as info:
            Gateway(gateway.base_url).start_room_event("slow_db")  # no admin token
        assert info.value.status == 401
        with pytest.raises(ApiError) as info:
            admin.start_room_event("no_such_kind")
        assert info.value.status == 422
    finally:
        for f in (plain, event, mine):
            admin.remove_fault(f["id"])


def test_an_attendee_lab_waits_for_the_room_event_and_says_so(stack, admin, tmp_path):
    admin.clear_faults()
    lab = _lab(stack, "06", "carol", tmp_path, admin=False)
    assert lab._admin_token is None
    out: list = []
    thread = threading.Thread(target=lambda: out.append(lab.inject(0)), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not lab.waiting_for and time.monotonic() < deadline:
        time.sleep(0.1)
    assert any("waiting for the instructor to start room event slow_db" in n for n in lab.notices)
    assert admin.faults() == []  # the attendee's lab started nothing
    progress = {p["attendee"]: p for p in admin.room_progress()}
    assert progress["carol"]["step"] == "waiting"
    event = admin.start_room_event("slow_db", duration_s=30)
    try:
        thread.join(10)
        assert not thread.is_alive()
        (record,) = out[0]
        assert record.id == event["id"] and record.scope == "room"
        lab.remove(record)  # the lab stops observing; the instructor's event stays
        assert [f["id"] for f in admin.faults()] == [event["id"]]
    finally:
        lab._stop.set()
        admin.remove_fault(event["id"])


def test_progress_is_reported_per_attendee_and_admin_only(stack, admin, gateway):
    dave = Gateway(gateway.base_url, attendee="dave")
    dave.report_progress(attendee="dave", lab="02", step="traffic")
    dave.report_progress(
        attendee="dave", lab="02", step="checking", question="slow_service", verdict="failed"
    )
    dave.report_progress(
        attendee="dave", lab="02", step="checking", question="fault_id", verdict="passed"
    )
    with pytest.raises(ApiError) as info:  # no reporting under someone else's id
        dave.report_progress(attendee="erin", lab="02", step="traffic")
    assert info.value.status == 403
    with pytest.raises(ApiError) as info:
        Gateway(gateway.base_url).room_progress()
    assert info.value.status == 401
    row = next(p for p in admin.room_progress() if p["attendee"] == "dave")
    assert row["step"] == "checking" and row["lab"] == "02"
    assert row["checks"]["02/slow_service"]["verdict"] == "failed"
    assert row["checks"]["02/fault_id"]["verdict"] == "passed"
    assert (row["passed"], row["failed"]) == (1, 1)


def test_the_check_proxy_refuses_other_attendees_and_needs_the_rooms_key(stack, gateway):
    frank = Gateway(gateway.base_url, attendee="frank")
    now = time.time()
    ok_query = "source spans | filter $d.tags['workshop.attendee'] == 'frank' | limit 1"
    for query, field in (
        ("source spans | limit 1", "query"),
        ("source spans | filter $d.tags['workshop.attendee'] == 'gina' | limit 1", "query"),
    ):
        with pytest.raises(ApiError) as info:
            frank.room_check(api="dataprime", query=query, start=now - 60, end=now)
        assert info.value.status == 422 and info.value.body["errors"][0]["field"] == field
    with pytest.raises(ApiError) as info:  # the test stack holds no CX_API_KEY
        frank.room_check(api="dataprime", query=ok_query, start=now - 60, end=now)
    assert info.value.status == 503


def _seeds_for_different_targets(candidates: list[str]) -> tuple[int, int]:
    first = random.Random(1).choice(candidates)
    for seed in range(2, 100):
        if random.Random(seed).choice(candidates) != first:
            return 1, seed
    raise AssertionError


def test_two_attendees_run_lab_02_at_once_and_each_finds_only_their_own_fault(
    stack, admin, tmp_path
):
    if not stack.collector:
        pytest.skip("needs the built collector (local telemetry)")
    admin.clear_faults()
    from labs.runtime import load_spec

    s1, s2 = _seeds_for_different_targets(load_spec("02").faults[0].candidates)
    labs = [
        _lab(stack, "02", "ann", tmp_path, admin=True, seed=s1),
        _lab(stack, "02", "bob", tmp_path, admin=True, seed=s2),
    ]
    for lab in labs:
        lab.run()
    for lab in labs:
        lab.wait()
    try:
        ann, bob = labs
        assert ann.state.faults[0].scope_value == "ann" and bob.state.faults[0].scope_value == "bob"
        assert ann.solution("slow_service") != bob.solution("slow_service")
        for me, other in ((ann, bob), (bob, ann)):
            assert me.check("slow_service", me.solution("slow_service")).correct
            assert not me.check("slow_service", other.solution("slow_service")).correct
            assert me.check("fault_id", me.solution("fault_id")).correct
            assert not me.check("fault_id", other.solution("fault_id")).correct
    finally:
        for lab in labs:
            lab.cleanup()
