"""The kit's own spans, read back from the collector's file exporter: RED series and waterfalls.

The collector writes every span as OTLP JSON lines to `traces*.jsonl` under TELEMETRY_DIR
(offline always; online too, as a bounded, rotated local copy beside the Coralogix export).
This module tails those files *only while someone is looking*: a request touches a lease, a
background thread reads the new lines once a second, and stops when no request came for
LEASE_SECONDS. With no page open nothing runs: no polling, no parsing, no CPU.

Each new line is decoded once and feeds two things:
- RedStore: one record per entry span (SERVER, or CONSUMER for the queue worker);
- a trace index: trace id -> the (file, offset, length) of the lines holding its spans. Spans
  are not kept in memory; a waterfall re-reads its few lines (pread) and decodes only them.

Files are tracked by inode, so the exporter's rotation (rename, then a new active file) loses
nothing: a rotated file is the same inode under a new name, read on to its end.

Why not reuse labs.telemetry.reader: layers import downward (stack <- labs), and it decodes
every span into objects, which the index does not need.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from stack.common.red import RedStore

log = logging.getLogger("stack.tracestore")

TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
SPAN_KINDS = {
    0: "UNSPECIFIED",
    1: "INTERNAL",
    2: "SERVER",
    3: "CLIENT",
    4: "PRODUCER",
    5: "CONSUMER",
}
ENTRY_KINDS = {"SERVER", "CONSUMER"}
LEASE_SECONDS = 30.0
POLL_SECONDS = 1.0
MAX_TRACES = 50_000  # index entries kept (oldest dropped first); ~10 MB
EXPECT_SECONDS = 120.0  # a trace the gateway just started is "waiting", not unknown
# A first look reads at most this much of each file (its end): bounded time and memory.
MAX_FIRST_READ_BYTES = 64 * 1024 * 1024
CHUNK_BYTES = 4 * 1024 * 1024
MAX_DECODED = 200  # traces whose decoded spans are kept for pages polling them


def valid_trace_id(value: str) -> bool:
    return bool(TRACE_ID.match(value)) and value != "0" * 32


def _hex_id(value: Any) -> str:
    s = str(value or "")
    if not s or TRACE_ID.match(s) or re.fullmatch(r"[0-9a-fA-F]{16}", s):
        return s.lower()
    try:  # protobuf JSON mapping writes ids as base64
        return base64.b64decode(s).hex()
    except ValueError:
        return s


def _any(v: dict[str, Any] | None) -> Any:
    if not v:
        return None
    for k in ("stringValue", "boolValue", "doubleValue"):
        if k in v:
            return v[k]
    if "intValue" in v:
        return int(v["intValue"])
    if "arrayValue" in v:
        return [_any(x) for x in (v["arrayValue"] or {}).get("values", [])]
    if "kvlistValue" in v:
        return _attrs((v["kvlistValue"] or {}).get("values"))
    return None


def _attrs(kvs: Iterable[dict[str, Any]] | None) -> dict[str, Any]:
    return {kv["key"]: _any(kv.get("value")) for kv in (kvs or ()) if "key" in kv}


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return value.removeprefix("SPAN_KIND_") or "UNSPECIFIED"
    return SPAN_KINDS.get(int(value or 0), "UNSPECIFIED")


def _is_error(span: dict[str, Any]) -> bool:
    code = (span.get("status") or {}).get("code", 0)
    return code in (2, "STATUS_CODE_ERROR")


def _attr(span: dict[str, Any], key: str) -> Any:
    for kv in span.get("attributes") or ():
        if kv.get("key") == key:
            return _any(kv.get("value"))
    return None


@dataclass
class _File:
    path: Path
    offset: int = 0
    fh: Any = None
    resync: bool = False


@dataclass
class TraceEntry:
    refs: list[tuple[int, int, int]] = field(default_factory=list)  # (inode, offset, length)
    last_arrival: float = 0.0  # monotonic time its newest line was read


class TraceStore:
    def __init__(
        self,
        directory: Path,
        *,
        red: RedStore | None = None,
        services: Iterable[str] = (),
        settle_seconds: float = 3.0,
        lease_seconds: float = LEASE_SECONDS,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.directory = Path(directory)
        self.red = red or RedStore()
        self.services = list(services)
        self.settle_seconds = settle_seconds
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self._files: dict[int, _File] = {}
        self._index: OrderedDict[str, TraceEntry] = OrderedDict()
        self._expected: OrderedDict[str, float] = OrderedDict()
        # Traces someone looked at: decoded spans and the lines already decoded, so a page
        # polling a trace that is still arriving decodes each line once.
        self._decoded: OrderedDict[str, tuple[dict[str, dict[str, Any]], set[tuple[int, int, int]]]]
        self._decoded = OrderedDict()
        self._scan_lock = threading.Lock()
        self._index_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._touched = 0.0
        self.scans = 0
        self.first_scan_done = False
        self.lines_read = 0

    # ---- lease ---------------------------------------------------------------------------
    def touch(self) -> None:
        """Someone is looking: keep (or start) the tail thread for another lease."""
        self._touched = time.monotonic()
        t = self._thread
        if t is None or not t.is_alive():
            self._thread = threading.Thread(target=self._run, name="tracestore-tail", daemon=True)
            self._thread.start()

    @property
    def tailing(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while time.monotonic() - self._touched < self.lease_seconds:
            try:
                self.scan()
            except Exception:
                log.exception("reading %s failed", self.directory)
            time.sleep(self.poll_seconds)

    # ---- expected traces -----------------------------------------------------------------
    def expect(self, trace_id: str) -> None:
        """The gateway just started this trace: until its spans arrive it is 'waiting'."""
        now = time.monotonic()
        with self._index_lock:
            self._expected[trace_id] = now
            self._expected.move_to_end(trace_id)
            while self._expected and (
                len(self._expected) > 10_000
                or next(iter(self._expected.values())) < now - EXPECT_SECONDS
            ):
                self._expected.popitem(last=False)

    # ---- reading ---------------------------------------------------------------------------
    def _listing(self) -> list[tuple[int, Path, os.stat_result]]:
        if not self.directory.is_dir():
            return []
        found = []
        for p in self.directory.glob("traces*.json*"):
            if p.suffix == ".gz":
                continue
            try:
                st = p.stat()
            except OSError:
                continue
            found.append((st.st_ino, p, st))
        found.sort(key=lambda x: (x[2].st_mtime_ns, x[1].name))
        return found

    def scan(self) -> int:
        """Read what was appended since the last scan; returns the number of new lines."""
        with self._scan_lock:
            listing = self._listing()
            live = {ino for ino, _, _ in listing}
            for ino in [i for i in self._files if i not in live]:
                gone = self._files.pop(ino)
                if gone.fh:
                    gone.fh.close()
            now_wall = time.time()
            new_lines = 0
            for ino, path, st in listing:
                f = self._files.get(ino)
                if f is None:
                    f = self._files[ino] = _File(path)
                    too_old = st.st_mtime < now_wall - self.red.history - 60
                    if too_old:
                        f.offset = st.st_size  # nothing in it is on the charts any more
                    elif st.st_size > MAX_FIRST_READ_BYTES:
                        f.offset = st.st_size - MAX_FIRST_READ_BYTES
                        f.resync = True
                f.path = path
                if st.st_size < f.offset:  # truncated in place: start over
                    f.offset = 0
                if st.st_size > f.offset:
                    new_lines += self._read(ino, f, st.st_size)
            self.first_scan_done = True
            self.scans += 1
            self.red.prune(now_wall)
            return new_lines

    def _read(self, ino: int, f: _File, size: int) -> int:
        if f.fh is None:
            try:
                f.fh = open(f.path, "rb")  # noqa: SIM115 - kept open across scans (rotation)
            except OSError:
                return 0
        n = 0
        arrival = time.monotonic()
        chunk = CHUNK_BYTES
        while f.offset < size:
            f.fh.seek(f.offset)
            data = f.fh.read(min(chunk, size - f.offset))
            end = data.rfind(b"\n")
            if end < 0:
                if len(data) < size - f.offset:
                    chunk *= 2  # one line longer than a chunk: read more at once
                    continue
                break  # a line still being written
            pos = 0
            if f.resync:  # we jumped into the middle of a line: start at the next one
                pos = data.find(b"\n") + 1
                f.resync = False
            while pos <= end:
                nl = data.find(b"\n", pos, end + 1)
                if nl > pos:
                    self._line(ino, f.offset + pos, data[pos:nl], arrival)
                    n += 1
                pos = nl + 1
            f.offset += end + 1
            chunk = CHUNK_BYTES
        self.lines_read += n
        return n

    def _line(self, ino: int, offset: int, line: bytes, arrival: float) -> None:
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            return  # a truncated line (crash) is skipped, as the file readers do
        if not isinstance(doc, dict):
            return
        ref = (ino, offset, len(line))
        traces: set[str] = set()
        red = self.red
        for rs in doc.get("resourceSpans") or ():
            service = ""
            for kv in (rs.get("resource") or {}).get("attributes") or ():
                if kv.get("key") == "service.name":
                    service = str(_any(kv.get("value")) or "")
                    break
            for ss in rs.get("scopeSpans") or ():
                for s in ss.get("spans") or ():
                    traces.add(s.get("traceId", ""))
                    if _kind(s.get("kind", 0)) not in ENTRY_KINDS:
                        continue
                    start = int(s.get("startTimeUnixNano") or 0)
                    end = int(s.get("endTimeUnixNano") or start)
                    error = _is_error(s)
                    if not error:
                        code = _attr(s, "http.response.status_code")
                        error = isinstance(code, int) and code >= 500
                    attendee = _attr(s, "workshop.attendee")
                    red.add(
                        service,
                        start / 1e9,
                        max(end - start, 0) / 1e6,
                        error,
                        str(attendee) if attendee else None,
                    )
        with self._index_lock:
            for raw in traces:
                tid = _hex_id(raw)
                entry = self._index.get(tid)
                if entry is None:
                    entry = self._index[tid] = TraceEntry()
                    if len(self._index) > MAX_TRACES:
                        self._index.popitem(last=False)
                entry.refs.append(ref)
                entry.last_arrival = arrival

    # ---- answers ---------------------------------------------------------------------------
    def red_series(
        self, *, attendee: str | None = None, window: int | None = None
    ) -> dict[str, Any]:
        now = time.time()
        out = self.red.series(
            now,
            settled_until=now - self.settle_seconds,
            services=self.services,
            attendee=attendee,
            window=window,
        )
        out.update(
            step=self.red.step,
            now=now,
            settle_seconds=self.settle_seconds,
            loading=not self.first_scan_done,
        )
        return out

    def trace(self, trace_id: str) -> dict[str, Any] | None:
        """The trace's spans as a waterfall, or None when nothing is known about it."""
        with self._index_lock:
            entry = self._index.get(trace_id)
            refs = list(entry.refs) if entry else []
            last_arrival = entry.last_arrival if entry else 0.0
            expected = trace_id in self._expected
        if not refs:
            if not expected:
                return None
            return {"trace_id": trace_id, "state": "waiting", "spans": [], "services": []}
        spans = self._cached_spans(trace_id, refs)
        if not spans:
            return (
                None
                if not expected
                else {
                    "trace_id": trace_id,
                    "state": "waiting",
                    "spans": [],
                    "services": [],
                }
            )
        return _waterfall(trace_id, spans, time.monotonic() - last_arrival, self.settle_seconds)

    def _cached_spans(
        self, trace_id: str, refs: list[tuple[int, int, int]]
    ) -> list[dict[str, Any]]:
        with self._index_lock:
            cached = self._decoded.pop(trace_id, None)
            spans, done = cached if cached else ({}, set())
            self._decoded[trace_id] = (spans, done)
            while len(self._decoded) > MAX_DECODED:
                self._decoded.popitem(last=False)
        todo = [r for r in dict.fromkeys(refs) if r not in done]
        for span in self._spans(trace_id, todo):
            spans.setdefault(span["span_id"], span)
        done.update(todo)
        return list(spans.values())

    def _spans(self, trace_id: str, refs: list[tuple[int, int, int]]) -> list[dict[str, Any]]:
        paths = {ino: f.path for ino, f in self._files.items()}
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for ino, offset, length in refs:
            path = paths.get(ino)
            if path is None:
                continue
            try:
                with open(path, "rb") as fh:
                    if os.fstat(fh.fileno()).st_ino != ino:
                        continue  # the name now points at another file
                    line = os.pread(fh.fileno(), length, offset)
                doc = orjson.loads(line)
            except (OSError, orjson.JSONDecodeError):
                continue
            for rs in doc.get("resourceSpans") or ():
                resource = _attrs((rs.get("resource") or {}).get("attributes"))
                for ss in rs.get("scopeSpans") or ():
                    for s in ss.get("spans") or ():
                        if _hex_id(s.get("traceId")) != trace_id:
                            continue
                        span = _decode(s, resource)
                        if span["span_id"] not in seen:
                            seen.add(span["span_id"])
                            out.append(span)
        return out


