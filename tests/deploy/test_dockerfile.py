"""stack/Dockerfile without a Docker engine: structural lint (hadolint is neither on PyPI nor in
Debian's archive here) and the image's Python environment rebuilt natively the way the
Dockerfile builds it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from stack.common.settings import ServiceName
from tests.deploy import REPO
from tests.deploy.locks import pins

DOCKERFILE = REPO / "stack" / "Dockerfile"
BUILD_TOOLS = re.compile(r"\b(build-essential|gcc|g\+\+|clang|make|python3-dev|libc6-dev)\b")


@dataclass
class Stage:
    base: str
    name: str | None
    lines: list[str] = field(default_factory=list)

    def instructions(self, keyword: str) -> list[str]:
        return [ln.split(None, 1)[1] for ln in self.lines if ln.split()[0].upper() == keyword]


def logical_lines(text: str) -> list[str]:
    """Dockerfile lines with continuations joined, comments dropped, heredoc bodies kept inline."""
    out: list[str] = []
    current = ""
    heredoc: str | None = None
    for raw in text.splitlines():
        if heredoc is not None:
            out[-1] += "\n" + raw
            if raw.strip() == heredoc:
                heredoc = None
            continue
        if not current and raw.lstrip().startswith("#"):
            continue
        current += raw.rstrip("\\").rstrip() + " " if raw.endswith("\\") else raw
        if raw.endswith("\\"):
            continue
        if current.strip():
            out.append(current.strip())
            m = re.search(r"<<-?'?(\w+)'?", current)
            if m:
                heredoc = m.group(1)
        current = ""
    return out


def parse() -> tuple[dict[str, str], list[Stage]]:
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical_lines(DOCKERFILE.read_text()):
        keyword = line.split()[0].upper()
        if keyword == "ARG" and not stages:
            name, _, default = line.split(None, 1)[1].partition("=")
            args[name] = default
        elif keyword == "FROM":
            m = re.fullmatch(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
            assert m, line
            base = re.sub(r"\$\{(\w+)\}", lambda a: args[a.group(1)], m.group(1))
            stages.append(Stage(base, m.group(2)))
        else:
            stages[-1].lines.append(line)
    return args, stages


@pytest.fixture(scope="module")
def stages() -> dict[str, Stage]:
    _, parsed = parse()
    return {s.name or f"#{i}": s for i, s in enumerate(parsed)}


def test_hadolint_when_available() -> None:
    hadolint = shutil.which("hadolint")
    if not hadolint:
        pytest.skip("hadolint is not installable here; the structural checks below stand in")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_multi_stage_on_pinned_slim_bases(stages: dict[str, Stage]) -> None:
    assert {"builder", "runtime", "lab"} <= set(stages)
    for name, stage in stages.items():
        base = stage.base
        if base in stages:
            continue  # built on an earlier stage
        assert re.fullmatch(r"python:3\.11-slim(-\w+)?", base), f"{name}: {base}"
        assert "latest" not in base
    assert stages["runtime"].base == stages["builder"].base
    assert stages["lab"].base == "runtime"


def test_runtime_has_no_compilers_and_copies_only_the_venv_and_code(stages: dict) -> None:
    for name in ("runtime", "lab"):
        for run in stages[name].instructions("RUN"):
            assert not BUILD_TOOLS.search(run), f"{name} installs build tools: {run}"
            assert "apt-get install" not in run, f"{name}: packages belong in the builder"
    assert BUILD_TOOLS.search(" ".join(stages["builder"].instructions("RUN")))
    copies = stages["runtime"].instructions("COPY")
    assert "--from=builder /opt/venv /opt/venv" in copies
    sources = {c.split()[0] for c in copies if not c.startswith("--from")}
    assert sources == {"stack", "scenarios"}, sources
    for src in sources:
        assert (REPO / src).exists(), src


def test_lab_target_sources(stages: dict) -> None:
    """The lab image adds the lab packages on top of the runtime's stack/ and scenarios/ (which
    therefore may not import them: tests/unit/test_layers.py), and every source exists."""
    copies = [c for c in stages["lab"].instructions("COPY") if not c.startswith("--from")]
    sources = {c.split()[0] for c in copies}
    assert sources == {"labs", "notebooks", "workshop"}, sources
    missing = [s for s in sources if not (REPO / s).exists()]
    assert not missing, f"the lab target copies {missing}, which are not in the tree"


def test_non_root_workdir_entrypoint_env(stages: dict) -> None:
    runtime = stages["runtime"]
    assert runtime.instructions("USER")[-1] == "10001:10001"
    assert stages["lab"].instructions("USER")[-1] == "10001:10001"
    assert runtime.instructions("WORKDIR") == ["/app"]
    assert json.loads(runtime.instructions("ENTRYPOINT")[-1]) == ["python", "-m", "stack.run"]
    env = " ".join(runtime.instructions("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "PYTHONPATH=/app" in env
    assert "useradd" in " ".join(runtime.instructions("RUN")) and "--uid 10001" in env + " ".join(
        runtime.instructions("RUN")
    )
    for stage in stages.values():
        assert not stage.instructions("HEALTHCHECK"), "compose defines health checks per service"
    # `docker build` without --target gives the service runtime.
    last_name, last = list(stages.items())[-1]
    assert last.base == "runtime", last_name


def test_dockerignore_keeps_context_small_and_secret_free(stages: dict) -> None:
    ignored = {
        ln.strip()
        for ln in (REPO / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    }
    assert {".venv", "data", "bin", ".git", ".env", "tests"} <= ignored
    copied = {
        c.split()[0]
        for s in stages.values()
        for c in s.instructions("COPY")
        if not c.startswith("--from")
    }
    assert not copied & ignored, copied & ignored


def installed_locks() -> dict[str, Path]:
    """stage → the lock file its `pip install --no-deps --require-hashes -r` installs (copied,
    then run)."""
    stages = {s.name: s for s in parse()[1]}
    out = {}
    for name in ("builder", "lab-builder"):
        runs = " ".join(stages[name].instructions("RUN"))
        m = re.search(r"pip install --no-deps --require-hashes -r (\S+\.lock)", runs)
        assert m, (name, runs)
        out[name] = REPO / "requirements" / m.group(1)
        assert out[name].is_file(), out[name]
    return out


def test_dockerfile_needs_no_external_frontend() -> None:
    """Engine 20.10 (Debian bookworm's docker.io) builds it offline: a `# syntax=` line would
    pull a frontend image from Docker Hub, and heredocs need Dockerfile syntax >= 1.4."""
    text = DOCKERFILE.read_text()
    assert not re.search(r"^#\s*syntax\s*=", text, re.M | re.I)
    assert not re.search(r"^\s*RUN\b[^\n]*<<", text, re.M)


def test_image_python_environment_builds_natively(tmp_path: Path) -> None:
    """Rebuild the image's /opt/venv + /app natively, offline: a fresh venv whose packages are
    the project venv's (a .pth line), checked against the pins of the lock the Dockerfile
    installs, then the image's entry point run from a copy of /app. (A real `pip install -r`
    into a fresh venv took 56 s here, network-bound; this keeps the suite offline and fast.)"""
    from packaging.requirements import Requirement

    locks = installed_locks()
    requirements = pins(locks["builder"])
    assert any(r.startswith("fastapi==") for r in requirements)
    lab = " ".join(pins(locks["lab-builder"]))
    assert "locust==" in lab and "papermill==" in lab and "jupyterlab==" in lab

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "project-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    # Every requirement the image installs is satisfied in that environment.
    check = (
        "import sys, importlib.metadata as md\n"
        "from packaging.requirements import Requirement\n"
        "bad = []\n"
        "for line in sys.argv[1:]:\n"
        "    r = Requirement(line)\n"
        "    try:\n"
        "        v = md.version(r.name)\n"
        "    except md.PackageNotFoundError:\n"
        "        bad.append(f'{r.name} missing'); continue\n"
        "    if not r.specifier.contains(v, prereleases=True):\n"
        "        bad.append(f'{r.name} {v} not in {r.specifier}')\n"
        "print('; '.join(bad)); sys.exit(1 if bad else 0)\n"
    )
    assert all(Requirement(r) for r in requirements)
    result = subprocess.run([python, "-c", check, *requirements], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr

    # /app as the runtime stage lays it out: only the COPYed directories.
    app = tmp_path / "app"
    app.mkdir()
    for src in ("stack", "scenarios"):
        shutil.copytree(REPO / src, app / src, ignore=shutil.ignore_patterns("__pycache__"))
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "PYTHONPATH": str(app),
        "PYTHONDONTWRITEBYTECODE": "1",
        "WORKSHOP_DATA_DIR": str(tmp_path / "data"),
        "OTEL_SDK_DISABLED": "true",
        "HOME": str(tmp_path),
    }
    imported = subprocess.run(
        [python, "-c", "import stack.run, stack.common.settings as s; print(s.REPO_ROOT)"],
        cwd=app,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == str(app), "the code must come from /app, not site-packages"

    usage = subprocess.run(
        [python, "-m", "stack.run"], cwd=app, env=env, capture_output=True, text=True, timeout=60
    )
    assert usage.returncode != 0
    assert "usage: python -m stack.run SERVICE" in usage.stderr
    for service in ServiceName:
        assert service.value in usage.stderr
    assert not list(app.rglob("__pycache__")), "PYTHONDONTWRITEBYTECODE: read-only root"
    assert os.access(app, os.W_OK)
