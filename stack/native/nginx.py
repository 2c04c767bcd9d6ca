"""nginx for the native stack: render a config that runs as the invoking user.

The template (`stack/nginx/native.conf.template`) carries the same rules and the same
security-header include as the Docker `stack/nginx/nginx.conf`; only ports, upstream
addresses and paths differ. Every path (pid, logs, temp dirs, certs) lives under the data
directory, and `daemon off;` lets supervisord manage the process.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

from stack.common import envvars
from stack.common.settings import REPO_ROOT, ServiceName
from stack.native.config import NativeConfig

NGINX_DIR = REPO_ROOT / "stack" / "nginx"
TEMPLATE = NGINX_DIR / "native.conf.template"
HEADERS = NGINX_DIR / "security-headers.conf"
CERT_SCRIPT = REPO_ROOT / "scripts" / "generate-certs.sh"
FALLBACK_BINARY = Path("/usr/sbin/nginx")


def nginx_binary() -> Path | None:
    found = shutil.which("nginx")
    if found:
        return Path(found)
    return FALLBACK_BINARY if os.access(FALLBACK_BINARY, os.X_OK) else None


def nginx_available() -> bool:
    return nginx_binary() is not None


def prefix_dir(cfg: NativeConfig) -> Path:
    return cfg.data_dir / "nginx"


def cert_dir(cfg: NativeConfig) -> Path:
    return cfg.data_dir / "certs"


def ensure_certs(directory: Path) -> None:
    """A self-signed certificate for localhost/127.0.0.1, generated once."""
    if (directory / "server.crt").exists() and (directory / "server.key").exists():
        return
    subprocess.run(
        ["bash", str(CERT_SCRIPT), str(directory)],
        check=True,
        capture_output=True,
        timeout=60,
    )


def render(template: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        template = template.replace("{{" + key + "}}", value)
    if "{{" in template:
        raise ValueError("unfilled placeholder in the nginx template")
    return template


def render_native_conf(cfg: NativeConfig) -> Path:
    prefix = prefix_dir(cfg)
    tmp = prefix / "tmp"
    lab = prefix / "lab.d"
    for directory in (cfg.run_dir, cfg.log_dir, tmp, lab):
        directory.mkdir(parents=True, exist_ok=True)
    ensure_certs(cert_dir(cfg))
    text = render(
        TEMPLATE.read_text(),
        {
            "RUN_DIR": str(cfg.run_dir),
            "LOG_DIR": str(cfg.log_dir),
            "TMP_DIR": str(tmp),
            "LAB_DIR": str(lab),
            "CERT_DIR": str(cert_dir(cfg)),
            "HEADERS": str(HEADERS),
            # nginx is the stack's public entry point (services themselves stay on loopback).
            "BIND": envvars.get("NGINX_BIND_HOST"),
            "HTTP_PORT": str(cfg.nginx_http_port),
            "HTTPS_PORT": str(cfg.nginx_https_port),
            "GATEWAY_PORT": str(cfg.service_port(ServiceName.GATEWAY)),
            "FRONTEND_PORT": str(cfg.service_port(ServiceName.FRONTEND)),
        },
    )
    conf = cfg.run_dir / "nginx.conf"
    conf.write_text(text)
    return conf


def nginx_command(conf: Path) -> str:
    binary = nginx_binary() or FALLBACK_BINARY
    prefix = conf.parent.parent / "nginx"
    error_log = conf.parent.parent / "logs" / "nginx-error.log"
    return shlex.join([str(binary), "-c", str(conf), "-p", f"{prefix}/", "-e", str(error_log)])


def test_conf(conf: Path) -> subprocess.CompletedProcess[str]:
    """`nginx -t` on a rendered config (used by `workshop doctor` and the tests)."""
    binary = nginx_binary() or FALLBACK_BINARY
    prefix = conf.parent.parent / "nginx"
    error_log = conf.parent.parent / "logs" / "nginx-error.log"
    return subprocess.run(
        [str(binary), "-t", "-c", str(conf), "-p", f"{prefix}/", "-e", str(error_log)],
        capture_output=True,
        text=True,
        timeout=30,
    )
