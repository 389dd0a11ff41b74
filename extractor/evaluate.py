"""Metrics on labelled data, through the same pipeline ``signals extract`` runs.

>>> accuracy_f1(["a", "b", "b"], ["a", "b", "a"])["accuracy"]
0.6667
>>> span_f1([[(0, 5, "money")]], [[(0, 4, "money"), (7, 9, "datetime")]])["span_f1"]
0.6667
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np

from .errors import ConfigError
from .types import Document

log = logging.getLogger(__name__)

TASKS = ("intent", "sentiment", "urgency", "constraints")
URGENCY_ORDER = {"low": 0, "medium": 1, "high": 2, "critical": 3, "urgent": 3}
SENTIMENT_ALIASES = {"0": "negative", "1": "positive", "neg": "negative", "pos": "positive", "-1": "negative"}
OOS = "out_of_scope"


def ece(confidences: list[float], correct: list[bool], bins: int = 15) -> float:
    """Expected calibration error over equal-width confidence bins."""
    conf, ok = np.asarray(confidences, float), np.asarray(correct, float)
    if not len(conf):
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = idx == b
        if mask.any():
            total += mask.mean() * abs(conf[mask].mean() - ok[mask].mean())
    return round(float(total), 4)


def accuracy_f1(gold: list[str], pred: list[str]) -> dict:
    from sklearn.metrics import f1_score

    acc = float(np.mean([g == p for g, p in zip(gold, pred)])) if gold else 0.0
    labels = sorted(set(gold))
    macro = float(f1_score(gold, pred, labels=labels, average="macro", zero_division=0)) if gold else 0.0
    return {"accuracy": round(acc, 4), "macro_f1": round(macro, 4)}


def oos_metrics(gold: list[str], pred: list[str]) -> dict:
    """CLINC150-style: accuracy on in-scope rows, recall and precision of ``out_of_scope``."""
    ins = [(g, p) for g, p in zip(gold, pred) if g != OOS]
    tp = sum(g == OOS and p == OOS for g, p in zip(gold, pred))
    n_gold, n_pred = sum(g == OOS for g in gold), sum(p == OOS for p in pred)
    return {"in_scope_accuracy": round(float(np.mean([g == p for g, p in ins])) if ins else 0.0, 4),
            "oos_recall": round(tp / n_gold, 4) if n_gold else 0.0,
            "oos_precision": round(tp / n_pred, 4) if n_pred else 0.0}


def span_f1(gold: list[list[tuple[int, int, str]]], pred: list[list[tuple[int, int, str]]]) -> dict:
    """Overlap-match P/R/F1 (same type, any overlap, one-to-one), plus exact-match F1 and per type."""
    def prf(tp: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
        p = tp / n_pred if n_pred else 0.0
        r = tp / n_gold if n_gold else 0.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)

    tp = exact = 0
    per: dict[str, list[int]] = {}
    for g_spans, p_spans in zip(gold, pred):
        used: set[int] = set()
        for *_, lab in g_spans:
            per.setdefault(lab, [0, 0, 0])[2] += 1
        for *_, lab in p_spans:
            per.setdefault(lab, [0, 0, 0])[1] += 1
        for gs, ge, gl in g_spans:
            for j, (ps, pe, pl) in enumerate(p_spans):
                if j not in used and pl == gl and ps < ge and gs < pe:
                    used.add(j)
                    tp += 1
                    exact += ps == gs and pe == ge
                    per[gl][0] += 1
                    break
    n_pred, n_gold = sum(map(len, pred)), sum(map(len, gold))
    p, r, f = prf(tp, n_pred, n_gold)
    by_type = {lab: round(prf(*v)[2], 4) for lab, v in sorted(per.items())}
    return {"span_precision": round(p, 4), "span_recall": round(r, 4), "span_f1": round(f, 4),
            "exact_f1": round(prf(exact, n_pred, n_gold)[2], 4), "span_f1_by_type": by_type}


def spearman(a: list[float], b: list[float]) -> float:
    from scipy.stats import spearmanr

    if len(a) < 2:
        return 0.0
    rho = spearmanr(a, b).statistic
    return round(float(rho), 4) if np.isfinite(rho) else 0.0


def load_rows(path: str | Path, task: str = "", label_field: str = "label") -> list[dict]:
    """Labelled rows, each checked: a JSON object with a string ``text`` and the task's gold field."""
    rows = []
    try:
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                row = json.loads(line)
                _check_row(row, task, label_field, f"{path}:{n}")
                row["_line"] = n
                rows.append(row)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"Cannot read eval file {path}: {exc}") from exc
    if not rows:
        raise ConfigError(f"Eval file {path} has no rows.")
    if task == "urgency" and len({"score" in r for r in rows}) > 1:
        raise ConfigError(f"{path}: give every row a 'score', or every row a '{label_field}', not a mix.")
    return rows


