"""How to run the workshop's OpenTelemetry Collector as a native process.

The binary is built by ``scripts/build-collector.sh`` into ``bin/otelcol-workshop``; the
configuration is ``collector/config.yaml`` (production, exports to Coralogix) plus
``collector/offline.yaml`` when no ``CX_PRIVATE_KEY`` is set (all signals to JSON-lines
files under ``TELEMETRY_DIR``). The environment defaults below mirror the ``${env:VAR:-default}``
defaults in the config, except that paths are made absolute so the collector can be started
from any working directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
COLLECTOR_DIR = REPO_ROOT / "collector"
PRODUCTION_CONFIG = COLLECTOR_DIR / "config.yaml"
OFFLINE_CONFIG = COLLECTOR_DIR / "offline.yaml"
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-collector.sh"

#: Defaults for every variable the collector config reads (see collector/README.md).
#: ``CX_PRIVATE_KEY`` is deliberately absent: it is never defaulted.
COLLECTOR_ENV_DEFAULTS: dict[str, str] = {
    "OTEL_COLLECTOR_HOST": "127.0.0.1",
    "OTLP_GRPC_PORT": "4317",
    "OTLP_HTTP_PORT": "4318",
    "COLLECTOR_HEALTH_PORT": "13133",
    "COLLECTOR_MEMORY_LIMIT_MIB": "400",
    "COLLECTOR_LOG_LEVEL": "info",
    "HOSTMETRICS_ROOT": "/",
    "HOSTMETRICS_INTERVAL": "10s",
    "HOSTMETRICS_PROCESS_INTERVAL": "30s",
    "RESOURCE_DETECTORS": "[env, system]",
    "CX_DOMAIN": "eu2.coralogix.com",
    "CX_APPLICATION_NAME": "dataprime-workshop",
    "CX_SUBSYSTEM_NAME": "collector",
    "TELEMETRY_DIR": str(REPO_ROOT / "data" / "telemetry"),
}


def collector_binary() -> Path:
    """Path of the built collector (it may not exist yet: run scripts/build-collector.sh)."""
    return REPO_ROOT / "bin" / "otelcol-workshop"


def is_online(env: Mapping[str, str]) -> bool:
    """True when telemetry should go to Coralogix (CX_PRIVATE_KEY set and non-empty)."""
    return bool((env.get("CX_PRIVATE_KEY") or "").strip())


#: Never handed to the collector through the generated supervisor file: it inherits them.
SECRET_VARS = frozenset({"CX_PRIVATE_KEY", "CX_API_KEY", "ADMIN_TOKEN"})


def collector_command(*, online: bool, overlays: Sequence[str | Path] = ()) -> list[str]:
    """argv for the collector: production config, plus the offline overlay when not online,
    plus any extra overlays (``COLLECTOR_CONFIG_OVERLAYS``), merged last."""
    cmd = [str(collector_binary()), "--config", str(PRODUCTION_CONFIG)]
    if not online:
        cmd += ["--config", str(OFFLINE_CONFIG)]
    for overlay in overlays:
        cmd += ["--config", str(overlay)]
    return cmd


def config_overlays(env: Mapping[str, str]) -> list[Path]:
    """``COLLECTOR_CONFIG_OVERLAYS``: config files (os.pathsep-separated) merged after the
    kit's own, e.g. to point the Coralogix exporters at a local stand-in in tests."""
    raw = env.get("COLLECTOR_CONFIG_OVERLAYS") or ""
    return [Path(p).expanduser().resolve() for p in raw.split(os.pathsep) if p.strip()]


def collector_env(base: Mapping[str, str]) -> dict[str, str]:
    """``base`` plus a default for every collector variable that is unset or empty.

    A relative ``TELEMETRY_DIR`` is resolved against the repository root, so the file
    exporter and the kit's readers agree whatever the working directory is.
    """
    env = dict(base)
    for key, default in COLLECTOR_ENV_DEFAULTS.items():
        if not env.get(key):
            env[key] = default
    telemetry_dir = Path(env["TELEMETRY_DIR"]).expanduser()
    if not telemetry_dir.is_absolute():
        telemetry_dir = REPO_ROOT / telemetry_dir
    env["TELEMETRY_DIR"] = str(telemetry_dir)
    return env
