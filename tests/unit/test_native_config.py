"""NativeConfig (stack/native/config.py): the native stack's data dir and ports from the
environment, `to_env()` back, `shifted(offset)` for a second stack beside the first."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from stack.common.settings import REPO_ROOT
from stack.native.config import ConfigError, NativeConfig

PORTS = (
    "port_base",
    "redis_port",
    "otlp_grpc_port",
    "otlp_http_port",
    "collector_health_port",
    "nginx_http_port",
    "nginx_https_port",
)


def test_defaults() -> None:
    cfg = NativeConfig.from_env({})
    assert cfg.data_dir == (REPO_ROOT / "data").resolve()
    assert [getattr(cfg, p) for p in PORTS] == [8010, 6390, 4317, 4318, 13133, 8080, 8443]
    assert cfg.extra_env == {}


def test_from_env_reads_only_the_mapping_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_PORT", "7001")
    assert NativeConfig.from_env({}).redis_port == 6390
    assert NativeConfig.from_env({"REDIS_PORT": "7002"}).redis_port == 7002
    assert NativeConfig.from_env().redis_port == 7001
    assert NativeConfig().redis_port == 7001  # pydantic-settings: the process environment
    assert NativeConfig(redis_port=7003).redis_port == 7003  # keyword arguments win


def test_an_empty_variable_is_unset() -> None:
    cfg = NativeConfig.from_env({"REDIS_PORT": "", "WORKSHOP_DATA_DIR": ""})
    assert cfg == NativeConfig.from_env({})


def test_data_dir_is_resolved(tmp_path: Path) -> None:
    cfg = NativeConfig.from_env({"WORKSHOP_DATA_DIR": str(tmp_path / "a" / ".." / "b")})
    assert cfg.data_dir == (tmp_path / "b").resolve()


@pytest.mark.parametrize("raw", ["abc", "-1", "80.5", " 80"])
def test_a_bad_port_names_the_variable(raw: str) -> None:
    with pytest.raises(ConfigError, match=r"^OTLP_HTTP_PORT must be a port number, got "):
        NativeConfig.from_env({"OTLP_HTTP_PORT": raw})
    assert issubclass(ConfigError, ValueError)


def test_a_bad_variable_overridden_by_an_argument_is_not_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NGINX_HTTP_PORT", "nope")
    assert NativeConfig(nginx_http_port=9000).nginx_http_port == 9000
    with pytest.raises(ConfigError, match="NGINX_HTTP_PORT"):
        NativeConfig()


def test_to_env_round_trips(tmp_path: Path) -> None:
    cfg = NativeConfig.from_env({"WORKSHOP_DATA_DIR": str(tmp_path)}).shifted(1234)
    env = cfg.to_env()
    assert set(env) == set(NativeConfig.env_names().values())
    assert env["WORKSHOP_PORT_BASE"] == str(8010 + 1234)
    assert env["WORKSHOP_DATA_DIR"] == str(tmp_path.resolve())
    assert NativeConfig.from_env(env) == cfg


def test_shifted_moves_every_port(tmp_path: Path) -> None:
    cfg = NativeConfig.from_env({})
    other = cfg.shifted(200, tmp_path / "x" / ".." / "other")
    assert [getattr(other, p) for p in PORTS] == [getattr(cfg, p) + 200 for p in PORTS]
    assert other.data_dir == (tmp_path / "other").resolve()
    assert cfg.shifted(0) == cfg
    assert cfg.shifted(5).data_dir == cfg.data_dir


def test_shifted_copies_extra_env() -> None:
    """`workshop bench --budget` updates one arm's extra_env in place: the other must not see it."""
    base = NativeConfig.from_env({}).with_env({"A": "1"})
    other = base.shifted(200)
    assert other.extra_env == {"A": "1"}
    other.extra_env.update({"B": "2"})  # type: ignore[attr-defined]
    assert base.extra_env == {"A": "1"}


def test_with_env_layers_over_extra_env() -> None:
    cfg = NativeConfig(extra_env={"A": "1", "B": "1"}).with_env({"B": "2"})
    assert cfg.extra_env == {"A": "1", "B": "2"}
    assert cfg.service_env()["B"] == "2"