# Resource attributes worth showing beside a span's own (the rest is the same everywhere).
_RESOURCE_SHOWN = (
    "service.version",
    "service.instance.id",
    "host.name",
    "deployment.environment.name",
)


def _decode(s: dict[str, Any], resource: dict[str, Any]) -> dict[str, Any]:
    start = int(s.get("startTimeUnixNano") or 0)
    end = int(s.get("endTimeUnixNano") or start)
    status = s.get("status") or {}
    return {
        "span_id": _hex_id(s.get("spanId")),
        "parent_span_id": _hex_id(s.get("parentSpanId")),
        "name": str(s.get("name", "")),
        "kind": _kind(s.get("kind", 0)),
        "service": str(resource.get("service.name", "")),
        "start_ns": start,
        "end_ns": end,
        "error": _is_error(s),
        "status_message": str(status.get("message", "")),
        "attributes": _attrs(s.get("attributes")),
        "resource": {k: resource[k] for k in _RESOURCE_SHOWN if k in resource},
        "events": [
            {
                "name": str(e.get("name", "")),
                "time_ns": int(e.get("timeUnixNano") or 0),
                "attributes": _attrs(e.get("attributes")),
            }
            for e in s.get("events") or ()
        ],
    }


def _waterfall(
    trace_id: str, spans: list[dict[str, Any]], quiet_for: float, settle: float
) -> dict[str, Any]:
    """Spans in tree order (parent before child, siblings by start) with times relative to
    the trace's start in ms; `complete` once the tree is whole and no span came lately."""
    t0 = min(s["start_ns"] for s in spans)
    ids = {s["span_id"] for s in spans}
    children: dict[str, list[dict[str, Any]]] = {}
    roots: list[dict[str, Any]] = []
    for s in spans:
        if s["parent_span_id"] and s["parent_span_id"] in ids:
            children.setdefault(s["parent_span_id"], []).append(s)
        else:
            roots.append(s)
    ordered: list[dict[str, Any]] = []

    def walk(s: dict[str, Any], depth: int) -> None:
        ordered.append(_public(s, t0, depth))
        for c in sorted(children.get(s["span_id"], []), key=lambda x: x["start_ns"]):
            walk(c, depth + 1)

    for r in sorted(roots, key=lambda x: x["start_ns"]):
        walk(r, 0)
    end = max(s["end_ns"] for s in spans)
    has_root = any(not s["parent_span_id"] for s in spans)
    orphans = [s for s in roots if s["parent_span_id"]]
    # A trace the web page started (its own W3C traceparent) has no exported root: its entry
    # is one SERVER span whose parent lives in the browser. That counts as a whole tree.
    remote_entry = not has_root and len(orphans) == 1 and orphans[0]["kind"] == "SERVER"
    whole = (has_root and not orphans) or remote_entry
    complete = whole and quiet_for >= settle
    services = sorted({s["service"] for s in spans})
    return {
        "trace_id": trace_id,
        "state": "complete" if complete else "arriving",
        "start_ns": t0,
        "duration_ms": round((end - t0) / 1e6, 3),
        "span_count": len(spans),
        "services": services,
        "error_count": sum(1 for s in spans if s["error"]),
        "faults": sorted(
            {
                str(e["attributes"].get("fault.kind", "")) + ":" + s["service"]
                for s in spans
                for e in s["events"]
                if e["name"] == "fault.injected"
            }
        ),
        "spans": ordered,
    }


def _public(s: dict[str, Any], t0: int, depth: int) -> dict[str, Any]:
    return {
        "span_id": s["span_id"],
        "parent_span_id": s["parent_span_id"] or None,
        "name": s["name"],
        "kind": s["kind"],
        "service": s["service"],
        "depth": depth,
        "start_ms": round((s["start_ns"] - t0) / 1e6, 3),
        "duration_ms": round((s["end_ns"] - s["start_ns"]) / 1e6, 3),
        "error": s["error"],
        "status_message": s["status_message"] or None,
        "fault_injected": any(e["name"] == "fault.injected" for e in s["events"]),
        "attributes": s["attributes"],
        "resource": s["resource"],
        "events": [
            {
                "name": e["name"],
                "at_ms": round((e["time_ns"] - t0) / 1e6, 3),
                "attributes": e["attributes"],
            }
            for e in s["events"]
        ],
    }
