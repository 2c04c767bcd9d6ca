"""Room tooling without a browser: the roster, handouts, the attendee environment, the
`workshop room` CLI's refusals, and the gateway's online-check proxy against a fake Coralogix."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from labs.runtime import roster
from stack.common import room, room_proxy
from tests.labs.fake_coralogix import FakeCoralogix
from tests.labs.world import T0, build


def test_roster_ids_logins_and_a_secrets_file_only_the_owner_reads(tmp_path):
    (tmp_path / "r.csv").write_text("name,email\nAnn Lee,ann@example.invalid\nAnn Lee\nBo\n")
    people = roster.create_room(tmp_path / "r.csv", tmp_path)
    assert [a.id for a in people] == ["ann-lee", "ann-lee-2", "bo"]
    secrets_file = roster.room_dir(tmp_path) / "secrets.json"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    passwords = json.loads(secrets_file.read_text())
    assert set(passwords) == {"ann-lee", "ann-lee-2", "bo"} and len(set(passwords.values())) == 3
    public = (roster.room_dir(tmp_path) / "attendees.json").read_text()
    assert not any(p in public for p in passwords.values())


def test_roster_ids_keep_the_letters_under_accents(tmp_path):
    """`Zoë Ñúñez` used to become `zo-ez` (every accented letter dropped with its base)."""
    names = [
        "Zoë Ñúñez",
        "Strauß",
        "Łukasz Øster",
        "李雷",
        "Zoe Nunez",
        "Jean-Baptiste Ottavio Lamb",
    ]
    (tmp_path / "r.csv").write_text("\n".join(names) + "\n")
    people = roster.create_room(tmp_path / "r.csv", tmp_path)
    assert [a.id for a in people] == [
        "zoe-nunez", "strauss", "lukasz-oster", "attendee", "zoe-nunez-2", "jean-baptiste-ottavio",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "reason"),
    [("", "no attendees"), ("name,email\n,a@b.c\n", "name is empty"), ("Ann,not-mail\n", "email")],
)
def test_bad_rosters_are_refused_with_the_line(tmp_path, text, reason):
    (tmp_path / "r.csv").write_text(text)
    with pytest.raises(roster.RosterError, match=reason):
        roster.create_room(tmp_path / "r.csv", tmp_path)


def test_handout_holds_the_attendees_links_and_prints_on_one_a4_page(tmp_path):
    (tmp_path / "r.csv").write_text("Ann Lee\n")
    roster.create_room(tmp_path / "r.csv", tmp_path)
    env = {"CX_REGION": "EU2", "CX_TEAM_NAME": "acme"}
    (page,) = roster.write_handouts(tmp_path, "https://vm.example.invalid/hub/", env)
    text = page.read_text()
    password = roster.load_secrets(tmp_path)["ann-lee"]
    assert password in text and "https://vm.example.invalid/hub/" in text
    assert "ann-lee" in text and "https://acme.app.eu2.coralogix.com/explore?" in text
    assert "workshop.attendee%27%5D%20%3D%3D%20%27ann-lee" in text  # Explore filtered to her
    assert "size: A4" in text and "height: 262mm" in text and "overflow: hidden" in text
    assert stat.S_IMODE(page.stat().st_mode) == 0o600


def test_attendee_env_is_an_allow_list():
    base = {
        "PATH": "/usr/bin",
        "ADMIN_TOKEN": "x",
        "CX_API_KEY": "y",
        "CX_PRIVATE_KEY": "z",
        "LAB_ADMIN_TOKEN": "w",
        "CX_REGION": "EU2",
        "AWS_SECRET_ACCESS_KEY": "v",
    }
    env = roster.attendee_env("ann", "http://127.0.0.1:8010", Path("/home/ann"), base)
    assert set(env) == {
        "PATH",
        "CX_REGION",
        "HOME",
        "WORKSHOP_ATTENDEE",
        "LAB_GATEWAY_URL",
        "WORKSHOP_DATA_DIR",
    }


def test_cli_room_create_names_the_fix_and_never_prints_passwords(tmp_path, monkeypatch):
    from workshop.cli import app

    monkeypatch.setenv("WORKSHOP_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    missing = runner.invoke(app, ["room", "create", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2 and "cannot read the roster" in missing.output
    (tmp_path / "r.csv").write_text("Ann\nBob\n")
    ok = runner.invoke(app, ["room", "create", str(tmp_path / "r.csv")], env={"COLUMNS": "200"})
    assert ok.exit_code == 0, ok.output
    assert "ann" in ok.output and "0600" in ok.output
    # each handout by name, and the one folder to print them from
    assert "ann.html" in ok.output and "bob.html" in ok.output
    assert f"handouts (print one per attendee): {tmp_path}/room/handouts" in ok.output
    for password in roster.load_secrets(tmp_path).values():
        assert password not in ok.output
    assert (roster.home_dir(tmp_path, "bob") / "notebooks" / "02-latency.ipynb").exists()


class _Settings:
    cx_api_key = SecretStr("cxup_FAKEKEY0000")
    cx_domain = "eu2.coralogix.com"


def test_the_check_proxy_runs_with_the_rooms_key_and_caches_per_room(stack, monkeypatch):
    import redis.asyncio as aioredis

    fake = FakeCoralogix(key="cxup_FAKEKEY0000")
    fake.spans = build(["ann", "bob"]).coralogix_rows()
    monkeypatch.setenv("DATAPRIME_API_URL", fake.url)
    room_proxy._clients.clear()
    query = (
        "source spans | filter $d.tags['workshop.attendee'] == 'ann' "
        "| groupby $l.serviceName aggregate count() as n | orderby n desc | limit 1"
    )
    body = room.CheckIn(api="dataprime", query=query, start=T0, end=T0 + 60)
    assert room.check_scope_error(body, "ann") is None
    assert room.check_scope_error(body, "bob") is not None  # bob cannot read ann's data

    async def twice():
        r = aioredis.from_url(stack.redis_url, decode_responses=True)
        try:
            await r.delete(room.check_cache_key(body))
            first = await room_proxy.run_check(r, body, _Settings())
            second = await room_proxy.run_check(r, body, _Settings())
            return first, second
        finally:
            await r.aclose()

    try:
        first, second = asyncio.run(twice())
    finally:
        fake.close()
        room_proxy._clients.clear()
    assert first["rows"] == [{"serviceName": "storage-service", "n": 120}]
    assert not first["cached"] and second["cached"] and second["rows"] == first["rows"]
    assert len(fake.queries) == 1  # the second attendee run came from the room's cache
    assert "FAKEKEY" not in json.dumps(first)
