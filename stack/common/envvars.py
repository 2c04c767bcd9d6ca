"""Every environment variable the kit reads, declared once: name, default, who reads it, what
it does.

Three sources make up the registry (`registry()`):

* `Settings` (stack/common/settings.py): what the services read, one field per variable;
* `NativeConfig` (stack/native/config.py): the native stack's data dir and ports;
* `DECLARED` below: everything else — the collector's `${env:X}`, the few direct reads
  (`os.environ.get`) in the packages, the Docker deployment's own variables, the tests'.

`get(name)` is `os.environ.get(name, <registered default>)` for the direct reads. env.vm.example
and the table in docs/configuration.md are generated from the registry (`python -m
stack.common.envfile --write`); tests/unit/test_envvars.py fails when either drifts, when a
module reads a variable that is not declared, or when the collector or the compose files use one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from pydantic import SecretStr
from pydantic.fields import FieldInfo

from stack.common.settings import REPO_ROOT, Settings

SERVICES = "services (Settings)"
NATIVE = "native launcher (NativeConfig)"
COLLECTOR = "collector (collector/config.yaml)"
COMPOSE = "docker-compose.vm.yml"


@dataclass(frozen=True)
class EnvVar:
    name: str
    # As written in an env file: "" is empty/unset; paths relative to the repository (./data).
    default: str
    description: str
    readers: tuple[str, ...]
    # When docker-compose.vm.yml sets the variable for its containers: the Docker value and why.
    docker: str = ""
    secret: bool = False


def _var(name: str, default: str, description: str, *readers: str, docker: str = "") -> EnvVar:
    return EnvVar(name, default, description, readers, docker)


# What Settings and NativeConfig do not declare. Names they declare get their readers added here.
DECLARED: tuple[EnvVar, ...] = (
    # --- the collector (collector/config.yaml reads them as ${env:NAME:-default}) -------------
    _var(
        "CX_SUBSYSTEM_NAME",
        "collector",
        "The collector's own subsystem name (host metrics and other signals without service.name).",
        COLLECTOR,
    ),
    _var(
        "COLLECTOR_LOG_LEVEL",
        "info",
        "The collector's own log level: debug, info, warn, error.",
        COLLECTOR,
    ),
    _var(
        "HOSTMETRICS_INTERVAL",
        "10s",
        "How often the collector samples host metrics (CPU, memory, disk, network).",
        COLLECTOR,
    ),
    _var(
        "HOSTMETRICS_PROCESS_INTERVAL",
        "30s",
        "How often the collector samples the kit's processes (RSS, CPU, threads per service).",
        COLLECTOR,
    ),
    _var(
        "RESOURCE_DETECTORS",
        "[env, system]",
        "The collector's resource detectors (host.name, host.id, cloud.*), first wins.",
        COLLECTOR,
        docker='Docker default: "[env, ec2, docker, system]" (EC2, e.g. Terraform); '
        'scripts/deploy-vm.sh writes "[env, docker, system]" here on hosts that are not EC2 '
        "(ec2 would call the instance metadata address). Uncomment to choose yourself.",
    ),
    _var(
        "OTEL_COLLECTOR_HOST",
        "127.0.0.1",
        "Address the collector's OTLP receivers and health check listen on.",
        COLLECTOR,
        docker="0.0.0.0 (inside the network only)",
    ),
    _var(
        "HOSTMETRICS_ROOT",
        "/",
        "Root of the file system whose /proc, /sys and mounts host metrics read.",
        COLLECTOR,
        docker="/hostfs (the host's / mounted read-only)",
    ),
    _var(
        "COLLECTOR_MEMORY_LIMIT_MIB",
        "400",
        "The collector's memory_limiter limit (MiB).",
        COLLECTOR,
        docker="200 (container limit 256M)",
    ),
    _var(
        "TELEMETRY_DIR",
        "./data/telemetry",
        "Where the collector writes its local copy of every signal (JSON lines) and the "
        "`workshop` commands, labs and gateway read it; empty: `telemetry/` under "
        "WORKSHOP_DATA_DIR.",
        COLLECTOR,
        "stack/gateway/telemetry_api.py",
        "stack/native/config.py",
        "workshop/traces_cmd.py",
        "labs/runtime/lab.py",
        docker="/tmp/telemetry (tmpfs; local copy online too)",
    ),
    _var(
        "TELEMETRY_MAX_MB",
        "50",
        "Rotation size of each local-copy file (MB).",
        COLLECTOR,
        docker="3 (rotation size of each local-copy file)",
    ),
    _var(
        "TELEMETRY_MAX_BACKUPS",
        "2",
        "Rotated local-copy files kept per signal.",
        COLLECTOR,
        docker="1 (rotated backups kept per signal)",
    ),
    # --- telemetry, read directly ---------------------------------------------------------
    _var(
        "OTEL_METRIC_EXPORT_INTERVAL",
        "10000",
        "Metric export interval (milliseconds).",
        "stack/common/telemetry.py",
    ),
    _var(
        "OTEL_PROPAGATORS",
        "",
        "Context propagators (the OTel SDK's variable). Unset: W3C trace context and baggage "
        "by the kit's propagator, which reads the headers the kit writes at a third of the "
        "SDK's CPU and hands anything else to the SDK's; set (e.g. `tracecontext,baggage`): "
        "the SDK's choice, as the SDK documents it (the budget bench's baseline arm).",
        "OpenTelemetry SDK",
        "stack/common/propagation.py",
    ),
    _var(
        "OTEL_BSP_SCHEDULE_DELAY",
        "5000",
        "Span batch export delay (milliseconds): the OTel SDK's, and how long the gateway's "
        "telemetry API waits for a flush.",
        "OpenTelemetry SDK",
        "stack/gateway/telemetry_api.py",
    ),
    # --- native processes -------------------------------------------------------------------
    _var(
        "NGINX_BIND_HOST",
        "0.0.0.0",
        "Address the native nginx front listens on.",
        "stack/native/nginx.py",
    ),
    _var(
        "COLLECTOR_CONFIG_OVERLAYS",
        "",
        "Extra collector configs merged last (paths separated by the OS path separator).",
        "stack/native/collector.py",
    ),
    _var(
        "COLLECTOR_LOG",
        "",
        "The collector log `workshop doctor` reads; empty: data/logs/collector.log.",
        "workshop/doctor.py",
    ),
    # --- Coralogix APIs, read directly --------------------------------------------------------
    _var(
        "DATAPRIME_API_URL",
        "",
        "DataPrime query API base URL; empty: derived from CX_REGION or CX_DOMAIN.",
        "stack/common/dataprime_client.py",
        "stack/common/room_proxy.py",
        "workshop/doctor.py",
    ),
    _var(
        "METRICS_API_URL",
        "",
        "Metrics (PromQL) API base URL; empty: derived from CX_REGION or CX_DOMAIN.",
        "stack/common/metrics_client.py",
        "stack/common/room_proxy.py",
    ),
    # --- labs and rooms ------------------------------------------------------------------------
    _var(
        "WORKSHOP_ATTENDEE",
        "",
        "The attendee this process acts for (a room sets it per attendee).",
        "stack/common/attendee.py",
    ),
    _var(
        "LAB_GATEWAY_URL",
        "",
        "The api-gateway a lab drives; empty: the local native stack.",
        "labs/runtime/lab.py",
        docker="http://api-gateway:8010 (the lab container)",
    ),
    _var(
        "LAB_TELEMETRY_DIR",
        "",
        "Local telemetry a lab's offline checks read; empty: TELEMETRY_DIR, then the stack's.",
        "labs/runtime/lab.py",
    ),
    _var(
        "LAB_TRAFFIC_ENGINE",
        "",
        "Traffic engine of a lab's load (overrides the lab spec's).",
        "labs/runtime/lab.py",
    ),
    _var(
        "LAB_FLUSH_TIMEOUT",
        "20",
        "How long a lab waits for telemetry to arrive (seconds).",
        "labs/runtime/lab.py",
    ),
    _var(
        "LAB_ROOM_EVENT_POLL",
        "1",
        "How often a lab polls the room's events (seconds).",
        "labs/runtime/lab.py",
    ),
    _var(
        "WORKSHOP_CHP_DIR",
        "~/.cache/dataprime-workshop/chp",
        "Where the room's configurable-http-proxy is installed.",
        "labs/runtime/hub.py",
    ),
    _var(
        "ROOM_LAB_URL",
        "",
        "The lab URL printed on room handouts; empty: the local hub.",
        "workshop/room_cmd.py",
    ),
    _var(
        "WORKSHOP_FAULT_STATE_DIR",
        "",
        "Where scenario fault state is kept; empty: reports/fault-state.",
        "scenarios/faults.py",
    ),
    # --- the benchmark ------------------------------------------------------------------------
    _var(
        "CHAIN_NEXT",
        "",
        "The next hop of the benchmark's HTTP chain (set by `workshop bench`).",
        "workshop/bench_chain.py",
    ),
    _var(
        "BENCH_POLL_TIMEOUT",
        "30",
        "How long the benchmark's Locust users poll a job (seconds).",
        "workshop/bench_locustfile.py",
    ),
    # --- the Docker deployment only ------------------------------------------------------------
    _var(
        "KIT_IMAGE",
        "dataprime-workshop",
        "Name of the kit's images (<KIT_IMAGE>:<KIT_VERSION>; the lab profile's: <KIT_IMAGE>-lab).",
        COMPOSE,
    ),
    _var(
        "KIT_VERSION",
        "0.1.0",
        "Image tag for the kit's image (dataprime-workshop:<KIT_VERSION>).",
        COMPOSE,
    ),
    _var(
        "DOCKER_GID",
        "999",
        "Group id of the host's `docker` group: lets the collector's docker detector read the "
        "socket. deploy-vm.sh and the Terraform user-data fill it in (getent group docker).",
        COMPOSE,
    ),
    _var(
        "JUPYTER_TOKEN",
        "",
        "Lab profile: JupyterLab token (empty = Jupyter generates one, see `docker compose logs "
        "jupyter`).",
        COMPOSE,
        "JupyterLab (stack/Dockerfile)",
    ),
    _var(
        "JUPYTER_TERMINALS",
        "false",
        "JupyterLab terminals (a shell in the lab container): off unless the instructor turns "
        "them on.",
        COMPOSE,
    ),
    _var(
        "LAB_USER",
        "workshop",
        "Lab profile: the basic-auth user for the Locust UI at /locust/ (deploy-vm.sh --lab and "
        "the Terraform user-data generate the htpasswd file from these two).",
        "scripts/deploy-vm.sh",
    ),
    _var(
        "LAB_PASSWORD",
        "",
        "Lab profile: that user's password.",
        "scripts/deploy-vm.sh",
    ),
    _var(
        "LOCUST_LOCUSTFILE",
        "scenarios/locustfile.py",
        "Locustfile the Locust web UI loads (path inside the image).",
        COMPOSE,
    ),
    _var(
        "OTLP_PUBLISH_ADDRESS",
        "127.0.0.1",
        "docker-compose.otlp.yml only: address OTLP 4317/4318 are published on (loopback = "
        "reach it through an SSH tunnel; 0.0.0.0 = the world, then also open the ports in the "
        "firewall).",
        "docker-compose.otlp.yml",
    ),
    # --- tests and the host ---------------------------------------------------------------------
    _var(
        "TEST_PORT_BASE",
        "18000",
        "Base of the ports the test suite's stacks use.",
        "tests/conftest.py",
    ),
    _var(
        "TEST_WORKERS",
        "2",
        "`make test`: pytest-xdist workers for the live-stack tests (each starts its own stack "
        "on TEST_PORT_BASE + 1000 per worker; a test that fails there is run once more alone); "
        "0 runs them in one process, one after another.",
        "scripts/run-tests.sh",
    ),
    _var("CI", "", "true: the test suite runs as in CI (stricter).", "tests/conftest.py"),
    _var(
        "SINK_GRPC_PORT",
        "",
        "Port of the test sink the collector's test overlay exports to.",
        "collector/test/to-sink.yaml",
    ),
    _var(
        "SINK_HEALTH_PORT",
        "",
        "Health-check port of the test sink (a second collector standing in for Coralogix).",
        "collector/test/coralogix-sink.yaml",
    ),
    _var(
        "SINK_DIR",
        "",
        "Where the test sink writes what it receives.",
        "collector/test/coralogix-sink.yaml",
    ),
    _var(
        "DISPLAY",
        "",
        "The X display (the host's): `workshop load` opens a browser only when set.",
        "workshop/load_cmd.py",
    ),
    _var(
        "PYTHONPATH",
        "",
        "The host's; `workshop lab` prepends the repository for the lab process.",
        "workshop/lab_cmd.py",
    ),
)

# Other readers of variables Settings or NativeConfig declare.
ALSO_READ_BY: dict[str, tuple[str, ...]] = {
    "CX_PRIVATE_KEY": (COLLECTOR, "stack/native/collector.py", "workshop/doctor.py"),
    "CX_DOMAIN": (COLLECTOR,),
    "CX_APPLICATION_NAME": (COLLECTOR,),
    "OTLP_GRPC_PORT": (COLLECTOR,),
    "OTLP_HTTP_PORT": (COLLECTOR,),
    "COLLECTOR_HEALTH_PORT": (COLLECTOR,),
    "OTEL_SDK_DISABLED": ("stack/common/telemetry.py",),
    "ADMIN_TOKEN": (NATIVE,),
}

# What docker-compose.vm.yml sets for its containers (over .env) instead of the native default.
DOCKER_VALUES: dict[str, str] = {
    "WORKSHOP_DATA_DIR": "/data (volume app-data, storage-service only)",
    "WORKSHOP_BIND_HOST": "0.0.0.0",
    "WORKSHOP_PORT_BASE": "8010 (pinned: health checks and nginx)",
    "SERVICE_URL_TEMPLATE": "http://{name}:{port}",
    "REDIS_URL": "redis://redis:6379/0",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector:4318",
    "OTLP_GRPC_PORT": "4317",
    "OTLP_HTTP_PORT": "4318",
    "COLLECTOR_HEALTH_PORT": "13133",
}


def _env_text(field: FieldInfo) -> str:
    """A field's default as written in an env file."""
    default = field.get_default(call_default_factory=True)
    if isinstance(default, SecretStr):
        return default.get_secret_value()
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, Path):
        rel = default.resolve().relative_to(REPO_ROOT)
        return f"./{rel}"
    return str(default)