def _check_row(row, task: str, label_field: str, where: str) -> None:
    if not isinstance(row, dict) or not isinstance(row.get("text"), str):
        raise ConfigError(f"{where}: expected a JSON object with a string 'text'.")
    if task in ("intent", "sentiment") and label_field not in row and "labels" not in row:
        raise ConfigError(f"{where}: no '{label_field}' field (set --label-field).")
    if task == "urgency" and "score" not in row and label_field not in row:
        raise ConfigError(f"{where}: urgency rows need a 'score' or a '{label_field}'.")
    if task == "constraints":
        spans = row.get("spans")
        if not isinstance(spans, list) or any(not {"start", "end", "label"} <= set(s) for s in spans):
            raise ConfigError(f"{where}: constraint rows need 'spans': [{{start, end, label}}].")
    created = row.get("created_at")
    if created is not None:
        try:
            datetime.fromisoformat(str(created).replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"{where}: created_at {created!r} is not an ISO date or time.") from None


def _docs(rows: list[dict]) -> list[Document]:
    docs = []
    for i, r in enumerate(rows):
        created = r.get("created_at")
        when = datetime.fromisoformat(str(created).replace("Z", "+00:00")) if created else None
        docs.append(Document(id=str(r.get("id", i)), text=r["text"], created_at=when))
    return docs


def multilabel_f1(gold: list[set[str]], pred: list[set[str]]) -> dict:
    """Micro-F1 over (row, label) pairs and exact-match ratio, for multi-label intents."""
    tp = sum(len(g & p) for g, p in zip(gold, pred))
    n_pred, n_gold = sum(map(len, pred)), sum(map(len, gold))
    prec, rec = (tp / n_pred if n_pred else 0.0), (tp / n_gold if n_gold else 0.0)
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    exact = float(np.mean([g == p for g, p in zip(gold, pred)])) if gold else 0.0
    return {"micro_f1": round(f1, 4), "exact_match": round(exact, 4)}


def _predict(pipeline, rows: list[dict], on_progress: Callable[[int], None] | None) -> tuple[list, float]:
    docs, results = _docs(rows), []
    pipeline.local  # noqa: B018 - load models outside the timed loop
    t0 = time.perf_counter()
    for lo in range(0, len(docs), 256):
        results.extend(pipeline.extract_batch(docs[lo:lo + 256]))
        if on_progress:
            on_progress(len(results))
    return results, time.perf_counter() - t0


def _first(result, kind: str):
    return next((s for s in getattr(result, "signals", []) if s.kind == kind), None)


