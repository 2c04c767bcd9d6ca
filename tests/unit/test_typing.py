"""The style guide's "`mypy` on `stack/`" holds: the services type-check with the repo's
`[tool.mypy]` settings (pyproject.toml)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _mypy() -> list[str]:
    """The mypy of the interpreter running the tests (the venv's), or skip if it has none."""
    script = Path(sys.executable).with_name("mypy")
    if script.is_file():
        return [str(script)]
    if importlib.util.find_spec("mypy") is not None:
        return [sys.executable, "-m", "mypy"]
    pytest.skip("mypy is not installed (pip install -e '.[dev]')")


def test_mypy_on_stack_is_clean() -> None:
    result = subprocess.run(
        [*_mypy(), "stack/"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = (result.stdout + result.stderr).strip()
    print(output)
    assert result.returncode == 0, f"`mypy stack/` exited {result.returncode}:\n{output}"
