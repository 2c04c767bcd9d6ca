"""Tests for the Docker Compose / VM deployment (docker-compose.vm.yml, stack/Dockerfile,
env.vm.example, scripts/deploy-vm.sh, deploy/terraform). No Docker engine is needed: the compose
file is checked against the compose-spec schema and parsed here, with the interpolation rules
Compose applies."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.vm.yml"
OTLP_FILE = REPO / "docker-compose.otlp.yml"
ENV_EXAMPLE = REPO / "env.vm.example"
COLLECTOR_CONFIGS = [REPO / "collector" / "config.yaml", REPO / "collector" / "offline.yaml"]

# What a deploy must provide (the compose file refuses to start without them).
REQUIRED_ENV = {"CX_PRIVATE_KEY": "test-private-key", "ADMIN_TOKEN": "test-admin-token"}

_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_]\w*)")
COLLECTOR_ENV = re.compile(r"\$\{env:([A-Z][A-Z0-9_]*)(?::-([^}]*))?\}")


class InterpolationError(ValueError):
    pass


def interpolate_str(text: str, env: dict[str, str]) -> str:
    """Compose's interpolation: ${V}, $V, ${V:-d}, ${V-d}, ${V:?err}, ${V?err}, $$."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        op, arg = m.group(2), m.group(3)
        value = env.get(name)
        unset = not value if op in (":-", ":?") else value is None
        if op in (":-", "-"):
            return arg if unset else value  # type: ignore[return-value]
        if op in (":?", "?"):
            if unset:
                raise InterpolationError(f"{name}: {arg}")
            return value  # type: ignore[return-value]
        return value or ""

    return _VAR.sub(sub, text)


def interpolate(obj: Any, env: dict[str, str]) -> Any:
    if isinstance(obj, str):
        return interpolate_str(obj, env)
    if isinstance(obj, list):
        return [interpolate(v, env) for v in obj]
    if isinstance(obj, dict):
        return {k: interpolate(v, env) for k, v in obj.items()}
    return obj


def load_compose(path: Path = COMPOSE_FILE, env: dict[str, str] | None = None) -> dict[str, Any]:
    raw = yaml.safe_load(path.read_text())
    return interpolate(raw, REQUIRED_ENV if env is None else env)


def parse_mem(value: str | int) -> int:
    """Compose byte values: 128M, 1.5g, 512mb, 1024 → bytes (binary units, like Docker)."""
    if isinstance(value, int):
        return value
    m = re.fullmatch(r"\s*([0-9.]+)\s*([bkmg]?)b?\s*", str(value).lower())
    assert m, f"unparseable memory value {value!r}"
    return int(float(m.group(1)) * 1024 ** "bkmg".index(m.group(2) or "b"))


def parse_duration(value: str) -> float:
    """Compose durations: 30s, 1m30s, 500ms, 1h → seconds."""
    parts = re.findall(r"([0-9.]+)(ms|us|h|m|s)", str(value))
    assert parts and "".join(n + u for n, u in parts) == str(value), f"unparseable {value!r}"
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6}
    return sum(float(n) * scale[u] for n, u in parts)


def mem_limit(service: dict[str, Any]) -> int:
    limit = service.get("deploy", {}).get("resources", {}).get("limits", {}).get("memory")
    assert limit is not None, "no deploy.resources.limits.memory"
    return parse_mem(limit)


def env_map(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def parse_env_example(path: Path = ENV_EXAMPLE) -> dict[str, tuple[str, bool]]:
    """NAME → (value, active). `NAME=v` is active; `# NAME=v ...` is documented: compose sets it."""
    entries: dict[str, tuple[str, bool]] = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$", line)
        if not m:
            continue
        commented, name, rest = bool(m.group(1)), m.group(2), m.group(3)
        if rest.startswith(("'", '"')):
            value = shlex.split(rest)[0]
        elif commented:
            value = rest.split()[0] if rest.strip() else ""
        else:
            value = rest
        assert name not in entries, f"{name} appears twice in {path.name}"
        entries[name] = (value, not commented)
    return entries


def collector_env_defaults() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for path in COLLECTOR_CONFIGS:
        if path.exists():
            for name, default in COLLECTOR_ENV.findall(path.read_text()):
                found[name] = default
    return found
