"""The cold-wakeup probe's readings (workshop/bench_wakeup.py) on this process, and its text."""

from __future__ import annotations

import os
import threading
import time

from workshop import bench_wakeup


def test_cpu_counts_every_thread_of_a_process() -> None:
    spun, done = threading.Event(), threading.Event()

    def spin() -> None:  # a service's threads live as long as it does: this one waits
        end = time.thread_time() + 0.2
        while time.thread_time() < end:
            pass
        spun.set()
        done.wait(5)

    before = bench_wakeup.process_cpu_ns(os.getpid())
    worker = threading.Thread(target=spin)
    worker.start()
    spun.wait(5)
    try:
        assert bench_wakeup.grown(before, bench_wakeup.process_cpu_ns(os.getpid())) >= 0.19e9
    finally:
        done.set()
        worker.join()


def test_sleeps_count_as_voluntary_switches() -> None:
    before = bench_wakeup.voluntary_switches(os.getpid())
    for _ in range(20):
        time.sleep(0.001)
    assert bench_wakeup.grown(before, bench_wakeup.voluntary_switches(os.getpid())) >= 20


def test_a_thread_that_ended_does_not_make_the_count_shrink() -> None:
    before = {"1": 10, "2": 500}  # thread 2 ended, thread 3 started
    assert bench_wakeup.grown(before, {"1": 15, "3": 7}) == 12


def test_the_reference_loop_reports_its_cpu_per_call() -> None:
    hot = bench_wakeup.reference_us(0.0, 20)
    assert 1 < hot < 100_000


def test_render_states_the_measured_figures() -> None:
    w = {
        "svc_hot": 400, "svc_paced": 1000, "ref_hot": 200, "ref_paced": 300,
        "gap_ms": 20.0, "requests": 600, "wakeups_per_question": 33.5, "wakeup_seconds": 20,
    }  # fmt: skip
    text = "\n".join(bench_wakeup.render(w))
    assert "| 400 | 1000 | 2.50 |" in text
    assert "| 200 | 300 | 1.50 |" in text
    assert "**33.5** times" in text and "over 20 s" in text
