"""Trace summaries and waterfalls over spans read by :mod:`labs.telemetry.reader`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from labs.telemetry.reader import Span

ATTENDEE_ATTRIBUTE = "workshop.attendee"
_EIGHTHS = " ▏▎▍▌▋▊▉█"


@dataclass(frozen=True, slots=True)
class TraceSummary:
    trace_id: str
    root_name: str
    root_service: str
    start_ns: int
    duration_ms: float
    services: tuple[str, ...]
    span_count: int
    error: bool
    attendee: str | None

    @property
    def start(self) -> datetime:
        return datetime.fromtimestamp(self.start_ns / 1e9, tz=UTC)


def _roots(spans: Sequence[Span]) -> list[Span]:
    ids = {s.span_id for s in spans}
    return sorted(
        (s for s in spans if not s.parent_span_id or s.parent_span_id not in ids),
        key=lambda s: s.start_ns,
    )


def _summarize(trace_id: str, spans: list[Span]) -> TraceSummary:
    roots = _roots(spans)
    # A true root (no parent at all) beats an orphan whose parent is simply not exported yet.
    root = next((s for s in roots if not s.parent_span_id), roots[0] if roots else spans[0])
    start = min(s.start_ns for s in spans)
    end = max(s.end_ns for s in spans)
    attendee = root.attributes.get(ATTENDEE_ATTRIBUTE)
    if attendee is None:
        attendee = next(
            (s.attributes[ATTENDEE_ATTRIBUTE] for s in spans if ATTENDEE_ATTRIBUTE in s.attributes),
            None,
        )
    return TraceSummary(
        trace_id=trace_id,
        root_name=root.name,
        root_service=root.service,
        start_ns=start,
        duration_ms=max(end - start, 0) / 1e6,
        services=tuple(sorted({s.service for s in spans if s.service})),
        span_count=len(spans),
        error=any(s.is_error for s in spans),
        attendee=None if attendee is None else str(attendee),
    )


def traces(
    spans: Iterable[Span],
    *,
    service: str | None = None,
    attendee: str | None = None,
    min_ms: float | None = None,
    errors: bool = False,
    limit: int | None = 50,
) -> list[TraceSummary]:
    """One summary per trace, most recent first, filtered.

    ``service`` matches any service the trace touched; ``errors`` keeps traces with at least
    one ERROR span; ``min_ms`` is a lower bound on the trace's wall-clock duration.
    """
    by_trace: dict[str, list[Span]] = defaultdict(list)
    for s in spans:
        by_trace[s.trace_id].append(s)
    out = []
    for trace_id, group in by_trace.items():
        summary = _summarize(trace_id, group)
        if service and service not in summary.services:
            continue
        if attendee and summary.attendee != attendee:
            continue
        if min_ms is not None and summary.duration_ms < min_ms:
            continue
        if errors and not summary.error:
            continue
        out.append(summary)
    out.sort(key=lambda t: t.start_ns, reverse=True)
    return out if limit is None else out[: max(limit, 0)]


def trace_spans(spans: Iterable[Span], trace_id: str) -> list[Span]:
    """The spans of one trace, by start time. ``trace_id`` may be a unique prefix."""
    tid = trace_id.strip().lower()
    matched = [s for s in spans if s.trace_id == tid]
    if not matched and tid:
        matched = [s for s in spans if s.trace_id.startswith(tid)]
        if len({s.trace_id for s in matched}) > 1:
            raise ValueError(f"trace id prefix {trace_id!r} is ambiguous")
    return sorted(matched, key=lambda s: s.start_ns)


def build_tree(spans: Sequence[Span]) -> list[tuple[int, Span]]:
    """Depth-first (depth, span) order: children under their parent, siblings by start."""
    children: dict[str, list[Span]] = defaultdict(list)
    for s in spans:
        children[s.parent_span_id].append(s)
    for group in children.values():
        group.sort(key=lambda s: s.start_ns)
    out: list[tuple[int, Span]] = []
    seen: set[str] = set()

    def walk(span: Span, depth: int) -> None:
        if span.span_id in seen:  # malformed data with a cycle
            return
        seen.add(span.span_id)
        out.append((depth, span))
        for child in children.get(span.span_id, []):
            walk(child, depth + 1)

    for root in _roots(spans):
        walk(root, 0)
    for s in sorted(spans, key=lambda s: s.start_ns):  # anything left (cycles)
        if s.span_id not in seen:
            walk(s, 0)
    return out


def _bar(offset: float, length: float, total: float, width: int) -> str:
    """A bar of ``width`` cells: blank up to offset, then blocks (eighths for precision)."""
    if total <= 0:
        return "█".ljust(width)
    start = int(round(offset / total * width))
    start = min(start, width - 1)
    eighths = max(1, int(round(length / total * width * 8)))
    eighths = min(eighths, (width - start) * 8)
    full, rest = divmod(eighths, 8)
    return (" " * start + "█" * full + (_EIGHTHS[rest] if rest else "")).ljust(width)


def text_width(header: str, values: Iterable[str]) -> int:
    """Cells a no-wrap column needs: its header's or its widest value's (the header's alone
    when there are no values yet, as in a live table before its first rows)."""
    from rich.cells import cell_len

    return max([cell_len(header), *(cell_len(v) for v in values)])


def table_width(columns: Sequence[int]) -> int:
    """Cells a rich `Table` (its default box and padding) takes for columns of these content
    widths: a border per column and one more, a cell of padding each side of a column."""
    return sum(columns) + 3 * len(columns) + 1


# The timeline column: never narrower than this (a bar needs room to show where a span sits),
# never wider than this (wider adds nothing a reader can see).
_MIN_BAR = 20
_MAX_BAR = 60


@dataclass(frozen=True, slots=True)
class _Layout:
    """How a waterfall fits a terminal: set once for the whole table, so rich never has to
    squeeze a column (squeezing cut the bars' right end off, and with it the async half of a
    trace, and dropped the start and duration columns at 80 columns)."""

    indent: int  # cells per tree level
    start: bool  # the offset column
    short_services: bool  # "query" for "query-service"
    label_width: int | None  # a cap on the operation column (cut with …), None: as wide as needed
    bar: int


def _label(depth: int, span: Span, indent: int) -> str:
    marker = " ⚡" if any(e.get("name") == "fault.injected" for e in span.events) else ""
    return " " * (indent * depth) + ("└ " if depth else "") + span.name + marker


def _service(span: Span, short: bool) -> str:
    return span.service.removesuffix("-service") if short else span.service


def _layout(rows: Sequence[tuple[int, Span]], t0: int, max_width: int) -> _Layout:
    """The widest layout whose bars get at least `_MIN_BAR` cells in `max_width`.

    Given up in this order while the bars would be narrower: the start column (the bar shows
    the offset), half the indentation, the services' "-service" suffix, then the operation
    names' ends."""
    duration = text_width("duration", (f"{s.duration_ms:.1f} ms" for _, s in rows))
    start = text_width("start", (f"+{(s.start_ns - t0) / 1e6:.1f} ms" for _, s in rows))

    def fixed(layout: _Layout) -> int:
        """The table's width with empty operation and timeline columns."""
        services = text_width("service", (_service(s, layout.short_services) for _, s in rows))
        return table_width([0, services, *([start] if layout.start else []), duration, 0])

    candidates = (
        _Layout(indent=2, start=True, short_services=False, label_width=None, bar=0),
        _Layout(indent=2, start=False, short_services=False, label_width=None, bar=0),
        _Layout(indent=1, start=False, short_services=False, label_width=None, bar=0),
        _Layout(indent=1, start=False, short_services=True, label_width=None, bar=0),
    )
    for layout in candidates:
        label = text_width("operation", (_label(d, s, layout.indent) for d, s in rows))
        room = max_width - fixed(layout) - label
        if room >= _MIN_BAR:
            return replace(layout, bar=min(room, _MAX_BAR))
    cap = max(12, max_width - fixed(layout) - _MIN_BAR)
    return replace(layout, label_width=cap, bar=max(8, max_width - fixed(layout) - cap))


