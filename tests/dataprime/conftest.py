"""Prints the conformance figures in pytest's terminal summary (what the issue asks to show)."""

from __future__ import annotations

from typing import Any

FIGURES: dict[str, str] = {}


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("DataPrime conformance")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name}: {value}")
