"""Where to look in Coralogix: Explore links on the team host, menu paths elsewhere."""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import quote

from labs.dataprime_client import REGIONS, domain_of

DEFAULT_DOMAIN = "eu2.coralogix.com"


def team_host(env: Mapping[str, str] | None = None) -> str:
    """``https://<team host>``: CX_TEAM_URL if set, else <CX_TEAM_NAME>.app.<domain>.

    The domain comes from CX_REGION or CX_DOMAIN (legacy domains map to their region).
    """
    env = os.environ if env is None else env
    if url := env.get("CX_TEAM_URL", "").strip():
        url = url if "://" in url else f"https://{url}"
        scheme, _, rest = url.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0]}"
    raw = env.get("CX_REGION") or env.get("CX_DOMAIN") or DEFAULT_DOMAIN
    try:
        domain = domain_of(raw)
    except ValueError:
        domain = DEFAULT_DOMAIN
    team = env.get("CX_TEAM_NAME", "").strip() or "<your-team>"
    return f"https://{team}.app.{domain}"


def explore_link(
    query: str,
    *,
    dataset: str = "spans",
    duration: str = "last-15-minutes",
    env: Mapping[str, str] | None = None,
) -> str:
    return (
        f"{team_host(env)}/explore?dataset={dataset}&queryType=dataprime"
        f"&query={quote(query, safe='')}&duration={duration}"
    )


def coralogix_configured(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return bool(env.get("CX_PRIVATE_KEY"))


__all__ = ["REGIONS", "coralogix_configured", "explore_link", "team_host"]
