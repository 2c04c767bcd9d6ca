"""Where to look in Coralogix: links on the team's UI host, menu paths where no link exists.

- The team host comes from ``CX_TEAM_URL`` (any URL of the team, e.g. copied from the browser)
  or from ``CX_TEAM_NAME`` + the region (``CX_REGION``/``CX_DOMAIN``) through the documented
  region → UI host table (:mod:`stack.common.coralogix`). With neither, no link is printed at
  all — only :data:`NO_TEAM_HINT`.
- Explore deep links (Coralogix docs, "Deep links and URL parameters",
  https://coralogix.com/docs/user-guides/data_exploration/deep-links/): ``/explore?query=…
  &queryType=dataprime&dataset=spans`` and either ``duration=<slug>`` or an absolute
  ``from``/``to`` in Unix milliseconds (used only when ``duration`` is unset).
- Span keypaths: ``$l.traceId`` (Coralogix docs, "Understanding spans",
  https://coralogix.com/docs/dataprime/user-guide/foundations/understanding-spans/) and the
  kit's baggage attribute ``$d.tags['workshop.attendee']``.
- Infrastructure Explorer has no documented deep link: :func:`host_pointer` gives the menu
  path plus the host name and id to pick there (read from the collector's own entity events).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

from stack.common import coralogix as _cx
from stack.common.coralogix import (
    INFRA_MENU,
    NO_TEAM_HINT,
    REGIONS,
    HostIdentity,
    local_host,
    region_of,
)

DEFAULT_DOMAIN = _cx.DEFAULT_DOMAIN
#: margin around a lab window: spans are stamped by the services, Explore filters on them
WINDOW_MARGIN_MS = 5_000


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def team_host(env: Mapping[str, str] | None = None) -> str | None:
    """``https://<team host>``, or None when neither CX_TEAM_URL nor CX_TEAM_NAME is set."""
    env = _env(env)
    return _cx.team_host(
        env.get("CX_TEAM_URL", ""),
        env.get("CX_TEAM_NAME", ""),
        env.get("CX_REGION") or env.get("CX_DOMAIN") or "",
    )


def ui_host_for(region_or_domain: str, team: str) -> str:
    """The documented UI host of ``team`` in a region (``<team>.app.coralogix.us`` …)."""
    return region_of(region_or_domain).ui_host(team)


def _ms(t: float) -> int:
    """Seconds (float) or nanoseconds (int > 1e15) → Unix milliseconds."""
    return round(t / 1e6) if t > 1e15 else round(t * 1000)


def explore_link(
    query: str,
    *,
    dataset: str = "spans",
    start: float | None = None,
    end: float | None = None,
    duration: str = "last-15-minutes",
    env: Mapping[str, str] | None = None,
) -> str | None:
    """An Explore deep link, or None without a team host.

    ``start``/``end`` (seconds or nanoseconds since the epoch) give an absolute ``from``/``to``
    window (widened by :data:`WINDOW_MARGIN_MS`); without them, the relative ``duration``.
    """
    host = team_host(env)
    if host is None:
        return None
    url = f"{host}/explore?query={quote(query, safe='')}&queryType=dataprime&dataset={dataset}"
    if start is not None and end is not None:
        return url + f"&from={_ms(start) - WINDOW_MARGIN_MS}&to={_ms(end) + WINDOW_MARGIN_MS}"
    return url + f"&duration={duration}"


def attendee_query(attendee: str) -> str:
    return f"source spans | filter $d.tags['workshop.attendee'] == '{_q(attendee)}'"


def trace_query(trace_id: str) -> str:
    return f"source spans | filter $l.traceId == '{_q(trace_id.lower())}'"


def _q(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def attendee_spans_link(
    attendee: str, start: float, end: float, env: Mapping[str, str] | None = None
) -> str | None:
    """Explore: the attendee's spans in the lab's exact traffic window."""
    return explore_link(attendee_query(attendee), start=start, end=end, env=env)


def trace_link(
    trace_id: str,
    start: float | None = None,
    end: float | None = None,
    env: Mapping[str, str] | None = None,
) -> str | None:
    """Explore: the spans of one trace (around its own start/end when known)."""
    if start is not None and end is None:
        end = start
    return explore_link(
        trace_query(trace_id), start=start, end=end, duration="last-24-hours", env=env
    )


def host_pointer(host: HostIdentity) -> str:
    """No documented Infrastructure Explorer deep link: the menu path and what to pick."""
    return host.pointer()


def coralogix_configured(env: Mapping[str, str] | None = None) -> bool:
    return bool(_env(env).get("CX_PRIVATE_KEY"))


def lab_links(
    attendee: str,
    start: float | None,
    end: float | None,
    *,
    trace_id: str | None = None,
    trace_start: float | None = None,
    trace_end: float | None = None,
    telemetry_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, str | None]:
    """Everything one attendee needs, as data (notebooks, CLI, web UI render it).

    ``hint`` is set (and every link is None) when no team host is configured.
    """
    e = _env(env)
    host = local_host(telemetry_dir, e.get("WORKSHOP_HOST_NAME", ""), e.get("WORKSHOP_HOST_ID", ""))
    out: dict[str, str | None] = {
        "team_host": team_host(env),
        "hint": None if team_host(env) else NO_TEAM_HINT,
        "spans": None,
        "trace": None,
        "infrastructure": host_pointer(host),
        "host_name": host.name,
        "host_id": host.id,
    }
    if out["team_host"] and start is not None and end is not None:
        out["spans"] = attendee_spans_link(attendee, start, end, env)
    if out["team_host"] and trace_id:
        out["trace"] = trace_link(trace_id, trace_start, trace_end, env)
    return out


__all__ = [
    "INFRA_MENU",
    "NO_TEAM_HINT",
    "REGIONS",
    "HostIdentity",
    "attendee_spans_link",
    "coralogix_configured",
    "explore_link",
    "host_pointer",
    "lab_links",
    "local_host",
    "team_host",
    "trace_link",
    "ui_host_for",
]