def evaluate(task: str, test: str | Path, pipeline, label_field: str = "label",
             on_progress: Callable[[int], None] | None = None) -> dict:
    """Run ``task`` on the test file and return the metrics dict that ``signals eval --json`` prints."""
    if task not in TASKS:
        raise ConfigError(f"Unknown task {task!r}; choose one of {', '.join(TASKS)}.")
    rows = load_rows(test, task, label_field)
    results, seconds = _predict(pipeline, rows, on_progress)
    failed = [r["_line"] for r, res in zip(rows, results) if not hasattr(res, "signals")]
    if failed:
        log.warning("%d eval rows could not be processed (lines %s); they count as wrong", len(failed), failed[:10])
    out: dict = {"task": task, "n": len(rows), "docs_per_s": round(len(rows) / seconds, 2) if seconds else 0.0}
    if task == "intent" and any("labels" in r for r in rows):
        gold_sets = [set(r.get("labels") or [r.get(label_field)]) for r in rows]
        pred_sets = [{s.label for s in getattr(res, "signals", []) if s.kind == "intent"} - {OOS}
                     for res in results]
        out |= multilabel_f1(gold_sets, pred_sets)
    elif task in ("intent", "sentiment"):
        sig = [_first(r, task) for r in results]
        pred = [s.label if s else "" for s in sig]
        gold = [str(r.get(label_field, "")) for r in rows]
        if task == "sentiment":
            gold = [SENTIMENT_ALIASES.get(g.lower(), g.lower()) for g in gold]
        out |= accuracy_f1(gold, pred)
        out["ece"] = ece([s.confidence if s else 0.0 for s in sig], [g == p for g, p in zip(gold, pred)])
        if task == "intent" and OOS in gold:
            out |= oos_metrics(gold, pred)
    elif task == "urgency":
        sig = [_first(r, "urgency") for r in results]
        scores = [s.score if s else 0.0 for s in sig]
        if "score" in rows[0]:  # load_rows made sure every row has the same kind of gold
            gold_scores = [float(r["score"]) for r in rows]
        else:
            gold_scores = [URGENCY_ORDER.get(str(r.get(label_field, "")).lower(), np.nan) for r in rows]
        keep = [i for i, g in enumerate(gold_scores) if np.isfinite(g)]
        out["spearman"] = spearman([gold_scores[i] for i in keep], [scores[i] for i in keep])
        if "score" not in rows[0]:
            out |= accuracy_f1([str(rows[i].get(label_field)).lower() for i in keep], [sig[i].label for i in keep])
    else:
        gold = [[(s["start"], s["end"], s["label"]) for s in r.get("spans", [])] for r in rows]
        types = {lab for spans in gold for _, _, lab in spans}  # types the gold set does not annotate are ignored
        pred = [[(e.start, e.end, s.label) for s in getattr(res, "signals", []) if s.kind == "constraint"
                 and s.label in types for e in s.evidence] for res in results]
        out |= span_f1(gold, pred)
    return out


def document_gold_scores(results: list, gold: list[dict]) -> dict:
    """Scores against document-level gold rows (the ``sample_data/gold.jsonl`` format).

    Each gold row has ``intent``, ``sentiment`` (the customer's), ``urgency`` and turn-aware
    ``constraints: [{turn, start, end, label}]``; ``results`` are the matching ExtractionResults.
    """
    def first(res, kind):
        sig = _first(res, kind)
        return sig.label if sig else ""

    n = len(gold) or 1
    out = {f"{k}_accuracy": round(sum(first(r, k) == g[k] for g, r in zip(gold, results)) / n, 4)
           for k in ("intent", "sentiment", "urgency")}
    out["urgency_within_one_level"] = round(sum(
        abs(URGENCY_ORDER.get(first(r, "urgency"), 9) - URGENCY_ORDER[g["urgency"]]) <= 1
        for g, r in zip(gold, results)) / n, 4)
    # span_f1 matches (start, end, label): fold the turn into the offsets so turns never cross-match
    def fold(turn, start, end, label):
        base = (turn + 1) * 10_000_000 if turn is not None else 0
        return base + start, base + end, label

    gold_spans = [[fold(c["turn"], c["start"], c["end"], c["label"]) for c in g["constraints"]] for g in gold]
    types = {s[2] for spans in gold_spans for s in spans}
    pred = [[fold(e.turn, e.start, e.end, s.label) for s in getattr(r, "signals", [])
             if s.kind == "constraint" and s.label in types for e in s.evidence] for r in results]
    scores = span_f1(gold_spans, pred)
    out |= {"span_f1": scores["span_f1"], "exact_f1": scores["exact_f1"]}
    return out
