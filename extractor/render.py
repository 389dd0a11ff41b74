"""Terminal presentation for the CLI (rich): progress bars and summary tables. No logic lives here."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .types import RunSummary

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """``text`` with control characters written out (``\\x1b``): a document's escape codes must not reach
    the terminal, where they could clear the screen or recolour what follows."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _esc(text: str) -> str:
    """Document text as rich markup shows it: literally, control characters written out."""
    return escape(visible(text))


console = Console(stderr=True, emoji=False)
out = Console(emoji=False)  # ":smile:" in a quote is text, not an emoji


@contextmanager
def progress(label: str, quiet: bool = False) -> Iterator[Callable[[int, int], None]]:
    """A live counter with rate; yields ``update(n_done, n_rejected)``. Silent when not a terminal or quiet."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    if quiet or not console.is_terminal:
        yield lambda done, rejected: None
        return
    t0 = time.perf_counter()
    with Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), TextColumn("{task.fields[info]}"),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task(label, info="loading models…")

        def update(done: int, rejected: int) -> None:
            rate = done / max(time.perf_counter() - t0, 1e-9)
            bar.update(task, info=f"{done} ok, {rejected} rejected, {rate:.0f} docs/s")

        yield update


@contextmanager
def step_progress(label: str, quiet: bool = False) -> Iterator[Callable[[int, int], None]]:
    """A bar with a known total; yields ``update(done, total)``. Silent when not a terminal or quiet."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    if quiet or not console.is_terminal:
        yield lambda done, total: None
        return
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def summary_table(s: RunSummary) -> None:
    table = Table(title="signals extract", show_header=False, title_justify="left")
    table.add_row("documents in", str(s.n_in))
    table.add_row("ok", f"{s.n_ok}" + (f" ({s.n_resumed} from an earlier run)" if s.n_resumed else ""))
    table.add_row("rejected", f"{s.n_rejected}" + (f" → {s.rejects}" if s.n_rejected else ""))
    if s.n_opted_out:
        table.add_row("opted out", f"{s.n_opted_out} (skipped: nothing of theirs was extracted or written)")
    table.add_row("speed", f"{s.docs_per_s:.1f} docs/s ({s.seconds:.1f}s)")
    table.add_row("output", s.output)
    if s.mode != "local":
        _llm_rows(table, s)
    out.print(table)
    for kind, counts in s.counts.items():
        if not counts:
            continue
        t = Table(title=f"{kind}", title_justify="left")
        t.add_column("label")
        t.add_column("docs", justify="right")
        for label, n in list(counts.items())[:12]:
            t.add_row(label, str(n))
        out.print(t)
    if s.reject_reasons:
        t = Table(title="reject reasons", title_justify="left")
        t.add_column("reason")
        t.add_column("rows", justify="right")
        for reason, n in s.reject_reasons.items():
            t.add_row(reason, str(n))
        out.print(t)


def _llm_rows(table: Table, s: RunSummary) -> None:
    table.add_row("mode", s.mode + (f" ({s.llm_docs} sent to the LLM, {s.routed_fraction:.0%})"
                                    if s.routed_fraction is not None else ""))
    table.add_row("model calls", f"{s.model_calls} ({s.cache_hits} answered from the cache)")
    table.add_row("tokens", f"{s.prompt_tokens} prompt + {s.completion_tokens} completion")
    g = s.grounding
    if g.get("quotes"):
        table.add_row("grounding", f"{g['rate']:.0%} of {int(g['quotes'])} quotes found in the text "
                                   f"(exact {int(g['exact'])}, folded {int(g['casefold'])}, fuzzy {int(g['fuzzy'])}; "
                                   f"{int(g['dropped'])} dropped)")
    if s.llm_failures:
        table.add_row("LLM failures", f"{s.llm_failures} (local signals kept)")
    if s.stopped:
        table.add_row("stopped", s.stopped)


DETAIL_KEYS = ("per_class", "confusion", "confused_pairs", "span_f1_by_type", "span_by_type", "rows")


