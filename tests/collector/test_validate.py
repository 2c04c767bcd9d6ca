"""`otelcol validate` (and print-config) on every config combination the kit uses."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from stack.native.collector import collector_command, collector_env, is_online
from tests.collector.conftest import (
    COLLECTOR_DIR,
    CONFIG,
    LOOPBACK,
    OFFLINE,
    SINK,
    TO_SINK,
    base_env,
    port,
)

DOCKER_ENV = {
    "OTEL_COLLECTOR_HOST": "0.0.0.0",
    # EC2 (the instance), then the Docker daemon (the VM), the container's own name last.
    "RESOURCE_DETECTORS": "[env, ec2, docker, system]",
    "COLLECTOR_MEMORY_LIMIT_MIB": "200",
    "TELEMETRY_DIR": "/data/telemetry",
}


def run(otelcol: Path, cmd: str, configs: list[Path], env: dict[str, str]):
    args = [str(otelcol), cmd]
    for c in configs:
        args += ["--config", str(c)]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)


def effective(otelcol: Path, configs: list[Path], env: dict[str, str]) -> dict:
    proc = run(otelcol, "print-config", configs, env)
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(proc.stdout)


@pytest.fixture
def hostfs(tmp_path: Path) -> Path:
    """Stands in for the /hostfs bind mount of the compose file (validate stats root_path)."""
    d = tmp_path / "hostfs"
    d.mkdir()
    return d


CASES = {
    "production": ([CONFIG], {"CX_PRIVATE_KEY": "dummy"}),
    "production+offline": ([CONFIG, OFFLINE], {}),
    "production+offline+loopback": ([CONFIG, OFFLINE, LOOPBACK], {"TELEMETRY_DIR": "/tmp/x"}),
    "production+to-sink+loopback": (
        [CONFIG, TO_SINK, LOOPBACK],
        {"CX_PRIVATE_KEY": "dummy", "SINK_GRPC_PORT": str(port(90))},
    ),
    "sink": (
        [SINK],
        {"SINK_GRPC_PORT": str(port(90)), "SINK_HEALTH_PORT": str(port(91)), "SINK_DIR": "/tmp"},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_validate(otelcol: Path, case: str) -> None:
    configs, extra = CASES[case]
    proc = run(otelcol, "validate", configs, base_env(**extra))
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("offline", [False, True], ids=["production", "production+offline"])
def test_validate_docker_environment(otelcol: Path, hostfs: Path, offline: bool) -> None:
    configs = [CONFIG, OFFLINE] if offline else [CONFIG]
    env = base_env(**DOCKER_ENV, HOSTMETRICS_ROOT=str(hostfs), CX_PRIVATE_KEY="dummy")
    proc = run(otelcol, "validate", configs, env)
    assert proc.returncode == 0, proc.stderr
    cfg = effective(otelcol, configs, env)
    for name in ("resource_detection", "resource_detection/entity"):
        assert cfg["processors"][name]["detectors"] == ["env", "ec2", "docker", "system"]
    assert cfg["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert cfg["receivers"]["otlp"]["protocols"]["http"]["endpoint"] == "0.0.0.0:4318"
    assert cfg["extensions"]["health_check"]["endpoint"] == "0.0.0.0:13133"
    assert cfg["receivers"]["host_metrics"]["root_path"] == str(hostfs)
    assert cfg["processors"]["memory_limiter"]["limit_mib"] == 200


def test_validate_literal_hostfs_fails_only_on_missing_mount(otelcol: Path) -> None:
    """With HOSTMETRICS_ROOT=/hostfs the only possible complaint is the absent bind mount."""
    env = base_env(**DOCKER_ENV, HOSTMETRICS_ROOT="/hostfs", CX_PRIVATE_KEY="dummy")
    proc = run(otelcol, "validate", [CONFIG], env)
    if Path("/hostfs").is_dir():
        assert proc.returncode == 0, proc.stderr
    else:
        errors = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        assert proc.returncode != 0
        # One complaint per host_metrics receiver (host metrics, the kit's processes).
        assert len(errors) == 2, proc.stderr
        assert all("invalid root_path: stat /hostfs" in e for e in errors), proc.stderr
        assert {"host_metrics:", "host_metrics/process:"} == {
            e.removeprefix("Error: ").split("::")[1].split(" ")[0] for e in errors
        }, proc.stderr


def test_production_without_key_fails_loudly(otelcol: Path) -> None:
    proc = run(otelcol, "validate", [CONFIG], base_env())
    assert proc.returncode != 0
    assert "private_key" in proc.stderr


def test_native_defaults(otelcol: Path) -> None:
    cfg = effective(otelcol, [CONFIG], base_env(CX_PRIVATE_KEY="dummy"))
    assert cfg["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"] == "127.0.0.1:4317"
    assert cfg["receivers"]["otlp"]["protocols"]["http"]["endpoint"] == "127.0.0.1:4318"
    assert cfg["extensions"]["health_check"]["endpoint"] == "127.0.0.1:13133"
    assert cfg["processors"]["resource_detection"]["detectors"] == ["env", "system"]
    assert cfg["processors"]["resource_detection"]["override"] is False
    assert cfg["processors"]["resource_detection/entity"]["detectors"] == ["env", "system"]
    assert cfg["processors"]["memory_limiter"]["limit_mib"] == 400
    assert cfg["receivers"]["host_metrics"]["root_path"] == "/"
    assert cfg["service"]["telemetry"]["metrics"]["level"].lower() == "none"
    cx = cfg["exporters"]["coralogix"]
    assert cx["domain"] == "eu2.coralogix.com"
    assert cx["application_name_attributes"] == ["cx.application.name", "service.namespace"]
    assert cx["subsystem_name_attributes"] == ["cx.subsystem.name", "service.name"]
    sm = cfg["connectors"]["span_metrics"]
    assert sm["namespace"] == "" and sm["histogram"]["unit"] == "ms"
    pipelines = cfg["service"]["pipelines"]
    assert "span_metrics" in pipelines["traces"]["exporters"]
    assert "span_metrics" in pipelines["metrics/spanmetrics"]["receivers"]
    for name, p in pipelines.items():
        assert p["processors"][0] == "memory_limiter", name
    # online, every signal is teed to the bounded local copy as well
    for name, fe in [
        ("traces", "file/traces"),
        ("metrics", "file/metrics"),
        ("metrics/spanmetrics", "file/metrics"),
        ("logs", "file/logs"),
        ("logs/resource_catalog", "file/entities"),
    ]:
        assert fe in pipelines[name]["exporters"] and any(
            e.startswith("coralogix") for e in pipelines[name]["exporters"]
        ), name
    for fe in ("file/traces", "file/metrics", "file/logs", "file/entities"):
        rot = cfg["exporters"][fe]["rotation"]
        assert 0 < rot["max_megabytes"] <= 50 and 0 < rot["max_backups"] <= 2, (fe, rot)


def test_offline_overlay_replaces_exporter_lists(otelcol: Path) -> None:
    cfg = effective(otelcol, [CONFIG, OFFLINE], base_env(TELEMETRY_DIR="/tmp/tel"))
    pipelines = cfg["service"]["pipelines"]
    for name, p in pipelines.items():
        assert not any(e.startswith("coralogix") for e in p["exporters"]), (name, p)
    assert pipelines["traces"]["exporters"] == [
        "file/traces",
        "span_metrics",
        "forward/db",
        "forward/compact",
        "forward/db_compact",
    ]
    assert pipelines["metrics/spanmetrics"]["exporters"] == ["file/metrics"]
    assert "host_metrics" in pipelines["metrics"]["receivers"]
    assert cfg["exporters"]["file/traces"]["path"] == "/tmp/tel/traces.jsonl"
    assert cfg["exporters"]["file/metrics"]["rotation"]["max_megabytes"] == 50


def test_removed_components_absent() -> None:
    for path in COLLECTOR_DIR.rglob("*.yaml"):
        if path.name == "builder-config.yaml":
            continue
        doc = yaml.safe_load(path.read_text()) or {}
        assert "logging" not in (doc.get("exporters") or {}), path
        assert "memory_ballast" not in (doc.get("extensions") or {}), path
        assert "ec2" not in str((doc.get("processors") or {}).get("resource_detection", "")), path


@pytest.mark.parametrize("key", ["", "dummy"], ids=["offline", "online"])
def test_native_command_validates(otelcol: Path, key: str) -> None:
    """The exact argv/env stack.native uses, with `validate` in place of running it."""
    env = collector_env(base_env(CX_PRIVATE_KEY=key))
    online = is_online(env)
    assert online is bool(key)
    cmd = collector_command(online=online)
    assert cmd[0] == str(otelcol)
    assert cmd.count("--config") == (1 if online else 2)
    proc = subprocess.run(
        [cmd[0], "validate", *cmd[1:]], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert Path(env["TELEMETRY_DIR"]).is_absolute()


@pytest.mark.parametrize("key", ["", "cxtp_NATIVE_SEND_KEY"], ids=["offline", "online"])
def test_the_launcher_goes_online_with_a_key_in_its_environment(
    otelcol: Path, key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `workshop up` runs: CX_PRIVATE_KEY in the instructor's shell drops the offline
    overlay, and the key never lands in the generated supervisor file (inherited instead)."""
    from stack.native.config import NativeConfig
    from stack.native.launcher import _collector_program

    monkeypatch.setenv("CX_PRIVATE_KEY", key)
    overlay = tmp_path / "extra.yaml"
    overlay.write_text("processors:\n  batch:\n    timeout: 200ms\n")
    cfg = NativeConfig(
        data_dir=tmp_path / "data", extra_env={"COLLECTOR_CONFIG_OVERLAYS": str(overlay)}
    )
    program, online = _collector_program(cfg)
    assert online is bool(key)
    assert ("offline.yaml" in program.command) is not bool(key)
    assert program.command.endswith(f"--config {overlay}")
    assert "CX_PRIVATE_KEY" not in program.env
    if key:
        assert key not in program.command and key not in str(program.env)
    cfg_missing = NativeConfig(
        data_dir=tmp_path / "data", extra_env={"COLLECTOR_CONFIG_OVERLAYS": "/nope.yaml"}
    )
    with pytest.raises(Exception, match="do not exist"):
        _collector_program(cfg_missing)
