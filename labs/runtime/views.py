"""What a lab shows the learner: the intro, the live stats table and latency plot, the
"where to look" links and notices — as IPython displays in a notebook, as rich output in a
terminal. Views read the lab and change none of its state themselves (``live`` ends in
``lab.wait()``, which records the run's figures)."""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from labs.runtime import links, traffic
from labs.runtime.spec import LabSpec
from labs.runtime.state import fault_marks, fault_window_s
from labs.runtime.traffic import Stats
from stack.common.stats import percentile

if TYPE_CHECKING:
    from rich.console import Console
    from rich.live import Live

    from labs.runtime.lab import Lab


def in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    return ip is not None and hasattr(ip, "kernel")


def show(obj: Any) -> None:
    if in_notebook():
        from IPython.display import display

        display(obj)
    else:
        from rich.console import Console

        Console().print(obj)


def show_notice(message: str) -> None:
    if in_notebook():
        from IPython.display import Markdown, display

        display(Markdown(f"⏳ {message}"))
    else:
        from rich.console import Console

        Console(stderr=True).print(f"⏳ {message}")


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.0f}"


def as_image(fig: Any) -> Any:
    """A matplotlib Figure as an IPython PNG image (renders in any kernel, no pyplot state)."""
    from IPython.display import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return Image(data=buf.getvalue())


# ------------------------------------------------------------------------------ narrative


def intro(spec: LabSpec) -> Any:
    s = spec
    text = [f"## Lab {s.id} · {s.title}", f"*≈ {s.time_minutes} minutes*", "", s.summary, ""]
    text += ["**You will:**", *[f"- {o}" for o in s.objectives]]
    if s.prerequisites:
        text += ["", "**Before you start:**", *[f"- {p}" for p in s.prerequisites]]
    md = "\n".join(text)
    if in_notebook():
        from IPython.display import Markdown

        return Markdown(md)
    return md


# ------------------------------------------------------------------------------ live view


def stats_table_html(lab: Lab) -> str:
    run = lab.traffic
    if run is None:
        return "<i>no traffic yet: lab.run()</i>"
    now = time.time()
    rows = [("whole run", run.stats()), ("last 5 s", run.stats(now - 5, now))]
    if fw := fault_window_s(lab.state):
        base = run.stats(run.started_at, fw[0])
        rows.insert(0, ("before the fault", base))
        rows.insert(1, ("during the fault", run.stats(*fw)))
    head = "".join(
        f"<th>{h}</th>"
        for h in ("window", "requests", "errors", "error %", "p50 ms", "p95 ms", "req/s")
    )
    body = "".join(
        "<tr>"
        + f"<td>{name}</td><td>{s.requests}</td><td>{s.errors}</td>"
        + f"<td>{s.error_ratio * 100:.1f}</td><td>{_fmt(s.p50_ms)}</td><td>{_fmt(s.p95_ms)}</td>"
        + f"<td>{s.rps:.1f}</td></tr>"
        for name, s in rows
    )
    active = ", ".join(f"{f.kind} (started)" for f in lab.state.faults if f.end is None) or "none"
    status = "running" if run.running else "finished"
    if lab.waiting_for:
        active += f" · waiting for the instructor to start room event {lab.waiting_for}"
    return (
        f"<b>Lab {lab.spec.id}</b> · traffic {status} · {run.elapsed:.0f}/{run.duration_s:.0f} s"
        f" · {run.users} users · engine {run.engine} · active faults: {active}"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        + (f"<p style='color:crimson'>traffic error: {run.error}</p>" if run.error else "")
    )


