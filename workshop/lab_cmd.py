"""``workshop lab list|run ID|check ID [ANSWER...]|serve``: the guided labs from a terminal."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from labs.runtime import Lab, all_specs, load_spec
from labs.runtime.views import where_lines
from stack.client import Unreachable

REPO = Path(__file__).resolve().parents[1]
app = typer.Typer(
    help="Guided labs: list, run, check answers, serve the notebooks.", no_args_is_help=True
)
console = Console()

ShortOpt = Annotated[bool, typer.Option("--short", help="short traffic (≈20 s)")]
AttendeeOpt = Annotated[
    str | None,
    typer.Option("--attendee", "-a", help="your attendee id (default: $WORKSHOP_ATTENDEE or user)"),
]


def _lab(lab_id: str, attendee: str | None, short: bool = False) -> Lab:
    try:
        return Lab.load(lab_id, attendee=attendee, short_mode=short)
    except KeyError as exc:
        console.print(f"[bold red]error:[/] {exc.args[0]}")
        raise typer.Exit(2) from None


@app.command("list")
def list_labs() -> None:
    """Every lab with its time estimate and questions."""
    # The id and the notebook never wrap (one is typed, the other opened, as it is). Below
    # 120 columns the notebook column goes (its name is the id and the title's words) so
    # the rest wraps between words instead of being cut.
    wide = console.width >= 120
    table = Table(title="Labs (notebooks in notebooks/)" if wide else "Labs")
    table.add_column("id", no_wrap=True)
    table.add_column("title")
    table.add_column("min", justify="right", no_wrap=True)
    table.add_column("faults")
    table.add_column("questions")
    if wide:
        table.add_column("notebook", no_wrap=True)
    for spec in all_specs():
        nb = REPO / "notebooks" / f"{spec.name}.ipynb"
        table.add_row(
            spec.id,
            spec.title,
            str(spec.time_minutes),
            ", ".join(f.kind for f in spec.faults) or "–",
            ", ".join(q.id for q in spec.questions),
            *([nb.name if nb.exists() else "–"] if wide else []),
        )
    console.print(table)


@app.command()
def run(
    lab_id: Annotated[str, typer.Argument(help="00…07 or instructor")],
    short: ShortOpt = False,
    attendee: AttendeeOpt = None,
    users: Annotated[int | None, typer.Option(help="override the spec's users")] = None,
    duration: Annotated[float | None, typer.Option(help="override the spec's duration (s)")] = None,
) -> None:
    """Run a lab's traffic and fault timeline with a live view, then print the questions."""
    lab = _lab(lab_id, attendee, short)
    console.print(lab.intro())
    try:
        lab.run(users=users, duration=duration)
    except ValueError as exc:  # an override that runs nothing
        console.print(f"[bold red]error:[/] --{escape(str(exc))}")
        raise typer.Exit(2) from None
    except Unreachable as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    try:
        lab.live()
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
    finally:
        left = lab.cleanup()["faults_cleared"]
        console.print(
            f"cleared {left} fault(s) the lab left active" if left else "no fault left active"
        )
    console.rule("Where to look")
    _print_where(lab)
    console.rule("Questions")
    for q in lab.spec.questions:
        choices = f"  (one of: {', '.join(q.answer.choices)})" if q.answer.choices else ""
        console.print(f"[bold]{q.id}[/]: {q.prompt}{choices}")
    console.print(f"\nAnswer with: workshop lab check {lab.spec.id} QUESTION_ID ANSWER")


def _print_where(lab: Lab) -> None:
    """The notebook's where-to-look list, for a terminal. A link is one unbroken line
    (soft-wrapped, so a click or a copy takes all of it) and queries are printed as they are
    (they hold `[...]`, which is not markup)."""
    for role, text in where_lines(lab.where_to_look(), lab.env, notebook=False):
        if role == "head":
            console.print(f"• [bold]{escape(text)}[/]")
        elif role == "hint":
            console.print(f"• [italic]{escape(text)}[/]")
        elif role == "footer":
            console.print(f"[dim]{escape(text.replace('`', ''))}[/]")
        else:
            style = {"link": "cyan", "menu": "italic", "query": "green"}.get(role, "")
            console.print(f"  {text}", style=style, markup=False, highlight=False, soft_wrap=True)


@app.command()
def check(
    lab_id: Annotated[str, typer.Argument(help="00…07 or instructor")],
    answer: Annotated[
        list[str] | None, typer.Argument(help="QUESTION_ID ANSWER, or just ANSWER")
    ] = None,
    attendee: AttendeeOpt = None,
) -> None:
    """Check an answer against Coralogix (CX_API_KEY) or local telemetry."""
    lab = _lab(lab_id, attendee)
    words = list(answer or [])
    qids = [q.id for q in lab.spec.questions]
    if words and words[0] in qids:
        qid, words = words[0], words[1:]
    elif len(qids) == 1:
        qid = qids[0]
    else:
        # Several questions: the first word names one. Say which word was not one.
        told = f"`{escape(words[0])}` is not a question of lab {lab.spec.id}; " if words else ""
        console.print(
            f"[bold red]error:[/] {told}give `workshop lab check {lab.spec.id} QUESTION_ID "
            f"ANSWER`, QUESTION_ID one of: {', '.join(qids)}"
        )
        raise typer.Exit(2)
    if lab.state.traffic_start is None:
        console.print(
            f"[yellow]lab {lab.spec.id} has not run yet for {lab.attendee}: `workshop lab run {lab.spec.id}`[/]"  # noqa: E501
        )
        raise typer.Exit(2)
    verdict = lab.check(qid, " ".join(words) or None)
    console.print(str(verdict))
    raise typer.Exit(0 if verdict.correct else 1)


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="port on 127.0.0.1")] = 8888,
    open_browser: Annotated[bool, typer.Option("--open/--no-open")] = False,
) -> None:
    """JupyterLab on 127.0.0.1 with a generated token, in notebooks/."""
    jupyter = shutil.which("jupyter-lab") or str(Path(sys.executable).with_name("jupyter-lab"))
    if not Path(jupyter).exists():
        console.print(
            "[bold red]error:[/] JupyterLab is not installed in this environment: `make bootstrap`"
        )
        raise typer.Exit(1)
    token = secrets.token_urlsafe(24)
    console.print(f"JupyterLab: http://127.0.0.1:{port}/lab?token={token}")
    console.print("(bound to 127.0.0.1 only; Ctrl-C to stop)")
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [
        jupyter,
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={REPO / 'notebooks'}",
        "--ServerApp.port_retries=0",
        "--no-browser" if not open_browser else "--browser=default",
    ]
    with contextlib.suppress(KeyboardInterrupt):
        subprocess.run(cmd, env=env, check=False)


@app.command()
def spec(lab_id: Annotated[str, typer.Argument()]) -> None:
    """Print a lab's spec (YAML source of truth) as JSON."""
    try:
        console.print_json(load_spec(lab_id).model_dump_json())
    except KeyError as exc:
        console.print(f"[bold red]error:[/] {exc.args[0]}")
        raise typer.Exit(2) from None
