"""Shell scripts: shellcheck, and scripts/deploy-vm.sh's checks and --dry-run (which must not
contact anything: ssh/scp/tar/rsync are replaced by stubs that record any call)."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.deploy import REPO

IN_CI = os.environ.get("CI") == "true"
DEPLOY = REPO / "scripts" / "deploy-vm.sh"
USER_DATA = REPO / "deploy" / "terraform" / "user-data.sh.tftpl"
HOST = "203.0.113.10"  # TEST-NET-3: never routed; and --dry-run never dials it anyway


def shellcheck() -> str:
    path = shutil.which("shellcheck")
    if not path:
        if IN_CI:
            pytest.fail("shellcheck is required in CI (apt-get install shellcheck)")
        pytest.skip("shellcheck is not installed")
    return path


def render_user_data() -> str:
    """What templatefile() produces: ${name} → a value, $${ → ${ (no %{} directives used)."""
    text = USER_DATA.read_text()
    assert "%{" not in text, "update render_user_data() for template directives"
    text = re.sub(r"(?<!\$)\$\{([a-z_]+)\}", lambda m: f"value-of-{m.group(1)}", text)
    return text.replace("$${", "${")


@pytest.mark.parametrize("script", sorted((REPO / "scripts").glob("*.sh")), ids=lambda p: p.name)
def test_shellcheck_scripts(script: Path) -> None:
    result = subprocess.run(
        [shellcheck(), "-x", "-S", "style", str(script)], capture_output=True, text=True, cwd=REPO
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_terraform_user_data(tmp_path: Path) -> None:
    rendered = tmp_path / "user-data.sh"
    rendered.write_text(render_user_data())
    result = subprocess.run(
        [shellcheck(), "-S", "style", "-s", "bash", str(rendered)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def sandbox(tmp_path: Path) -> dict:
    """A PATH whose ssh/scp/tar/rsync/curl only record that they were called."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    calls = tmp_path / "calls.log"
    for tool in ("ssh", "scp", "tar", "rsync", "curl", "nc", "ping"):
        stub = bindir / tool
        stub.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{calls}"\nexit 97\n')
        stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    env_file = tmp_path / "workshop.env"
    env_file.write_text("CX_PRIVATE_KEY=abc123\nADMIN_TOKEN=t0k3n\nLAB_PASSWORD=secret-pw\n")
    key = tmp_path / "id_ed25519"
    key.write_text("not a real key\n")
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}
    return {"env": env, "calls": calls, "env_file": env_file, "key": key, "tmp": tmp_path}


def deploy(sandbox: dict, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(DEPLOY), *args],
        capture_output=True,
        text=True,
        env=sandbox["env"],
        cwd=sandbox["tmp"],
        timeout=30,
    )


def test_dry_run_prints_every_action_and_contacts_nothing(sandbox: dict) -> None:
    result = deploy(
        sandbox,
        HOST,
        "--user",
        "admin",
        "--key",
        str(sandbox["key"]),
        "--env-file",
        str(sandbox["env_file"]),
        "--lab",
        "--dry-run",
    )
    assert result.returncode == 0, result.stderr
    assert not sandbox["calls"].exists(), f"dry run called: {sandbox['calls'].read_text()}"
    out = result.stdout
    target = f"admin@{HOST}"
    ssh_lines = [line for line in out.splitlines() if line.startswith("+ ssh ")]
    assert ssh_lines, out
    assert all(target in line and str(sandbox["key"]) in line for line in ssh_lines)
    assert "+ ssh -o BatchMode=yes -o ConnectTimeout=10" in out
    assert re.search(rf"^\+ ssh .*{re.escape(target)} true$", out, re.M), "reachability first"
    assert "docker-compose-plugin" in out, "installs Docker when absent"
    excludes = r"--exclude=\./\.venv --exclude=\./data --exclude=\./bin"
    assert re.search(rf"^\+ tar -C .* {excludes}", out, re.M)
    assert "+ scp " in out and f"{target}:dataprime-workshop/.env" in out
    assert "scripts/generate-certs.sh data/certs" in out
    assert "openssl passwd -apr1 -stdin" in out and "data/nginx-auth/htpasswd" in out
    # Images are built one at a time (scripts/compose-build.sh), then started without --build.
    assert "scripts/compose-build.sh docker compose -f docker-compose.vm.yml --profile lab" in out
    assert "docker compose -f docker-compose.vm.yml --profile lab up -d --remove-orphans" in out
    assert "--build" not in out
    assert "ps --format json" in result.stderr + out
    assert f"https://{HOST}/" in out and f"https://{HOST}/lab/" in out
    assert f"https://{HOST}/locust/" in out
    # Secrets never appear in the printed commands.
    assert "abc123" not in out + result.stderr and "t0k3n" not in out + result.stderr
    # Order: reachability, docker, copy, certs, build, up.
    positions = [
        out.index(f"{target} true"),
        out.index("docker-compose-plugin"),
        out.index("+ tar "),
        out.index("generate-certs.sh"),
        out.index("compose-build.sh"),
        out.index("up -d --remove-orphans"),
    ]
    assert positions == sorted(positions)