def metrics_table(metrics: dict, worst: int = 10) -> None:
    """Headline figures, then per class (all of up to 15 classes, else the ``worst`` by F1), the most
    confused pairs, and spans by type. The full matrix is for ``--json`` and ``--report``."""
    t = Table(title=f"signals eval {metrics.get('task', '')}", show_header=False, title_justify="left")
    for key, value in metrics.items():
        if key not in DETAIL_KEYS and not isinstance(value, (dict, list)):
            t.add_row(key, str(value))
    out.print(t)
    per = metrics.get("per_class") or {}
    if per:
        items = sorted(per.items())
        if len(items) > 15:
            items = sorted(items, key=lambda kv: (not kv[1]["support"], kv[1]["f1"], -kv[1]["support"]))[:worst]
        title = "per class" if len(items) == len(per) else f"worst {len(items)} of {len(per)} classes by F1"
        out.print(_rows_table(title, ["label", "P", "R", "F1", "support"],
                              [[lab, *(v[k] for k in ("precision", "recall", "f1", "support"))] for lab, v in items]))
    if metrics.get("confused_pairs"):
        out.print(_rows_table("most confused (gold → predicted)", ["gold", "predicted", "rows"],
                              metrics["confused_pairs"]))
    if metrics.get("span_by_type"):
        keys = ("precision", "recall", "f1", "exact_precision", "exact_recall", "exact_f1", "support", "predicted")
        head = ["type", "P", "R", "F1", "exact P", "exact R", "exact F1", "gold", "pred"]
        out.print(_rows_table("spans by type (overlap match, exact match)", head,
                              [[lab, *(v[k] for k in keys)] for lab, v in metrics["span_by_type"].items()]))


def _rows_table(title: str, head: list[str], rows: list[list]) -> Table:
    from rich.text import Text

    t = Table(title=title, title_justify="left")
    for i, h in enumerate(head):
        t.add_column(h, justify="right" if i else "left")
    for row in rows:
        t.add_row(*(Text(str(x)) for x in row))  # Text: a label such as "[red]" is data, not markup
    return t


def _quote(result, ev, width: int = 50):
    from rich.text import Text

    source = result.text if ev.turn is None else result.turns[ev.turn].text
    lo, hi = max(0, ev.start - width), min(len(source), ev.end + width)
    flat = lambda part: visible(part.replace("\r", " ").replace("\n", " "))  # noqa: E731
    text = Text(("…" if lo else "") + flat(source[lo:ev.start]))
    text.append(flat(source[ev.start:ev.end]), style="bold yellow")
    text.append(flat(source[ev.end:hi]) + ("…" if hi < len(source) else ""))
    if ev.turn is not None:
        text = Text(f"[turn {ev.turn} {visible(str(result.turns[ev.turn].speaker))}] ", style="dim") + text
    return text


def show_result(result) -> None:
    """One document: each signal, its confidence, and each quote highlighted in its context."""
    head = (f"[bold]{_esc(result.id)}[/bold]  customer={_esc(str(result.customer_id))}  "
            f"channel={_esc(str(result.channel))}  {result.created_at or ''}")
    out.rule(head)
    for s in result.signals:
        if s.scope == "turn":
            continue
        extra = f" score={s.score:+.2f}" if s.score is not None else ""
        value = f" value={s.value}" if s.kind == "constraint" or (s.kind == "urgency" and s.value) else ""
        who = f" ({s.speaker})" if s.speaker else ""
        out.print(f"[cyan]{s.kind}[/cyan] [bold]{_esc(s.label)}[/bold]{_esc(who)} conf={s.confidence:.2f}{extra}"
                  f"{_esc(value)}")
        for ev in s.evidence[:3]:
            out.print("    ", _quote(result, ev))


def search_hits(result, query: str, *, explain: bool = False) -> None:
    """Each hit: its quote with the query's words highlighted, speaker and turn, customer, date, signals."""
    import re

    words = [w for w in re.findall(r"\w\w+", query.lower())]
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, words)) + r")\w*", re.I) if words else None
    if explain:
        out.print(f"[dim]mode {result.mode}; filter {result.filter or 'none'} → "
                  f"{'all' if result.n_matching is None else result.n_matching} matching segments; "
                  f"strategy {result.strategy}; {result.took_ms:.1f} ms[/dim]")
    if not result.hits:
        out.print("no hits" + (" (the filter matches nothing)" if result.n_matching == 0 else ""))
    for n, h in enumerate(result.hits, 1):
        quote = _esc(h.text)
        if pattern is not None:
            quote = pattern.sub(lambda m: f"[bold yellow]{m.group(0)}[/bold yellow]", quote)
        where = f"turn {h.turn}, {h.speaker}" if h.turn is not None else (h.speaker or "")
        date = h.created_at.date().isoformat() if hasattr(h.created_at, "date") else (h.created_at or "")
        sigs = ", ".join(f"{s['kind']}={s['label']}" for s in h.signals if s["kind"] != "constraint")
        out.print(f"{n:>2}. [bold]{_esc(h.doc_id)}[/bold] ({where}) customer {_esc(str(h.customer_id))} {date} "
                  f"{_esc(h.channel or '')} score {h.score:.4f}")
        out.print(f"    “{quote}”")
        if sigs:
            out.print(f"    [dim]{_esc(sigs)}[/dim]")