def waterfall_text(spans_of_trace: Sequence[Span], *, max_width: int = 120) -> Any:
    """A Rich table that fits `max_width` cells (pass the console's width): indented span tree,
    service, offset, duration and a timing bar; narrower terminals give up columns and cells
    in the order `_layout` says, never a span's bar or duration.

    Error spans are red; spans with a ``fault.injected`` event are marked with ⚡.
    """
    from rich.table import Table
    from rich.text import Text

    spans = list(spans_of_trace)
    if not spans:
        return Text("no spans for this trace", style="yellow")
    t0 = min(s.start_ns for s in spans)
    total_ms = (max(s.end_ns for s in spans) - t0) / 1e6
    trace_id = spans[0].trace_id
    rows = build_tree(spans)
    layout = _layout(rows, t0, max_width)
    table = Table(
        title=f"trace {trace_id} · {len(spans)} spans · {total_ms:.1f} ms",
        title_justify="left",
        expand=False,
    )
    table.add_column("operation", no_wrap=True, overflow="ellipsis", max_width=layout.label_width)
    table.add_column("service", no_wrap=True)
    if layout.start:
        table.add_column("start", justify="right", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    table.add_column("timeline", no_wrap=True, width=layout.bar)
    for depth, s in rows:
        offset_ms = (s.start_ns - t0) / 1e6
        style = "red" if s.is_error else None
        cells: list[Any] = [
            Text(_label(depth, s, layout.indent), style=style),
            Text(_service(s, layout.short_services), style=style),
        ]
        if layout.start:
            cells.append(f"+{offset_ms:.1f} ms")
        cells += [
            Text(f"{s.duration_ms:.1f} ms", style=style),
            Text(
                _bar(offset_ms, s.duration_ms, total_ms, layout.bar),
                style="red" if s.is_error else "cyan",
            ),
        ]
        table.add_row(*cells)
    return table


# The listing's flexible column (the root operation) gets at least this many cells before
# the next layout gives something up.
_MIN_ROOT = 30


@dataclass(frozen=True, slots=True)
class _ListLayout:
    ids: int  # characters of the trace id shown (`workshop traces show` takes a prefix)
    clock: int  # 12: HH:MM:SS.mmm, 8: HH:MM:SS
    root_service: bool  # "api-gateway: POST /api/queries" or "POST /api/queries"
    services: str  # "names", "count" or "" (no column)


_LIST_LAYOUTS = (
    _ListLayout(ids=32, clock=12, root_service=True, services="names"),
    _ListLayout(ids=32, clock=12, root_service=True, services="count"),
    _ListLayout(ids=12, clock=8, root_service=True, services="count"),
    _ListLayout(ids=12, clock=8, root_service=False, services=""),
)


def traces_table(
    found: Sequence[TraceSummary], *, max_width: int, attendee: bool, source: str = ""
) -> Any:
    """A Rich table of trace summaries that fits `max_width` cells (pass the console's width).

    Wide: the whole trace id, the start to the millisecond, the root operation, duration, span
    count and the services by name. Narrower, in the order of `_LIST_LAYOUTS`: the services
    become a count; the ids a 12-character prefix and the start whole seconds; then the count
    and the root's service go. The root operation keeps the rest and is cut last: the first
    layout where every root fits whole is taken, else the first that gives it 30 cells. `attendee`
    adds its column (pointless when the listing is one attendee's); `source` names where the
    spans were read, in the title."""
    from rich.table import Table
    from rich.text import Text

    def root(t: TraceSummary, layout: _ListLayout) -> str:
        return f"{t.root_service}: {t.root_name}" if layout.root_service else t.root_name

    def services(t: TraceSummary, layout: _ListLayout) -> str:
        return ", ".join(t.services) if layout.services == "names" else str(len(t.services))

    def clock_header(layout: _ListLayout) -> str:
        return "start (UTC)" if layout.clock == 12 else "UTC"

    durations = text_width("duration", (f"{t.duration_ms:.1f} ms" for t in found))
    spans = text_width("spans", (str(t.span_count) for t in found))
    who = [text_width("attendee", (t.attendee or "" for t in found))] if attendee else []

    def room(layout: _ListLayout) -> tuple[int, int]:
        """(cells left for the root operation, cells it needs)."""
        fixed = [
            text_width("trace id", [" " * layout.ids]),
            text_width(clock_header(layout), [" " * layout.clock]),
            0,  # the root operation
            durations,
            spans,
            *(
                [text_width("services", (services(t, layout) for t in found))]
                if layout.services
                else []
            ),
            *who,
        ]
        need = text_width("root operation", (root(t, layout) for t in found))
        return max_width - table_width(fixed), need

    # The richest layout that shows every root operation whole, else the richest that gives
    # them `_MIN_ROOT` cells, else the narrowest.
    fits = [(layout, *room(layout)) for layout in _LIST_LAYOUTS]
    layout, left, _ = next(
        (f for f in fits if f[1] >= f[2]),
        next((f for f in fits if f[1] >= _MIN_ROOT), fits[-1]),
    )
    title = f"{len(found)} most recent traces" + (f" ({source})" if source else "")
    table = Table(title=title, title_justify="left")
    table.add_column("trace id", no_wrap=True)
    table.add_column(clock_header(layout), no_wrap=True)
    table.add_column("root operation", no_wrap=True, overflow="ellipsis", max_width=max(8, left))
    table.add_column("duration", justify="right", no_wrap=True)
    table.add_column("spans", justify="right", no_wrap=True)
    if layout.services:
        justify = "left" if layout.services == "names" else "right"
        table.add_column("services", justify=justify, no_wrap=True)
    if attendee:
        table.add_column("attendee", no_wrap=True)
    for t in found:
        style = "red" if t.error else None
        row: list[Any] = [
            t.trace_id[: layout.ids],
            t.start.strftime("%H:%M:%S.%f")[:-3][: layout.clock],
            Text(root(t, layout), style=style),
            Text(f"{t.duration_ms:.1f} ms", style=style),
            str(t.span_count),
        ]
        if layout.services:
            row.append(services(t, layout))
        if attendee:
            row.append(t.attendee or "")
        table.add_row(*row)
    return table


def waterfall_figure(spans_of_trace: Sequence[Span]) -> Any:
    """A matplotlib Figure with one horizontal bar per span (for notebooks).

    Uses :class:`matplotlib.figure.Figure` directly (no pyplot global state), so it renders
    inline in Jupyter and never opens a window.
    """
    from matplotlib.figure import Figure

    rows = build_tree(list(spans_of_trace))
    fig = Figure(figsize=(10, max(1.5, 0.35 * len(rows) + 1)))
    ax = fig.add_subplot()
    if not rows:
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no spans", ha="center", va="center")
        return fig
    t0 = min(s.start_ns for _, s in rows)
    services = sorted({s.service for _, s in rows})
    palette = [f"C{i % 10}" for i in range(len(services))]
    color_of = dict(zip(services, palette, strict=True))
    for i, (_depth, s) in enumerate(rows):
        offset = (s.start_ns - t0) / 1e6
        ax.barh(
            i,
            max(s.duration_ms, 0.01),
            left=offset,
            color="tab:red" if s.is_error else color_of[s.service],
            edgecolor="black" if s.is_error else "none",
        )
        ax.text(offset, i, f" {s.duration_ms:.1f} ms", va="center", fontsize=8)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(["  " * d + f"{s.service}: {s.name}" for d, s in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("ms since trace start")
    ax.set_title(f"trace {rows[0][1].trace_id}")
    fig.tight_layout()
    return fig
