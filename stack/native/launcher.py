"""`workshop up` / `down` / `status` for the native stack, as plain functions the CLI and the
tests share. Order: redis → collector (health check) → services (/ready) → nginx."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from stack.common.settings import ServiceName, check_env
from stack.native.config import NativeConfig
from stack.native.supervisor import (
    PYTHON_SERVICES,
    LaunchError,
    Program,
    Supervisor,
    check_ports,
    http_ok,
    redis_ping,
    redis_program,
    render_conf,
    service_programs,
    wait_all_ready,
    wait_for,
)

Progress = Callable[[str], None]


@dataclass
class UpResult:
    seconds: float
    collector: bool
    nginx: bool
    online: bool
    urls: dict[str, str] = field(default_factory=dict)


def _collector_program(cfg: NativeConfig) -> tuple[Program, bool]:
    from stack.native import collector

    binary = collector.collector_binary()
    if not binary.exists():
        raise LaunchError(
            f"the collector is not built ({binary}): run `make collector` "
            "(needs Go ≥ 1.22: `apt-get install golang` or https://go.dev/dl/)"
        )
    # What the stack's owner set: their environment (the launcher's process) and the stack's
    # extra_env. Secrets are read here but never written into the generated supervisor file:
    # supervisord and so the collector inherit CX_PRIVATE_KEY from this process.
    source = {**os.environ, **cfg.extra_env}
    base = {
        **{k: v for k, v in cfg.extra_env.items() if k not in collector.SECRET_VARS},
        "TELEMETRY_DIR": str(cfg.telemetry_dir),
        "OTLP_GRPC_PORT": str(cfg.otlp_grpc_port),
        "OTLP_HTTP_PORT": str(cfg.otlp_http_port),
        "COLLECTOR_HEALTH_PORT": str(cfg.collector_health_port),
    }
    env = collector.collector_env(base)
    online = collector.is_online(source)
    overlays = collector.config_overlays(source)
    if missing := [str(p) for p in overlays if not p.is_file()]:
        raise LaunchError(f"COLLECTOR_CONFIG_OVERLAYS names files that do not exist: {missing}")
    cfg.telemetry_dir.mkdir(parents=True, exist_ok=True)
    command = " ".join(collector.collector_command(online=online, overlays=overlays))
    # Only the variables the collector reads go into the generated config file.
    return Program("collector", command, {k: v for k, v in env.items() if v}, priority=20), online


def _nginx_program(cfg: NativeConfig) -> Program | None:
    try:
        from stack.native import nginx
    except ImportError:
        return None
    if not nginx.nginx_available():
        return None
    conf = nginx.render_native_conf(cfg)
    return Program("nginx", nginx.nginx_command(conf), {}, priority=200)


def _writable_data_dir(cfg: NativeConfig) -> None:
    """The data dir exists and this user can write it, or one line that says which and how
    to fix it (a FileNotFoundError or PermissionError traceback otherwise, from the first of
    many files written under it)."""
    try:
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        writable = os.access(cfg.data_dir, os.W_OK | os.X_OK)
        reason = "" if writable else "permission denied"
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
    if reason:
        raise LaunchError(
            f"cannot write the data dir {cfg.data_dir} ({reason}): "
            "set WORKSHOP_DATA_DIR to a folder you can write"
        )


def up(
    cfg: NativeConfig,
    *,
    collector: bool = True,
    nginx: bool | None = None,
    services: list[ServiceName] | None = None,
    progress: Progress = lambda _msg: None,
    timeout: float = 60,
) -> UpResult:
    started = time.monotonic()
    _writable_data_dir(cfg)
    try:
        check_env({**os.environ, **cfg.service_env()})
    except ValueError as exc:
        raise LaunchError(f"{exc} (fix or unset it: the services would not start)") from None
    sup = Supervisor(cfg)
    if sup.running():
        raise LaunchError("the stack is already running: `workshop status`, or `workshop down`")
    services = services or PYTHON_SERVICES
    programs = [redis_program(cfg)]
    online = False
    if collector:
        prog, online = _collector_program(cfg)
        programs.append(prog)
    nginx_prog = _nginx_program(cfg) if nginx is not False else None
    if nginx and nginx_prog is None:
        raise LaunchError("nginx is not installed: `sudo apt-get install nginx-light`")
    if nginx_prog:
        programs.append(nginx_prog)
    check_ports(cfg.ports(collector=collector, nginx=nginx_prog is not None))
    cfg.ensure_admin_token()
    if not collector and "OTEL_SDK_DISABLED" not in cfg.extra_env:
        # Nothing listens for OTLP: exporting would only fill the logs with retries.
        cfg = cfg.with_env({"OTEL_SDK_DISABLED": "true"})
    programs += service_programs(cfg, services)

    progress("starting supervisord")
    sup.start_daemon(render_conf(cfg, programs))
    try:
        progress("starting redis-server")
        sup.start("redis")
        wait_for(lambda: redis_ping(cfg.redis_port), 20, "redis-server")
        if collector:
            progress("starting the collector")
            sup.start("collector")
            health = f"http://127.0.0.1:{cfg.collector_health_port}/"
            wait_for(lambda: http_ok(health), 30, "the collector")
        progress(f"starting {len(services)} services")
        sup.start(*(s.value for s in services))
        wait_all_ready({s.value: f"{cfg.url(s)}/ready" for s in services}, timeout)
        if nginx_prog:
            progress("starting nginx")
            sup.start("nginx")
            wait_for(lambda: _port_open(cfg.nginx_http_port), 15, "nginx")
    except Exception:
        sup.shutdown()
        raise
    urls = {s.value: cfg.url(s) for s in services}
    if nginx_prog:
        urls["nginx"] = f"https://127.0.0.1:{cfg.nginx_https_port}/"
    return UpResult(time.monotonic() - started, collector, nginx_prog is not None, online, urls)


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def down(cfg: NativeConfig) -> bool:
    sup = Supervisor(cfg)
    if not sup.running():
        return False
    sup.shutdown()
    return True


def status(cfg: NativeConfig) -> dict[str, dict[str, str]]:
    sup = Supervisor(cfg)
    if not sup.running():
        return {}
    states = sup.status()
    report: dict[str, dict[str, str]] = {}
    for name, state in states.items():
        entry = {"process": state}
        try:
            service = ServiceName(name)
            entry["url"] = cfg.url(service)
            entry["ready"] = "yes" if http_ok(f"{cfg.url(service)}/ready") else "no"
        except ValueError:
            entry["url"] = ""
            entry["ready"] = "yes" if state == "RUNNING" else "no"
        report[name] = entry
    return report
