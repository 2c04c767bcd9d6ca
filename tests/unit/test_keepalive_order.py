"""Idle keep-alive order: every pool that reuses connections to a kit service gives an idle
connection up before uvicorn closes it (stack/common/http.py says why: otherwise a POST can
meet a reset in the instant the server closes, and nobody retries it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stack.common.http import CLIENT_KEEPALIVE_SECONDS, SERVER_KEEPALIVE_SECONDS

NGINX = Path(__file__).resolve().parents[2] / "stack" / "nginx"


def upstreams(conf: str) -> dict[str, str]:
    # A block ends at a line holding only `}` (the template's `{{PORT}}` has braces too).
    return dict(re.findall(r"upstream\s+(\w+)\s*\{(.*?)\n\s*\}", conf, re.S))


def seconds(value: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(ms|s|m)?", value).groups()  # type: ignore[union-attr]
    return int(number) * {"ms": 0.001, "s": 1, "m": 60, None: 1}[unit]


def test_the_services_client_lets_go_first() -> None:
    assert CLIENT_KEEPALIVE_SECONDS < SERVER_KEEPALIVE_SECONDS


@pytest.mark.parametrize("name", ["nginx.conf", "native.conf.template"])
def test_every_nginx_upstream_pool_lets_go_before_uvicorn(name: str) -> None:
    blocks = upstreams((NGINX / name).read_text())
    assert blocks, f"{name}: no upstream block found"
    for upstream, body in blocks.items():
        if not re.search(r"^\s*keepalive\s+\d+;", body, re.M):
            continue  # no idle pool, nothing to reuse
        # Unset, nginx keeps idle upstream connections 60 s: past uvicorn's close.
        found = re.search(r"^\s*keepalive_timeout\s+(\w+);", body, re.M)
        timeout = seconds(found.group(1)) if found else 60.0
        assert timeout < SERVER_KEEPALIVE_SECONDS, (name, upstream, timeout)
