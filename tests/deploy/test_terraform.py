"""deploy/terraform: parsed with python-hcl2 (always), and `validate`d by terraform/tofu when a
binary and a local provider mirror are available (no registry access is needed then)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import hcl2
import pytest

from tests.deploy import REPO

TF = REPO / "deploy" / "terraform"
SECRETS = {"cx_private_key", "cx_api_key", "admin_token", "jupyter_token", "lab_password"}


def unq(value: object) -> object:
    """python-hcl2 ≥ 7 keeps the quotes of string literals: "\"t3.small\"" → "t3.small"."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def blocks(kind: str, path: Path) -> dict[str, dict]:
    parsed = hcl2.load(path.open())
    return {unq(k): v for item in parsed.get(kind, []) for k, v in item.items()}


def resources() -> dict[str, dict]:
    out: dict[str, dict] = {}
    for item in hcl2.load((TF / "main.tf").open()).get("resource", []):
        for rtype, named in item.items():
            for name, body in named.items():
                out[f"{unq(rtype)}.{unq(name)}"] = body
    return out


def test_files_exist() -> None:
    for name in (
        "main.tf",
        "variables.tf",
        "outputs.tf",
        "versions.tf",
        "user-data.sh.tftpl",
        "README.md",
    ):
        assert (TF / name).is_file(), name


def test_variables() -> None:
    variables = blocks("variable", TF / "variables.tf")
    for name in (
        "attendee_count",
        "mode",
        "instance_type",
        "admin_cidr",
        "kit_git_url",
        "kit_version",
        *SECRETS,
    ):
        assert name in variables, name
    assert unq(variables["instance_type"]["default"]) == "t3.small"
    assert variables["attendee_count"]["default"] == 1
    assert unq(variables["mode"]["default"]) == "shared"
    assert "per-attendee" in variables["mode"]["validation"][0]["condition"]
    assert "default" not in variables["admin_cidr"], "SSH source must be chosen explicitly"
    assert "0.0.0.0/0" in variables["admin_cidr"]["validation"][0]["condition"]
    for name in SECRETS:
        assert variables[name].get("sensitive") is True, f"{name} must be sensitive"
    for name, body in variables.items():
        if name not in SECRETS:
            assert not body.get("sensitive"), name


def test_security_group_exposes_only_http_https_and_admin_ssh() -> None:
    sg = resources()["aws_security_group.workshop"]
    world = {"0.0.0.0/0", "::/0"}
    opened: dict[int, list] = {}
    for rule in sg["ingress"]:
        assert rule["from_port"] == rule["to_port"], "no port ranges"
        opened[rule["from_port"]] = [unq(c) for c in rule.get("cidr_blocks", [])]
        opened[rule["from_port"]] += [unq(c) for c in rule.get("ipv6_cidr_blocks", [])]
    assert set(opened) == {22, 80, 443}
    assert set(opened[80]) <= world and set(opened[443]) <= world
    assert opened[22] == ["${var.admin_cidr}"]
    # Nothing else is open, to anyone (including OTLP).
    assert not ({p for p, cidrs in opened.items() if set(cidrs) & world} - {80, 443})


def test_instances_count_follows_mode() -> None:
    main = (TF / "main.tf").read_text()
    assert 'var.mode == "shared" ? 1 : var.attendee_count' in main
    vm = resources()["aws_instance.workshop"]
    assert vm["count"] == "${local.instance_count}"
    assert vm["ami"] == "${data.aws_ami.ubuntu.id}"
    assert "ubuntu-noble-24.04-amd64-server" in main
    assert "templatefile" in vm["user_data"] and "user-data.sh.tftpl" in vm["user_data"]
    assert vm["metadata_options"][0]["http_tokens"] == '"required"'


def test_outputs_list_every_vm_url() -> None:
    outputs = blocks("output", TF / "outputs.tf")
    assert "urls" in outputs
    assert "aws_instance.workshop" in outputs["urls"]["value"]
    assert "https://" in outputs["urls"]["value"]


def test_user_data_installs_docker_writes_env_and_starts_compose() -> None:
    text = (TF / "user-data.sh.tftpl").read_text()
    assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text
    assert "docker-ce" in text and "docker-compose-plugin" in text
    assert 'git clone --depth 1 --branch "$KIT_VERSION" "$KIT_GIT_URL"' in text
    for name in ("CX_PRIVATE_KEY", "ADMIN_TOKEN", "CX_DOMAIN", "CX_APPLICATION_NAME"):
        assert f"{name}=${{" in text, name
    assert "umask 077" in text, ".env holds secrets"
    assert "scripts/generate-certs.sh data/certs" in text
    assert "docker compose -f docker-compose.vm.yml" in text and "up -d" in text
    build = text.index("scripts/compose-build.sh docker compose -f docker-compose.vm.yml")
    assert build < text.index("up -d") and "--build" not in text, "images built one at a time"
    # Every template variable is passed by main.tf and nothing extra.
    used = set(re.findall(r"(?<!\$)\$\{([a-z_]+)\}", text))
    main = (TF / "main.tf").read_text()
    passed = set(
        re.findall(
            r"^\s{4}([a-z_]+)\s+=", main.split("templatefile(", 1)[1].split("})", 1)[0], re.M
        )
    )
    assert used == passed, used ^ passed


def terraform_binary() -> str | None:
    return shutil.which("tofu") or shutil.which("terraform")


def provider_mirror() -> Path | None:
    for candidate in (os.environ.get("TF_PLUGIN_DIR"), "/opt/tf-plugins"):
        if candidate and (Path(candidate) / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
            return Path(candidate)
    return None


def test_validate_with_terraform_or_tofu(tmp_path: Path) -> None:
    binary, mirror = terraform_binary(), provider_mirror()
    if not binary or not mirror:
        pytest.skip("needs tofu/terraform and a local provider mirror (TF_PLUGIN_DIR)")
    work = tmp_path / "tf"
    shutil.copytree(TF, work, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
    init = subprocess.run(
        [binary, "init", "-backend=false", "-input=false", f"-plugin-dir={mirror}"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert init.returncode == 0, init.stdout + init.stderr
    validate = subprocess.run(
        [binary, "validate", "-no-color"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert validate.returncode == 0, validate.stdout + validate.stderr
    fmt = subprocess.run(
        [binary, "fmt", "-check", "-diff"], cwd=work, capture_output=True, text=True, timeout=60
    )
    assert fmt.returncode == 0, fmt.stdout
