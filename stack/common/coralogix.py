"""Coralogix regions: domain, legacy domain and UI (team) host — one table for the whole kit.

Source (checked 2026-12-01): Coralogix docs, "Coralogix domain"
https://coralogix.com/docs/user-guides/account-management/account-settings/coralogix-domain/
(the same table is on https://coralogix.com/docs/integrations/coralogix-endpoints/): the team
hostname differs per region — EU1 ``<team>.coralogix.com``, US1 ``<team>.app.coralogix.us``,
US2 ``<team>.app.cx498.coralogix.com``, AP1 ``<team>.app.coralogix.in``, AP2
``<team>.app.coralogixsg.com``; EU2, US3 and AP3 use ``<team>.app.<domain>``. The query API is
``https://api.<domain>`` and OTLP ingress ``ingress.<domain>:443``.

It lives in ``stack`` (the lowest layer) because the gateway's ``/api/config`` and the labs
both need it. ``docs/coralogix.md`` is generated from :data:`REGIONS` (drift-tested).
"""

from __future__ import annotations

import contextlib
import json
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DOCS_URL = (
    "https://coralogix.com/docs/user-guides/account-management/account-settings/coralogix-domain/"
)


@dataclass(frozen=True)
class Region:
    code: str
    domain: str
    legacy_domain: str | None
    #: team hostname with ``{team}`` for the team name, as the docs print it
    team_host: str
    location: str

    def ui_host(self, team: str) -> str:
        return self.team_host.format(team=team)

    @property
    def api_url(self) -> str:
        return f"https://api.{self.domain}"

    @property
    def ingress(self) -> str:
        return f"ingress.{self.domain}:443"


REGIONS: dict[str, Region] = {
    r.code: r
    for r in (
        Region(
            "EU1",
            "eu1.coralogix.com",
            "coralogix.com",
            "{team}.coralogix.com",
            "AWS eu-west-1 (Ireland)",
        ),
        Region(
            "EU2",
            "eu2.coralogix.com",
            None,
            "{team}.app.eu2.coralogix.com",
            "AWS eu-north-1 (Stockholm)",
        ),
        Region(
            "US1",
            "us1.coralogix.com",
            "coralogix.us",
            "{team}.app.coralogix.us",
            "AWS us-east-2 (Ohio)",
        ),
        Region(
            "US2",
            "us2.coralogix.com",
            "cx498.coralogix.com",
            "{team}.app.cx498.coralogix.com",
            "AWS us-west-2 (Oregon)",
        ),
        Region(
            "US3",
            "us3.coralogix.com",
            None,
            "{team}.app.us3.coralogix.com",
            "GCP us-central1 (Iowa)",
        ),
        Region(
            "AP1",
            "ap1.coralogix.com",
            "coralogix.in",
            "{team}.app.coralogix.in",
            "AWS ap-south-1 (Mumbai)",
        ),
        Region(
            "AP2",
            "ap2.coralogix.com",
            "coralogixsg.com",
            "{team}.app.coralogixsg.com",
            "AWS ap-southeast-1 (Singapore)",
        ),
        Region(
            "AP3",
            "ap3.coralogix.com",
            None,
            "{team}.app.ap3.coralogix.com",
            "AWS ap-southeast-3 (Jakarta)",
        ),
    )
}


def region_of(value: str) -> Region:
    """The region for a code ('eu2'), a domain ('eu2.coralogix.com'), a legacy domain, an
    ``api.``/``ingress.`` host, or a team host/URL ('https://acme.app.coralogix.us/...')."""
    v = value.strip().lower()
    v = v.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0].strip(".")
    for prefix in ("api.", "ingress."):
        v = v.removeprefix(prefix)
    for r in REGIONS.values():
        if v in (r.code.lower(), r.domain, r.legacy_domain):
            return r
    # a team host: the longest team-host suffix that matches (EU1's bare coralogix.com last)
    for r in sorted(REGIONS.values(), key=lambda r: -len(r.team_host)):
        suffix = r.team_host.removeprefix("{team}")
        if v.endswith(suffix) and len(v) > len(suffix):
            return r
    raise ValueError(
        f"unknown Coralogix region or domain {value!r}; one of: "
        + ", ".join(f"{r.code} ({r.domain})" for r in REGIONS.values())
    )


