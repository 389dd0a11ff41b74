"""The ``signals`` command. Thin: parse options, call the library, print. Heavy imports stay inside commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from .cli_common import AgentNames, Workspace
from .cli_common import fail as _fail
from .cli_common import setup_logging as _setup_logging
from .errors import SignalsError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_show_locals=False,
                  help="Turn support transcripts, tickets, reviews and surveys into evidence-linked signals.")

Taxonomy = Annotated[str | None, typer.Option(help="Taxonomy YAML, or labelled JSONL ({text, label}) to build one.")]
Encoder = Annotated[str | None, typer.Option(help="Encoder name (all-MiniLM-L6-v2, the default; all-mpnet-base-v2) "
                                                  "or a sentence-transformers model directory.")]


def _unknown_intents(workspace: Path, where: str) -> None:
    """When a filter found nothing, say which of its intent labels the workspace has never seen (a typo?)."""
    import difflib

    from .index import _reader_for
    from .where import parse, values_of

    asked = values_of(parse(where), "intent")
    if not asked:
        return
    known = {r[0] for r in _reader_for(workspace).db.execute(
        "SELECT DISTINCT label FROM signals WHERE kind = 'intent'").fetchall()}
    for label in sorted(asked - known):
        near = difflib.get_close_matches(label, sorted(known), n=3)
        typer.secho(f"note: no document has the intent {label!r}" + (f"; did you mean {', '.join(near)}?" if near
                                                                      else ""), err=True, fg="yellow")


@app.command()
def extract(
    inputs: Annotated[list[str], typer.Argument(help="Files, directories, globs, or - for stdin.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output .jsonl (or .parquet).")],
    mode: Annotated[str, typer.Option(help="local (default), llm (every document), or cascade (the local models, "
                                           "then the LLM for documents they are unsure of).")] = "local",
    taxonomy: Taxonomy = None,
    model: Annotated[Path | None, typer.Option(help="Model directory made by `signals train`.")] = None,
    catalog: Annotated[Path | None, typer.Option(help="Product catalog YAML: products: [{name, aliases}].")] = None,
    encoder: Encoder = None,
    workspace: Annotated[Path, typer.Option(help="Workspace: LLM cache, store, index, profiles (opted-out customers "
                                                 "are skipped), audit log.")] = Path(".signals"),
    text_field: Annotated[str, typer.Option(help="Field holding the text.")] = "text",
    id_field: Annotated[str, typer.Option(help="Field holding the document id.")] = "id",
    customer_field: Annotated[str, typer.Option(help="Field holding the customer id.")] = "customer_id",
    turns_field: Annotated[str, typer.Option(help="Field holding transcript turns.")] = "turns",
    agent_name: AgentNames = None,
    fmt: Annotated[str | None, typer.Option("--format", help="Input format: jsonl|json|csv|tsv|parquet|txt.")] = None,
    encoding: Annotated[str, typer.Option(help="Input text encoding.")] = "utf-8",
    max_chars: Annotated[int, typer.Option(help="Reject documents longer than this.")] = 1_000_000,
    resume: Annotated[bool, typer.Option(help="Skip documents already in OUT (after a crash).")] = True,
    batch_size: Annotated[int, typer.Option(help="Documents per batch.", min=1)] = 256,
    backend: Annotated[str, typer.Option(help="LLM backend: llamacpp | transformers | openai | langchain.",
                                         rich_help_panel="LLM")] = "llamacpp",
    llm_model: Annotated[str | None, typer.Option(help="What the backend loads: a GGUF path, a transformers "
                                                       "directory, a server-side model name, or module:attr.",
                                                  rich_help_panel="LLM")] = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible server URL (else $OPENAI_BASE_URL). "
                                                      "The key comes from $SIGNALS_LLM_API_KEY or $OPENAI_API_KEY.",
                                                 rich_help_panel="LLM")] = None,
    schema_mode: Annotated[str, typer.Option(help="openai: how the JSON Schema is sent: auto | json_schema | "
                                                  "json_object | none.", rich_help_panel="LLM")] = "auto",
    concurrency: Annotated[int, typer.Option(help="openai: requests in flight at once.", min=1,
                                             rich_help_panel="LLM")] = 4,
    cascade_threshold: Annotated[float, typer.Option(help="cascade: send a document to the LLM when its intent or "
                                                          "sentiment confidence is below this.",
                                                     rich_help_panel="LLM")] = 0.6,
    max_tokens_budget: Annotated[int | None, typer.Option(help="Stop cleanly once this many LLM tokens are spent "
                                                                "(rerun to resume).", rich_help_panel="LLM")] = None,
    max_repairs: Annotated[int, typer.Option(help="Repair attempts for an invalid LLM reply.", min=0,
                                             rich_help_panel="LLM")] = 2,
    context: Annotated[int | None, typer.Option(help="The model's context window in tokens (default: the "
                                                     "model's, or 4096 for GGUF).", rich_help_panel="LLM")] = None,
    prompt: Annotated[str, typer.Option(help="Prompt name (extract, extract@v1) or a <task>.v<N>.yaml file.",
                                        rich_help_panel="LLM")] = "extract",
    cache: Annotated[bool, typer.Option(help="Cache LLM replies under the workspace.", rich_help_panel="LLM")] = True,
    pack: Annotated[int, typer.Option(help="Pack up to N short plain texts (reviews, survey answers) into one "
                                           "LLM call.", min=1, rich_help_panel="LLM")] = 1,
    index: Annotated[bool, typer.Option("--index", help="Also store the results in the workspace and add them to "
                                                        "its search index (as `signals index add OUT`).")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Extract intent, sentiment, urgency and constraints, each with evidence, from every document."""
    _setup_logging(verbose)
    from .cascade import LLMOptions
    from .io import FieldMap
    from .pipeline import Pipeline
    from .render import progress, summary_table

    fields = FieldMap(text=text_field, id=id_field, customer=customer_field, turns=turns_field)
    options = {"context_tokens": context} if context else {}
    if backend == "openai":
        options.update(schema_mode=schema_mode, parallel=concurrency)
    llm = LLMOptions(backend=backend, model=llm_model, base_url=base_url, prompt=prompt, workspace=workspace,
                     cache=cache, max_repairs=max_repairs, budget=max_tokens_budget, threshold=cascade_threshold,
                     pack=pack,
                     backend_options=options) if mode != "local" else None
    from . import audit, outputs
    from .profiles import opted_out_markers

    try:
        pipe = Pipeline(taxonomy, encoder=encoder, catalog=catalog, max_chars=max_chars, model=model, mode=mode,
                        llm=llm, agent_names=agent_name or ())
        outputs.register(workspace, out)  # before the first row is written: `signals forget` must reach it
        with progress("extracting") as update:
            summary = pipe.run(inputs, out, fields=fields, fmt=fmt, encoding=encoding, resume=resume,
                               batch_size=batch_size, on_progress=update, opted_out=opted_out_markers(workspace))
    except SignalsError as exc:
        _fail(exc)
    prov = pipe.provenance()
    audit.record(workspace, "extract", inputs=[{"sha256": audit.file_digest(i)} for i in inputs], mode=mode,
                 models=prov.models, version=prov.version, taxonomy=prov.taxonomy,
                 counts=summary.model_dump(include={"n_in", "n_ok", "n_rejected", "n_opted_out", "n_resumed",
                                                    "model_calls", "cache_hits", "prompt_tokens",
                                                    "completion_tokens"}))
    summary_table(summary)
    if index and summary.n_ok:
        from .index import index_results

        embedder = pipe.local.embedder if pipe.mode != "llm" and pipe.model_spec is None else None
        try:
            typer.echo(json.dumps({"indexed": index_results(workspace, [str(out)], embedder=embedder)}))
        except SignalsError as exc:
            _fail(exc)
    missing = summary.reject_reasons.get("path not found", 0)
    if summary.n_in == missing:  # nothing at all, or only paths that do not exist: not a successful run
        typer.secho("error: no documents were read: check the input paths and formats.", err=True, fg="red")
        raise typer.Exit(1)
    if missing:
        typer.secho(f"warning: {missing} input path(s) not found; see {summary.rejects}", err=True, fg="yellow")


