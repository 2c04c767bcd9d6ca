"""`workshop room create|events|event start|progress|hub|reset` — run a shared room."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from labs.runtime import roster
from stack.common import envvars
from stack.common.room import room_event_kinds
from stack.native.config import NativeConfig
from workshop.fault_cmd import _call, _gateway, _parse_params

app = typer.Typer(no_args_is_help=True)
event_app = typer.Typer(no_args_is_help=True)
app.add_typer(event_app, name="event", help="Start room events (faults for the whole room).")
console = Console()

HUB_PORT_OFFSET = 90  # JupyterHub on <port base> + 90 (8100 by default)


def _data_dir() -> Path:
    return NativeConfig.from_env().data_dir


def _lab_url(cfg: NativeConfig) -> str:
    return envvars.get("ROOM_LAB_URL") or f"http://127.0.0.1:{cfg.port_base + HUB_PORT_OFFSET}/"


@app.command()
def create(
    roster_csv: Annotated[Path, typer.Argument(help="CSV: name[,email] per line")],
    lab_url: Annotated[str | None, typer.Option(help="the URL attendees open (the hub)")] = None,
) -> None:
    """Attendee ids, logins (passwords kept 0600, never printed) and one handout each."""
    import os

    cfg = NativeConfig.from_env()
    try:
        attendees = roster.create_room(roster_csv, cfg.data_dir)
    except roster.RosterError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    handouts = roster.write_handouts(cfg.data_dir, lab_url or _lab_url(cfg), os.environ)
    for a in attendees:
        roster.prepare_home(cfg.data_dir, a.id)
    # Handouts by file name, their folder said once under the table: a whole path per row
    # left no room at 80 columns and came out as "…/data/room/handouts/…".
    table = Table(title=f"Room: {len(attendees)} attendees")
    for col in ("attendee id", "name", "login", "handout"):
        table.add_column(col, no_wrap=col != "name")
    for a, h in zip(attendees, handouts, strict=True):
        table.add_row(a.id, a.name, a.login, h.name)
    console.print(table)
    folders = sorted({str(h.parent) for h in handouts})
    console.print(f"handouts (print one per attendee): {', '.join(folders)}", soft_wrap=True)
    console.print(
        f"passwords: {roster.room_dir(cfg.data_dir) / 'secrets.json'} (mode 0600; printed only "
        "on the handouts)"
    )


@app.command()
def events() -> None:
    """Room events running now."""
    rows = _call(_gateway().room_events)
    if not rows:
        console.print("no room event is running")
    for e in rows:
        left = max(0, e["expires"] - time.time())
        console.print(f"{e['id']}  {e['kind']} on {e['target']}  ({left:.0f} s left)")


@event_app.command("start")
def event_start(
    kind: Annotated[str, typer.Argument(help=f"one of {', '.join(room_event_kinds())}")],
    target: Annotated[str | None, typer.Option(help="default: the kind's target")] = None,
    duration: Annotated[int, typer.Option(help="seconds")] = 300,
    param: Annotated[list[str] | None, typer.Option(help="key=value")] = None,
) -> None:
    """Start a room event: every attendee's lab waiting for it goes on."""
    body = {"duration_s": duration, "params": _parse_params(param or [])}
    if target:
        body["target"] = target
    e = _call(_gateway().start_room_event, kind, **body)
    console.print(f"room event {e['id']} started: {e['kind']} on {e['target']} for {duration} s")


@event_app.command("stop")
def event_stop(event_id: str) -> None:
    """End a room event early."""
    _call(_gateway().remove_fault, event_id)
    console.print(f"room event {event_id} stopped")


@app.command()
def progress() -> None:
    """Each attendee's lab step and check verdicts."""
    rows = _call(_gateway().room_progress)
    if not rows:
        # An empty table reads as a broken command; say what fills it.
        console.print("no attendee has reported yet: a lab reports its steps and checks as it runs")
        return
    table = Table(title="Room progress")
    for col in ("attendee", "lab", "step", "passed", "failed", "last update"):
        table.add_column(col)
    for p in rows:
        ago = time.time() - p["updated"]
        table.add_row(
            p["attendee"],
            p["lab"] or "",
            f"{p['step']} {p['detail']}".strip(),
            str(p["passed"]),
            str(p["failed"]),
            f"{ago:.0f} s ago",
        )
    console.print(table)


@app.command()
def hub() -> None:
    """Run JupyterHub for the room (one login and home per attendee) in the foreground."""
    from labs.runtime import hub as hub_mod

    cfg = NativeConfig.from_env()
    try:
        proc = hub_mod.start(cfg, port=cfg.port_base + HUB_PORT_OFFSET)
    except (RuntimeError, roster.RosterError) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    console.print(f"JupyterHub on {_lab_url(cfg)} (Ctrl-C stops it)")
    try:
        proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait(20)


@app.command()
def reset(
    yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
) -> None:
    """For the next cohort: stack reset, room progress, logins, homes and handouts removed."""
    if not yes:
        typer.confirm("Remove the room's logins, homes, handouts and progress?", abort=True)
    gw = _gateway()
    result = _call(gw.reset)
    removed = _call(gw.clear_room_progress)
    files = roster.reset_room_files(_data_dir())
    console.print(
        f"reset: {result['faults_cleared']} faults cleared, {removed['removed']} progress "
        f"records removed, room files {'removed' if files else 'were absent'}"
    )
