"""No file under the data directory (logs, telemetry, database, Redis files) contains the admin
token or the value of any CX_* variable. The test first drives the stack itself with every
secret-bearing request it knows (admin calls with the token, a wrong token, a fault set and
cleared, questions) and waits for the telemetry to land, so it does not depend on running
after the other modules; when it does run last (module order), it also covers what they did."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from stack.client import ApiError

SKIP_FILES = {"admin-token"}  # the token's own 0600 file


def _secrets(stack) -> dict[str, str]:
    found = {"admin token": stack.admin_token}
    for name, value in os.environ.items():
        if name.startswith("CX_") and len(value) >= 8:
            found[name] = value
    for name, value in stack.cfg.extra_env.items():
        if name.startswith("CX_") and len(value) >= 8:
            found[name] = value
    return found


def _drive(stack) -> None:
    """Secret-bearing traffic: the token in admin calls, a wrong one, a fault, questions."""
    admin = stack.gateway(admin_token=stack.admin_token)
    intruder = stack.gateway(admin_token=stack.admin_token[::-1])
    with contextlib.suppress(ApiError):
        intruder.faults()  # 401: the refusal must not echo the token it was sent
    fault = admin.add_fault("latency", "storage-service", params={"ms": 5}, ttl_seconds=30)
    gw = stack.gateway()
    jobs = [gw.ask("how many errors per service in the last hour?")["id"] for _ in range(3)]
    for job in jobs:
        gw.wait(job, timeout=30)
    admin.remove_fault(fault["id"])
    time.sleep(3)  # batch span processors and the collector's file exporter flush


def test_no_secret_in_any_file_under_the_data_dir(stack) -> None:
    _drive(stack)
    secrets = _secrets(stack)
    assert len(secrets["admin token"]) >= 16
    scanned, total = 0, 0
    leaks: list[tuple[str, str]] = []
    for path in sorted(Path(stack.cfg.data_dir).rglob("*")):
        if not path.is_file() or path.name in SKIP_FILES or path.is_symlink():
            continue
        data = path.read_bytes()
        scanned += 1
        total += len(data)
        for label, value in secrets.items():
            if value.encode() in data:
                leaks.append((label, str(path.relative_to(stack.cfg.data_dir))))
    print(f"scanned {scanned} files, {total / 1e6:.1f} MB, for {sorted(secrets)}")
    assert scanned > 5
    assert (stack.cfg.admin_token_file.stat().st_mode & 0o077) == 0
    assert not leaks, leaks
