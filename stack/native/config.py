"""Where the native stack puts things and which ports it uses, derived from the environment.

Everything is overridable so a test (or a second attendee on the same machine) can run a
whole stack beside another one: WORKSHOP_DATA_DIR, WORKSHOP_PORT_BASE, REDIS_PORT,
OTLP_GRPC_PORT, OTLP_HTTP_PORT, COLLECTOR_HEALTH_PORT, NGINX_HTTP_PORT, NGINX_HTTPS_PORT.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from stack.common.settings import PORT_OFFSETS, REPO_ROOT, ServiceName


@dataclass(frozen=True)
class NativeConfig:
    data_dir: Path
    port_base: int = 8010
    # Not 6379: a Debian redis-server package starts its own server there (systemd).
    redis_port: int = 6390
    otlp_grpc_port: int = 4317
    otlp_http_port: int = 4318
    collector_health_port: int = 13133
    nginx_http_port: int = 8080
    nginx_https_port: int = 8443
    extra_env: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NativeConfig:
        env = os.environ if env is None else env

        def port(name: str, default: int) -> int:
            raw = env.get(name, "")
            if raw and not raw.isdigit():
                raise ValueError(f"{name} must be a port number, got {raw!r}")
            return int(raw) if raw else default

        return cls(
            data_dir=Path(env.get("WORKSHOP_DATA_DIR") or REPO_ROOT / "data").resolve(),
            port_base=port("WORKSHOP_PORT_BASE", 8010),
            redis_port=port("REDIS_PORT", 6390),
            otlp_grpc_port=port("OTLP_GRPC_PORT", 4317),
            otlp_http_port=port("OTLP_HTTP_PORT", 4318),
            collector_health_port=port("COLLECTOR_HEALTH_PORT", 13133),
            nginx_http_port=port("NGINX_HTTP_PORT", 8080),
            nginx_https_port=port("NGINX_HTTPS_PORT", 8443),
        )

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
        if token := os.environ.get("ADMIN_TOKEN"):
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
