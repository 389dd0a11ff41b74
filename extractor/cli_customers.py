"""The customer commands of ``signals``: profiles, state, refresh, watch, actions, overrides, forget, audit.

Thin, like ``cli``."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from .cli_common import AgentNames, AsJson, Workspace, setup_logging
from .cli_common import fail as _fail
from .errors import ConfigError, SignalsError


def register(app: typer.Typer) -> None:
    profiles_app = typer.Typer(no_args_is_help=True, help="Customer profiles joined to the stored documents.")
    app.add_typer(profiles_app, name="profiles")
    profiles_app.command("import")(profiles_import)
    app.command()(state)
    app.command()(refresh)
    app.command()(forget)
    app.command()(audit)
    app.command()(actions)
    app.command()(segments)
    override_app = typer.Typer(no_args_is_help=True, help="Correct a signal or suppress an action (overrides win "
                                                          "over model output).")
    app.add_typer(override_app, name="override")
    override_app.command("signal")(override_signal)
    override_app.command("suppress")(override_suppress)
    override_app.command("list")(override_list)
    override_app.command("remove")(override_remove)
    app.command("export-overrides")(export_overrides)
    app.command()(watch)


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
               f"{report.n_unchanged} unchanged, {report.n_rejected} rejected, {report.n_duplicates} duplicate keys, "
               f"{report.n_opted_out} opted out")
    if report.n_kept_opt_outs:
        typer.echo(f"  {report.n_kept_opt_outs} later rows of opted-out customers were ignored: an opt-out stands")
    if report.opted_back_in:
        typer.echo(f"  {report.opted_back_in} customers who had opted out consent again in this source")
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


AS_OF_HELP = ("As of this time: an ISO time, or a date, which means 00:00 UTC that day (that day's contacts "
              "are not in it yet).")


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
    as_of: Annotated[str | None, typer.Option(help=AS_OF_HELP)] = None,
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
        if not Path(workspace).is_dir():
            raise ConfigError(f"No workspace at {workspace}; name it with --workspace")
        done = erase(workspace, customer_id)
    except SignalsError as exc:
        _fail(exc)
    typer.echo(json.dumps(done))
    if not done["found"]:
        typer.secho(f"warning: the workspace held nothing of {customer_id!r}: nothing was erased (the request is in "
                    "the audit log as not found); check the id", err=True, fg="yellow")


def audit(
    workspace: Workspace = Path(".signals"),
    event: Annotated[str | None, typer.Option(help="Only this event (extract, index, profiles, forget).")] = None,
    as_json: AsJson = False,
) -> None:
    """The workspace's append-only audit log: runs, imports and erasures (no personal data)."""
    from .audit import read

    rows = list(read(workspace))
    kinds = {"extract", "index", "profiles", "forget"} | {r["event"] for r in rows}
    if event is not None and event not in kinds:
        _fail(ConfigError(f"--event {event!r}: events are {', '.join(sorted(kinds))}"))
    rows = [r for r in rows if event is None or r["event"] == event]
    if as_json:
        typer.echo(json.dumps(rows, default=str))
        return
    for r in rows:
        counts = r.get("counts") or r.get("removed") or {}
        brief = ", ".join(f"{k}={v}" for k, v in counts.items() if not isinstance(v, (dict, list)))
        typer.echo(f"{r['at'][:19]}  {r['event']:<8} {r['audit_id'][:12]}  {brief}")


def actions(
    policy: Annotated[Path | None, typer.Option(help="Policy YAML (default: the shipped extractor/data/policy.yaml)."
                                                )] = None,
    top: Annotated[int | None, typer.Option(help="Only the N highest-priority actions.", min=1)] = None,
    as_of: Annotated[str | None, typer.Option(help=AS_OF_HELP)] = None,
    include_suppressed: Annotated[bool, typer.Option(help="Also list actions an analyst suppressed.")] = False,
    workspace: Workspace = Path(".signals"),
    as_json: AsJson = False,
) -> None:
    """Next-best actions by priority; each lists the rules that fired and the evidence behind every condition."""
    from .policy import actions as suggest_actions
    from .policy import load_policy

    try:
        rules = load_policy(policy or Path(__file__).parent / "data" / "policy.yaml")
        found = suggest_actions(workspace, rules, as_of=_as_of(as_of), include_suppressed=include_suppressed)
    except SignalsError as exc:
        _fail(exc)
    found = found[:top] if top else found
    if as_json:
        typer.echo(json.dumps([a.model_dump(mode="json") for a in found], ensure_ascii=False))
        return
    from .render import action_list

    action_list(found)


def segments(
    by: Annotated[str, typer.Option(help="Comma-separated dimensions: urgency, urgency.peak, sentiment, trend, "
                                         "intent (the most recent active one: each customer is in one segment; "
                                         "`actions` with `intent in (...)` finds every customer with an intent), "
                                         "channel (the most used), profile.<attribute>.")
                  ] = "urgency.peak,sentiment,intent",
    as_of: Annotated[str | None, typer.Option(help=AS_OF_HELP)] = None,
    workspace: Workspace = Path(".signals"),
    as_json: AsJson = False,
) -> None:
    """Customers grouped by their current state (e.g. high urgency + negative + subscription_cancel)."""
    from .segments import segments as group

    try:
        rows = group(workspace, [d.strip() for d in by.split(",") if d.strip()], as_of=_as_of(as_of))
    except SignalsError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False))
        return
    for r in rows:
        label = " + ".join(f"{k}={v}" for k, v in r["segment"].items())
        shown = ", ".join(r["customers"][:8]) + (" …" if r["count"] > 8 else "")
        typer.echo(f"{r['count']:>5}  {label}  ({shown})")


