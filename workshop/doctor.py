"""``workshop doctor [--online]``: the pre-flight an instructor runs before a workshop.

Offline it says where telemetry goes and whether the collector answers. ``--online`` proves the
Coralogix path end to end:

1. sends a marker span, log and metric (one id, ``doctor-<12 hex>``) through the stack's
   collector over OTLP/HTTP (``OTEL_EXPORTER_OTLP_ENDPOINT``, else the native stack's port);
2. asks Coralogix until each is visible, within a bound (120 s): the span and the log through
   the DataPrime query API (``source spans|logs | wildfind '<id>'``), the metric through the
   PromQL-compatible Metrics API (``https://api.<domain>/metrics/api/v1/query``, Coralogix docs
   "Metrics API"); the host's utilization metrics (what Infrastructure Explorer draws) and the
   collector's own host entity event (local copy: ``entities*.jsonl`` with ``otel.entity.id``);
3. reports exactly which signal did not arrive and the likely cause (wrong domain or key,
   egress blocked), reading the collector's log for the exporter's own error when it can.

All queries share the room-wide DataPrime limiter (Redis) with the labs.
Tested against a local fake of Coralogix (ingest + query API): tests/workshop/test_doctor.py.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import requests
import typer
from rich.console import Console

from stack.common import coralogix as cx
from stack.common.dataprime_client import (
    DataPrimeClient,
    DataPrimeError,
    RateLimited,
    RedisRateLimiter,
)
from stack.native.config import NativeConfig, local_telemetry_dir

app = typer.Typer(help="Pre-flight checks; --online proves the Coralogix path end to end.")
console = Console()

DEFAULT_TIMEOUT_S = 120.0
DEFAULT_POLL_S = 10.0
MARKER_ATTR = "workshop.doctor.marker"
MARKER_METRIC = "workshop.doctor.marker"
UTILIZATION = "system_cpu_utilization"


@dataclass
class Check:
    name: str
    ok: bool | None = None  # None: not decided yet
    detail: str = ""
    seconds: float | None = None


@dataclass
class Report:
    marker: str
    checks: dict[str, Check] = field(default_factory=dict)
    cause: str = ""

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks.values())

    def failed(self) -> list[str]:
        return [n for n, c in self.checks.items() if not c.ok]


class OutOfTime(Exception):
    """The next query slot (30/minute, room-wide) would come after the doctor's deadline."""


class DeadlineLimiter:
    """The room's limiter, but never waiting past the doctor's deadline."""

    def __init__(
        self,
        inner: Any,
        deadline: float,
        sleep: Callable[[float], None],
        on_wait: Callable[[float], None],
    ) -> None:
        self.inner, self.deadline, self.sleep, self.on_wait = inner, deadline, sleep, on_wait

    def wait_time(self) -> float:
        return 0.0  # acquire() tells on_wait itself

    def acquire(self) -> float:
        waited = 0.0
        while True:
            if isinstance(self.inner, RedisRateLimiter):
                delay = self.inner.try_acquire()
            else:
                delay = self.inner.wait_time()
                if delay <= 0:
                    self.inner.acquire()
            if delay <= 0:
                return waited
            if time.monotonic() + delay > self.deadline:
                raise OutOfTime(f"the next query slot is {delay:.0f} s away")
            self.on_wait(delay)
            self.sleep(delay)
            waited += delay


# ------------------------------------------------------------------------------ sending


def send_markers(endpoint: str, marker: str, host_name: str) -> None:
    """One span, one log record and one gauge point carrying the marker, over OTLP/HTTP."""
    from opentelemetry._logs import SeverityNumber
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    base = endpoint.rstrip("/")
    res = Resource.create(
        {
            "service.name": "workshop-doctor",
            "service.namespace": "dataprime",
            "cx.subsystem.name": "workshop-doctor",
            MARKER_ATTR: marker,
        }
    )
    tp = TracerProvider(resource=res)
    tp.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces")))
    with tp.get_tracer("workshop.doctor").start_as_current_span(
        "workshop doctor marker", attributes={MARKER_ATTR: marker, "host.name": host_name}
    ):
        pass
    tp.shutdown()

    lp = LoggerProvider(resource=res)
    lp.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{base}/v1/logs"))
    )
    lp.get_logger("workshop.doctor").emit(
        body=f"workshop doctor marker {marker}",
        severity_number=SeverityNumber.INFO,
        severity_text="INFO",
        timestamp=time.time_ns(),
        attributes={MARKER_ATTR: marker},
    )
    lp.shutdown()

    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"{base}/v1/metrics"), export_interval_millis=3_600_000
    )
    mp = MeterProvider(resource=res, metric_readers=[reader])
    mp.get_meter("workshop.doctor").create_gauge(MARKER_METRIC).set(1, {"marker": marker})
    mp.shutdown()


