"""Process liveness by pid: the kit's one answer to "is it still running?", and how to stop one.

Standard library only, so anything (a Locust run's fault timeline, the native supervisor,
the reliability tests) can import it without pulling in the services' dependencies.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists and has not exited.

    ``kill(pid, 0)`` asks the kernel without sending anything: ProcessLookupError means no
    such process; PermissionError means there is one, owned by another user. A zombie (it
    exited, its parent has not reaped it yet) still answers ``kill``, but it is not running,
    so it counts as not alive: /proc tells (Linux; elsewhere ``kill``'s answer stands).
    """
    if pid <= 0:  # 0 and negative pids address process groups, not one process
        return False
    try:
        os.kill(pid, 0)
    except PermissionError:
        pass  # it exists
    except (OSError, OverflowError):  # ProcessLookupError, or no valid pid at all
        return False
    return _state(pid) != "Z"


def _state(pid: int) -> str | None:
    """The one-letter state in /proc/<pid>/stat (R, S, Z, ...); None if /proc cannot say."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # `pid (comm) state ...`: comm may hold spaces and ')', so the state follows the last ')'.
    fields = stat.rpartition(")")[2].split()
    return fields[0] if fields else None


def stop(proc: subprocess.Popen[Any], grace_s: float) -> None:
    """SIGTERM `proc`, give it `grace_s` to finish, then SIGKILL; returns once it is gone."""
    proc.terminate()
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