def override_signal(
    doc_id: Annotated[str, typer.Argument(help="Document whose signal is wrong.")],
    kind: Annotated[str, typer.Option(help="intent | sentiment | urgency")],
    label: Annotated[str, typer.Option(help="The right label (intent label, sentiment, or urgency level).")],
    reason: Annotated[str, typer.Option(help="Why (kept with the override).")],
    workspace: Workspace = Path(".signals"),
    new_label: Annotated[bool, typer.Option("--new-label", help="The intent label is new: not in the workspace's "
                                                                 "results or the default taxonomy yet.")] = False,
) -> None:
    """Correct a document's intent, sentiment or urgency; the correction wins over the model from now on."""
    from .overrides import correct_signal

    try:
        done = correct_signal(workspace, doc_id, kind, label, reason, new_label=new_label)
    except SignalsError as exc:
        _fail(exc)
    typer.echo(json.dumps(done))
    if done.get("replaced"):
        typer.secho(f"note: this replaces override {done['replaced']} of the same signal", err=True)


def override_suppress(
    customer_id: Annotated[str, typer.Argument(help="Customer the action is suppressed for.")],
    action: Annotated[str, typer.Option(help="The action's text or its rule's name.")],
    reason: Annotated[str, typer.Option(help="Why (kept with the override).")],
    workspace: Workspace = Path(".signals"),
) -> None:
    """Stop suggesting an action for a customer."""
    from .overrides import suppress_action

    try:
        typer.echo(json.dumps(suppress_action(workspace, customer_id, action, reason)))
    except SignalsError as exc:
        _fail(exc)


def override_list(workspace: Workspace = Path(".signals")) -> None:
    """Every override, oldest first (JSON lines)."""
    from .index import _reader_for
    from .overrides import listing

    try:
        rows = listing(_reader_for(workspace))
    except SignalsError as exc:
        _fail(exc)
    for row in rows:
        typer.echo(json.dumps(row, default=str, ensure_ascii=False))


def override_remove(
    override_id: Annotated[str, typer.Argument(help="Id printed when the override was made.")],
    workspace: Workspace = Path(".signals"),
) -> None:
    """Withdraw an override."""
    from .overrides import remove

    if not remove(workspace, override_id):
        typer.secho(f"No override {override_id!r} (`signals override list` shows them)", err=True)
        raise typer.Exit(1)


def export_overrides(
    out: Annotated[Path, typer.Option("--out", "-o", help="JSONL of {text, label, task} for `signals train`.")],
    kind: Annotated[str | None, typer.Option(help="Only corrections of this kind (intent, sentiment, urgency).")
                    ] = None,
    workspace: Workspace = Path(".signals"),
) -> None:
    """Turn signal corrections into labelled training examples."""
    from .overrides import corrections_as_training

    try:
        n = corrections_as_training(workspace, out, kind)
    except SignalsError as exc:
        _fail(exc)
    typer.echo(json.dumps({"examples": n, "out": str(out)}))


def watch(
    directory: Annotated[str, typer.Argument(help="Folder to watch for new result-less input files, or - for "
                                                  "JSONL documents on stdin.")],
    workspace: Workspace = Path(".signals"),
    taxonomy: Annotated[str | None, typer.Option(help="Taxonomy YAML (as for extract).")] = None,
    model: Annotated[Path | None, typer.Option(help="Model directory made by `signals train`.")] = None,
    catalog: Annotated[Path | None, typer.Option(help="Product catalog YAML.")] = None,
    poll: Annotated[float, typer.Option(help="Seconds between looks at the folder.", min=0.01)] = 0.25,
    settle: Annotated[float, typer.Option(help="A file is read once unchanged for this long.", min=0.0)] = 0.2,
    once: Annotated[bool, typer.Option(help="Process what is there, then exit.")] = False,
    batch: Annotated[int, typer.Option(help="stdin: documents per micro-batch.", min=1)] = 64,
    text_field: Annotated[str, typer.Option(help="Field holding the text (as for extract).")] = "text",
    id_field: Annotated[str, typer.Option(help="Field holding the document id.")] = "id",
    customer_field: Annotated[str, typer.Option(help="Field holding the customer id: the field profiles were "
                                                     "matched on (e.g. customer_email with --key email), so "
                                                     "opted-out customers are recognised.")] = "customer_id",
    turns_field: Annotated[str, typer.Option(help="Field holding transcript turns.")] = "turns",
    agent_name: AgentNames = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Extract, store, index and refresh state for each new file as it lands (exactly once, across restarts)."""
    setup_logging(verbose)
    from .io import FieldMap
    from .pipeline import Pipeline
    from .watch import Watcher

    def show(info: dict) -> None:
        typer.echo(json.dumps(info, ensure_ascii=False), nl=True)

    try:
        fields = FieldMap(text=text_field, id=id_field, customer=customer_field, turns=turns_field)
        watcher = Watcher(workspace, Pipeline(taxonomy, catalog=catalog, model=model, agent_names=agent_name or ()),
                          settle=settle, fields=fields)
        if directory == "-":
            watcher.run_stdin(batch=batch, on_file=show)
        else:
            if not Path(directory).is_dir():
                raise ConfigError(f"{directory} is not a folder; give the folder new files land in, or -")
            typer.secho(f"watching {directory} (Ctrl-C to stop)", err=True)
            watcher.run(directory, poll=poll, once=once, on_file=show)
    except SignalsError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        typer.secho("stopped", err=True)
