"""Reading requirements/*.lock (uv's pip-compatible output): `name==version \\` then hashes."""

from __future__ import annotations

import re
from pathlib import Path

LOCKS = Path(__file__).resolve().parents[2] / "requirements"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.M)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned(lock: Path) -> dict[str, str]:
    """canonical name → pinned version."""
    return {canonical(m.group(1)): m.group(2) for m in _PIN.finditer(lock.read_text())}


def pins(lock: Path) -> list[str]:
    """`name==version` lines, as pip reads them (without the hashes)."""
    return [f"{n}=={v}" for n, v in pinned(lock).items()]
