"""Every environment variable the stack reads, in one place, with its documented default.

Native runs and docker-compose.vm.yml read the same names; the defaults here are the native
ones (loopback addresses, ports in docs/architecture.md, data under ./data).
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
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
    data_dir: Path = Field(REPO_ROOT / "data", alias="WORKSHOP_DATA_DIR")
    environment: str = Field("workshop", alias="DEPLOYMENT_ENVIRONMENT")
    service_version: str = Field("1.0.0", alias="SERVICE_VERSION")

    # --- network -----------------------------------------------------------------------
    bind_host: str = Field("127.0.0.1", alias="WORKSHOP_BIND_HOST")
    port_base: int = Field(8010, alias="WORKSHOP_PORT_BASE", ge=1024, le=65000)
    # How one service reaches another: a template filled with the service name and port.
    # Native: every service on loopback. Docker: "http://{name}:{port}".
    service_url_template: str = Field("http://127.0.0.1:{port}", alias="SERVICE_URL_TEMPLATE")
    redis_url: str = Field("redis://127.0.0.1:6390/0", alias="REDIS_URL")

    # --- HTTP client between services (seconds) ----------------------------------------
    http_connect_timeout: float = Field(1.0, alias="HTTP_CONNECT_TIMEOUT", gt=0)
    http_read_timeout: float = Field(5.0, alias="HTTP_READ_TIMEOUT", gt=0)
    http_pool_size: int = Field(100, alias="HTTP_POOL_SIZE", ge=1)

    # --- domain ------------------------------------------------------------------------
    query_engine: str = Field("llm", alias="QUERY_ENGINE", pattern="^(llm|rules)$")
    cache_ttl_seconds: int = Field(300, alias="CACHE_TTL_SECONDS", ge=0)
    session_ttl_seconds: int = Field(3600, alias="SESSION_TTL_SECONDS", ge=60)
    job_status_ttl_seconds: int = Field(86400, alias="JOB_STATUS_TTL_SECONDS", ge=60)
    stream_maxlen: int = Field(100_000, alias="STREAM_MAXLEN", ge=100)
    question_max_chars: int = Field(500, alias="QUESTION_MAX_CHARS", ge=10)
    comment_max_chars: int = Field(1000, alias="COMMENT_MAX_CHARS", ge=10)
    history_max_page_size: int = Field(100, alias="HISTORY_MAX_PAGE_SIZE", ge=1)
    history_max_depth: int = Field(10_000, alias="HISTORY_MAX_DEPTH", ge=100)
    max_body_bytes: int = Field(16_384, alias="MAX_BODY_BYTES", ge=1024)

    # --- queue worker ------------------------------------------------------------------
    worker_concurrency: int = Field(16, alias="WORKER_CONCURRENCY", ge=1, le=256)
    worker_batch: int = Field(16, alias="WORKER_BATCH", ge=1)
    worker_max_attempts: int = Field(5, alias="WORKER_MAX_ATTEMPTS", ge=1, le=10)
    worker_backoff_ms: int = Field(200, alias="WORKER_BACKOFF_MS", ge=0)
    worker_claim_idle_ms: int = Field(15_000, alias="WORKER_CLAIM_IDLE_MS", ge=100)
    worker_consumer: str = Field("", alias="WORKER_CONSUMER")
    shutdown_grace_seconds: float = Field(10.0, alias="SHUTDOWN_GRACE_SECONDS", gt=0)

    # --- benchmark baselines -----------------------------------------------------------
    # `services` restores the poll path that profiling replaced (gateway → queue-service →
    # Redis, then storage-service): `workshop bench` runs it back to back with the default
    # to measure the fix within one run. Nobody should set it otherwise.
    gateway_poll_via: Literal["redis", "services"] = Field("redis", alias="GATEWAY_POLL_VIA")
    # How often uvicorn's main loop wakes (Date header, exit check): 1 s; uvicorn's own 0.1 s
    # is the baseline arm of `workshop bench --budget` (idle CPU, issue 19). Leave it.
    server_tick_seconds: float = Field(1.0, alias="SERVER_TICK_SECONDS", gt=0, le=1)

    # --- the stand-in LLM provider -----------------------------------------------------
    llm_model: str = Field("workshop-dataprime-1", alias="LLM_MODEL")
    llm_base_ms: float = Field(4.0, alias="LLM_BASE_MS", ge=0)
    llm_per_token_ms: float = Field(0.02, alias="LLM_PER_TOKEN_MS", ge=0)
    llm_rate_limit_rps: float = Field(200.0, alias="LLM_RATE_LIMIT_RPS", gt=0)
    llm_max_retries: int = Field(3, alias="LLM_MAX_RETRIES", ge=0, le=10)
    llm_retry_cap_seconds: float = Field(2.0, alias="LLM_RETRY_CAP_SECONDS", ge=0)
    # A real provider is used only when both are set (OpenAI-compatible chat completions).
    llm_provider_base_url: str = Field("", alias="LLM_PROVIDER_BASE_URL")
    llm_provider_api_key: SecretStr = Field(SecretStr(""), alias="LLM_PROVIDER_API_KEY")

    # --- admin & faults ----------------------------------------------------------------
    admin_token: SecretStr = Field(SecretStr(""), alias="ADMIN_TOKEN")
    attendee_faults: bool = Field(False, alias="ATTENDEE_FAULTS")
    # Changes arrive by pub/sub at once; this is only the safety net for a lost message.
    fault_poll_seconds: float = Field(5.0, alias="FAULT_POLL_SECONDS", gt=0, le=60)

    # --- Coralogix (the collector sends; the labs query) -------------------------------
    cx_private_key: SecretStr = Field(SecretStr(""), alias="CX_PRIVATE_KEY")
    cx_api_key: SecretStr = Field(SecretStr(""), alias="CX_API_KEY")
    cx_domain: str = Field("eu2.coralogix.com", alias="CX_DOMAIN")
    cx_application_name: str = Field("dataprime-workshop", alias="CX_APPLICATION_NAME")
    cx_team_url: str = Field("", alias="CX_TEAM_URL")
    cx_team_name: str = Field("", alias="CX_TEAM_NAME")
    cx_region: str = Field("", alias="CX_REGION")
    # The host attendees pick in Infrastructure Explorer (Docker: the VM's, see env.vm.example).
    workshop_host_name: str = Field("", alias="WORKSHOP_HOST_NAME")
    workshop_host_id: str = Field("", alias="WORKSHOP_HOST_ID")

    # --- telemetry (the OTEL_* variables are read by the SDK itself) -------------------
    otel_sdk_disabled: bool = Field(False, alias="OTEL_SDK_DISABLED")
    otlp_endpoint: str = Field("http://127.0.0.1:4318", alias="OTEL_EXPORTER_OTLP_ENDPOINT")
    log_level: str = Field("INFO", alias="LOG_LEVEL")

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