def _reachable(endpoint: str) -> str | None:
    """None if something answers HTTP at the OTLP endpoint, else why not."""
    try:
        requests.post(endpoint.rstrip("/") + "/v1/traces", data=b"", timeout=3)
        return None
    except requests.RequestException as exc:
        return f"nothing answers at {endpoint} ({type(exc).__name__})"


# ------------------------------------------------------------------------------ querying


def _prom_query(client: DataPrimeClient, promql: str) -> list[Any]:
    """PromQL instant query on the Metrics API, through the same key and room-wide limiter."""
    client._acquire()
    try:
        resp = client.http.get(
            client.base_url + "/metrics/api/v1/query",
            params={"query": promql},
            headers={"Authorization": f"Bearer {client._key}"},
            timeout=client.timeout,
        )
    except requests.RequestException as exc:
        raise DataPrimeError(
            client._mask(f"cannot reach the Metrics API at {client.base_url}: {exc}")
        ) from None
    if resp.status_code in (401, 403):
        raise DataPrimeError(
            f"HTTP {resp.status_code}: the API key (CX_API_KEY) was refused by the Metrics API"
        )
    if resp.status_code == 429:
        raise RateLimited("rate limited by the Metrics API", 10.0)
    if resp.status_code >= 400:
        raise DataPrimeError(
            client._mask(f"HTTP {resp.status_code} from the Metrics API: {resp.text[:200]}")
        )
    data = resp.json()
    if data.get("status") != "success":
        raise DataPrimeError(f"the Metrics API said: {data.get('error') or data}")
    return (data.get("data") or {}).get("result") or []


def _queries(
    marker: str, host: cx.HostIdentity
) -> dict[str, Callable[[DataPrimeClient, float], bool]]:
    def dataprime(source: str) -> Callable[[DataPrimeClient, float], bool]:
        def run(client: DataPrimeClient, since: float) -> bool:
            q = f"source {source} | wildfind '{marker}' | limit 1"
            return bool(client.query(q, start=since - 60, end=time.time() + 60).rows)

        return run

    def metric(client: DataPrimeClient, _since: float) -> bool:
        return bool(
            _prom_query(client, f'{{__name__=~"workshop_doctor_marker.*",marker="{marker}"}}')
        )

    def host_metrics(client: DataPrimeClient, _since: float) -> bool:
        return bool(_prom_query(client, f'{UTILIZATION}{{host_name="{host.name}"}}'))

    return {
        "span": dataprime("spans"),
        "log": dataprime("logs"),
        "metric": metric,
        "host metrics": host_metrics,
    }


def entity_event_sent(telemetry_dir: Path) -> tuple[bool, str]:
    """The collector's own host entity events (local copy, written in both modes)."""
    files = sorted(telemetry_dir.glob("entities*.jsonl")) if telemetry_dir.is_dir() else []
    for path in reversed(files):
        with path.open("rb") as fh:
            size = fh.seek(0, 2)
            fh.seek(max(0, size - 256 * 1024))
            tail = fh.read().decode(errors="replace")
        if '"otel.entity.id"' in tail and '"host.id"' in tail:
            return True, f"host entity events with otel.entity.id/host.id in {path.name}"
    return False, (
        f"no host entity event with otel.entity.id in {telemetry_dir}: the collector is older "
        "than this kit's config, or has not run 5 minutes"
    )


# ------------------------------------------------------------------------------ causes

_LOG_CAUSES = [
    (
        re.compile(r"Unauthenticated|PermissionDenied|401|403", re.I),
        "the collector's exporter was refused: wrong CX_PRIVATE_KEY (Send-Your-Data key) or a key "
        "of another region",
    ),
    (
        re.compile(r"no such host|name resolution|lookup ingress", re.I),
        "ingress.<domain> does not resolve: wrong CX_DOMAIN/CX_REGION",
    ),
    (
        re.compile(r"deadline exceeded|i/o timeout|connection refused|connection reset", re.I),
        "the collector cannot reach ingress.<domain>:443: egress blocked (firewall, proxy) or "
        "wrong CX_DOMAIN",
    ),
]


def collector_log_cause(log: Path | None) -> str | None:
    if log is None or not log.exists():
        return None
    with log.open("rb") as fh:
        size = fh.seek(0, 2)
        fh.seek(max(0, size - 64 * 1024))
        tail = fh.read().decode(errors="replace")
    failing = [
        ln for ln in tail.splitlines() if "coralogix" in ln.lower() and "error" in ln.lower()
    ]
    for pattern, cause in _LOG_CAUSES:
        if any(pattern.search(ln) for ln in failing):
            return cause
    return None