def test_frozen() -> None:
    cfg = NativeConfig.from_env({})
    with pytest.raises(ValidationError):
        cfg.redis_port = 1  # type: ignore[misc]


def test_the_cli_reports_a_bad_port_without_a_traceback() -> None:
    env = {**os.environ, "REDIS_PORT": "not-a-port", "COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, "-m", "workshop.cli", "status"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=REPO_ROOT,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "REDIS_PORT must be a port number, got 'not-a-port'" in output
    assert "Traceback" not in output


def test_workshop_up_names_a_data_dir_it_cannot_write(tmp_path: Path) -> None:
    """It used to end in a FileNotFoundError (or PermissionError) traceback."""
    from stack.native import launcher
    from stack.native.supervisor import LaunchError

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    cfg = NativeConfig.from_env({"WORKSHOP_DATA_DIR": str(blocker / "data")})
    with pytest.raises(LaunchError, match=r"^cannot write the data dir .*a-file/data \(not a "):
        launcher.up(cfg, collector=False, nginx=False)


def test_workshop_up_refuses_a_setting_the_services_would_refuse(tmp_path: Path) -> None:
    """QUESTION_MAX_CHARS=abc used to start the stack, crash all eight services at start and
    wait 60 s for them ("did not become ready; see data/logs/")."""
    from stack.common.settings import check_env
    from stack.native import launcher
    from stack.native.supervisor import LaunchError

    check_env({})  # the defaults are good
    with pytest.raises(ValueError, match=r"^QUESTION_MAX_CHARS='abc': input should be a valid"):
        check_env({"QUESTION_MAX_CHARS": "abc"})
    with pytest.raises(ValueError, match=r"^HTTP_READ_TIMEOUT='0': input should be greater"):
        check_env({"HTTP_READ_TIMEOUT": "0"})
    with pytest.raises(ValueError) as secret:
        check_env({"ADMIN_TOKEN": 123456789})  # type: ignore[dict-item]
    assert str(secret.value).startswith("ADMIN_TOKEN: ") and "123456789" not in str(secret.value)
    cfg = NativeConfig.from_env({"WORKSHOP_DATA_DIR": str(tmp_path)})
    with pytest.raises(LaunchError, match=r"^QUESTION_MAX_CHARS='abc': .*services would not"):
        launcher.up(cfg.with_env({"QUESTION_MAX_CHARS": "abc"}), collector=False, nginx=False)
    assert not (tmp_path / "run").exists()  # nothing was started


def test_redis_runs_its_cron_at_the_configured_hz() -> None:
    from stack.native.supervisor import redis_program

    def hz(cfg: NativeConfig) -> str:
        args = redis_program(cfg).command.split()
        return args[args.index("--hz") + 1]

    assert hz(NativeConfig.from_env({})) == "1"  # issue 19: the idle stack's redis share
    assert hz(NativeConfig.from_env({"REDIS_HZ": "10"})) == "10"  # the bench's baseline arm
    with pytest.raises(ConfigError, match=r"^REDIS_HZ must be a whole number, got 'fast'"):
        NativeConfig.from_env({"REDIS_HZ": "fast"})
    # (a range refusal used to surface as pydantic's ValidationError, naming the field, not
    # the variable: a traceback at `workshop up`)
    with pytest.raises(
        ConfigError, match=r"^REDIS_HZ: input should be greater than or equal to 1, got 0$"
    ):
        NativeConfig.from_env({"REDIS_HZ": "0"})


def test_with_env_sets_the_fields_it_declares_and_checks_them() -> None:
    """The budget bench's baseline arm sets REDIS_HZ through with_env: it must reach the
    config (the launcher reads it there), and a value redis would refuse must not."""
    cfg = NativeConfig.from_env({}).with_env({"REDIS_HZ": "10", "WORKER_BLOCK_MS": "1000"})
    assert cfg.redis_hz == 10 and cfg.extra_env["WORKER_BLOCK_MS"] == "1000"
    with pytest.raises(ConfigError, match="REDIS_HZ"):
        NativeConfig.from_env({}).with_env({"REDIS_HZ": "0"})