def customer_state(st) -> None:
    """A customer's state, each field followed by the quotes and documents behind it."""

    def day(t) -> str:
        return t.date().isoformat() if t is not None else "?"

    def quotes(evidence, indent: str = "      ") -> None:
        for e in evidence:
            where = f"turn {e.turn}, " if e.turn is not None else ""
            out.print(f"{indent}[dim]{_esc(e.doc_id)} ({where}{day(e.created_at)}, {_esc(e.channel or '')}):[/dim] "
                      f"“{_esc(e.text)}”")

    version = f", version {st.version}" if st.version is not None else ""
    out.print(f"[bold]customer {_esc(st.customer_id)}[/bold] as of {st.as_of:%Y-%m-%d %H:%M} UTC{version}")
    if st.profile:
        attrs = ", ".join(f"{k}={v}" for k, v in st.profile["attributes"].items())
        out.print(f"  profile: {_esc(attrs)} [dim](from {_esc(str(st.profile['source']))})[/dim]")
    else:
        out.print("  profile: none imported")
    chans = ", ".join(f"{c.channel} {c.count} ({', '.join(c.documents)})" for c in st.channels)
    out.print(f"  interactions: {st.interactions} — {_esc(chans)}; first {day(st.first_contact)}, "
              f"last {day(st.last_contact)}")
    for i in st.intents:
        flag = "[green]active[/green]" if i.active else "[dim]past[/dim]"
        out.print(f"  intent [bold]{_esc(i.label)}[/bold] {flag}: {i.count}× ({day(i.first_seen)} → "
                  f"{day(i.last_seen)}), confidence {i.confidence:.2f}")
        quotes(i.evidence)
    if st.sentiment:
        s = st.sentiment
        out.print(f"  sentiment now [bold]{s.label}[/bold] ({s.score:+.2f}, {day(s.at)}); trend {s.trend} "
                  f"(weighted {s.trend_score:+.2f}"
                  + (f", before the last contact {s.previous_trend_score:+.2f}" if s.previous_trend_score is not None
                     else "") + f"; half-life {s.half_life_days:g} days)")
        quotes(s.evidence)
    if st.urgency:
        u = st.urgency
        out.print(f"  urgency now [bold]{u.level}[/bold] ({u.score:.2f}, half-life {u.half_life_days:g} days); "
                  f"peak {u.peak_level} ({u.peak:.2f}) on {day(u.peak_at)} in {_esc(u.peak_doc or '')}")
        quotes(u.evidence)
    for c in st.constraints:
        out.print(f"  constraint [bold]{_esc(c.type)}[/bold] open: {_esc(str(c.value))} (last {day(c.last_seen)})")
        quotes(c.evidence)
    for c in st.closed_constraints:
        out.print(f"  [dim]constraint {_esc(c.type)} {c.status}: {_esc(str(c.value))} — {_esc(c.reason or '')}"
                  "[/dim]")


def action_list(actions) -> None:
    """Each suggested action: customer, priority, and per fired rule the conditions with their evidence."""
    if not actions:
        out.print("no actions")
    for a in actions:
        flag = f" [red](suppressed: {_esc(a.suppressed)})[/red]" if a.suppressed else ""
        out.print(f"[bold]{a.priority:>3}[/bold]  {_esc(a.customer_id)}: [bold]{_esc(a.action)}[/bold]{flag}")
        for r in a.rules:
            out.print(f"      rule {_esc(r.rule)}:")
            for c in r.conditions:
                seen = f"profile {c.profile_field}={c.value}" if c.profile_field else f"{c.value}"
                out.print(f"        ✓ {_esc(c.condition)} [dim]({_esc(seen)})[/dim]")
                for e in c.evidence[:2]:
                    out.print(f"          [dim]{_esc(e.doc_id)}:[/dim] “{_esc(e.text)}”")
