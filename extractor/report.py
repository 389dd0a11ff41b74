"""One self-contained HTML page for a ``signals eval`` run (``signals eval ... --report report.html``).

Headline figures, the per-class (or per-type) table, the confusion matrix as a heat-map with the
most confused pairs, and the worst errors with their text. No scripts, no external resources, so
the file opens offline; every piece of text (customer data, labels, file names) is HTML-escaped.

>>> row = {"line": 1, "text": "<script>x</script>", "gold": "a", "pred": "b", "confidence": 0.9, "correct": False}
>>> page = render_report({"task": "intent", "n": 1, "accuracy": 0.0}, [row])
>>> "&lt;script&gt;x&lt;/script&gt;" in page, "<script" in page
(True, False)
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

HEADLINE = ("accuracy", "macro_f1", "micro_f1", "in_scope_accuracy", "oos_recall", "oos_precision", "exact_match",
            "ece", "spearman", "urgent_f1", "urgent_precision", "urgent_recall", "span_f1", "span_precision",
            "span_recall", "exact_f1", "n", "docs_per_s")
TOP_PAIRS = 20
MAX_TEXT = 1000  # characters of a classification row's text shown in the error table

CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1d2330;max-width:1400px}
h1{font-size:1.5rem;margin:0 0 .2rem}h2{font-size:1.15rem;margin:2rem 0 .6rem;border-bottom:1px solid #dde}
.sub{color:#667;margin-bottom:1rem}.cards{display:flex;flex-wrap:wrap;gap:.6rem}
.card{border:1px solid #dde;border-radius:6px;padding:.5rem .8rem;min-width:7.5rem}
.card b{display:block;font-size:1.3rem}.card span{color:#667;font-size:.8rem}
table{border-collapse:collapse}td,th{padding:.2rem .5rem;text-align:left;vertical-align:top}
table.grid td,table.grid th{border-bottom:1px solid #eef}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.bar{display:inline-block;height:.6rem;background:#5b8def;vertical-align:middle}
.scroll{overflow:auto;max-height:90vh;border:1px solid #eef}
table.cm{font-size:9px;line-height:1}table.cm td{width:15px;height:15px;padding:0;text-align:center;
border:1px solid #f4f4f8}table.cm th{font-weight:normal;padding:0 3px;white-space:nowrap}
table.cm thead th{position:sticky;top:0;background:#fff}table.cm tbody th{position:sticky;left:0;background:#fff;
text-align:right}.text{white-space:pre-wrap;max-width:60rem}.miss{background:#ffd6d6}.fp{background:#ffe9b3}
.ok{background:#d4f5dc}mark{padding:0 1px;border-radius:2px}.lab{font-family:ui-monospace,monospace;font-size:.85rem}
.muted{color:#889}
"""


def e(value) -> str:
    """HTML-escape anything (quotes too, so it is also safe inside attributes)."""
    return html.escape(str(value), quote=True)


def render_report(metrics: dict, rows: list[dict] | None = None, *, source: str | None = None,
                  top: int = 50) -> str:
    """The whole page as a string: ``metrics`` from ``evaluate()``, ``rows`` from ``evaluate(keep_rows=True)``."""
    task = metrics.get("task", "")
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [f"<h1>signals eval {e(task)}</h1>",
             f'<div class="sub">{e(source) + " · " if source else ""}n={e(metrics.get("n", ""))} · {e(when)}</div>',
             _headline(metrics)]
    if metrics.get("span_by_type"):
        parts.append(_by_type(metrics["span_by_type"]))
    if metrics.get("per_class"):
        parts.append(_per_class(metrics["per_class"], multi=bool(metrics.get("multi_label"))))
    if metrics.get("confusion"):
        parts += [_confusion(metrics["confusion"]), _pairs(metrics["confusion"])]
    if rows is not None:
        parts.append(_errors(rows, task, top))
    body = "\n".join(parts)
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>signals eval {e(task)}</title><style>{CSS}</style></head>\n<body>\n{body}\n</body></html>\n")


