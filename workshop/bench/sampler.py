"""CPU seconds and RSS of the stack's processes, sampled once a second with psutil."""

from __future__ import annotations

import contextlib
import threading
import time

import psutil

MIB = 1024 * 1024


def _tree(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return [proc]


def _cpu_rss(proc: psutil.Process, children: bool = True) -> tuple[float, float]:
    cpu = rss = 0.0
    for p in _tree(proc) if children else [proc]:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            cpu += t.user + t.system
            rss += p.memory_info().rss
    return cpu, rss


class Sampler:
    """CPU seconds and RSS of named processes (each with its children), once a second."""

    def __init__(self, pids: dict[str, int], interval: float = 1.0) -> None:
        self.procs = {}
        for name, pid in pids.items():
            with contextlib.suppress(psutil.Error):
                self.procs[name] = psutil.Process(pid)
        self.interval = interval
        self.samples: list[dict[str, float]] = []
        self._cpu0: dict[str, float] = {}
        self._cpu1: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = self._t1 = 0.0

    def _sample(self) -> dict[str, tuple[float, float]]:
        # supervisord alone: its children are the programs, sampled under their own names.
        return {name: _cpu_rss(p, name != "supervisord") for name, p in self.procs.items()}

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            now = self._sample()
            # A process that has just exited reads as 0: keep its last CPU time instead.
            self._cpu1.update({n: v[0] for n, v in now.items() if v[0] > 0})
            self.samples.append({n: v[1] for n, v in now.items()})

    def __enter__(self) -> Sampler:
        self._t0 = time.monotonic()
        first = self._sample()
        self._cpu0 = {n: v[0] for n, v in first.items()}
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        last = self._sample()
        self._t1 = time.monotonic()
        # A process that died keeps its last sampled CPU time.
        for n, v in last.items():
            if v[0] > 0:
                self._cpu1[n] = v[0]
        if not self.samples:
            self.samples.append({n: v[1] for n, v in last.items()})

    def report(self, wall: float | None = None) -> dict[str, dict[str, float]]:
        wall = wall or max(self._t1 - self._t0, 1e-9)
        out = {}
        for name in self.procs:
            rss = [s[name] for s in self.samples if s.get(name)]
            cpu = max(self._cpu1.get(name, 0.0) - self._cpu0.get(name, 0.0), 0.0)
            out[name] = {
                "cpu_s": round(cpu, 3),
                "cpu_pct": round(100 * cpu / wall, 1),
                "rss_mean_mib": round(sum(rss) / len(rss) / MIB, 1) if rss else 0.0,
                "rss_max_mib": round(max(rss) / MIB, 1) if rss else 0.0,
            }
        return out

    def max_total_mib(self, names: list[str]) -> float:
        totals = [sum(s.get(n, 0.0) for n in names) for s in self.samples]
        return round(max(totals) / MIB, 1) if totals else 0.0
