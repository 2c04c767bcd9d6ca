"""Native and Docker runs share every environment variable name and default:
env.vm.example ↔ stack/common/settings.py (Settings) ↔ collector ${env:X:-default} ↔ compose."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import SecretStr, TypeAdapter

from stack.common.envvars import registry
from stack.common.settings import REPO_ROOT, Settings
from tests.deploy import (
    OTLP_FILE,
    REPO,
    collector_env_defaults,
    env_map,
    load_compose,
    parse_env_example,
)

# Names only the Docker deployment has (no native counterpart), and where they are used.
DOCKER_ONLY = {
    "KIT_IMAGE": "docker-compose.vm.yml",
    "KIT_VERSION": "docker-compose.vm.yml",
    "DOCKER_GID": "docker-compose.vm.yml",
    "JUPYTER_TERMINALS": "docker-compose.vm.yml",
    "JUPYTER_TOKEN": "stack/Dockerfile",  # read by Jupyter itself (lab image)
    "LAB_USER": "scripts/deploy-vm.sh",
    "LAB_PASSWORD": "scripts/deploy-vm.sh",
    "LOCUST_LOCUSTFILE": "docker-compose.vm.yml",
    "OTLP_PUBLISH_ADDRESS": "docker-compose.otlp.yml",
}


@pytest.fixture(scope="module")
def example() -> dict[str, tuple[str, bool]]:
    return parse_env_example()


@pytest.fixture(scope="module")
def compose_env() -> dict[str, set[str]]:
    """Variable → the values docker-compose.vm.yml gives it in any container's environment."""
    services = load_compose()["services"]
    found: dict[str, set[str]] = {}
    for s in services.values():
        for k, v in env_map(s).items():
            found.setdefault(k, set()).add(v)
    return found


def _same(field_name: str, raw: str) -> bool:
    field = Settings.model_fields[field_name]
    default = field.default
    if isinstance(default, SecretStr):
        return raw == default.get_secret_value()
    if isinstance(default, Path):
        return (REPO_ROOT / raw).resolve() == default.resolve()
    return TypeAdapter(field.annotation).validate_python(raw) == default


def test_every_settings_variable_is_in_the_example_with_its_default(example: dict) -> None:
    missing, different = [], []
    for name, field in Settings.model_fields.items():
        alias = field.alias
        if alias not in example:
            missing.append(alias)
        elif not _same(name, example[alias][0]):
            different.append(f"{alias}={example[alias][0]!r} (Settings: {field.default!r})")
    assert not missing, f"env.vm.example lacks {missing}"
    assert not different, f"env.vm.example defaults differ from Settings: {different}"


def test_every_collector_variable_is_in_the_example_with_its_default(example: dict) -> None:
    collector = collector_env_defaults()
    assert collector, "no ${env:X} in the collector configs?"
    missing = sorted(set(collector) - set(example))
    assert not missing, f"env.vm.example lacks collector variables {missing}"
    different = {n: (example[n][0], d) for n, d in collector.items() if example[n][0] != (d or "")}
    assert not different, f"example vs collector default: {different}"


def test_collector_and_settings_agree_on_shared_names() -> None:
    collector = collector_env_defaults()
    for name, field in Settings.model_fields.items():
        if field.alias in collector:
            assert _same(name, collector[field.alias] or ""), field.alias


def test_direct_environ_reads_in_stack_are_in_the_example(example: dict) -> None:
    """os.environ.get("X", "default") outside Settings (e.g. OTEL_METRIC_EXPORT_INTERVAL)."""
    pattern = re.compile(r"os\.environ\.get\(\s*\"([A-Z][A-Z0-9_]*)\"\s*(?:,\s*\"([^\"]*)\")?")
    for path in (REPO / "stack").rglob("*.py"):
        if "native" in path.parts:
            continue  # the native launcher's own process wiring
        for name, default in pattern.findall(path.read_text()):
            assert name in example, f"{path.relative_to(REPO)} reads {name}"
            if default:
                assert example[name][0] == default, (name, example[name][0], default)


def test_commented_means_set_by_compose(example: dict, compose_env: dict) -> None:
    """`# NAME=v` lines are the ones the compose file sets for Docker; active lines are the
    user's and compose must not silently override them."""
    for name, (_value, active) in example.items():
        values = compose_env.get(name)
        if active:
            if values is None:
                continue
            compose_text = (REPO / "docker-compose.vm.yml").read_text()
            assert re.search(rf"{name}: \$\{{{name}[:}}]", compose_text), (
                f"{name} is a user setting in env.vm.example but compose overrides it"
            )
        else:
            assert values, f"{name} is commented out (Docker-set) but compose does not set it"


def test_docker_only_names_are_used_and_documented(example: dict) -> None:
    known = {f.alias for f in Settings.model_fields.values()} | set(collector_env_defaults())
    direct = {"OTEL_METRIC_EXPORT_INTERVAL", "LAB_GATEWAY_URL"}
    extra = set(example) - known - direct
    assert not set(example) - set(registry()), "env.vm.example names outside the registry"
    assert extra == set(DOCKER_ONLY), f"undocumented extra names: {extra ^ set(DOCKER_ONLY)}"
    for name, where in DOCKER_ONLY.items():
        text = (REPO / where).read_text() if where != "stack/Dockerfile" else "JUPYTER_TOKEN"
        assert name in text or name in OTLP_FILE.read_text(), f"{name} unused in {where}"


def test_compose_defaults_equal_the_example(example: dict) -> None:
    """${NAME:-default} in the compose files uses the example's default for user settings."""
    text = (REPO / "docker-compose.vm.yml").read_text() + OTLP_FILE.read_text()
    for name, default in re.findall(r"\$\{([A-Z][A-Z0-9_]*):-([^}]*)\}", text):
        if name in example and example[name][1]:
            assert example[name][0] == default, f"{name}: compose {default!r} vs example"
