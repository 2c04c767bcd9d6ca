"""The `workshop` command: run the native stack, drive it, and read its telemetry."""

from __future__ import annotations

import importlib
import signal
import subprocess
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from stack.client import ApiError, Gateway
from stack.native import launcher
from stack.native.config import ConfigError, NativeConfig
from stack.native.supervisor import LaunchError

console = Console()


def _terminated(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


class _Workshop(typer.Typer):
    """A bad environment variable (any command reads the config) is one line, not a traceback.

    SIGTERM (`timeout`, a cancelled CI job, `kill`) takes Ctrl-C's way out: every command
    already stops its Locust run, clears its lab's faults and stops its benchmark stacks on
    KeyboardInterrupt. Python's default would exit at once and leave them running."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _terminated)
        try:
            return super().__call__(*args, **kwargs)
        except ConfigError as exc:
            console.print(f"[bold red]error:[/] {exc}")
            raise SystemExit(1) from None


app = _Workshop(help="DataPrime Workshop Kit", no_args_is_help=True, add_completion=False)


def _fail(message: str, code: int = 1) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


@app.command()
def up(
    collector: Annotated[bool, typer.Option(help="start the OpenTelemetry collector")] = True,
    nginx: Annotated[
        bool | None, typer.Option(help="front the stack with nginx (default: when installed)")
    ] = None,
) -> None:
    """Start redis-server, the collector and every service; wait until all are ready."""
    cfg = NativeConfig.from_env()
    try:
        with console.status("starting the stack…") as status:
            result = launcher.up(
                cfg, collector=collector, nginx=nginx, progress=lambda msg: status.update(msg + "…")
            )
    except LaunchError as exc:
        _fail(str(exc))
        return
    table = Table(title=f"DataPrime Assistant is up ({result.seconds:.1f} s)")
    table.add_column("component")
    table.add_column("URL")
    for name, url in result.urls.items():
        table.add_row(name, url)
    console.print(table)
    mode = "Coralogix" if result.online else f"local files under {cfg.telemetry_dir}"
    console.print(f"telemetry → {mode}" if result.collector else "telemetry: collector off")
    console.print(f"admin token: stored in {cfg.admin_token_file} (never printed)")


@app.command()
def down() -> None:
    """Stop everything `workshop up` started."""
    stopped = launcher.down(NativeConfig.from_env())
    console.print("stack stopped" if stopped else "the stack was not running")


@app.command()
def status() -> None:
    """Process state and readiness of every component."""
    report = launcher.status(NativeConfig.from_env())
    if not report:
        _fail("the stack is not running: `workshop up`")
    table = Table(title="DataPrime Assistant")
    for column in ("component", "process", "ready", "URL"):
        table.add_column(column)
    for name, entry in report.items():
        colour = "green" if entry["ready"] == "yes" else "red"
        table.add_row(name, entry["process"], f"[{colour}]{entry['ready']}[/]", entry["url"])
    console.print(table)


@app.command()
def logs(
    service: Annotated[str, typer.Argument(help="a service name, redis, collector or nginx")],
    lines: Annotated[int, typer.Option("-n", help="lines to show")] = 50,
    follow: Annotated[bool, typer.Option("-f", help="keep following")] = False,
) -> None:
    """Show a component's log."""
    path = NativeConfig.from_env().log_dir / f"{service}.log"
    if not path.exists():
        _fail(f"no log for `{service}` at {path}")
    subprocess.run(["tail", f"-n{lines}", *(["-f"] if follow else []), str(path)], check=False)


@app.command()
def reset() -> None:
    """Faults, queue, cache, sessions and database back to empty."""
    try:
        result = Gateway.for_native().reset()
    except (ApiError, OSError) as exc:
        _fail(f"reset failed: {exc}")
        return
    console.print(
        f"reset: {result['faults_cleared']} faults cleared, "
        f"{result['storage']['jobs_removed']} stored results and "
        f"{result['queue']['job_statuses_removed']} job statuses removed"
    )


def _mount(module: str, name: str, help_text: str) -> None:
    """Sub-commands live in their own modules; mount those that are present."""
    try:
        sub = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:  # a real import error inside the module must surface
            raise
        return
    app.add_typer(sub.app, name=name, help=help_text)


_mount("workshop.fault_cmd", "fault", "Inject, list and clear faults.")
_mount("workshop.traces_cmd", "traces", "Read traces from local telemetry.")
_mount("workshop.demo", "demo", "The guided tour.")
_mount("workshop.lab_cmd", "lab", "Guided labs.")
_mount("workshop.bench", "bench", "The reproducible benchmark.")
_mount("workshop.load_cmd", "load", "Run a Locust scenario.")
_mount("workshop.doctor", "doctor", "Pre-flight checks (--online: the Coralogix path).")
_mount("workshop.room_cmd", "room", "Run a shared room: roster, handouts, events, progress.")


def _mount_backup() -> None:
    """`workshop backup` / `workshop restore` are top-level commands from workshop.backup."""
    try:
        backup = importlib.import_module("workshop.backup")
    except ImportError:
        return
    app.command("backup")(backup.backup_cmd)
    app.command("restore")(backup.restore_cmd)


_mount_backup()


if __name__ == "__main__":
    app()
