"""The customer commands of ``signals``: profiles, state, refresh, forget, audit. Thin, like ``cli``."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from .errors import ConfigError, SignalsError

Workspace = Annotated[Path, typer.Option(help="Workspace holding the store, index, profiles and audit log.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def _fail(exc: SignalsError) -> None:
    typer.secho(f"error: {exc}", err=True, fg="red")
    raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    profiles_app = typer.Typer(no_args_is_help=True, help="Customer profiles joined to the stored documents.")
    app.add_typer(profiles_app, name="profiles")
    profiles_app.command("import")(profiles_import)
    app.command()(state)
    app.command()(refresh)
    app.command()(forget)
    app.command()(audit)


def profiles_import(
    source: Annotated[str, typer.Argument(help="CSV, Parquet, JSONL or DuckDB file, or a SQLAlchemy URL "
                                               "(postgresql://user@host/db).")],
    key: Annotated[str, typer.Option(help="Profile field matched to the documents' customer id (e.g. email).")
                   ] = "customer_id",
    table: Annotated[str | None, typer.Option(help="Table to read (DuckDB file or SQL URL; default profiles).")
                     ] = None,
    query: Annotated[str | None, typer.Option(help="SQL URL: a SELECT to run instead of reading --table.")] = None,
    opt_out_field: Annotated[str, typer.Option(help="Field that is true for customers who opted out.")
                             ] = "opted_out",
    consent_field: Annotated[str | None, typer.Option(help="Field that is true only for customers who consent "
                                                           "(used instead of --opt-out-field).")] = None,
    workspace: Workspace = Path(".signals"),
    as_json: AsJson = False,
) -> None:
    """Import (or re-import, updating in place) customer profiles; erase opted-out customers' data."""
    from .profiles import import_profiles

    try:
        report = import_profiles(workspace, source, key=key, table=table, query=query,
                                 opt_out_field=opt_out_field or None, consent_field=consent_field)
    except SignalsError as exc:
        _fail(exc)
    if as_json:
        typer.echo(report.model_dump_json())
        return
    typer.echo(f"profiles: {report.n_read} read, {report.n_new} new, {report.n_updated} updated, "
               f"{report.n_rejected} rejected, {report.n_duplicates} duplicate keys, {report.n_opted_out} opted out")
    for r in report.rejected[:10]:
        typer.echo(f"  rejected row {r['row']}: {r['reason']}")
    if report.erased:
        typer.echo(f"  erased the data of {len(report.erased)} opted-out customers (audit ids: "
                   f"{', '.join(report.erased)})")
    if report.documents_without_profile:
        shown = ", ".join(report.customers_without_profile[:20])
        more = len(report.customers_without_profile) - 20
        typer.echo(f"  {report.documents_without_profile} documents have no profile (customers: {shown}"
                   f"{f' and {more} more' if more > 0 else ''}); they are kept")


def _as_of(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(f"--as-of {value!r}: use an ISO date or time, e.g. 2026-10-15 or "
                          "2026-10-15T12:00:00Z") from exc


def state(
    customer_id: Annotated[str, typer.Argument(help="Customer id (matched case- and space-insensitively).")],
    as_of: Annotated[str | None, typer.Option(help="Reconstruct the state at this time (ISO date or time).")] = None,
    sentiment_half_life: Annotated[float, typer.Option(help="Days for a contact's sentiment weight to halve.",
                                                       min=0.01)] = 14.0,
    urgency_half_life: Annotated[float, typer.Option(help="Days for urgency to halve.", min=0.01)] = 3.0,
    workspace: Workspace = Path(".signals"),
    as_json: AsJson = False,
) -> None:
    """A customer as they are now (or --as-of): intents, sentiment trend, urgency, constraints, with evidence."""
    from .state import StateConfig
    from .state import state as customer_state

    try:
        cfg = StateConfig(sentiment_half_life_days=sentiment_half_life, urgency_half_life_days=urgency_half_life)
        st = customer_state(workspace, customer_id, as_of=_as_of(as_of), cfg=cfg)
    except SignalsError as exc:
        _fail(exc)
    if st is None:
        typer.secho(f"No customer {customer_id!r} in {workspace} (no documents and no profile).", err=True)
        raise typer.Exit(1)
    if as_json:
        typer.echo(st.model_dump_json())
        return
    from .render import customer_state as show

    show(st)


def refresh(
    results: Annotated[list[str], typer.Argument(help="New result files from `signals extract`.")],
    workspace: Workspace = Path(".signals"),
) -> None:
    """Add new results to the store and index and update the state of only the customers they touch."""
    from .index import index_results

    try:
        out = index_results(workspace, results)
    except SignalsError as exc:
        _fail(exc)
    typer.echo(json.dumps(out, default=str))


def forget(
    customer_id: Annotated[str, typer.Argument(help="Customer id to erase.")],
    workspace: Workspace = Path(".signals"),
) -> None:
    """Erase a customer from the store, index, cache, state history and managed outputs; print the audit id."""
    from .forget import forget as erase

    try:
        typer.echo(json.dumps(erase(workspace, customer_id)))
    except SignalsError as exc:
        _fail(exc)


def audit(
    workspace: Workspace = Path(".signals"),
    event: Annotated[str | None, typer.Option(help="Only this event (extract, index, profiles, forget).")] = None,
    as_json: AsJson = False,
) -> None:
    """The workspace's append-only audit log: runs, imports and erasures (no personal data)."""
    from .audit import read

    rows = [r for r in read(workspace) if event is None or r["event"] == event]
    if as_json:
        typer.echo(json.dumps(rows, default=str))
        return
    for r in rows:
        counts = r.get("counts") or r.get("removed") or {}
        brief = ", ".join(f"{k}={v}" for k, v in counts.items() if not isinstance(v, (dict, list)))
        typer.echo(f"{r['at'][:19]}  {r['event']:<8} {r['audit_id'][:12]}  {brief}")
