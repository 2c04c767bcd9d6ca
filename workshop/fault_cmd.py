"""`workshop fault catalogue|list|add|rm|clear` — the admin API from the terminal."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from stack.client import ApiError, Gateway, failure_reason
from stack.common.faults.model import MAX_TTL_SECONDS

app = typer.Typer(no_args_is_help=True)
console = Console()


def _gateway() -> Gateway:
    gateway = Gateway.for_native()
    if not gateway.admin_token:
        console.print("[red]error:[/] no admin token: set ADMIN_TOKEN or run `workshop up` once")
        raise typer.Exit(2)
    return gateway


def _call(fn: Any, *args: Any, **kw: Any) -> Any:
    try:
        return fn(*args, **kw)
    except ApiError as exc:
        body = exc.body if isinstance(exc.body, dict) else {}
        # A refusal names each field and its reason (the detail joins the same pairs once
        # more): one line each. Anything else says what happened in its detail.
        errors = body.get("errors") or []
        for err in errors:
            console.print(
                f"[red]error:[/] [yellow]{escape(str(err.get('field')))}[/]: "
                f"{escape(str(err.get('reason')))}"
            )
        if not errors:
            console.print(f"[red]error:[/] {escape(str(body.get('detail', exc)))}")
        raise typer.Exit(1) from None
    except OSError as exc:
        url = getattr(fn, "__self__", None)
        where = f" at {url.base_url}" if isinstance(url, Gateway) else ""
        console.print(
            f"[red]error:[/] the gateway{where} is not reachable ({failure_reason(exc)}): "
            "`workshop up`?"
        )
        raise typer.Exit(1) from None


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            console.print(f"[red]error:[/] --param expects key=value, got `{pair}`")
            raise typer.Exit(2)
        params[key] = int(value) if value.lstrip("-").isdigit() else value
    return params


@app.command()
def catalogue() -> None:
    """Every fault kind, its targets and parameters."""
    table = Table(title="Fault catalogue", show_lines=True)
    # What a learner types (`workshop fault add KIND TARGET`) never wraps; the prose does.
    for column in ("kind", "targets", "parameters", "what a learner sees"):
        table.add_column(column, no_wrap=column in ("kind", "targets"))
    for kind in _call(_gateway().catalogue):
        props = kind["params_schema"].get("properties", {})
        params = "\n".join(f"{name} (default {p.get('default')})" for name, p in props.items())
        table.add_row(kind["kind"], "\n".join(kind["targets"]), params, kind["symptom"])
    console.print(table)


@app.command("list")
def list_faults() -> None:
    """Active faults and the time they have left."""
    faults = _call(_gateway().faults)
    if not faults:
        console.print("no active faults")
        return
    table = Table(title="Active faults")
    # The id is typed back (`workshop fault rm ID`): it, the kind and the target never wrap.
    for column in ("id", "kind", "target", "params", "p", "scope", "left"):
        # params and scope fold rather than end in "…": an attendee id is one long word
        table.add_column(column, no_wrap=column in ("id", "kind", "target"), overflow="fold")
    for f in faults:
        scope = f["scope"] if f["scope"] == "all" else f"{f['scope']}={f['scope_value']}"
        params = ", ".join(f"{k}={v}" for k, v in f["params"].items())
        table.add_row(
            f["id"],
            f["kind"],
            f["target"],
            params,
            f"{f['probability']:g}",
            scope,
            f"{int(f['remaining_seconds'])} s",
        )
    console.print(table)


@app.command()
def add(
    kind: Annotated[str, typer.Argument(help="a kind from `workshop fault catalogue`")],
    target: Annotated[str, typer.Argument(help="the service.name to break")],
    param: Annotated[list[str], typer.Option("--param", "-p", help="key=value")] = [],  # noqa: B006
    probability: Annotated[float, typer.Option(min=0, max=1)] = 1.0,
    ttl: Annotated[
        int, typer.Option(min=1, max=MAX_TTL_SECONDS, help="seconds until it expires")
    ] = 600,
    attendee: Annotated[str | None, typer.Option(help="only this attendee's requests")] = None,
    session: Annotated[str | None, typer.Option(help="only this session's requests")] = None,
) -> None:
    """Inject a fault."""
    # An empty name (`--attendee "$NAME"` with NAME unset) must not widen the fault to
    # everybody: in a room that is every attendee's stack.
    for option, value in (("--attendee", attendee), ("--session", session)):
        if value is not None and not value.strip():
            console.print(
                f"[red]error:[/] {option} is empty: name one, or leave the option out "
                "for a fault on every request"
            )
            raise typer.Exit(2)
    if attendee is not None and session is not None:
        console.print("[red]error:[/] give --attendee or --session, not both")
        raise typer.Exit(2)
    scope, value = (
        ("attendee", attendee)
        if attendee is not None
        else ("session", session)
        if session is not None
        else ("all", None)
    )
    fault = _call(
        _gateway().add_fault,
        kind,
        target,
        params=_parse_params(param),
        probability=probability,
        ttl_seconds=ttl,
        scope=scope,
        scope_value=value,
    )
    only = f", only {scope} {escape(str(value))}'s requests" if value is not None else ""
    console.print(
        f"[green]injected[/] {fault['id']}: {kind} on {target}{only}, "
        f"expires in {int(fault['remaining_seconds'])} s"
    )


@app.command()
def rm(fault_id: Annotated[str, typer.Argument(help="the id from `workshop fault list`")]) -> None:
    """Clear one fault."""
    _call(_gateway().remove_fault, fault_id)
    console.print(f"cleared {fault_id}")


@app.command()
def clear() -> None:
    """Clear every fault."""
    result = _call(_gateway().clear_faults)
    console.print(f"cleared {result['cleared']} fault(s)")