def likely_cause(report: Report, env: Mapping[str, str], log: Path | None) -> str:
    failed = set(report.failed())
    domain = env.get("CX_DOMAIN") or env.get("CX_REGION") or cx.DEFAULT_DOMAIN
    if not failed:
        return ""
    api = report.checks.get("query API")
    if api and not api.ok:
        return api.detail
    from_log = collector_log_cause(log)
    sent = {"span", "log", "metric"}
    if sent <= failed:
        return (
            from_log
            or (
                f"nothing the kit sent arrived: the collector is not delivering to "
                f"ingress.{cx.region_of(domain).domain if _known(domain) else domain}:443 — check "
                "CX_PRIVATE_KEY (a Send-Your-Data key of this team), CX_DOMAIN, and that egress to "
                "port 443 is allowed"
            )
        ) + f"; the query side works (CX_API_KEY, api.{_api_domain(domain)})"
    parts = []
    if failed & sent:
        parts.append(
            f"{', '.join(sorted(failed & sent))} did not arrive while the others did: that "
            "pipeline is failing or ingestion is lagging" + (f" ({from_log})" if from_log else "")
        )
    if "host metrics" in failed:
        parts.append(
            "no system.cpu.utilization for this host: the collector's host_metrics receiver is "
            "off, or host.name differs (RESOURCE_DETECTORS order)"
        )
    if "host entity" in failed:
        parts.append(report.checks["host entity"].detail)
    return "; ".join(parts)


def _known(domain: str) -> bool:
    try:
        cx.region_of(domain)
        return True
    except ValueError:
        return False


def _api_domain(domain: str) -> str:
    return cx.region_of(domain).domain if _known(domain) else domain


# ------------------------------------------------------------------------------ the run


def run_online(
    env: Mapping[str, str],
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    poll: float = DEFAULT_POLL_S,
    progress: Callable[[str], None] = lambda _m: None,
    sleep: Callable[[float], None] = time.sleep,
) -> Report:
    cfg = NativeConfig.from_env(env)
    marker = f"doctor-{uuid.uuid4().hex[:12]}"
    report = Report(marker)
    telemetry_dir = local_telemetry_dir(env)
    host = cx.local_host(
        telemetry_dir, env.get("WORKSHOP_HOST_NAME", ""), env.get("WORKSHOP_HOST_ID", "")
    )
    endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or f"http://127.0.0.1:{cfg.otlp_http_port}"
    log_path = (
        Path(env["COLLECTOR_LOG"]) if env.get("COLLECTOR_LOG") else cfg.log_dir / "collector.log"
    )

    missing = [k for k in ("CX_PRIVATE_KEY", "CX_API_KEY") if not env.get(k)]
    domain = env.get("CX_REGION") or env.get("CX_DOMAIN") or ""
    if domain and not _known(domain) and not env.get("DATAPRIME_API_URL"):
        report.checks["config"] = Check("config", False, f"unknown region or domain {domain!r}")
        report.cause = "set CX_DOMAIN to one of " + ", ".join(r.domain for r in cx.REGIONS.values())
        return report
    if missing:
        report.checks["config"] = Check("config", False, "not set: " + ", ".join(missing))
        report.cause = (
            "CX_PRIVATE_KEY (Send-Your-Data key) makes the collector send, CX_API_KEY "
            "(DataQuerying key) lets the kit query: set both, restart the stack"
        )
        return report
    report.checks["config"] = Check(
        "config", True, f"keys set, domain {domain or cx.DEFAULT_DOMAIN}"
    )

    if why := _reachable(endpoint):
        report.checks["collector"] = Check("collector", False, why)
        report.cause = "start the stack (`workshop up`) or set OTEL_EXPORTER_OTLP_ENDPOINT"
        return report
    progress(f"sending marker {marker} (span, log, metric) to {endpoint}")
    t0 = time.time()
    send_markers(endpoint, marker, host.name)
    report.checks["collector"] = Check("collector", True, f"accepted OTLP at {endpoint}")

    ok, detail = entity_event_sent(telemetry_dir)
    report.checks["host entity"] = Check("host entity", ok, detail)

    try:
        client = DataPrimeClient.from_env(env, sleep=sleep, max_retries=1)
    except DataPrimeError as exc:
        report.checks["query API"] = Check("query API", False, str(exc))
        report.cause = str(exc)
        return report
    client.cache = None  # the doctor wants fresh answers, never a cached "not yet"
    deadline = time.monotonic() + timeout
    client.limiter = DeadlineLimiter(
        client.limiter,
        deadline,
        sleep,
        lambda d: progress(f"checking… queued behind the room's queries ({d:.0f} s)"),
    )

    pending = _queries(marker, host)
    for name in pending:
        report.checks[name] = Check(name, None, "not seen yet")
    out_of_time = False
    while pending and not out_of_time:
        for name, fn in list(pending.items()):
            try:
                seen = fn(client, t0)
            except OutOfTime as exc:
                progress(f"stopping: {exc}")
                out_of_time = True
                break
            except RateLimited as exc:
                progress(f"rate limited, retrying in {exc.retry_after:.0f} s")
                continue
            except DataPrimeError as exc:
                msg = str(exc)
                report.checks["query API"] = Check("query API", False, _api_cause(msg, client))
                for rest in pending:
                    report.checks[rest] = Check(rest, False, "not checked: the query API failed")
                report.cause = likely_cause(report, env, log_path)
                return report
            if seen:
                report.checks[name] = Check(
                    name, True, "visible in Coralogix", round(time.time() - t0, 1)
                )
                progress(f"{name}: visible after {time.time() - t0:.0f} s")
                del pending[name]
        report.checks.setdefault("query API", Check("query API", True, client.base_url))
        if out_of_time or not pending or time.monotonic() >= deadline:
            break
        progress(f"waiting for: {', '.join(pending)}")
        sleep(min(poll, max(0.0, deadline - time.monotonic())))
    for name in pending:
        report.checks[name] = Check(name, False, f"not visible after {timeout:.0f} s")
    report.cause = likely_cause(report, env, log_path)
    return report


