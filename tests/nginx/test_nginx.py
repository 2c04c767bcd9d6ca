"""nginx in front of the native stack: TLS, redirect, headers, limits, propagation, config."""

from __future__ import annotations

import http.client
import os
import secrets
import shutil
import sqlite3
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import requests

from stack.common.settings import REPO_ROOT
from stack.native import nginx as native_nginx

pytestmark = [
    pytest.mark.stack,
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]

IN_CI = os.environ.get("CI") == "true"
SECURITY_HEADERS = (
    "strict-transport-security",
    "content-security-policy",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
)


def _require_nginx() -> None:
    if not native_nginx.nginx_available():
        if IN_CI:
            pytest.fail("CI must install nginx (`apt-get install nginx-light`)")
        pytest.skip("nginx is not installed (`sudo apt-get install nginx-light`)")


@pytest.fixture(scope="module")
def edge(stack):
    _require_nginx()
    if not stack.nginx:
        pytest.fail("nginx is installed but the stack fixture did not start it")
    return stack


def _https(edge) -> str:
    return f"https://127.0.0.1:{edge.cfg.nginx_https_port}"


def _raw_get(edge, path: str, method: str = "GET", headers: dict | None = None):
    """One request over TLS with the stdlib client, so repeated header lines stay visible."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection(
        "127.0.0.1", edge.cfg.nginx_https_port, context=ctx, timeout=10
    )
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, resp.msg, body
    finally:
        conn.close()


@pytest.mark.parametrize("path", ["/", "/api/health", "/api/admin/faults", "/app.js"])
def test_security_headers_exactly_once(edge, path: str) -> None:
    _status, msg, _ = _raw_get(edge, path)
    for name in SECURITY_HEADERS:
        values = msg.get_all(name) or []
        assert len(values) == 1, f"{name} on {path}: {values}"
    csp = msg["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert msg["x-frame-options"] == "DENY"
    assert msg["x-content-type-options"] == "nosniff"
    assert "max-age=" in msg["strict-transport-security"]
    assert msg["server"] == "nginx", "server_tokens off: no version"


def test_no_cors_headers_anywhere(edge) -> None:
    origin = {"Origin": "https://evil.example"}
    for method, path in [("GET", "/"), ("GET", "/api/health"), ("OPTIONS", "/api/queries")]:
        _status, msg, _ = _raw_get(edge, path, method, headers=origin)
        assert not [k for k in msg if k.lower().startswith("access-control-")], (
            method,
            path,
            msg.items(),
        )


def test_http_redirects_to_https(edge) -> None:
    url = f"http://127.0.0.1:{edge.cfg.nginx_http_port}/api/health?x=1"
    resp = requests.get(url, allow_redirects=False, timeout=5)
    assert resp.status_code == 301
    assert (
        resp.headers["location"] == f"https://127.0.0.1:{edge.cfg.nginx_https_port}/api/health?x=1"
    )


def test_ui_and_api_through_tls(edge) -> None:
    ui = requests.get(_https(edge) + "/", verify=False, timeout=5)
    assert ui.status_code == 200 and "DataPrime" in ui.text
    assert "<script>" not in ui.text, "no inline scripts (CSP)"
    health = requests.get(_https(edge) + "/api/health", verify=False, timeout=5)
    assert health.status_code == 200 and health.json()["status"] in ("ok", "degraded")


def test_admin_without_token_is_401_through_the_proxy(edge) -> None:
    resp = requests.get(_https(edge) + "/api/admin/faults", verify=False, timeout=5)
    assert resp.status_code == 401
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["status"] == 401


def test_body_over_16k_is_413(edge) -> None:
    resp = requests.post(
        _https(edge) + "/api/queries",
        data=b"{" + b" " * 20_000 + b"}",
        headers={"content-type": "application/json"},
        verify=False,
        timeout=5,
    )
    assert resp.status_code == 413
    assert resp.json()["status"] == 413


def test_baggage_and_traceparent_pass_through(edge) -> None:
    attendee = f"edge-{secrets.token_hex(3)}"
    trace_id = secrets.token_hex(16)
    headers = {
        "baggage": f"workshop.attendee={attendee}",
        "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01",
    }
    base = _https(edge)
    with requests.Session() as s:
        s.trust_env = False  # REQUESTS_CA_BUNDLE would override verify=False
        s.verify = False
        asked = s.post(
            base + "/api/queries",
            json={"question": "count of logs by severity"},
            headers=headers,
            timeout=10,
        )
        assert asked.status_code == 202, asked.text
        job_id = asked.json()["id"]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if s.get(f"{base}/api/queries/{job_id}", timeout=5).json()["status"] in (
                "done",
                "failed",
            ):
                break
            time.sleep(0.3)
        # baggage → the gateway's identity → stored with the job.
        page = s.get(
            base + "/api/history", params={"attendee": attendee}, headers=headers, timeout=5
        ).json()
        assert [i["job_id"] for i in page["items"]] == [job_id]
        # traceparent → the gateway's span joins our trace; feedback stores its trace id.
        rated = s.post(
            f"{base}/api/queries/{job_id}/feedback", json={"rating": 5}, headers=headers, timeout=5
        )
        assert rated.status_code == 201, rated.text
    with sqlite3.connect(edge.cfg.data_dir / "feedback.db") as db:
        row = db.execute("SELECT trace_id FROM feedback WHERE job_id = ?", (job_id,)).fetchone()
    assert row is not None
    if row[0] is not None:  # None only with OTEL_SDK_DISABLED
        assert row[0] == trace_id


def test_api_rate_limit_answers_429_past_the_burst(edge) -> None:
    statuses = []
    with requests.Session() as s:
        s.trust_env = False  # REQUESTS_CA_BUNDLE would override verify=False
        s.verify = False
        for _ in range(40):
            response = s.get(_https(edge) + "/api/config", timeout=5)
            statuses.append(response.status_code)
            # Check the refused response itself: a second request could find the bucket
            # refilled by one token on a slow machine.
            if response.status_code == 429:
                break
    assert 429 in statuses, statuses
    assert statuses.index(429) >= 10, f"limited too early: {statuses}"
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 429
    time.sleep(2.5)  # let the bucket refill for the tests that follow


def test_native_config_passes_nginx_t(edge) -> None:
    conf = edge.cfg.run_dir / "nginx.conf"
    assert conf.exists()
    result = native_nginx.test_conf(conf)
    assert result.returncode == 0, result.stderr


def test_docker_config_passes_nginx_t(tmp_path: Path) -> None:
    """The Docker config, with upstream names mapped to loopback and paths into a tmp prefix."""
    _require_nginx()
    certs = tmp_path / "certs"
    subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "generate-certs.sh"), str(certs)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    # The lab profile's locations (another part of the kit) must load inside this server block.
    lab = REPO_ROOT / "stack" / "nginx" / "lab.d"
    (tmp_path / "lab.d").mkdir()
    if lab.is_dir():
        shutil.copytree(lab, tmp_path / "lab.d", dirs_exist_ok=True)
    (tmp_path / "logs").mkdir()
    text = (REPO_ROOT / "stack" / "nginx" / "nginx.conf").read_text()
    mime = Path("/etc/nginx/mime.types")
    if not mime.exists():
        mime = tmp_path / "mime.types"
        mime.write_text("types { text/html html; }\n")
    replacements = {
        "server api-gateway:8010;": "server 127.0.0.1:8010;",
        "server frontend:8020;": "server 127.0.0.1:8020;",
        "/etc/nginx/certs/": f"{certs}/",
        "/etc/nginx/lab.d/": f"{tmp_path}/lab.d/",
        "/etc/nginx/security-headers.conf": str(REPO_ROOT / "stack/nginx/security-headers.conf"),
        "/etc/nginx/mime.types": str(mime),
        "/var/run/nginx.pid": f"{tmp_path}/nginx.pid",
        "/var/log/nginx/": f"{tmp_path}/logs/",
    }
    for old, new in replacements.items():
        assert old in text, f"{old} is gone from nginx.conf: update this test"
        text = text.replace(old, new)
    # Temp paths default to /var/lib/nginx: point them into the prefix too.
    text = text.replace(
        "http {\n",
        "http {\n"
        + "".join(
            f"    {k}_temp_path {tmp_path}/{k};\n"
            for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        ),
        1,
    )
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    binary = native_nginx.nginx_binary() or shutil.which("nginx")
    result = subprocess.run(
        [str(binary), "-t", "-c", str(conf), "-p", f"{tmp_path}/", "-e", f"{tmp_path}/logs/e.log"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    # Exactly one include of the header file per content-serving server block.
    includes = [
        line
        for line in text.splitlines()
        if line.strip().startswith("include") and "security-headers.conf" in line
    ]
    assert len(includes) == 1, includes