@app.command(name="eval")
def eval_(
    task: Annotated[str, typer.Argument(help="intent | intents (multi-label) | sentiment | urgency | constraints")],
    test: Annotated[Path, typer.Option(help="Labelled JSONL test file.")],
    train: Annotated[Path | None, typer.Option(help="Labelled JSONL: its examples become the intent taxonomy.")] = None,
    shots: Annotated[int | None, typer.Option(help="Use K examples per label from --train.")] = None,
    taxonomy: Taxonomy = None,
    model: Annotated[Path | None, typer.Option(help="Model directory made by `signals train`.")] = None,
    encoder: Encoder = None,
    label_field: Annotated[str, typer.Option(help="Field holding the gold label.")] = "label",
    catalog: Annotated[Path | None, typer.Option(help="Product catalog YAML for constraints.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for --shots sampling.")] = 0,
    urgent_cut: Annotated[str, typer.Option(help="Urgency level from which a row counts as urgent (urgent_f1).")
                          ] = "high",
    report: Annotated[Path | None, typer.Option(help="Write a self-contained HTML report (metrics, confusion "
                                                     "matrix, worst errors with their text) to this file.")] = None,
    with_rows: Annotated[bool, typer.Option("--with-rows", help="With --json: add every row's text, gold and "
                                                                "prediction under 'rows'.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Measure a task on labelled data (accuracy, P/R/F1 per class, confusion, ECE, Spearman, span F1)."""
    _setup_logging(verbose)
    from .evaluate import evaluate
    from .pipeline import Pipeline
    from .render import metrics_table, progress

    if report is not None and report.is_dir():
        _fail(SignalsError(f"--report {report} is a directory; give a file name such as {report / 'report.html'}"))
    try:
        pipe = Pipeline(str(train) if train else taxonomy, shots=shots, seed=seed, encoder=encoder,
                        label_field=label_field, model=model,
                        catalog=catalog, ner=task == "constraints")
        with progress("evaluating", quiet=as_json) as update:
            metrics = evaluate(task, test, pipe, label_field=label_field, on_progress=lambda n: update(n, 0),
                               urgent_cut=urgent_cut, keep_rows=bool(report or with_rows))
    except SignalsError as exc:
        _fail(exc)
    rows = metrics.pop("rows", None)
    if report:
        from .report import write_report

        try:
            write_report(report, metrics, rows, source=str(test))
        except OSError as exc:
            _fail(SignalsError(f"Cannot write --report {report}: {exc}. Choose a writable file path."))
    if as_json:
        typer.echo(json.dumps(metrics | ({"rows": rows} if with_rows else {})))
    else:
        metrics_table(metrics)
    if report:
        typer.echo(f"report: {report}", err=True)


@app.command()
def train(
    task: Annotated[str, typer.Argument(help="intent | intents (multi-label) | sentiment | urgency")],
    train_file: Annotated[Path, typer.Option("--train", help="Labelled JSONL: {text, label} "
                                                             "({text, labels: [...]} for intents).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model directory to write.")],
    shots: Annotated[int | None, typer.Option(help="Use K examples per label.")] = None,
    fast: Annotated[bool, typer.Option("--fast", help="Frozen embeddings + logistic regression: seconds, "
                                                      "not minutes, a few points less accurate.")] = False,
    epochs: Annotated[int | None, typer.Option(help="Fine-tuning epochs (default: enough for ~600 steps).",
                                               min=1)] = None,
    encoder: Encoder = None,
    label_field: Annotated[str, typer.Option(help="Field holding the label.")] = "label",
    seed: Annotated[int, typer.Option(help="Seed for sampling, splits and training.")] = 0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Train a model directory for `signals extract --model` (default: fine-tune the encoder)."""
    _setup_logging(verbose)
    from .finetune import FinetuneConfig
    from .render import step_progress
    from .train import train as train_model

    try:
        with step_progress("training" if fast else "fine-tuning (optimiser steps)") as update:
            manifest = train_model(task, train_file, out, shots=shots, seed=seed, encoder=encoder,
                                   label_field=label_field, method="fast" if fast else "finetune",
                                   config=FinetuneConfig(epochs=epochs), progress=update)
    except SignalsError as exc:
        _fail(exc)
    typer.echo(json.dumps({"out": str(out), "method": manifest["method"], "labels": len(manifest["labels"]),
                           "n_train": manifest["n_train"], "train_seconds": manifest["train_seconds"],
                           **manifest["metrics"]}))


@app.command()
def show(
    results: Annotated[Path, typer.Argument(help="Output of `signals extract` (.jsonl or .parquet).")],
    doc_id: Annotated[list[str] | None, typer.Option("--id", help="Document id(s) to show (default: first 3).")] = None,
    limit: Annotated[int, typer.Option(help="How many documents to show without --id.", min=1)] = 3,
) -> None:
    """Show documents' signals with their quotes highlighted in context."""
    from .io import read_results
    from .render import show_result

    wanted = set(doc_id or [])
    shown = 0
    try:
        for res in read_results(results):
            if (wanted and res.id in wanted) or (not wanted and shown < limit):
                show_result(res)
                shown += 1
            if (not wanted and shown >= limit) or (wanted and shown >= len(wanted)):
                break
    except SignalsError as exc:
        _fail(exc)
    if wanted and shown < len(wanted):
        _fail(SignalsError(f"No row with id {', '.join(sorted(wanted))} in {results}."))


index_app = typer.Typer(no_args_is_help=True, help="Build and inspect the search index (FAISS + BM25) over results.")
app.add_typer(index_app, name="index")


@index_app.command("build")
def index_build(
    results: Annotated[list[str], typer.Argument(help="Result files written by `signals extract` (.jsonl/.parquet).")],
    workspace: Workspace = Path(".signals"),
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Store the results in the workspace (DuckDB) and index their segments from scratch."""
    _index(results, workspace, rebuild=True, verbose=verbose)


@index_app.command("add")
def index_add(
    results: Annotated[list[str], typer.Argument(help="Result files to add (re-added documents are replaced).")],
    workspace: Workspace = Path(".signals"),
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Add results to the store and the index without a rebuild."""
    _index(results, workspace, rebuild=False, verbose=verbose)


def _index(results: list[str], workspace: Path, *, rebuild: bool, verbose: bool) -> None:
    _setup_logging(verbose)
    from .index import index_results

    try:
        out = index_results(workspace, results, rebuild=rebuild)
    except SignalsError as exc:
        _fail(exc)
    typer.echo(json.dumps(out))


@index_app.command("stats")
def index_stats(workspace: Workspace = Path(".signals")) -> None:
    """The index manifest (embedder, dimension, count, index type, build time, versions) and store counts."""
    from .index import Index
    from .store import Store

    try:
        stats = Index.open(workspace).stats()
        with Store(workspace, read_only=True) as store:
            stats["store"] = store.counts()
    except SignalsError as exc:
        _fail(exc)
    typer.echo(json.dumps(stats, indent=2, default=str))


@index_app.command("delete", hidden=True)
def index_delete(
    customer: Annotated[str, typer.Option(help="Remove every document of this customer id.")],
    workspace: Workspace = Path(".signals"),
) -> None:
    """Same as `signals forget` (kept for scripts written before it)."""
    from .index import forget_customer

    try:
        typer.echo(json.dumps(forget_customer(workspace, customer)))
    except SignalsError as exc:
        _fail(exc)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for, in plain words (and/or exact terms).")],
    where: Annotated[str | None, typer.Option(help='Filter first, e.g. "sentiment=negative and channel=chat and '
                                                   'created_at>=2026-10-01".')] = None,
    k: Annotated[int, typer.Option("-k", help="Number of hits.", min=1)] = 10,
    mode: Annotated[str, typer.Option(help="vector | keyword | hybrid")] = "hybrid",
    level: Annotated[str, typer.Option(help="segment (quotes) or document (whole calls and tickets, each with "
                                            "its best quote).")] = "segment",
    workspace: Workspace = Path(".signals"),
    explain: Annotated[bool, typer.Option(help="Say how the filter and ranking ran.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Search stored quotes by meaning and keywords; filters apply before ranking."""
    _setup_logging(False)
    from .index import Index

    try:
        result = Index.open(workspace).search(query, where=where, k=k, mode=mode, level=level)
    except SignalsError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(result.as_json(), ensure_ascii=False, default=str))
        return
    from .render import search_hits

    if not result.hits and where:
        _unknown_intents(workspace, where)

    search_hits(result, query, explain=explain)


@app.command()
def schema() -> None:
    """Print the JSON Schema of one output row (ExtractionResult)."""
    from .types import ExtractionResult

    typer.echo(json.dumps(ExtractionResult.model_json_schema(), indent=2))


@app.command()
def version() -> None:
    """Print the version."""
    from . import __version__

    typer.echo(__version__)


def main() -> None:  # pragma: no cover - console entry for `python -m extractor`
    try:
        app()
    except SignalsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


from .cli_customers import register as _register_customer_commands  # noqa: E402 (after app's own commands)

_register_customer_commands(app)
