"""Fault timelines: inject faults through the admin API at offsets into a Locust run.

`--fault-timeline` takes a file (one entry per line, `#` comments) or an inline spec, entries
separated by `;`:

    KIND:TARGET[:PARAM=VALUE,...]@START[+DURATION]

    latency:validation-service:ms=300@60s+90s
    error:query-service:status=503,probability=0.3@2m+1m
    queue_stall:queue-worker:mode=pause@30s          # until the run ends

`probability`, `scope` and `scope_value` are fault fields; every other `key=value` is a
parameter of the kind (`GET /api/admin/faults/catalogue`). Times take `s`, `m`, `h` (or plain
seconds) and are multiplied by `--time-scale`. `--fault-scope attendee` scopes every fault to
`--attendee`, so a shared stack's other attendees are unaffected.

Whatever the timeline created is cleared when the test stops, when Locust quits, on
SIGINT/SIGTERM and at interpreter exit; each fault also carries a TTL just past its planned
end. Created ids are written to `reports/fault-state/<pid>.json` until cleared, so a crashed
run leaves a record: the next run (or `clean_leftovers()`, which `workshop fault clear` can
call) deletes those faults.

The admin token comes from env `ADMIN_TOKEN`, else the native stack's token file.
Parsing and the state file are plain Python; only `install()` touches Locust and gevent.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import math
import os
import re
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from stack.common.procs import pid_alive  # stdlib only: safe where Locust imports us

log = logging.getLogger("workshop.faults")
REPO = Path(__file__).resolve().parents[1]
STATE_DIR = Path(os.environ.get("WORKSHOP_FAULT_STATE_DIR") or REPO / "reports" / "fault-state")
FAULT_FIELDS = {"probability", "scope", "scope_value"}
TTL_SLACK_S = 15


# ---- parsing -------------------------------------------------------------------------------
_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?$")


def parse_duration(text: str) -> float:
    """`90`, `90s`, `1m30s`, `2m`, `1h` → seconds."""
    text = text.strip().lower()
    match = _DURATION.match(text)
    if not text or not match or not any(match.groups()):
        raise ValueError(f"not a duration: {text!r} (e.g. 90s, 2m, 1m30s)")
    h, m, s = (float(g) if g else 0.0 for g in match.groups())
    return h * 3600 + m * 60 + s


def _value(raw: str) -> Any:
    raw = raw.strip()
    for cast in (int, float):
        with contextlib.suppress(ValueError):
            return cast(raw)
    return raw


@dataclass(frozen=True)
class TimelineEntry:
    kind: str
    target: str
    params: dict[str, Any] = field(default_factory=dict)
    start: float = 0.0  # nominal seconds
    duration: float | None = None  # None: until the run ends
    probability: float | None = None
    scope: str | None = None
    scope_value: str | None = None

    def body(self, time_scale: float, run_limit: float | None = None) -> dict[str, Any]:
        """The admin API's fault body, with a TTL just past the entry's planned end."""
        if self.duration is not None:
            ttl = self.duration * time_scale
        elif run_limit is not None:
            ttl = max(1.0, run_limit - self.start * time_scale)
        else:
            ttl = 3600.0
        body: dict[str, Any] = {
            "kind": self.kind,
            "target": self.target,
            "params": dict(self.params),
            "ttl_seconds": min(7200, int(math.ceil(ttl)) + TTL_SLACK_S),
        }
        if self.probability is not None:
            body["probability"] = self.probability
        if self.scope:
            body["scope"] = self.scope
            body["scope_value"] = self.scope_value
        return body

    def describe(self) -> str:
        params = ",".join(f"{k}={v}" for k, v in self.params.items())
        until = f"+{self.duration:g}s" if self.duration is not None else " until the end"
        return f"{self.kind}:{self.target}{':' + params if params else ''}@{self.start:g}s{until}"


def parse_entry(text: str) -> TimelineEntry:
    spec, sep, when = text.strip().partition("@")
    if not sep:
        raise ValueError(f"{text!r}: missing @START (e.g. latency:query-service:ms=300@60s+30s)")
    parts = spec.split(":", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ValueError(f"{text!r}: expected KIND:TARGET[:PARAMS]@START[+DURATION]")
    kind, target = parts[0].strip(), parts[1].strip()
    params: dict[str, Any] = {}
    fields: dict[str, Any] = {}
    if len(parts) == 3 and parts[2].strip():
        for pair in parts[2].split(","):
            key, eq, raw = pair.partition("=")
            if not eq or not key.strip():
                raise ValueError(f"{text!r}: parameter {pair!r} is not key=value")
            (fields if key.strip() in FAULT_FIELDS else params)[key.strip()] = _value(raw)
    start_text, plus, duration_text = when.partition("+")
    probability = fields.get("probability")
    if probability is not None and not 0 <= float(probability) <= 1:
        raise ValueError(f"{text!r}: probability must be within 0..1")
    return TimelineEntry(
        kind=kind,
        target=target,
        params=params,
        start=parse_duration(start_text),
        duration=parse_duration(duration_text) if plus else None,
        probability=float(probability) if probability is not None else None,
        scope=fields.get("scope"),
        scope_value=str(fields["scope_value"]) if "scope_value" in fields else None,
    )


def parse_timeline(spec: str) -> list[TimelineEntry]:
    """An inline spec (`;`-separated) or the path of a file with one entry per line."""
    spec = (spec or "").strip()
    if not spec:
        return []
    path = Path(spec)
    if "@" not in spec or (len(spec) < 4096 and path.is_file()):
        if not path.is_file():
            raise ValueError(f"fault timeline: no file {spec!r} and not an inline spec")
        lines = [ln.split("#", 1)[0].strip() for ln in path.read_text().splitlines()]
        chunks = [c for ln in lines for c in ln.split(";")]
    else:
        chunks = spec.split(";")
    return sorted(
        (parse_entry(c) for c in chunks if c.strip()), key=lambda e: (e.start, e.kind, e.target)
    )


# ---- admin API + state file ----------------------------------------------------------------
def admin_token() -> str | None:
    from stack.client import admin_token as lookup  # the one rule; lazy: Locust imports us

    try:
        return lookup()
    except Exception:
        return None


class FaultClient:
    """Creates and clears faults; remembers what it created in memory and on disk."""

    def __init__(
        self, base_url: str, token: str | None, state_dir: Path = STATE_DIR, timeout: float = 5.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.state_file = state_dir / f"{os.getpid()}.json"
        self.created: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.http = requests.Session()
        self.http.headers["baggage"] = "synthetic_request=true"
        if token:
            self.http.headers["authorization"] = f"Bearer {token}"

    def create(self, body: dict[str, Any]) -> str:
        resp = self.http.post(f"{self.base_url}/api/admin/faults", json=body, timeout=self.timeout)
        if resp.status_code != 201:
            raise RuntimeError(
                f"fault {body['kind']}:{body['target']}: HTTP {resp.status_code} {resp.text[:200]}"
            )
        fault_id = resp.json()["id"]
        with self._lock:
            self.created[fault_id] = {"kind": body["kind"], "target": body["target"]}
            self._save()
        return fault_id

    def remove(self, fault_id: str) -> bool:
        try:
            resp = self.http.delete(
                f"{self.base_url}/api/admin/faults/{fault_id}", timeout=self.timeout
            )
            gone = resp.status_code in (200, 404)  # 404: expired by its TTL already
        except requests.RequestException as exc:
            log.warning("could not clear fault %s: %s", fault_id, exc)
            gone = False
        if gone:
            with self._lock:
                self.created.pop(fault_id, None)
                self._save()
        return gone

    def clear(self) -> list[str]:
        cleared = [fid for fid in list(self.created) if self.remove(fid)]
        if cleared:
            log.info("fault timeline: cleared %d fault(s)", len(cleared))
        return cleared

    def _save(self) -> None:
        try:
            if self.created:
                self.state_file.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.state_file.with_suffix(".tmp")
                tmp.write_text(
                    json.dumps(
                        {
                            "pid": os.getpid(),
                            "gateway": self.base_url,
                            "written_at": time.time(),
                            "faults": self.created,
                        },
                        indent=2,
                    )
                )
                tmp.replace(self.state_file)
            else:
                self.state_file.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("fault state file %s: %s", self.state_file, exc)


def clean_leftovers(
    base_url: str | None = None,
    token: str | None = None,
    state_dir: Path = STATE_DIR,
    *,
    include_live: bool = False,
) -> list[str]:
    """Clear faults that crashed runs recorded in `state_dir`; returns the ids cleared.

    Runs whose process is still alive are left alone unless `include_live`. A state file is
    removed once all its faults are gone (cleared now or expired).
    """
    cleared: list[str] = []
    if not state_dir.is_dir():
        return cleared
    token = token or admin_token()
    for path in sorted(state_dir.glob("*.json")):
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
            continue
        pid = int(state.get("pid", 0))
        if pid == os.getpid() or (not include_live and pid and pid_alive(pid)):
            continue
        url = base_url or state.get("gateway")
        if not url:
            continue
        client = FaultClient(url, token, state_dir)
        client.state_file = path
        client.created = dict(state.get("faults", {}))
        cleared += client.clear()
        if not client.created:
            path.unlink(missing_ok=True)
    return cleared


# ---- Locust wiring -------------------------------------------------------------------------
class Timeline:
    """Runs a parsed timeline with gevent greenlets; clears everything it created."""

    def __init__(
        self,
        entries: list[TimelineEntry],
        client: FaultClient,
        time_scale: float,
        run_limit: float | None = None,
    ) -> None:
        self.entries = entries
        self.client = client
        self.time_scale = time_scale
        self.run_limit = run_limit
        self.greenlets: list[Any] = []
        self.errors: list[str] = []

    def start(self) -> None:
        import gevent

        self.stop()
        for entry in self.entries:
            self.greenlets.append(gevent.spawn(self._run, entry))

    def _run(self, entry: TimelineEntry) -> None:
        import gevent

        gevent.sleep(entry.start * self.time_scale)
        try:
            fault_id = self.client.create(entry.body(self.time_scale, self.run_limit))
        except Exception as exc:  # a bad entry must not kill the run; it is reported
            self.errors.append(f"{entry.describe()}: {exc}")
            log.error("fault timeline: %s: %s", entry.describe(), exc)
            return
        log.info("fault timeline: %s → %s", entry.describe(), fault_id)
        if entry.duration is not None:
            gevent.sleep(entry.duration * self.time_scale)
            self.client.remove(fault_id)
            log.info("fault timeline: cleared %s (%s)", fault_id, entry.kind)

    def stop(self) -> list[str]:
        import gevent

        if self.greenlets:
            gevent.killall(self.greenlets, block=True, timeout=5)
            self.greenlets = []
        return self.client.clear()


_active: Timeline | None = None


def _clear_active(*_: Any) -> None:
    if _active is not None:
        with contextlib.suppress(Exception):
            _active.client.clear()


def install(events: Any) -> None:
    """Register the `--fault-timeline` options and the listeners (called by the locustfile)."""

    @events.init_command_line_parser.add_listener
    def _options(parser: Any) -> None:
        group = parser.add_argument_group("workshop fault timeline")
        group.add_argument(
            "--fault-timeline",
            default="",
            help="faults to inject: a file or KIND:TARGET[:k=v,...]@START[+DURATION];...",
        )
        group.add_argument(
            "--fault-scope",
            default="all",
            choices=["all", "attendee"],
            help="attendee: scope every timeline fault to --attendee",
        )

    @events.init.add_listener
    def _init(environment: Any, **_: Any) -> None:
        global _active
        from locust.runners import WorkerRunner

        opts = environment.parsed_options
        spec = getattr(opts, "fault_timeline", "") if opts else ""
        if isinstance(environment.runner, WorkerRunner):
            return
        host = environment.host or (getattr(opts, "host", None) if opts else None)
        token = admin_token()
        if host:
            leftovers = clean_leftovers(None, token)
            if leftovers:
                log.warning("cleared %d fault(s) left by a crashed run", len(leftovers))
        if not spec:
            return
        entries = parse_timeline(spec)  # a bad spec fails the run at start, loudly
        if getattr(opts, "fault_scope", "all") == "attendee":
            attendee = getattr(opts, "attendee", None)
            entries = [
                TimelineEntry(**{**e.__dict__, "scope": "attendee", "scope_value": attendee})
                for e in entries
            ]
        if not host:
            raise SystemExit("--fault-timeline needs --host (the gateway)")
        if not token:
            raise SystemExit("--fault-timeline needs the admin token (env ADMIN_TOKEN)")
        run_limit = getattr(opts, "run_time", None)
        _active = Timeline(
            entries,
            FaultClient(host, token),
            float(getattr(opts, "time_scale", 1.0) or 1.0),
            float(run_limit) if run_limit else None,
        )
        for entry in entries:
            log.info("fault timeline: planned %s", entry.describe())
        atexit.register(_clear_active)
        _chain_signal(signal.SIGTERM)

    @events.test_start.add_listener
    def _start(environment: Any, **_: Any) -> None:
        from locust.runners import WorkerRunner

        if _active is not None and not isinstance(environment.runner, WorkerRunner):
            _active.start()

    @events.test_stop.add_listener
    def _stop(environment: Any, **_: Any) -> None:
        if _active is not None and not _is_worker(environment):
            _active.stop()

    @events.quitting.add_listener
    def _quitting(environment: Any, **_: Any) -> None:
        if _active is not None and not _is_worker(environment):
            _active.stop()
            if _active.errors:
                log.error("fault timeline errors: %s", "; ".join(_active.errors))


def _is_worker(environment: Any) -> bool:
    from locust.runners import WorkerRunner

    return isinstance(environment.runner, WorkerRunner)


def _chain_signal(signum: int) -> None:
    """Clear faults first, then let Locust's own handler run (SIGINT reaches `quitting` through
    KeyboardInterrupt; this covers a SIGTERM that arrives before Locust installed its own)."""
    previous = signal.getsignal(signum)

    def handler(num: int, frame: Any) -> None:
        _clear_active()
        if callable(previous):
            previous(num, frame)
        elif previous == signal.SIG_DFL:
            signal.signal(num, signal.SIG_DFL)
            os.kill(os.getpid(), num)

    with contextlib.suppress(ValueError):  # not the main thread
        signal.signal(signum, handler)