def latency_figure(lab: Lab) -> Any:
    """Latency over time (per-second p50/p95 and errors), fault periods shaded."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.2))
    ax = fig.add_subplot()
    run = lab.traffic
    samples = run.snapshot() if run else []
    if not samples or run is None:
        ax.text(0.5, 0.5, "no traffic yet", ha="center", va="center")
        ax.set_axis_off()
        return fig
    t0 = run.started_at
    buckets: dict[int, list[traffic.Sample]] = {}
    for s in samples:
        buckets.setdefault(int(s.t - t0), []).append(s)
    xs = sorted(buckets)
    p50 = [percentile([s.latency_ms for s in buckets[x]], 0.50) for x in xs]
    p95 = [percentile([s.latency_ms for s in buckets[x]], 0.95) for x in xs]
    errs = [sum(not s.ok for s in buckets[x]) for x in xs]
    ax.plot(xs, p95, label="p95", color="tab:orange")
    ax.plot(xs, p50, label="p50", color="tab:blue")
    ax.set_xlabel("seconds since traffic start")
    ax.set_ylabel("latency (ms)")
    ax.set_xlim(0, max(run.duration_s, xs[-1] + 1))
    for start, end, kind in fault_marks(lab.state):
        ax.axvspan(start - t0, (end or time.time()) - t0, color="tab:red", alpha=0.12)
        ax.text(start - t0, ax.get_ylim()[1] * 0.92, f" {kind}", color="tab:red", fontsize=8)
    if any(errs):
        ax2 = ax.twinx()
        ax2.bar(xs, errs, color="tab:red", alpha=0.35, width=0.8, label="errors/s")
        ax2.set_ylabel("errors / s")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(f"Lab {lab.spec.id}: what your traffic sees")
    fig.tight_layout()
    return fig


def figure_png(lab: Lab) -> bytes:
    buf = io.BytesIO()
    lab.latency_figure().savefig(buf, format="png", dpi=90)
    return buf.getvalue()


def rich_table(lab: Lab) -> Any:
    from rich.table import Table

    run = lab.traffic
    assert run is not None
    table = Table(title=f"Lab {lab.spec.id} · {run.elapsed:.0f}/{run.duration_s:.0f} s")
    for col in ("window", "requests", "errors", "p50 ms", "p95 ms", "req/s"):
        table.add_column(col, justify="right" if col != "window" else "left")
    rows = [("whole run", run.stats())]
    if fw := fault_window_s(lab.state):
        rows = [
            ("before the fault", run.stats(run.started_at, fw[0])),
            ("during the fault", run.stats(*fw)),
            *rows,
        ]
    for name, s in rows:
        table.add_row(
            name, str(s.requests), str(s.errors), _fmt(s.p50_ms), _fmt(s.p95_ms), f"{s.rps:.1f}"
        )
    return table


def live(lab: Lab, refresh: float = 1.0) -> Stats | None:
    """Live stats + latency plot until the traffic (and fault timeline) ends."""
    if lab.traffic is None:
        raise RuntimeError("no traffic: call lab.run() first")
    if in_notebook():
        from IPython.display import HTML, Image, display

        table = display(HTML(lab.stats_table_html()), display_id=True)
        plot = display(Image(data=lab.figure_png()), display_id=True)
        while lab.traffic.running or (lab._timeline and lab._timeline.is_alive()):
            time.sleep(refresh)
            table.update(HTML(lab.stats_table_html()))
            plot.update(Image(data=lab.figure_png()))
        lab.wait()
        table.update(HTML(lab.stats_table_html()))
        plot.update(Image(data=lab.figure_png()))
    else:
        from rich.console import Console

        with live_view(Console(), rich_table(lab)) as view:
            while lab.traffic.running or (lab._timeline and lab._timeline.is_alive()):
                time.sleep(refresh)
                view.update(rich_table(lab))
            lab.wait()
            view.update(rich_table(lab))
    return lab.traffic.stats()


@contextlib.contextmanager
def live_view(console: Console, renderable: Any = None, **options: Any) -> Iterator[Live]:
    """rich's `Live` on `console`, with its last line ended where rich leaves it open: when
    stdout is a pipe or a CI log, the next print would otherwise join the table's border."""
    from rich.live import Live

    with Live(renderable, console=console, **options) as live:
        yield live
    if not console.is_terminal:
        console.line()


# ------------------------------------------------------------------------------ where to look


def traffic_window_s(lab: Lab) -> tuple[float | None, float | None]:
    st = lab.state
    if st.traffic_start is None:
        return None, None
    end = st.traffic_end or (lab.traffic.ended_at if lab.traffic else None)
    return st.traffic_start, end or time.time()


def slowest_local_trace(lab: Lab) -> tuple[str, float, float] | None:
    """The attendee's slowest trace of this lab's window in the local copy, if any."""
    start, end = traffic_window_s(lab)
    if start is None or end is None:
        return None
    try:
        from labs.telemetry import load_spans, traces

        found = traces(load_spans(lab.telemetry_dir), attendee=lab.attendee, limit=None)
    except (OSError, ValueError):
        return None
    lo, hi = start - 1, end + 2
    inside = [t for t in found if lo <= t.start.timestamp() <= hi]
    if not inside:
        return None
    t = max(inside, key=lambda t: t.duration_ms)
    return t.trace_id, t.start.timestamp(), t.start.timestamp() + t.duration_ms / 1000