NO_TEAM_HINT = "set CX_TEAM_URL to get links"
INFRA_MENU = "Infrastructure → Infrastructure Explorer → Hosts"
DEFAULT_DOMAIN = "eu2.coralogix.com"


def team_host(team_url: str = "", team_name: str = "", region: str = "") -> str | None:
    """``https://<team host>`` from CX_TEAM_URL (any URL of the team), else from CX_TEAM_NAME
    and the region/domain through :data:`REGIONS`; None when neither is set."""
    if url := team_url.strip():
        url = url if "://" in url else f"https://{url}"
        scheme, _, rest = url.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0]}"
    if not (team := team_name.strip()):
        return None
    try:
        r = region_of(region or DEFAULT_DOMAIN)
    except ValueError:
        r = region_of(DEFAULT_DOMAIN)
    return f"https://{r.ui_host(team)}"


@dataclass(frozen=True)
class HostIdentity:
    name: str
    id: str | None
    source: str  # "entity events" (what the collector sent) or "this machine"

    def pointer(self) -> str:
        """Infrastructure Explorer has no documented deep link: the menu path and what to pick."""
        ident = f"host.name `{self.name}`" + (f", host.id `{self.id}`" if self.id else "")
        return f"{INFRA_MENU} → pick {ident}"


def local_host(
    telemetry_dir: Path | None = None, name: str = "", host_id: str = ""
) -> HostIdentity:
    """The host as the collector reports it: ``WORKSHOP_HOST_NAME``/``WORKSHOP_HOST_ID`` when
    set (Docker: the lab and gateway containers cannot see the collector's files, and their own
    hostname is a container id); else host.name/host.id of the newest host entity event in
    ``entities*.jsonl`` (the collector writes it online and offline); else this machine's
    hostname and /etc/machine-id (what the system detector reads natively)."""
    if name.strip():
        return HostIdentity(name.strip(), host_id.strip() or None, "environment")
    if telemetry_dir is not None and Path(telemetry_dir).is_dir():
        files = sorted(Path(telemetry_dir).glob("entities*.jsonl"), key=lambda p: p.stat().st_mtime)
        for path in reversed(files):
            if found := _last_host_in(path):
                return HostIdentity(found[0], found[1], "entity events")
    machine_id = None
    with contextlib.suppress(OSError):
        machine_id = Path("/etc/machine-id").read_text().strip() or None
    return HostIdentity(socket.gethostname(), machine_id, "this machine")


def _last_host_in(path: Path) -> tuple[str, str | None] | None:
    try:  # only the tail: the newest event is at the end, the file may be megabytes
        with path.open("rb") as fh:
            size = fh.seek(0, 2)
            fh.seek(max(0, size - 256 * 1024))
            lines = fh.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    for raw in reversed(lines):
        try:
            doc = json.loads(raw)
        except json.JSONDecodeError:
            continue
        for rl in doc.get("resourceLogs") or []:
            res = _attrs((rl.get("resource") or {}).get("attributes"))
            for sl in rl.get("scopeLogs") or []:
                for rec in reversed(sl.get("logRecords") or []):
                    a = {**res, **_attrs(rec.get("attributes"))}
                    if a.get("host.name"):
                        host_id = a.get("host.id")
                        return str(a["host.name"]), (str(host_id) if host_id else None)
    return None


def _attrs(items: list[dict[str, Any]] | None) -> dict[str, object]:
    out: dict[str, object] = {}
    for kv in items or []:
        v = kv.get("value") or {}
        out[kv.get("key", "")] = next(iter(v.values()), None) if v else None
    return out


def region_table_markdown() -> str:
    """The region table of docs/coralogix.md (generated; tests/labs/test_links.py checks it)."""
    lines = [
        "| region | domain (`CX_DOMAIN`) | legacy domain | team UI host | query API "
        "| OTLP ingress |",
        "|---|---|---|---|---|---|",
    ]
    for r in REGIONS.values():
        lines.append(
            f"| {r.code} | `{r.domain}` | {f'`{r.legacy_domain}`' if r.legacy_domain else '–'} "
            f"| `{r.ui_host('<team>')}` | `{r.api_url}` | `{r.ingress}` |"
        )
    return "\n".join(lines)
