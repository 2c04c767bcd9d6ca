"""Where the native stack puts things and which ports it uses, derived from the environment.

Everything is overridable so a test (or a second attendee on the same machine) can run a
whole stack beside another one: WORKSHOP_DATA_DIR, WORKSHOP_PORT_BASE, REDIS_PORT,
OTLP_GRPC_PORT, OTLP_HTTP_PORT, COLLECTOR_HEALTH_PORT, NGINX_HTTP_PORT, NGINX_HTTPS_PORT.

`NativeConfig()` reads them from the process environment, `NativeConfig.from_env(env)` from
any mapping; `cfg.to_env()` gives the variables back (`from_env(cfg.to_env()) == cfg`) and
`cfg.shifted(offset)` is a second stack beside `cfg`, every port moved by `offset`.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Collection, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from stack.common import envvars
from stack.common.settings import PORT_OFFSETS, REPO_ROOT, ServiceName

# The ports (`shifted` moves them all); data_dir is the only other field read from the env.
_PORT_FIELDS = (
    "port_base",
    "redis_port",
    "otlp_grpc_port",
    "otlp_http_port",
    "collector_health_port",
    "nginx_http_port",
    "nginx_https_port",
)


class ConfigError(ValueError):
    """A variable that cannot be used as it is set (the message names it)."""


# The mapping the environment source reads: the process environment unless from_env says.
_SOURCE: ContextVar[Mapping[str, str] | None] = ContextVar("native_config_env", default=None)


class NativeConfig(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    data_dir: Path = Field(
        REPO_ROOT / "data",
        alias="WORKSHOP_DATA_DIR",
        description="Where the native stack keeps its data, logs and run files.",
    )
    port_base: int = Field(
        8010,
        alias="WORKSHOP_PORT_BASE",
        description="Port of api-gateway; every service's port is this plus its offset.",
    )
    # Not 6379: a Debian redis-server package starts its own server there (systemd).
    redis_port: int = Field(
        6390, alias="REDIS_PORT", description="Port of the native stack's redis-server."
    )
    otlp_grpc_port: int = Field(
        4317, alias="OTLP_GRPC_PORT", description="Port the collector receives OTLP/gRPC on."
    )
    otlp_http_port: int = Field(
        4318, alias="OTLP_HTTP_PORT", description="Port the collector receives OTLP/HTTP on."
    )
    collector_health_port: int = Field(
        13133,
        alias="COLLECTOR_HEALTH_PORT",
        description="Port of the collector's health_check extension.",
    )
    nginx_http_port: int = Field(
        8080, alias="NGINX_HTTP_PORT", description="Port of the native nginx front (HTTP)."
    )
    nginx_https_port: int = Field(
        8443, alias="NGINX_HTTPS_PORT", description="Port of the native nginx front (HTTPS)."
    )
    # Redis runs its background cron (expiry sampling, client timeouts) hz times a second;
    # its default 10 was a fifth of the idle stack's CPU. Keys still expire when read, a new
    # stream entry still wakes a blocked reader at once. Redis allows 1–500 (redis.conf, `hz`).
    redis_hz: int = Field(
        1,
        alias="REDIS_HZ",
        ge=1,
        le=500,
        description="How often redis-server runs its background tasks per second (its `hz`).",
    )
    # Not from the environment: what this stack's processes get on top of service_env().
    extra_env: Mapping[str, str] = Field(default_factory=dict, exclude=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Keyword arguments win over the process environment; nothing else is read.
        return init_settings, _Environment(settings_cls)

    @classmethod
    def env_names(cls) -> dict[str, str]:
        """Field name → the environment variable it is read from."""
        return {
            name: f.alias
            for name, f in cls.model_fields.items()
            if f.alias is not None and name != "extra_env"
        }

    @classmethod
    def values_from(cls, env: Mapping[str, str], skip: Collection[str] = ()) -> dict[str, Any]:
        """The fields `env` sets (empty means unset), checked: a port or a count must be a number.
        Fields named in `skip` (by field or variable name) are not read."""
        values: dict[str, Any] = {}
        for name, var in cls.env_names().items():
            raw = env.get(var, "")
            if not raw or name in skip or var in skip:
                continue
            if name in _PORT_FIELDS:
                if not raw.isdigit():
                    raise ConfigError(f"{var} must be a port number, got {raw!r}")
                values[name] = int(raw)
            elif cls.model_fields[name].annotation is int:
                if not raw.isdigit():
                    raise ConfigError(f"{var} must be a whole number, got {raw!r}")
                values[name] = int(raw)
            else:
                values[name] = Path(raw).resolve()
        return values

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NativeConfig:
        """The config `env` describes (default: the process environment) and nothing else."""
        token = _SOURCE.set(os.environ if env is None else env)
        try:
            return cls()
        except ValidationError as exc:  # a value out of its range (REDIS_HZ=0): name the variable
            err = exc.errors()[0]
            name = str(err["loc"][0]) if err["loc"] else ""
            field = cls.model_fields.get(name)
            var = field.alias if field is not None and field.alias else name
            raise ConfigError(f"{var}: {err['msg'].lower()}, got {err.get('input')!r}") from None
        finally:
            _SOURCE.reset(token)

    def to_env(self) -> dict[str, str]:
        """The variables that reproduce this config: `from_env(cfg.to_env()) == cfg`
        (extra_env aside, which is not configuration but what the processes get)."""
        return {var: str(getattr(self, name)) for name, var in self.env_names().items()}

    def shifted(self, offset: int, data_dir: Path | None = None) -> NativeConfig:
        """Another stack beside this one: every port moved by `offset`, its own data dir
        (resolved; default this one's) and a copy of extra_env (to change independently)."""
        update: dict[str, Any] = {name: getattr(self, name) + offset for name in _PORT_FIELDS}
        update["data_dir"] = data_dir.resolve() if data_dir is not None else self.data_dir
        update["extra_env"] = dict(self.extra_env)
        return self.model_copy(update=update)

    def with_env(self, env: Mapping[str, str]) -> NativeConfig:
        """This config with `env` layered over its extra_env; variables the config itself
        declares (REDIS_HZ, a port) also set its fields, checked as `from_env` checks them."""
        checked = NativeConfig.from_env(env)
        update: dict[str, Any] = {name: getattr(checked, name) for name in self.values_from(env)}
        return self.model_copy(update={**update, "extra_env": {**self.extra_env, **env}})

    # -- paths ---------------------------------------------------------------------------
    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def redis_dir(self) -> Path:
        return self.data_dir / "redis"

    @property
    def telemetry_dir(self) -> Path:
        return self.data_dir / "telemetry"

    @property
    def supervisor_conf(self) -> Path:
        return self.run_dir / "supervisord.conf"

    @property
    def supervisor_socket(self) -> Path:
        # Unix socket paths are limited to 108 bytes; keep it short whatever the data dir.
        digest = hashlib.sha1(str(self.data_dir).encode()).hexdigest()[:12]
        return Path("/tmp") / f"dpw-{digest}.sock"

    @property
    def admin_token_file(self) -> Path:
        return self.data_dir / "admin-token"

    # -- ports ---------------------------------------------------------------------------
    def service_port(self, service: ServiceName) -> int:
        return self.port_base + PORT_OFFSETS[service]

    def ports(self, *, collector: bool, nginx: bool) -> dict[int, str]:
        ports = {self.redis_port: "redis-server"}
        if collector:
            ports[self.otlp_grpc_port] = "collector (OTLP gRPC)"
            ports[self.otlp_http_port] = "collector (OTLP HTTP)"
            ports[self.collector_health_port] = "collector (health check)"
        for service in ServiceName:
            ports[self.service_port(service)] = service.value
        if nginx:
            ports[self.nginx_http_port] = "nginx (HTTP)"
            ports[self.nginx_https_port] = "nginx (HTTPS)"
        return ports

    def url(self, service: ServiceName) -> str:
        return f"http://127.0.0.1:{self.service_port(service)}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def service_env(self) -> dict[str, str]:
        """The environment every service process gets (on top of the caller's)."""
        return {
            "WORKSHOP_DATA_DIR": str(self.data_dir),
            "WORKSHOP_PORT_BASE": str(self.port_base),
            "REDIS_URL": self.redis_url,
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{self.otlp_http_port}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }

    def ensure_admin_token(self) -> str:
        """ADMIN_TOKEN if set; otherwise generate one once and keep it under data/ (0600)."""
        if token := envvars.get("ADMIN_TOKEN"):
            return token
        path = self.admin_token_file
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        token = secrets.token_urlsafe(24)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
        return token


class _Environment(PydanticBaseSettingsSource):
    """The process environment (or from_env's mapping), read by `NativeConfig.values_from`."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads every field at once

    def __call__(self) -> dict[str, Any]:
        env = _SOURCE.get()
        # Keyword arguments win: a variable they override is not even checked.
        given = set(self.current_state)
        return NativeConfig.values_from(os.environ if env is None else env, skip=given)


def local_telemetry_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the kit's readers (`workshop traces`, `doctor`, the labs) find the local copy of
    every signal: TELEMETRY_DIR (a relative path from the repository), else the native
    stack's, under WORKSHOP_DATA_DIR, where its collector writes."""
    e = os.environ if env is None else env
    if raw := e.get("TELEMETRY_DIR", "").strip():
        path = Path(raw).expanduser()
        return path if path.is_absolute() else REPO_ROOT / path
    return NativeConfig.from_env(e).telemetry_dir
