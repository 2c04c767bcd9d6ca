"""Every environment variable the stack reads, in one place, with its documented default.

Native runs and docker-compose.vm.yml read the same names; the defaults here are the native
ones (loopback addresses, ports in docs/architecture.md, data under ./data).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]


class ServiceName(StrEnum):
    """The `service.name` of every process; the value is also its supervisord program name."""

    GATEWAY = "api-gateway"
    QUERY = "query-service"
    VALIDATION = "validation-service"
    QUEUE = "queue-service"
    PROCESSING = "processing-service"
    STORAGE = "storage-service"
    WORKER = "queue-worker"
    EXTERNAL_API = "external-api-service"
    FRONTEND = "frontend"


# Offset of each service from WORKSHOP_PORT_BASE (8010 → the ports in docs/architecture.md).
PORT_OFFSETS: dict[ServiceName, int] = {
    ServiceName.GATEWAY: 0,
    ServiceName.QUERY: 1,
    ServiceName.VALIDATION: 2,
    ServiceName.QUEUE: 3,
    ServiceName.PROCESSING: 4,
    ServiceName.STORAGE: 5,
    ServiceName.WORKER: 6,
    ServiceName.EXTERNAL_API: 7,
    ServiceName.FRONTEND: 10,
}

# The module that holds each service's FastAPI app.
SERVICE_MODULES: dict[ServiceName, str] = {
    ServiceName.GATEWAY: "stack.services.gateway",
    ServiceName.QUERY: "stack.services.query",
    ServiceName.VALIDATION: "stack.services.validation",
    ServiceName.QUEUE: "stack.services.queue",
    ServiceName.PROCESSING: "stack.services.processing",
    ServiceName.STORAGE: "stack.services.storage",
    ServiceName.WORKER: "stack.services.worker",
    ServiceName.EXTERNAL_API: "stack.services.external_api",
    ServiceName.FRONTEND: "stack.frontend.app",
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", populate_by_name=True)

    # --- where things live -------------------------------------------------------------
    data_dir: Path = Field(
        REPO_ROOT / "data",
        alias="WORKSHOP_DATA_DIR",
        description="Where the services keep their data (SQLite feedback database, admin token).",
    )
    environment: str = Field(
        "workshop",
        alias="DEPLOYMENT_ENVIRONMENT",
        description="deployment.environment.name on every signal.",
    )
    service_version: str = Field(
        "1.0.0",
        alias="SERVICE_VERSION",
        description='service.version on every signal (the "bad release" fault bumps it).',
    )

    # --- network -----------------------------------------------------------------------
    bind_host: str = Field(
        "127.0.0.1", alias="WORKSHOP_BIND_HOST", description="Address every service listens on."
    )
    port_base: int = Field(
        8010,
        alias="WORKSHOP_PORT_BASE",
        ge=1024,
        le=65000,
        description="Port of api-gateway; every service's port is this plus its offset.",
    )
    # How one service reaches another: a template filled with the service name and port.
    # Native: every service on loopback. Docker: "http://{name}:{port}".
    service_url_template: str = Field(
        "http://127.0.0.1:{port}",
        alias="SERVICE_URL_TEMPLATE",
        description="How one service reaches another: filled with the service's {name} and {port}.",
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6390/0",
        alias="REDIS_URL",
        description="The Redis the services share (queue stream, cache, sessions, faults).",
    )

    # --- HTTP client between services (seconds) ----------------------------------------
    http_connect_timeout: float = Field(
        1.0,
        alias="HTTP_CONNECT_TIMEOUT",
        gt=0,
        description="Connect timeout between services (seconds).",
    )
    http_read_timeout: float = Field(
        5.0, alias="HTTP_READ_TIMEOUT", gt=0, description="Read timeout between services (seconds)."
    )
    http_pool_size: int = Field(
        100,
        alias="HTTP_POOL_SIZE",
        ge=1,
        description="Connections each service keeps per peer service.",
    )
    http_client: Literal["wire", "aiohttp"] = Field(
        "wire",
        alias="HTTP_CLIENT",
        description=(
            "The client of calls between services: wire (stack/common/http_wire.py, HTTP/1.1 "
            "over keep-alive connections, a third of aiohttp's CPU per call) or aiohttp (the "
            "budget bench's baseline arm; always with CLIENT_SPANS=packages, whose package "
            "instruments aiohttp)."
        ),
    )

    # --- domain ------------------------------------------------------------------------
    query_engine: str = Field(
        "llm",
        alias="QUERY_ENGINE",
        pattern="^(llm|rules)$",
        description=(
            "llm: query-service asks external-api-service (and falls back to rules); rules: "
            "rules only."
        ),
    )
    cache_ttl_seconds: int = Field(
        300,
        alias="CACHE_TTL_SECONDS",
        ge=0,
        description="How long query-service caches an answer (seconds).",
    )
    session_ttl_seconds: int = Field(
        3600,
        alias="SESSION_TTL_SECONDS",
        ge=60,
        description="How long a session lives without use (seconds).",
    )
    session_refresh: Literal["lazy", "every"] = Field(
        "lazy",
        alias="SESSION_REFRESH",
        description=(
            "When the gateway slides a session's TTL in Redis: lazy (at most every "
            "SESSION_TTL_SECONDS / 60 per session) or every (each question; the budget bench's "
            "baseline arm): leave it."
        ),
    )
    job_status_ttl_seconds: int = Field(
        86400,
        alias="JOB_STATUS_TTL_SECONDS",
        ge=60,
        description="How long a queued job's status is kept (seconds).",
    )
    stream_maxlen: int = Field(
        100_000,
        alias="STREAM_MAXLEN",
        ge=100,
        description="Approximate maximum length of the job stream.",
    )
    question_max_chars: int = Field(
        500,
        alias="QUESTION_MAX_CHARS",
        ge=10,
        description="Longest question the API accepts (characters).",
    )
    comment_max_chars: int = Field(
        1000,
        alias="COMMENT_MAX_CHARS",
        ge=10,
        description="Longest feedback comment the API accepts (characters).",
    )
    history_max_page_size: int = Field(
        100,
        alias="HISTORY_MAX_PAGE_SIZE",
        ge=1,
        description="Largest page of query history one request returns.",
    )
    history_max_depth: int = Field(
        10_000,
        alias="HISTORY_MAX_DEPTH",
        ge=100,
        description="How far back query history can be paged.",
    )
    max_body_bytes: int = Field(
        16_384,
        alias="MAX_BODY_BYTES",
        ge=1024,
        description="Largest request body the gateway accepts (bytes).",
    )

    # --- queue worker ------------------------------------------------------------------
    worker_concurrency: int = Field(
        16, alias="WORKER_CONCURRENCY", ge=1, le=256, description="Jobs queue-worker runs at once."
    )
    worker_batch: int = Field(
        16,
        alias="WORKER_BATCH",
        ge=1,
        description="Jobs queue-worker reads from the stream per call.",
    )
    worker_max_attempts: int = Field(
        5,
        alias="WORKER_MAX_ATTEMPTS",
        ge=1,
        le=10,
        description="Attempts before a job is dead-lettered.",
    )
    worker_backoff_ms: int = Field(
        200,
        alias="WORKER_BACKOFF_MS",
        ge=0,
        description="Backoff between a job's attempts (milliseconds).",
    )
    worker_claim_idle_ms: int = Field(
        15_000,
        alias="WORKER_CLAIM_IDLE_MS",
        ge=100,
        description="Idle time after which another worker reclaims a job (milliseconds).",
    )
    worker_block_ms: int = Field(
        5_000,
        alias="WORKER_BLOCK_MS",
        ge=100,
        le=60_000,
        description=(
            "How long queue-worker's stream read waits when the stream is empty (milliseconds). "
            "A new job wakes it at once; longer means fewer idle round trips to Redis."
        ),
    )
    worker_consumer: str = Field(
        "",
        alias="WORKER_CONSUMER",
        description="Consumer name in the `workers` group; empty = derived from the host name.",
    )
    shutdown_grace_seconds: float = Field(
        10.0,
        alias="SHUTDOWN_GRACE_SECONDS",
        gt=0,
        description="How long a stopping service waits for work in flight (seconds).",
    )

    # --- benchmark baselines -----------------------------------------------------------
    # `services` restores the poll path that profiling replaced (gateway → queue-service →
    # Redis, then storage-service): `workshop bench` runs it back to back with the default
    # to measure the fix within one run. Nobody should set it otherwise.
    gateway_poll_via: Literal["redis", "services"] = Field(
        "redis",
        alias="GATEWAY_POLL_VIA",
        description=(
            "Benchmark baseline only (`workshop bench` sets `services` for its before/after "
            "run): leave it."
        ),
    )
    # How often uvicorn's main loop wakes with nothing to do (an exit request wakes it at once;
    # stack/run.py): 60 s; uvicorn's own 0.1 s is the baseline arm of `workshop bench --budget`
    # (idle CPU, issue 19). Leave it.
    server_tick_seconds: float = Field(
        60.0,
        alias="SERVER_TICK_SECONDS",
        gt=0,
        le=60,
        description=(
            "Benchmark baseline only (`workshop bench --budget` sets 0.1, uvicorn's own): leave it."
        ),
    )
    response_writes: Literal["one", "uvicorn"] = Field(
        "one",
        alias="RESPONSE_WRITES",
        description=(
            "How a service writes a response: one (stack/common/server_protocol.py: the head "
            "with the first body chunk, one send) or uvicorn (its own: head and body apart; "
            "the budget bench's baseline arm)."
        ),
    )
    storage_db_calls: Literal["loop", "threadpool"] = Field(
        "loop",
        alias="STORAGE_DB_CALLS",
        description=(
            "Where storage-service runs its SQLite statements: loop (the event loop, the "
            "threadpool only when a statement may wait for a lock) or threadpool (every "
            "request; the budget bench's baseline arm): leave it."
        ),
    )

    # --- the stand-in LLM provider -----------------------------------------------------
    llm_model: str = Field(
        "workshop-dataprime-1",
        alias="LLM_MODEL",
        description="Model name the stand-in LLM provider reports.",
    )
    llm_base_ms: float = Field(
        4.0, alias="LLM_BASE_MS", ge=0, description="Simulated LLM latency: base (milliseconds)."
    )
    llm_per_token_ms: float = Field(
        0.02,
        alias="LLM_PER_TOKEN_MS",
        ge=0,
        description="Simulated LLM latency: per token (milliseconds).",
    )
    llm_rate_limit_rps: float = Field(
        200.0,
        alias="LLM_RATE_LIMIT_RPS",
        gt=0,
        description="Simulated provider rate limit (requests/second) before it answers 429.",
    )
    llm_max_retries: int = Field(
        3,
        alias="LLM_MAX_RETRIES",
        ge=0,
        le=10,
        description="query-service retries on 429/5xx, with capped exponential backoff.",
    )
    llm_retry_cap_seconds: float = Field(
        2.0, alias="LLM_RETRY_CAP_SECONDS", ge=0, description="Cap of that backoff (seconds)."
    )
    # A real provider is used only when both are set (OpenAI-compatible chat completions).
    llm_provider_base_url: str = Field(
        "",
        alias="LLM_PROVIDER_BASE_URL",
        description=(
            "A real OpenAI-compatible provider's base URL (used only when the key is set too)."
        ),
    )
    llm_provider_api_key: SecretStr = Field(
        SecretStr(""),
        alias="LLM_PROVIDER_API_KEY",
        description="That provider's API key (used only when the base URL is set too).",
    )

    # --- admin & faults ----------------------------------------------------------------
    admin_token: SecretStr = Field(
        SecretStr(""),
        alias="ADMIN_TOKEN",
        description=(
            "Admin API token (faults, reset). Natively `workshop up` generates data/admin-token "
            "when this is empty; Docker has no such step, so set it: openssl rand -hex 24"
        ),
    )
    attendee_faults: bool = Field(
        False,
        alias="ATTENDEE_FAULTS",
        description="Let attendees (not only the admin token holder) toggle their own faults.",
    )
    # Changes arrive by pub/sub at once; this is only the safety net for a lost message.
    fault_poll_seconds: float = Field(
        30.0,
        alias="FAULT_POLL_SECONDS",
        gt=0,
        le=60,
        description=(
            "Fault changes reach every service at once (Redis pub/sub); this is how often each "
            "also re-reads the state in case a change message was lost (seconds, at most 60)."
        ),
    )

    # --- Coralogix (the collector sends; the labs query) -------------------------------
    cx_private_key: SecretStr = Field(
        SecretStr(""),
        alias="CX_PRIVATE_KEY",
        description=(
            "Coralogix Send-Your-Data API key: the collector sends traces, metrics and logs with"
            " it."
        ),
    )
    cx_api_key: SecretStr = Field(
        SecretStr(""),
        alias="CX_API_KEY",
        description=(
            "DataQuerying API key: the labs and `workshop` commands query Coralogix with it "
            "(never sends)."
        ),
    )
    cx_domain: str = Field(
        "eu2.coralogix.com",
        alias="CX_DOMAIN",
        description=(
            "Your region's domain: eu1.coralogix.com, eu2.coralogix.com, us1.coralogix.com, "
            "us2.coralogix.com, us3.coralogix.com, ap1.coralogix.com, ap2.coralogix.com, "
            "ap3.coralogix.com"
        ),
    )
    cx_application_name: str = Field(
        "dataprime-workshop",
        alias="CX_APPLICATION_NAME",
        description="Application name on every signal (resource attribute cx.application.name).",
    )
    cx_team_url: str = Field(
        "",
        alias="CX_TEAM_URL",
        description=(
            "Your team's console URL, e.g. https://myteam.app.eu2.coralogix.com (labs build "
            "links with it)."
        ),
    )
    cx_team_name: str = Field(
        "",
        alias="CX_TEAM_NAME",
        description=(
            "...or just the team name: the UI host then comes from the region table "
            "(docs/coralogix.md)."
        ),
    )
    cx_region: str = Field(
        "",
        alias="CX_REGION",
        description=(
            "Region code (EU1 … AP3) instead of CX_DOMAIN for links and the query API; empty: "
            "CX_DOMAIN."
        ),
    )
    # The host attendees pick in Infrastructure Explorer (Docker: the VM's, see env.vm.example).
    workshop_host_name: str = Field(
        "",
        alias="WORKSHOP_HOST_NAME",
        description=(
            "host.name of the host attendees pick in Infrastructure Explorer (natively read from"
            " the collector's entity events; in Docker the VM's)."
        ),
    )
    workshop_host_id: str = Field(
        "",
        alias="WORKSHOP_HOST_ID",
        description=(
            "host.id of that host (in Docker the VM's, e.g. the EC2 instance id: containers only"
            " see their own)."
        ),
    )

    # --- telemetry (the OTEL_* variables are read by the SDK itself) -------------------
    otel_sdk_disabled: bool = Field(
        False,
        alias="OTEL_SDK_DISABLED",
        description="true switches the OpenTelemetry SDK off in every service.",
    )
    otlp_span_encoder: Literal["wire", "sdk"] = Field(
        "wire",
        alias="OTLP_SPAN_ENCODER",
        description=(
            "How services encode span batches for OTLP/HTTP: wire (stack/common/otlp_wire.py, "
            "the same bytes for a fifth of the CPU) or sdk (the OpenTelemetry SDK's encoder)."
        ),
    )
    span_path: Literal["lean", "sdk"] = Field(
        "lean",
        alias="SPAN_PATH",
        description=(
            "How services start and end spans: lean (stack/common/lean_trace.py: the SDK's "
            "spans by a shorter path, for about 40 % of its CPU a span; baggage attributes by "
            "stack/common/baggage_spans.py) or sdk (the OpenTelemetry SDK's tracer and "
            "opentelemetry-processor-baggage; the budget bench's baseline arm)."
        ),
    )
    server_spans: Literal["kit", "fastapi"] = Field(
        "kit",
        alias="SERVER_SPANS",
        description=(
            "Who opens the services' SERVER spans: kit (stack/common/server_spans.py: "
            "FastAPI's spans by a shorter path, about a fifth of a small route's CPU) or "
            "fastapi (FastAPI's native telemetry; the budget bench's baseline arm)."
        ),
    )
    json_routes: Literal["kit", "fastapi"] = Field(
        "kit",
        alias="JSON_ROUTES",
        description=(
            "How a route that takes a JSON body and plain path parameters answers: kit "
            "(stack/common/json_route.py: a valid body decoded and validated in one pass, "
            "everything else by FastAPI) or fastapi (FastAPI's handler for every request; the "
            "budget bench's baseline arm)."
        ),
    )
    batch_worker: Literal["quiet", "sdk"] = Field(
        "quiet",
        alias="BATCH_WORKER",
        description=(
            "How the span and log batch workers wait: quiet (stack/common/quiet_batch.py: no "
            "wakeup while nothing is queued) or sdk (the OpenTelemetry SDK's: every schedule "
            "delay; the budget bench's baseline arm)."
        ),
    )
    client_spans: Literal["kit", "packages"] = Field(
        "kit",
        alias="CLIENT_SPANS",
        description=(
            "Who makes the CLIENT spans of calls between services and of Redis commands: kit "
            "(stack/common/http.py, stack/common/redis_tracing.py) or packages "
            "(opentelemetry-instrumentation-aiohttp-client and -redis, installed with the dev "
            "extra only: the budget bench's baseline arm)."
        ),
    )
    otlp_endpoint: str = Field(
        "http://127.0.0.1:4318",
        alias="OTEL_EXPORTER_OTLP_ENDPOINT",
        description="Where the services send OTLP/HTTP (the collector).",
    )
    log_level: str = Field(
        "INFO", alias="LOG_LEVEL", description="Service log level: DEBUG, INFO, WARNING, ERROR."
    )
    log_flush_ms: int = Field(
        500,
        alias="LOG_FLUSH_MS",
        ge=0,
        le=10_000,
        description=(
            "How long a service holds INFO log lines before writing them to stdout in one "
            "write (WARNING and worse at once); 0 writes every line at once (the budget "
            "bench's baseline arm)."
        ),
    )
    metric_idle_export_ms: int = Field(
        60_000,
        alias="METRIC_IDLE_EXPORT_MS",
        ge=0,
        le=3_600_000,
        description=(
            "How often a service re-sends metrics that have not changed since its last export "
            "(stack/common/quiet_metrics.py); changed metrics go every "
            "OTEL_METRIC_EXPORT_INTERVAL. 0 sends every interval, as the SDK does (the budget "
            "bench's baseline arm)."
        ),
    )

    python_gc_threshold: str = Field(
        "10000,20,50",
        alias="PYTHON_GC_THRESHOLD",
        pattern=r"^\d+,\d+,\d+$",
        description=(
            "The services' cyclic garbage collector thresholds (gc.set_threshold: generation "
            "0, 1, 2). Every span, request and task allocates containers, so CPython's default "
            "700,10,10 collects many times a second under load; 10000,20,50 measured 5-15 % "
            "more questions a second at 25 users for a few MB more per service (the budget "
            "bench's baseline arm keeps 700,10,10)."
        ),
    )

    @property
    def gc_threshold(self) -> tuple[int, int, int]:
        g0, g1, g2 = (int(x) for x in self.python_gc_threshold.split(","))
        return g0, g1, g2

    def port(self, service: ServiceName) -> int:
        return self.port_base + PORT_OFFSETS[service]

    def url(self, service: ServiceName) -> str:
        return self.service_url_template.format(name=service.value, port=self.port(service))

    @property
    def db_path(self) -> Path:
        return self.data_dir / "feedback.db"

    @property
    def coralogix_enabled(self) -> bool:
        return bool(self.cx_private_key.get_secret_value())


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def check_env(env: Mapping[str, str]) -> None:
    """The services' settings as `env` would set them, checked before any service starts:
    a value a service would refuse (QUESTION_MAX_CHARS=abc) is a ValueError naming the
    variable, instead of eight services failing at start while `workshop up` waits for them.
    A secret's value is never repeated."""
    fields = {f.alias: f for f in Settings.model_fields.values() if f.alias}
    try:
        Settings.model_validate({var: env[var] for var in fields if var in env})
    except ValidationError as exc:
        err = exc.errors()[0]
        var = str(err["loc"][0]) if err["loc"] else "a variable"
        secret = var in fields and fields[var].annotation is SecretStr
        named = var if secret else f"{var}={err.get('input')!r}"
        raise ValueError(f"{named}: {str(err['msg']).lower()}") from None