def where_to_look(lab: Lab) -> list[dict[str, str]]:
    """Links for this attendee: Explore on the lab's exact traffic window (when it ran),
    one trace by id, and the attendee's host in Infrastructure Explorer (menu path + host
    name and id — no documented deep link exists). No team host: no links, one hint."""
    start, end = traffic_window_s(lab)
    trace = slowest_local_trace(lab)
    info = links.lab_links(
        lab.attendee,
        start,
        end,
        trace_id=trace[0] if trace else None,
        trace_start=trace[1] if trace else None,
        trace_end=trace[2] if trace else None,
        telemetry_dir=lab.telemetry_dir,
        env=lab.env,
    )
    items: list[dict[str, str]] = []
    for w in lab.spec.where_to_look:
        item = {"label": w.label, "note": w.note, "menu": w.menu or ""}
        if w.explore_query:
            query = w.explore_query.replace("{attendee}", lab.attendee)
            item["query"] = query
            url = links.explore_link(query, start=start, end=end, env=lab.env)
            if url:
                item["url"] = url
        if "Infrastructure Explorer" in (w.menu or ""):
            item["host"] = info["infrastructure"] or ""
        items.append(item)
    if info["spans"]:
        items.append(
            {
                "label": f"Your spans ({lab.attendee}, this lab's window)",
                "url": info["spans"],
                "query": links.attendee_query(lab.attendee),
                "note": "",
                "menu": "",
            }
        )
    if info["trace"] and trace:
        items.append(
            {
                "label": f"One trace: {trace[0]}",
                "url": info["trace"],
                "query": links.trace_query(trace[0]),
                "note": "",
                "menu": "",
            }
        )
    if not any("host" in it for it in items):
        items.append(
            {
                "label": "Your host",
                "host": info["infrastructure"] or "",
                "note": "",
                "menu": links.INFRA_MENU,
            }
        )
    if info["hint"]:
        items.append({"label": "Links", "hint": info["hint"], "note": "", "menu": ""})
    if in_notebook():
        from IPython.display import Markdown, display

        display(Markdown(where_markdown(items, lab.env)))
    return items


def where_lines(
    items: list[dict[str, str]], env: Mapping[str, str], *, notebook: bool = True
) -> list[tuple[str, str]]:
    """`where_to_look`'s items as (role, text) lines in order: the one rule the notebook's
    Markdown and the terminal's list both draw. Roles: "head" (an item's label), "menu" (its
    menu path, when it has neither link nor host), "link" (an Explore URL), "query" (its
    DataPrime), "text" (a host to pick, a note), "hint" (no team host) and "footer"."""
    out: list[tuple[str, str]] = []
    for it in items:
        if it.get("hint"):
            out.append(("hint", it["hint"]))
            continue
        out.append(("head", it["label"]))
        if it.get("url"):
            out.append(("link", it["url"]))
        elif it.get("menu") and not it.get("host"):
            out.append(("menu", it["menu"]))
        if it.get("query"):
            out.append(("query", it["query"]))
        out += [("text", it[key]) for key in ("host", "note") if it.get(key)]
    if not links.coralogix_configured(env):
        where = "`workshop traces` or the cells below" if notebook else "`workshop traces`"
        out.append(
            ("footer", f"Offline mode (no `CX_PRIVATE_KEY`): telemetry stays local — use {where}.")
        )
    return out


def where_markdown(
    items: list[dict[str, str]], env: Mapping[str, str], *, notebook: bool = True
) -> str:
    """`where_lines` as Markdown, for a notebook."""
    lines: list[str] = []
    for role, text in where_lines(items, env, notebook=notebook):
        if role == "hint":
            lines.append(f"- *{text}*")
        elif role == "head":
            lines.append(f"- **{text}**")
        elif role == "link":
            lines[-1] += f" — [open in Coralogix Explore]({text})"
        elif role == "menu":
            lines[-1] += f" — menu: *{text}*"
        elif role == "query":
            lines.append(f"  \n  `{text}`")
        elif role == "text":
            lines.append(f"  \n  {text}")
        else:
            lines.append(f"\n*{text}*")
    return "\n".join(lines)