def test_dry_run_without_lab_or_key(sandbox: dict) -> None:
    result = deploy(sandbox, HOST, "--env-file", str(sandbox["env_file"]), "--dry-run", "--otlp")
    assert result.returncode == 0, result.stderr
    assert not sandbox["calls"].exists()
    assert f"ubuntu@{HOST}" in result.stdout
    ssh_lines = [line for line in result.stdout.splitlines() if line.startswith("+ ssh ")]
    assert ssh_lines and not any(" -i " in line for line in ssh_lines)
    assert "--profile lab" not in result.stdout and "/lab/" not in result.stdout
    assert "-f docker-compose.otlp.yml" in result.stdout


def test_missing_key_file_is_a_clear_error(sandbox: dict) -> None:
    missing = sandbox["tmp"] / "nope.pem"
    result = deploy(sandbox, HOST, "--key", str(missing), "--env-file", str(sandbox["env_file"]))
    assert result.returncode != 0
    assert f"SSH key file not found: {missing}" in result.stderr
    assert not sandbox["calls"].exists()


def test_missing_env_file_is_a_clear_error(sandbox: dict) -> None:
    result = deploy(sandbox, HOST, "--env-file", "missing.env", "--dry-run")
    assert result.returncode != 0
    assert "env file not found: missing.env" in result.stderr
    assert "cp env.vm.example" in result.stderr
    assert not sandbox["calls"].exists()


@pytest.mark.parametrize(
    ("content", "lab", "expected"),
    [
        ("ADMIN_TOKEN=t\n", False, "CX_PRIVATE_KEY is not set in"),
        ("CX_PRIVATE_KEY=k\nADMIN_TOKEN=\n", False, "ADMIN_TOKEN is not set in"),
        ("CX_PRIVATE_KEY=k\nADMIN_TOKEN=t\n", True, "LAB_PASSWORD is not set in"),
    ],
)
def test_missing_required_variable_says_what_to_set(
    sandbox: dict, content: str, lab: bool, expected: str
) -> None:
    sandbox["env_file"].write_text(content)
    args = [HOST, "--env-file", str(sandbox["env_file"]), "--dry-run"] + (["--lab"] if lab else [])
    result = deploy(sandbox, *args)
    assert result.returncode != 0
    assert expected in result.stderr
    name = expected.split()[0]
    assert f"set {name}=" in result.stderr
    assert not sandbox["calls"].exists()


def test_unreachable_host_is_a_clear_error(sandbox: dict) -> None:
    """Not a dry run: the stub ssh fails like an unreachable host (nothing is dialled)."""
    result = deploy(sandbox, HOST, "--env-file", str(sandbox["env_file"]))
    assert result.returncode != 0
    assert f"cannot reach ubuntu@{HOST} over SSH" in result.stderr
    calls = sandbox["calls"].read_text().splitlines()
    assert len(calls) == 1 and calls[0].startswith("ssh ") and calls[0].endswith(" true")


def test_usage_errors(sandbox: dict) -> None:
    assert "missing HOST" in deploy(sandbox, "--dry-run").stderr
    assert "unknown option: --bogus" in deploy(sandbox, HOST, "--bogus").stderr
    helped = deploy(sandbox, "--help")
    assert helped.returncode == 0 and "--dry-run" in helped.stdout


def test_deploy_script_is_strict_and_executable() -> None:
    text = DEPLOY.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert os.access(DEPLOY, os.X_OK)
