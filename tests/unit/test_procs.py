"""`stack.common.procs`: pid_alive (running, gone, zombie, someone else's process) and stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stack.common import procs
from stack.common.procs import pid_alive, stop


def _child(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code])


def test_a_running_process_is_alive() -> None:
    assert pid_alive(os.getpid())
    child = _child("import time; time.sleep(30)")
    try:
        assert pid_alive(child.pid)
    finally:
        child.kill()
        child.wait()


def test_a_reaped_process_is_not() -> None:
    child = _child("pass")
    child.wait()
    assert not pid_alive(child.pid)


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="needs /proc (Linux)")
def test_a_zombie_is_not_alive() -> None:
    """Exited but not reaped: kill(pid, 0) still succeeds, yet nothing runs."""
    child = _child("pass")
    try:
        deadline = time.monotonic() + 10
        while procs._state(child.pid) != "Z" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert procs._state(child.pid) == "Z"
        os.kill(child.pid, 0)  # the kernel still answers for it
        assert not pid_alive(child.pid)
    finally:
        child.wait()


def test_another_users_process_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    """kill(pid, 0) → EPERM: there is such a process, we may just not signal it."""

    def eperm(pid: int, sig: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(procs.os, "kill", eperm)
    monkeypatch.setattr(procs, "_state", lambda pid: "S")
    assert pid_alive(12345)


@pytest.mark.parametrize("pid", [0, -1, 2**70])
def test_not_a_pid(pid: int) -> None:
    """0 and negative pids name process groups (kill would 'succeed'); huge ones nothing."""
    assert not pid_alive(pid)


def test_the_state_survives_a_command_name_with_spaces_and_parens(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    stat = tmp_path / "stat"
    stat.write_text("4242 (odd ) name) Z 1 4242 4242 0 -1 4194560")
    real_path = procs.Path
    monkeypatch.setattr(procs, "Path", lambda p: stat if p == "/proc/4242/stat" else real_path(p))
    assert procs._state(4242) == "Z"


def _waiting_child(ignore_term: bool) -> subprocess.Popen[str]:
    code = (
        "import signal, sys, time\n"
        f"if {ignore_term}: signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    return proc


def test_stop_ends_a_process_with_sigterm_when_it_listens() -> None:
    proc = _waiting_child(ignore_term=False)
    stop(proc, 10)
    assert proc.returncode == -signal.SIGTERM


def test_stop_kills_a_process_that_ignores_sigterm_after_the_grace() -> None:
    proc = _waiting_child(ignore_term=True)
    stop(proc, 0.3)
    assert proc.returncode == -signal.SIGKILL