def _api_cause(message: str, client: DataPrimeClient) -> str:
    if "cannot reach" in message or "did not answer" in message:
        return (
            f"{message} — wrong CX_DOMAIN/CX_REGION, or egress to {client.base_url} "
            "(HTTPS 443) is blocked"
        )
    if "was refused" in message or "HTTP 401" in message or "HTTP 403" in message:
        return (
            f"{message} — a DataQuerying key of this team and region is needed ({client.base_url})"
        )
    return message


# ------------------------------------------------------------------------------ the command


@app.callback(invoke_without_command=True)
def doctor(
    online: Annotated[
        bool, typer.Option("--online", help="Send markers and wait until Coralogix shows them")
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, help="Seconds to wait for the markers")
    ] = DEFAULT_TIMEOUT_S,
    poll: Annotated[
        float, typer.Option("--poll", min=0.05, help="Seconds between checks")
    ] = DEFAULT_POLL_S,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Where telemetry goes; with --online, prove that each signal reaches Coralogix."""
    env = dict(os.environ)
    if not online:
        cfg = NativeConfig.from_env(env)
        mode = "Coralogix (+ local copy)" if env.get("CX_PRIVATE_KEY") else "local files only"
        host = cx.team_host(
            env.get("CX_TEAM_URL", ""),
            env.get("CX_TEAM_NAME", ""),
            env.get("CX_REGION") or env.get("CX_DOMAIN") or "",
        )
        me = cx.local_host(
            cfg.telemetry_dir, env.get("WORKSHOP_HOST_NAME", ""), env.get("WORKSHOP_HOST_ID", "")
        )
        console.print(f"telemetry: {mode}; local copy in {cfg.telemetry_dir}")
        console.print(f"links: {host or cx.NO_TEAM_HINT}")
        console.print(f"host: {me.pointer()} ({me.source})")
        console.print(
            "run `workshop doctor --online` before a workshop to prove the Coralogix path"
        )
        return
    report = run_online(
        env, timeout=timeout, poll=poll, progress=lambda m: console.print(f"[dim]{m}[/dim]")
    )
    if as_json:
        console.print_json(
            json.dumps(
                {
                    "ok": report.ok,
                    "marker": report.marker,
                    "cause": report.cause,
                    "checks": {n: c.__dict__ for n, c in report.checks.items()},
                }
            )
        )
    else:
        for c in report.checks.values():
            mark = "[green]✔[/green]" if c.ok else "[red]✘[/red]"
            took = f" ({c.seconds:.0f} s)" if c.seconds is not None else ""
            console.print(f"{mark} {c.name}{took}: {c.detail}", soft_wrap=True)
        if report.ok:
            console.print(
                "[green]Coralogix path OK[/green]: spans, logs, metrics and the host arrive."
            )
        else:
            console.print(
                f"[red]not ready[/red]: {', '.join(report.failed())} — {report.cause}",
                soft_wrap=True,
            )
    raise typer.Exit(0 if report.ok else 1)