def write_report(path: str | Path, metrics: dict, rows: list[dict] | None = None, **kwargs) -> Path:
    """Write :func:`render_report` to ``path`` (UTF-8) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(metrics, rows, **kwargs), encoding="utf-8")
    return path


def _fmt(value) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


def _headline(metrics: dict) -> str:
    shown = [k for k in HEADLINE if k in metrics]
    rest = [k for k, v in metrics.items() if k not in shown and isinstance(v, (int, float, str)) and k != "task"]
    cards = "".join(f'<div class="card"><b>{e(_fmt(metrics[k]))}</b><span>{e(k)}</span></div>' for k in shown)
    more = "".join(f"<tr><th>{e(k)}</th><td class=num>{e(_fmt(metrics[k]))}</td></tr>" for k in rest)
    extra = f'<table class="grid">{more}</table>' if more else ""
    return f'<h2>Headline</h2><div class="cards">{cards}</div>{extra}'


def _table(head: Iterable[str], body: Iterable[str]) -> str:
    ths = "".join(f'<th class="num">{e(h)}</th>' if i else f"<th>{e(h)}</th>" for i, h in enumerate(head))
    return f'<table class="grid"><thead><tr>{ths}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _bar(x: float) -> str:
    return f'<span class="bar" style="width:{max(0.0, min(1.0, float(x))) * 60:.1f}px"></span>'


def _per_class(per_class: dict, multi: bool) -> str:
    order = sorted(per_class.items(), key=lambda kv: (not kv[1]["support"], kv[1]["f1"], -kv[1]["support"], kv[0]))
    body = [f'<tr><td class="lab">{e(lab)}</td><td class=num>{v["precision"]:.3f}</td>'
            f'<td class=num>{v["recall"]:.3f}</td><td class=num>{v["f1"]:.3f} {_bar(v["f1"])}</td>'
            f'<td class=num>{v["support"]}</td></tr>' for lab, v in order]
    what = "label" if multi else "class"
    return (f"<h2>Per {what} ({len(order)}), worst F1 first; labels only ever predicted last</h2>"
            + _table([what, "precision", "recall", "F1", "support"], body))


def _by_type(by_type: dict) -> str:
    keys = ("precision", "recall", "f1", "exact_precision", "exact_recall", "exact_f1")
    body = [f'<tr><td class="lab">{e(lab)}</td>' + "".join(f"<td class=num>{v[k]:.3f}</td>" for k in keys)
            + f'<td class=num>{v["support"]}</td><td class=num>{v["predicted"]}</td></tr>'
            for lab, v in sorted(by_type.items())]
    head = ["type", "P (overlap)", "R (overlap)", "F1 (overlap)", "P (exact)", "R (exact)", "F1 (exact)",
            "gold spans", "predicted"]
    return "<h2>Spans by type</h2>" + _table(head, body)


def _cell(n: int, row_total: int, diagonal: bool, title: str) -> str:
    if not n:
        return "<td></td>"
    share = n / row_total if row_total else 0.0
    hue, light = (140, 95 - 55 * share) if diagonal else (5, 95 - 50 * share)
    ink = "#fff" if light < 60 else "#222"
    return f'<td style="background:hsl({hue},65%,{light:.0f}%);color:{ink}" title="{e(title)}">{n}</td>'


def _confusion(confusion: dict) -> str:
    """Rows are gold, columns predicted; numbered columns keep 77+ labels readable, hover shows the pair."""
    labels, matrix = confusion["labels"], confusion["matrix"]
    head = "".join(f'<th title="{e(lab)}">{i + 1}</th>' for i, lab in enumerate(labels))
    body = []
    for i, (gold, row) in enumerate(zip(labels, matrix)):
        total = sum(row)
        cells = "".join(_cell(n, total, i == j, f"gold {gold} → predicted {labels[j]}: {n} of {total}")
                        for j, n in enumerate(row))
        body.append(f'<tr><th class="lab">{e(gold)} {i + 1}</th>{cells}</tr>')
    return ("<h2>Confusion matrix</h2><p class=muted>Rows: gold label; columns: predicted label, numbered as the "
            "rows. Colour: share of the gold row (green on the diagonal, red off it); hover a cell for the pair."
            f'</p><div class="scroll"><table class="cm"><thead><tr><th></th>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def _pairs(confusion: dict) -> str:
    labels, matrix = confusion["labels"], confusion["matrix"]
    cells = sorted(((-n, i, j) for i, row in enumerate(matrix) for j, n in enumerate(row) if i != j and n))
    items = [f'<li><span class="lab">{e(labels[i])}</span> → <span class="lab">{e(labels[j])}</span>: {-n} '
             f'<span class=muted>({-n / max(sum(matrix[i]), 1):.0%} of that gold label)</span></li>'
             for n, i, j in cells[:TOP_PAIRS]]
    return "<h2>Most confused pairs (gold → predicted)</h2>" + (f"<ol>{''.join(items)}</ol>" if items else
                                                                  "<p>None: every row is on the diagonal.</p>")


def _errors(rows: list[dict], task: str, top: int) -> str:
    wrong = [r for r in rows if r.get("correct") is False]
    wrong.sort(key=lambda r: (-(r["confidence"] if r.get("confidence") is not None else -1.0), r["line"]))
    title = f"<h2>Worst errors: {min(top, len(wrong))} of {len(wrong)} wrong rows, most confident first</h2>"
    if not wrong:
        return title + "<p>No wrong rows.</p>"
    if task == "constraints":
        head = ["line", "confidence", "missed (gold)", "spurious (predicted)", "text"]
        body = [_span_row(r) for r in wrong[:top]]
    else:
        head = ["line", "confidence", "gold", "predicted", "text"]
        body = [f'<tr><td class=num>{r["line"]}</td><td class=num>{_conf(r)}</td>'
                f'<td class="lab">{_labels(r["gold"], r["pred"], "miss")}</td>'
                f'<td class="lab">{_labels(r["pred"], r["gold"], "fp")}</td>'
                f'<td class="text">{_clip(r["text"])}</td></tr>' for r in wrong[:top]]
    return title + _table(head, body)


def _conf(row: dict) -> str:
    return "" if row.get("confidence") is None else f"{row['confidence']:.3f}"


def _clip(text: str) -> str:
    return e(text[:MAX_TEXT]) + ("…" if len(text) > MAX_TEXT else "")


def _labels(mine, other, cls: str) -> str:
    """One label, or a list (multi-label) with the labels the other side lacks marked."""
    if not isinstance(mine, list):
        return e(mine)
    if not mine:
        return '<span class="muted">(none)</span>'
    return ", ".join(e(x) if x in other else f'<mark class="{cls}">{e(x)}</mark>' for x in mine)


def _span_list(spans: list[dict]) -> str:
    return "<br>".join(f'{e(s["label"])}: “{e(s["text"])}”' for s in spans) or '<span class="muted">–</span>'


def _span_row(row: dict) -> str:
    marks = [(s["start"], s["end"], "miss", f"missed {s['label']}") for s in row["missed"]]
    marks += [(s["start"], s["end"], "fp", f"spurious {s['label']}") for s in row["spurious"]]
    missed = {(s["start"], s["end"], s["label"]) for s in row["missed"]}
    marks += [(s["start"], s["end"], "ok", f"found {s['label']}") for s in row["gold"]
              if (s["start"], s["end"], s["label"]) not in missed]
    return (f'<tr><td class=num>{row["line"]}</td><td class=num>{_conf(row)}</td>'
            f'<td class="lab">{_span_list(row["missed"])}</td><td class="lab">{_span_list(row["spurious"])}</td>'
            f'<td class="text">{highlight(row["text"], marks)}</td></tr>')


def highlight(text: str, marks: list[tuple[int, int, str, str]]) -> str:
    """Escaped ``text`` with ``(start, end, css_class, title)`` spans wrapped in ``<mark>``; overlaps keep the first.

    >>> highlight("a <b> c", [(2, 5, "ok", "found")])
    'a <mark class="ok" title="found">&lt;b&gt;</mark> c'
    """
    out, pos = [], 0
    for start, end, cls, title in sorted(marks, key=lambda m: (m[0], -m[1])):
        if start < pos or start >= end:
            continue
        out += [e(text[pos:start]), f'<mark class="{e(cls)}" title="{e(title)}">{e(text[start:end])}</mark>']
        pos = end
    return "".join(out) + e(text[pos:])
