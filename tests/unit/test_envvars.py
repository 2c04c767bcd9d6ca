"""The environment-variable registry (stack/common/envvars.py): every variable the kit reads is
declared there once, and env.vm.example and docs/configuration.md's table are generated from it.

Regenerate both after changing the registry (Settings, NativeConfig or DECLARED):

    .venv/bin/python -m stack.common.envfile --write
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stack.common import envfile, envvars
from stack.common.settings import REPO_ROOT, Settings
from stack.native.config import NativeConfig

PACKAGES = ("stack", "scenarios", "labs", "workshop")
# A read of a named variable: os.environ.get("X"), os.getenv("X"), environ["X"], and
# env.get("X") / env["X"] on the mappings the packages pass around for the environment.
_READ = re.compile(
    r"""(?:\b(?:environ|env|e|base|source|self\.env)(?:\.get\(|\[)|\bgetenv\()\s*"([A-Z][A-Z0-9_]+)\""""
)
_REGENERATE = "run `.venv/bin/python -m stack.common.envfile --write`"


def reads(root: Path = REPO_ROOT) -> dict[str, set[str]]:
    """Variable → the modules under the packages that read it by name."""
    found: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            for name in _READ.findall(path.read_text(encoding="utf-8")):
                found.setdefault(name, set()).add(str(path.relative_to(root)))
    return found


def test_env_example_is_generated_from_the_registry() -> None:
    """env.vm.example is exactly what the registry generates."""
    assert envfile.ENV_EXAMPLE.read_text(encoding="utf-8") == envfile.render_env_example(), (
        f"env.vm.example drifted from the registry: {_REGENERATE}"
    )


def test_docs_table_is_generated_from_the_registry() -> None:
    section = envfile.current_section(envfile.DOC.read_text(encoding="utf-8"))
    assert section == envfile.render_section(), f"docs/configuration.md drifted: {_REGENERATE}"


def test_every_variable_the_packages_read_is_declared() -> None:
    undeclared = {n: sorted(m) for n, m in reads().items() if n not in envvars.registry()}
    assert not undeclared, f"declare these in stack/common/envvars.py: {undeclared}"


def test_the_scan_sees_an_undeclared_read(tmp_path: Path) -> None:
    for package in PACKAGES:
        (tmp_path / package).mkdir()
    (tmp_path / "labs" / "x.py").write_text(
        'import os\nA = os.environ.get("NOT_DECLARED_ANYWHERE", "1")\nB = env["REDIS_URL"]\n'
    )
    found = reads(tmp_path)
    assert set(found) == {"NOT_DECLARED_ANYWHERE", "REDIS_URL"}
    assert "NOT_DECLARED_ANYWHERE" not in envvars.registry()


def test_collector_and_compose_variables_are_declared() -> None:
    used = set(envfile.compose_interpolated()) | envfile.collector_reads()
    for path in (REPO_ROOT / "collector").rglob("*.yaml"):
        used |= set(re.findall(r"\$\{env:([A-Z][A-Z0-9_]*)", path.read_text(encoding="utf-8")))
    assert not used - set(envvars.registry())


def test_everything_the_docker_deployment_reads_is_in_the_example() -> None:
    text = envfile.ENV_EXAMPLE.read_text(encoding="utf-8")
    names = set(re.findall(r"^(?:# )?([A-Z][A-Z0-9_]*)=", text, re.M))
    assert envfile.docker_used() <= names
    assert names <= set(envvars.registry())


def test_the_collectors_native_defaults_are_the_registrys() -> None:
    from stack.native.collector import COLLECTOR_ENV_DEFAULTS

    reg = envvars.registry()
    for name, default in COLLECTOR_ENV_DEFAULTS.items():
        expected = reg[name].default
        if expected.startswith("./"):  # paths: absolute for the native collector
            expected = str(REPO_ROOT / expected[2:])
        assert default == expected, name


def test_settings_and_native_config_are_in_the_registry_with_descriptions() -> None:
    reg = envvars.registry()
    for model in (Settings, NativeConfig):
        for field in model.model_fields.values():
            if field.alias is None:
                continue
            assert field.description, f"{field.alias}: add description= to the field"
            assert reg[field.alias].description
    assert reg["WORKSHOP_PORT_BASE"].readers == (envvars.SERVICES, envvars.NATIVE)
    assert reg["ADMIN_TOKEN"].secret and reg["ADMIN_TOKEN"].default == ""


def test_every_declared_variable_is_documented() -> None:
    for var in envvars.registry().values():
        assert var.description and var.readers, var.name
        assert var.name == var.name.upper()


def test_get_is_environ_get_with_the_registered_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_METRIC_EXPORT_INTERVAL", raising=False)
    assert envvars.get("OTEL_METRIC_EXPORT_INTERVAL") == "10000"
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "")
    assert envvars.get("OTEL_METRIC_EXPORT_INTERVAL") == ""  # set but empty: as os.environ.get
    assert envvars.get("NGINX_BIND_HOST", {"NGINX_BIND_HOST": "127.0.0.1"}) == "127.0.0.1"
    with pytest.raises(KeyError):
        envvars.get("NOT_DECLARED_ANYWHERE")


def test_a_compose_setting_of_a_user_variable_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A variable in a user section that compose sets for its containers would be a dead line."""
    monkeypatch.setattr(envfile, "compose_set", lambda: {"CX_DOMAIN"})
    monkeypatch.setattr(envfile, "compose_interpolated", lambda: {})
    with pytest.raises(ValueError, match="CX_DOMAIN"):
        envfile.render_env_example()
