"""Coralogix links: the region → UI host table (every region), the generated docs table,
per-attendee Explore links on an exact window, one trace by id, the host pointer, and no link
at all (one hint) without a team host."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import pytest

from labs.runtime import links
from stack.common import coralogix as cx

REPO = Path(__file__).resolve().parents[2]

# Coralogix docs, "Coralogix domain" (read 2026-12-01), team hostname per region.
DOCUMENTED = {
    "EU1": ("eu1.coralogix.com", "coralogix.com", "acme.coralogix.com"),
    "EU2": ("eu2.coralogix.com", None, "acme.app.eu2.coralogix.com"),
    "US1": ("us1.coralogix.com", "coralogix.us", "acme.app.coralogix.us"),
    "US2": ("us2.coralogix.com", "cx498.coralogix.com", "acme.app.cx498.coralogix.com"),
    "US3": ("us3.coralogix.com", None, "acme.app.us3.coralogix.com"),
    "AP1": ("ap1.coralogix.com", "coralogix.in", "acme.app.coralogix.in"),
    "AP2": ("ap2.coralogix.com", "coralogixsg.com", "acme.app.coralogixsg.com"),
    "AP3": ("ap3.coralogix.com", None, "acme.app.ap3.coralogix.com"),
}


def test_table_covers_exactly_the_documented_regions() -> None:
    assert set(cx.REGIONS) == set(DOCUMENTED)


@pytest.mark.parametrize("code", sorted(DOCUMENTED))
def test_every_region_links_to_its_documented_ui_host(code: str) -> None:
    domain, legacy, host = DOCUMENTED[code]
    for spelled in filter(
        None, (code, code.lower(), domain, legacy, f"api.{domain}", f"https://ingress.{domain}:443")
    ):
        env = {"CX_TEAM_NAME": "acme", "CX_DOMAIN": spelled}
        assert links.team_host(env) == f"https://{host}", spelled
        url = links.explore_link("source spans", env=env)
        assert url and urlparse(url).netloc == host
    # a team URL copied from the browser resolves to the same region
    assert cx.region_of(f"https://{host}/#/dashboards").code == code
    assert cx.REGIONS[code].api_url == f"https://api.{domain}"


def test_docs_region_table_is_generated_from_the_registry() -> None:
    doc = (REPO / "docs" / "coralogix.md").read_text()
    assert cx.region_table_markdown() in doc, "regenerate: python -m labs.guides coralogix-doc"


def test_unknown_region_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown Coralogix region"):
        cx.region_of("mars1.example.invalid")


def test_no_team_host_means_no_link_only_the_hint() -> None:
    env = {"CX_DOMAIN": "eu2.coralogix.com", "CX_PRIVATE_KEY": "k"}
    assert links.team_host(env) is None
    assert links.explore_link("source spans", env=env) is None
    info = links.lab_links("alice", 1_700_000_000.0, 1_700_000_060.0, trace_id="a" * 32, env=env)
    assert info["hint"] == "set CX_TEAM_URL to get links"
    assert info["spans"] is None and info["trace"] is None
    assert "<your-team>" not in json.dumps(info)


def test_team_url_wins_and_is_reduced_to_its_host() -> None:
    env = {
        "CX_TEAM_URL": "https://acme.app.coralogix.us/#/query-new/logs?x=1",
        "CX_TEAM_NAME": "other",
        "CX_DOMAIN": "eu2.coralogix.com",
    }
    assert links.team_host(env) == "https://acme.app.coralogix.us"


def test_attendee_link_uses_the_exact_window() -> None:
    env = {"CX_TEAM_URL": "acme.app.eu2.coralogix.com"}
    start, end = 1_700_000_000.25, 1_700_000_300.5
    url = links.attendee_spans_link("o'brien", start, end, env)
    q = parse_qs(urlparse(url).query)
    assert q["dataset"] == ["spans"] and q["queryType"] == ["dataprime"]
    assert "duration" not in q  # duration would take precedence over from/to
    margin = links.WINDOW_MARGIN_MS
    assert int(q["from"][0]) == 1_700_000_000_250 - margin
    assert int(q["to"][0]) == 1_700_000_300_500 + margin
    assert q["query"] == ["source spans | filter $d.tags['workshop.attendee'] == 'o\\'brien'"]
    # nanoseconds are understood as well (span timestamps)
    url_ns = links.attendee_spans_link("x", int(start * 1e9), int(end * 1e9), env)
    assert parse_qs(urlparse(url_ns).query)["from"] == q["from"]


def test_trace_link_filters_one_trace_id() -> None:
    env = {"CX_TEAM_NAME": "acme", "CX_REGION": "AP2"}
    tid = "0af7651916cd43dd8448eb211c80319c"
    url = links.trace_link(tid.upper(), 1_700_000_000.0, 1_700_000_001.0, env)
    assert urlparse(url).netloc == "acme.app.coralogixsg.com"
    assert unquote(parse_qs(urlparse(url).query)["query"][0]) == (
        f"source spans | filter $l.traceId == '{tid}'"
    )


def _entity_line(name: str, host_id: str) -> str:
    kv = lambda k, v: {"key": k, "value": {"stringValue": v}}  # noqa: E731
    return json.dumps(
        {
            "resourceLogs": [
                {
                    "resource": {},
                    "scopeLogs": [
                        {
                            "logRecords": [
                                {
                                    "attributes": [
                                        kv("otel.entity.type", "host"),
                                        kv("host.name", name),
                                        kv("host.id", host_id),
                                    ]
                                }
                            ]
                        }
                    ],
                }
            ]
        }
    )


def test_host_pointer_reads_the_collectors_entity_events(tmp_path: Path) -> None:
    (tmp_path / "entities.jsonl").write_text(
        _entity_line("old-name", "id-1") + "\n" + _entity_line("ip-10-0-0-7", "i-0abc") + "\n"
    )
    host = links.local_host(tmp_path)
    assert (host.name, host.id, host.source) == ("ip-10-0-0-7", "i-0abc", "entity events")
    pointer = links.host_pointer(host)
    assert pointer.startswith("Infrastructure → Infrastructure Explorer")
    assert "ip-10-0-0-7" in pointer and "i-0abc" in pointer


def test_host_pointer_falls_back_to_this_machine(tmp_path: Path) -> None:
    import socket

    host = links.local_host(tmp_path)  # no entity events yet
    assert host.name == socket.gethostname() and host.source == "this machine"


def _ui_config(tmp_path: Path, **env: str) -> dict:
    """/api/config of a gateway configured by ``env``, in a subprocess: importing the gateway
    installs its telemetry providers, which must not leak into this test session."""
    import os
    import subprocess
    import sys

    code = (
        "import asyncio, json, httpx; from stack.services.gateway import create_app\n"
        "async def main():\n"
        "    transport = httpx.ASGITransport(app=create_app())\n"
        "    async with httpx.AsyncClient(transport=transport, base_url='http://gw') as c:\n"
        "        return (await c.get('/api/config')).json()\n"
        "print('RESULT', json.dumps(asyncio.run(main())))"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CX_", "OTEL_"))}
    full = {**base, "OTEL_SDK_DISABLED": "true", "WORKSHOP_DATA_DIR": str(tmp_path), **env}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    # stdout also carries the service's JSON log lines (written when it exits)
    (result,) = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    return json.loads(result.removeprefix("RESULT "))["coralogix"]


def test_web_ui_config_gives_the_team_host_or_only_the_hint(tmp_path: Path) -> None:
    """/api/config: what the web UI links with (the same region table and host pointer)."""
    (tmp_path / "telemetry").mkdir()
    (tmp_path / "telemetry" / "entities.jsonl").write_text(_entity_line("ip-10-0-0-7", "i-0abc"))
    cfg = _ui_config(tmp_path, CX_PRIVATE_KEY="secret-send-key")
    assert cfg["team_host"] is None and cfg["hint"] == "set CX_TEAM_URL to get links"
    assert cfg["infrastructure"]["host_name"] == "ip-10-0-0-7"
    assert cfg["infrastructure"]["host_id"] == "i-0abc"
    cfg = _ui_config(
        tmp_path,
        CX_PRIVATE_KEY="secret-send-key",
        CX_TEAM_NAME="acme",
        CX_DOMAIN="cx498.coralogix.com",
    )
    assert cfg["team_host"] == "https://acme.app.cx498.coralogix.com" and cfg["hint"] is None
    assert "secret-send-key" not in json.dumps(cfg)


def test_host_override_for_docker(tmp_path: Path) -> None:
    """Containers only see their own id: WORKSHOP_HOST_NAME/ID name the VM instead."""
    (tmp_path / "entities.jsonl").write_text(_entity_line("container-id", "x"))
    env = {"WORKSHOP_HOST_NAME": "ip-10-0-0-7", "WORKSHOP_HOST_ID": "i-0abc"}
    info = links.lab_links("alice", None, None, telemetry_dir=tmp_path, env=env)
    assert (info["host_name"], info["host_id"]) == ("ip-10-0-0-7", "i-0abc")
