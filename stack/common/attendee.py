"""Who is asking: the default attendee id and the baggage header that carries it.

One rule for every caller (the CLI, Locust users, lab traffic, the labs themselves). Kept free
of third-party imports so a Locust process can use it without loading the stack's settings.
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Mapping
from urllib.parse import quote

FALLBACK = "attendee"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def default_attendee(env: Mapping[str, str] | None = None) -> str:
    """WORKSHOP_ATTENDEE, else the login name, made safe for baggage, file names and the
    Coralogix query filters (at most 40 of [A-Za-z0-9_.-])."""
    e = os.environ if env is None else env
    name = e.get("WORKSHOP_ATTENDEE", "").strip()
    if not name:
        try:
            name = getpass.getuser()
        except Exception:
            name = ""
    return _UNSAFE.sub("-", name)[:40] or FALLBACK


def baggage_header(attendee: str | None = None, synthetic: bool = False, **extra: str) -> str:
    """W3C baggage: `workshop.attendee` (the id every span is tagged with) and
    `synthetic_request` for generated traffic."""
    entries: dict[str, str] = {}
    if attendee:
        entries["workshop.attendee"] = attendee
    if synthetic:
        entries["synthetic_request"] = "true"
    entries.update(extra)
    return ",".join(f"{k}={quote(v, safe='')}" for k, v in entries.items())