def _from_model(fields: Mapping[str, FieldInfo], reader: str) -> list[EnvVar]:
    found = []
    for field in fields.values():
        if field.alias is None:
            continue  # not read from the environment (NativeConfig.extra_env)
        secret = field.annotation is SecretStr
        found.append(
            EnvVar(
                field.alias,
                _env_text(field),
                field.description or "",
                (reader,),
                DOCKER_VALUES.get(field.alias, ""),
                secret,
            )
        )
    return found


@lru_cache(maxsize=1)
def registry() -> dict[str, EnvVar]:
    """Name → variable, in declaration order (Settings, NativeConfig, DECLARED)."""
    from stack.native.config import NativeConfig  # imports this package's settings module

    merged: dict[str, EnvVar] = {}
    for var in [
        *_from_model(Settings.model_fields, SERVICES),
        *_from_model(NativeConfig.model_fields, NATIVE),
        *DECLARED,
    ]:
        if (known := merged.get(var.name)) is None:
            merged[var.name] = var
            continue
        # Declared twice (WORKSHOP_DATA_DIR, WORKSHOP_PORT_BASE): the first declaration's
        # default and description win; the readers add up.
        if var.default != known.default:
            raise ValueError(f"{var.name}: defaults differ ({known.default!r}, {var.default!r})")
        merged[var.name] = replace(known, readers=known.readers + var.readers)
    for name, readers in ALSO_READ_BY.items():
        merged[name] = replace(merged[name], readers=merged[name].readers + readers)
    return merged


def get(name: str, env: Mapping[str, str] | None = None) -> str:
    """`os.environ.get(name, default)` with the default the registry declares for `name`."""
    return (os.environ if env is None else env).get(name, registry()[name].default)
