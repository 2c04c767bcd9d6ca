"""docker-compose.vm.yml: the compose-spec schema, then what a schema cannot check."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

from stack.common.settings import PORT_OFFSETS, ServiceName, Settings
from tests.deploy import (
    COMPOSE_FILE,
    OTLP_FILE,
    REPO,
    InterpolationError,
    env_map,
    load_compose,
    mem_limit,
    parse_duration,
    parse_mem,
)

APP_SERVICES = [s.value for s in ServiceName]
INFRA = {"otel-collector", "redis", "nginx"}
LAB = {"jupyter", "locust"}
# Services without a container health check, and why (see the compose file's comments).
HEALTHCHECK = "/app/stack/healthcheck.sh"  # stack/ in the image (stack/Dockerfile)
NO_HEALTHCHECK = {"otel-collector": "distroless image: no shell/curl/wget, no probe subcommand"}
# The one container that starts as root: nginx's master binds 80/443 and drops its workers.
ROOT_ALLOWED = {"nginx"}
GB_1_9 = int(1.9 * 1000**3)
T3_MEDIUM_BUDGET = int(3.8 * 1000**3)


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict) -> dict[str, dict]:
    return compose["services"]


def default_services(services: dict[str, dict]) -> dict[str, dict]:
    return {n: s for n, s in services.items() if not s.get("profiles")}


def compose_schema() -> dict:
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads(vendor.joinpath("compose-spec.json").read_text())


@pytest.mark.parametrize("path", [COMPOSE_FILE, OTLP_FILE], ids=lambda p: p.name)
def test_matches_compose_spec_schema(path: Path) -> None:
    schema = compose_schema()
    # The vendored schema declares draft 2020-12: let jsonschema pick the matching validator.
    validator = jsonschema.validators.validator_for(schema)(schema)
    document = load_compose(path)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
    # The schema really checks: an unknown service key is an error.
    broken = {"services": {"x": {"image": "busybox:1.36", "not_a_compose_key": 1}}}
    assert list(validator.iter_errors(broken))


def test_required_secrets_are_enforced_by_compose() -> None:
    with pytest.raises(InterpolationError, match="ADMIN_TOKEN"):
        load_compose(env={"CX_PRIVATE_KEY": "k"})
    with pytest.raises(InterpolationError, match="CX_PRIVATE_KEY"):
        load_compose(env={"ADMIN_TOKEN": "t"})


def test_every_service_is_defined(services: dict) -> None:
    assert set(services) == set(APP_SERVICES) | INFRA | LAB
    assert {n for n, s in services.items() if s.get("profiles")} == LAB
    for name in LAB:
        assert services[name]["profiles"] == ["lab"]


def test_app_services_run_the_one_image(services: dict) -> None:
    images = {services[n]["image"] for n in APP_SERVICES}
    assert len(images) == 1, images
    for name in APP_SERVICES:
        s = services[name]
        assert s["build"]["dockerfile"] == "stack/Dockerfile"
        assert s["build"]["target"] == "runtime"
        assert s["command"] == [name], f"{name} must run `python -m stack.run {name}`"


def test_serial_build_covers_every_built_image(services: dict) -> None:
    """scripts/compose-build.sh builds one service per image; a new image must join its list."""
    text = (REPO / "scripts" / "compose-build.sh").read_text()
    builders = re.search(r"^BUILDERS=\(([^)]*)\)", text, re.M)
    assert builders, "BUILDERS=(...) not found in scripts/compose-build.sh"
    names = builders.group(1).split()
    built = {(s["image"], s["build"].get("target")) for s in services.values() if "build" in s}
    covered = {(services[n]["image"], services[n]["build"].get("target")) for n in names}
    assert built == covered, f"images built by compose {built} vs by compose-build.sh {covered}"


def test_ports_and_health_checks_match_settings(services: dict) -> None:
    base = Settings.model_fields["port_base"].default
    for service in ServiceName:
        s = services[service.value]
        assert env_map(s)["WORKSHOP_PORT_BASE"] == str(base)
        port = base + PORT_OFFSETS[service]
        # GET http://127.0.0.1:PORT/ready with bash, not a Python interpreter (the script says why)
        assert s["healthcheck"]["test"] == ["CMD", "bash", HEALTHCHECK, str(port)], service.value


def test_docker_wiring_overrides_native_defaults(services: dict) -> None:
    for name in APP_SERVICES:
        s = services[name]
        env = env_map(s)
        assert s["env_file"] == [".env"], name
        assert env["WORKSHOP_BIND_HOST"] == "0.0.0.0"
        assert env["SERVICE_URL_TEMPLATE"] == "http://{name}:{port}"
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert env["WORKSHOP_DATA_DIR"] == "/data"
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    # The template must produce what nginx and the services dial.
    settings = Settings(SERVICE_URL_TEMPLATE="http://{name}:{port}")
    assert settings.url(ServiceName.GATEWAY) == "http://api-gateway:8010"


def test_every_settings_variable_is_settable(services: dict) -> None:
    """Every Settings alias reaches the app containers: via env_file (.env) unless the compose
    file pins it for Docker."""
    aliases = {f.alias for f in Settings.model_fields.values() if f.alias}
    for name in APP_SERVICES:
        s = services[name]
        assert ".env" in s["env_file"]
        pinned = set(env_map(s)) & aliases
        assert pinned <= {
            "WORKSHOP_BIND_HOST",
            "WORKSHOP_PORT_BASE",
            "SERVICE_URL_TEMPLATE",
            "REDIS_URL",
            "WORKSHOP_DATA_DIR",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "ADMIN_TOKEN",
        }, pinned
    assert env_map(services["api-gateway"])["ADMIN_TOKEN"] == "test-admin-token"


def test_depends_on_targets_exist_and_conditions_are_meaningful(services: dict) -> None:
    for name, s in services.items():
        deps = s.get("depends_on") or {}
        assert isinstance(deps, dict), f"{name}: use the long depends_on syntax with conditions"
        for target, spec in deps.items():
            assert target in services, f"{name} depends on unknown {target}"
            assert not services[target].get("profiles") or s.get("profiles"), (
                f"{name} depends on profile-only {target}"
            )
            # Docker < 25 probes a container first one interval (30 s) after it starts: each
            # level of `service_healthy` would add 30 s to `up`. Dependants retry instead.
            assert spec["condition"] == "service_started", f"{name} → {target}"
    for name in ("api-gateway", "query-service", "queue-service", "queue-worker"):
        assert "redis" in services[name]["depends_on"], name
    assert set(services["nginx"]["depends_on"]) == {"api-gateway", "frontend"}


def test_health_checks_everywhere_they_can_be(services: dict) -> None:
    for name, s in services.items():
        if name in NO_HEALTHCHECK:
            assert "healthcheck" not in s or s["healthcheck"].get("disable"), name
            continue
        hc = s.get("healthcheck")
        assert hc and hc.get("test") and not hc.get("disable"), f"{name} has no health check"
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def test_health_checks_are_cheap_on_an_idle_vm(services: dict) -> None:
    """Every probe is an exec into the container, ~70 ms of the engine's CPU (docs/deploy-vm.md):
    at most one probe per container every 30 s, and none that starts a Python interpreter."""
    for name, s in services.items():
        hc = s.get("healthcheck")
        if not hc or hc.get("disable"):
            continue
        assert parse_duration(hc["interval"]) >= 30, (name, hc["interval"])
        assert "python" not in " ".join(hc["test"]), (name, hc["test"])
        if s.get("image", "").startswith("${KIT_IMAGE"):
            assert hc["test"][:3] == ["CMD", "bash", HEALTHCHECK], name
    dockerfile = (REPO / "stack" / "Dockerfile").read_text()
    assert "WORKDIR /app" in dockerfile and "COPY stack ./stack" in dockerfile
    assert (REPO / "stack" / "healthcheck.sh").is_file()


def test_memory_budget(services: dict) -> None:
    limits = {name: mem_limit(s) for name, s in services.items()}
    for name in APP_SERVICES:
        assert limits[name] <= parse_mem("128M"), name
    assert limits["otel-collector"] == parse_mem("256M")
    assert limits["redis"] <= parse_mem("256M")
    assert limits["nginx"] <= parse_mem("64M")
    default_total = sum(limits[n] for n in default_services(services))
    assert default_total <= GB_1_9, f"{default_total / 2**20:.0f} MiB > 1.9 GB (t3.small)"
    assert sum(limits.values()) <= T3_MEDIUM_BUDGET, "lab profile must fit a t3.medium"
    # One style only: deploy.resources.limits.memory.
    assert not any("mem_limit" in s for s in services.values())


def test_redis_maxmemory_below_its_limit(services: dict) -> None:
    cmd = services["redis"]["command"]
    maxmemory = parse_mem(cmd[cmd.index("--maxmemory") + 1])
    assert maxmemory < mem_limit(services["redis"])
    assert cmd[cmd.index("--appendonly") + 1] == "yes"
    assert any(v.startswith("redis-data:") for v in services["redis"]["volumes"])


def test_only_nginx_publishes_ports(services: dict) -> None:
    for name, s in services.items():
        if name == "nginx":
            assert sorted(s["ports"]) == ["443:443", "80:80"]
        else:
            assert "ports" not in s, f"{name} publishes ports"
        assert "network_mode" not in s, name


def test_otlp_ports_only_behind_the_opt_in_file() -> None:
    override = load_compose(OTLP_FILE)
    assert set(override["services"]) == {"otel-collector"}
    ports = override["services"]["otel-collector"]["ports"]
    assert sorted(p.split(":", 1)[1] for p in ports) == ["4317:4317", "4318:4318"]
    assert all(p.startswith("127.0.0.1:") for p in ports), "loopback unless opted in"
    opened = load_compose(OTLP_FILE, env={"OTLP_PUBLISH_ADDRESS": "0.0.0.0"})
    assert all(p.startswith("0.0.0.0:") for p in opened["services"]["otel-collector"]["ports"])


def test_images_are_pinned(services: dict) -> None:
    for name, s in services.items():
        image = s["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and tag and "/" not in tag, f"{name}: {image} has no explicit tag"
        assert tag != "latest" and "latest" not in tag, f"{name}: {image}"
    assert re.fullmatch(r"redis:7\.\d+\.\d+-alpine", services["redis"]["image"])
    nginx = re.fullmatch(r"nginx:1\.(\d+)\.\d+-alpine", services["nginx"]["image"])
    assert nginx and int(nginx.group(1)) % 2 == 0, "nginx stable releases have an even minor"


def test_collector_image_matches_builder_manifest(services: dict) -> None:
    manifest = yaml.safe_load((REPO / "collector" / "builder-config.yaml").read_text())
    version = manifest["dist"]["version"]
    contrib_versions = {
        m["gomod"].split()[1].lstrip("v")
        for section in ("receivers", "processors", "connectors", "exporters", "extensions")
        for m in manifest.get(section, [])
    }
    assert contrib_versions == {version}, contrib_versions
    assert services["otel-collector"]["image"] == f"otel/opentelemetry-collector-contrib:{version}"


def test_collector_memory_limiter_below_container_limit(services: dict) -> None:
    config = (REPO / "collector" / "config.yaml").read_text()
    m = re.search(r"limit_mib:\s*\$\{env:COLLECTOR_MEMORY_LIMIT_MIB:-(\d+)\}", config)
    assert m, "memory_limiter.limit_mib must come from ${env:COLLECTOR_MEMORY_LIMIT_MIB:-N}"
    collector = services["otel-collector"]
    limit_mib = int(env_map(collector)["COLLECTOR_MEMORY_LIMIT_MIB"])
    container = mem_limit(collector)
    assert limit_mib * 2**20 < container
    gomemlimit = env_map(collector).get("GOMEMLIMIT")
    if gomemlimit:
        assert parse_mem(gomemlimit.replace("iB", "")) < container


def test_collector_environment_and_mounts(services: dict) -> None:
    collector = services["otel-collector"]
    env = env_map(collector)
    config = (REPO / "collector" / "config.yaml").read_text()
    used = set(re.findall(r"\$\{env:([A-Z][A-Z0-9_]*)", config))
    assert used <= set(env), f"not passed to the collector: {used - set(env)}"
    assert env["OTEL_COLLECTOR_HOST"] == "0.0.0.0"
    assert env["HOSTMETRICS_ROOT"] == "/hostfs"
    # first detector wins: EC2 instance, then the Docker host, the container itself last
    assert env["RESOURCE_DETECTORS"] == "[env, ec2, docker, system]"
    assert yaml.safe_load(env["RESOURCE_DETECTORS"]) == ["env", "ec2", "docker", "system"]
    assert env["CX_PRIVATE_KEY"] == "test-private-key"
    volumes = collector["volumes"]
    assert "./collector/config.yaml:/etc/otelcol-contrib/config.yaml:ro" in volumes
    hostfs = [v for v in volumes if isinstance(v, dict) and v.get("target") == "/hostfs"]
    assert hostfs and hostfs[0]["source"] == "/" and hostfs[0]["read_only"] is True
    assert collector["command"] == ["--config=/etc/otelcol-contrib/config.yaml"]


def test_non_root_and_read_only(services: dict) -> None:
    for name, s in services.items():
        assert s.get("read_only") is True, f"{name} needs a read-only root filesystem"
        assert s.get("tmpfs"), f"{name}: read-only root needs a tmpfs for scratch files"
        if name in ROOT_ALLOWED:
            assert s["cap_drop"] == ["ALL"] and "SYS_ADMIN" not in s.get("cap_add", [])
            continue
        user = str(s.get("user", ""))
        assert user and user.split(":")[0] not in ("0", "root"), f"{name} runs as root"
    for name in APP_SERVICES:
        assert services[name]["user"] == "10001:10001"
        assert services[name]["restart"] == "unless-stopped"


def test_data_volume_only_on_storage(services: dict) -> None:
    for name, s in services.items():
        for v in s.get("volumes", []):
            if isinstance(v, str) and v.split(":")[0] == "app-data":
                assert name == "storage-service", f"{name} mounts app-data"
                assert v == "app-data:/data"
    assert "app-data" in load_compose()["volumes"]


def test_bind_mount_sources_exist(services: dict) -> None:
    generated = {"./data/certs", "./data/nginx-auth", "/", "/var/run/docker.sock"}
    for name, s in services.items():
        for v in s.get("volumes", []):
            source = v["source"] if isinstance(v, dict) else v.split(":")[0]
            if source.startswith(("./", "/")) and source not in generated:
                assert (REPO / source).exists(), f"{name}: {source} missing"


def test_nginx_mounts_cover_its_includes(services: dict) -> None:
    targets = {v.split(":")[1] for v in services["nginx"]["volumes"]}
    assert "/etc/nginx/certs" in targets and "/etc/nginx/lab.d" in targets
    conf = (REPO / "stack" / "nginx" / "nginx.conf").read_text()
    for include in re.findall(r"^\s*include\s+(\S+);", conf, re.M):
        if include.startswith("/etc/nginx/") and "*" not in include:
            if include == "/etc/nginx/mime.types":
                continue  # shipped by the image
            assert include in targets, f"nginx.conf includes {include}, which is not mounted"


def test_lab_services(services: dict) -> None:
    jupyter, locust = services["jupyter"], services["locust"]
    assert jupyter["build"]["target"] == locust["build"]["target"] == "lab"
    assert "--ServerApp.base_url=/lab/" in jupyter["command"]
    assert env_map(locust)["LOCUST_WEB_BASE_PATH"] == "/locust"
    lab_conf = (REPO / "stack" / "nginx" / "lab.d" / "lab.conf").read_text()
    assert "http://jupyter:8888" in lab_conf and "http://locust:8089" in lab_conf
    assert "resolver 127.0.0.11" in lab_conf
    assert "auth_basic_user_file /etc/nginx/auth/htpasswd" in lab_conf


@pytest.fixture
def lab_nginx(tmp_path: Path):
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if not nginx:
        pytest.skip("nginx is not installed")
    lab = (REPO / "stack" / "nginx" / "lab.d" / "lab.conf").read_text()
    (tmp_path / "lab.conf").write_text(lab.replace("/etc/nginx/auth/", f"{tmp_path}/"))
    port = 18000 + (int(time.time() * 1000) % 900)
    kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    temp = " ".join(f"{k}_temp_path {tmp_path}/{k};" for k in kinds)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{ access_log off; {temp}\n"
        f"  server {{ listen 127.0.0.1:{port}; include {tmp_path}/lab.conf; }}\n}}\n"
    )
    args = [nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")]
    check = subprocess.run([*args, "-t"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    subprocess.run(args, check=True, capture_output=True)
    try:
        yield port
    finally:
        pid = (tmp_path / "nginx.pid").read_text().strip()
        subprocess.run(["kill", pid], check=False)


def test_lab_locations_answer_503_without_the_profile(lab_nginx: int) -> None:
    """No jupyter/locust containers → nginx still starts and answers a clear 503."""
    with pytest.raises(urllib.error.HTTPError) as lab:
        urllib.request.urlopen(f"http://127.0.0.1:{lab_nginx}/lab/tree", timeout=10)
    assert lab.value.code == 503
    assert b"--profile lab" in lab.value.read()
    with pytest.raises(urllib.error.HTTPError) as locust:
        urllib.request.urlopen(f"http://127.0.0.1:{lab_nginx}/locust/", timeout=10)
    assert locust.value.code == 401, "the Locust UI needs the lab password"
