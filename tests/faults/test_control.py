"""The fault control plane: validation, auth, scope, the docs table."""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from stack.client import ApiError, Gateway
from stack.common.faults import docs
from stack.common.faults.registry import FAULT_KINDS
from stack.common.settings import ServiceName
from tests.helpers import workshop_cli


def test_docs_table_matches_the_registry() -> None:
    section = docs.current_section(docs.DOC.read_text())
    assert section == docs.render_section(), (
        "docs/faults.md drifted: run `python -m stack.common.faults.docs --write`"
    )
    for kind in FAULT_KINDS:
        assert f"`{kind}`" in section


def test_catalogue_lists_every_kind_with_a_schema(admin: Gateway) -> None:
    catalogue = {k["kind"]: k for k in admin.catalogue()}
    assert set(catalogue) == set(FAULT_KINDS)
    assert catalogue["latency"]["params_schema"]["properties"]["ms"]["maximum"] == 30000


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"kind": "nope", "target": "query-service"}, "kind"),
        ({"kind": "latency", "target": "nowhere"}, "target"),
        ({"kind": "queue_stall", "target": "api-gateway"}, "target"),
        ({"kind": "latency", "target": "query-service", "params": {"ms": 0}}, "params.ms"),
        ({"kind": "latency", "target": "query-service", "params": {"bogus": 1}}, "params.bogus"),
        ({"kind": "error", "target": "query-service", "params": {"status": 404}}, "params.status"),
        ({"kind": "latency", "target": "query-service", "probability": 1.5}, "probability"),
        ({"kind": "latency", "target": "query-service", "ttl_seconds": 7201}, "ttl_seconds"),
        ({"kind": "latency", "target": "query-service", "scope": "attendee"}, "scope_value"),
    ],
)
def test_invalid_faults_are_422_naming_the_field(admin: Gateway, spec: dict, field: str) -> None:
    with pytest.raises(ApiError) as err:
        admin._call("POST", "/api/admin/faults", admin=True, json=spec)
    assert err.value.status == 422
    (error,) = err.value.body["errors"]
    assert error["field"] == field, err.value.body
    assert not error["reason"].startswith((f"{field}:", "Value error")), error


def test_fault_add_on_the_command_line_refuses_what_would_reach_everybody(stack) -> None:
    """`--attendee "$NAME"` with NAME unset used to inject a fault on every request; the
    refusal of a bad param is one line naming the field, not the detail and then again."""
    empty = workshop_cli(stack.cfg, "fault", "add", "latency", "query-service", "--attendee", "")
    assert empty.returncode == 2 and "--attendee is empty" in empty.stdout, empty.stdout
    both = workshop_cli(
        stack.cfg, "fault", "add", "latency", "query-service", "--attendee", "a", "--session", "b"
    )
    assert both.returncode == 2 and "not both" in both.stdout, both.stdout
    ttl = workshop_cli(stack.cfg, "fault", "add", "latency", "query-service", "--ttl", "0")
    assert ttl.returncode == 2 and "--ttl" in ttl.stdout + ttl.stderr
    bad = workshop_cli(stack.cfg, "fault", "add", "latency", "query-service", "-p", "ms=abc")
    assert bad.returncode == 1
    assert bad.stdout.startswith("error: params.ms: Input should be a valid integer")
    assert bad.stdout.count("valid integer") == 1, bad.stdout
    listed = workshop_cli(stack.cfg, "fault", "list")
    assert "latency" not in listed.stdout, listed.stdout  # nothing was injected
    mine = workshop_cli(
        stack.cfg, "fault", "add", "latency", "query-service", "-p", "ms=1", "--attendee", "ann"
    )
    try:
        assert mine.returncode == 0, mine.stdout + mine.stderr
        assert "only attendee ann's requests" in " ".join(mine.stdout.split())
    finally:
        workshop_cli(stack.cfg, "fault", "clear")


def test_default_ttl_is_ten_minutes(admin: Gateway) -> None:
    fault = admin.add_fault("latency", "query-service", params={"ms": 1})
    try:
        assert 595 <= fault["remaining_seconds"] <= 600
    finally:
        admin.remove_fault(fault["id"])


def test_admin_auth(stack) -> None:
    url = f"{stack.url(ServiceName.GATEWAY)}/api/admin/faults"
    assert requests.get(url, timeout=5).status_code == 401
    wrong = requests.get(url, headers={"authorization": "Bearer wrong"}, timeout=5)
    assert wrong.status_code == 403
    assert "wrong" not in wrong.text
    ok = requests.get(url, headers={"authorization": f"Bearer {stack.admin_token}"}, timeout=5)
    assert ok.status_code == 200


def test_attendee_scoped_fault_touches_only_that_attendee(stack, admin: Gateway) -> None:
    fault = admin.add_fault(
        "error",
        "query-service",
        params={"status": 500},
        scope="attendee",
        scope_value="alice",
        ttl_seconds=60,
    )
    time.sleep(1.3)
    try:
        alice, bob = stack.gateway(attendee="alice"), stack.gateway(attendee="bob")
        alice_failed = bob_failed = 0
        for i in range(30):
            for who, client in (("alice", alice), ("bob", bob)):
                try:
                    client.ask(f"errors from payment {who} {i} {uuid.uuid4().hex[:4]}")
                except ApiError:
                    if who == "alice":
                        alice_failed += 1
                    else:
                        bob_failed += 1
        print(f"attendee fault: alice failed {alice_failed}/30, bob failed {bob_failed}/30")
        assert alice_failed == 30 and bob_failed == 0
    finally:
        admin.remove_fault(fault["id"])


def test_tokens_never_reach_logs_or_telemetry(stack, admin: Gateway) -> None:
    admin.faults()
    requests.get(
        f"{stack.url(ServiceName.GATEWAY)}/api/admin/faults",
        headers={"authorization": "Bearer wrong-token-xyz"},
        timeout=5,
    )
    time.sleep(1.5)
    token = stack.admin_token
    leaks = []
    for path in list((stack.cfg.log_dir).glob("*.log*")) + list(
        stack.telemetry_dir.glob("*.json*")
    ):
        text = path.read_text(errors="replace")
        if token in text or "wrong-token-xyz" in text:
            leaks.append(path.name)
    assert not leaks


def test_reset_clears_faults_and_after_effects(stack, admin: Gateway) -> None:
    admin.add_fault("slow_db", "storage-service", ttl_seconds=60)
    admin.add_fault("queue_stall", "queue-worker", ttl_seconds=60)
    time.sleep(1.3)
    result = admin.reset()
    assert result["faults_cleared"] >= 2
    assert admin.faults() == []
    time.sleep(1.3)
    import sqlite3

    conn = sqlite3.connect(f"file:{stack.cfg.data_dir / 'feedback.db'}?mode=ro", uri=True)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    conn.close()
    assert {"idx_jobs_created_at", "idx_feedback_job_id"} <= names
    accepted = stack.gateway().ask(f"errors from cart #{uuid.uuid4().hex}")
    assert stack.gateway().wait(accepted["id"], timeout=15)["status"] == "done"
