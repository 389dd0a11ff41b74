"""Metrics on labelled data, through the same pipeline ``signals extract`` runs.

>>> accuracy_f1(["a", "b", "b"], ["a", "b", "a"])["accuracy"]
0.6667
>>> span_f1([[(0, 5, "money")]], [[(0, 4, "money"), (7, 9, "datetime")]])["span_f1"]
0.6667
>>> urgent_f1(["low", "high", "critical"], ["high", "high", "medium"])["urgent_f1"]
0.5
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np

from .errors import ConfigError
from .types import Document

log = logging.getLogger(__name__)

TASKS = ("intent", "intents", "sentiment", "urgency", "constraints")
URGENCY_ORDER = {"low": 0, "medium": 1, "high": 2, "critical": 3, "urgent": 3}
SENTIMENT_ALIASES = {"0": "negative", "1": "positive", "neg": "negative", "pos": "positive", "-1": "negative"}
OOS = "out_of_scope"
NO_PRED = "(none)"  # the predicted label of a row the pipeline could not process (it counts as wrong)


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


def _r(x) -> float:
    return round(float(x), 4)


def classification_metrics(gold: list[str], pred: list[str], confidences: list[float] | None = None) -> dict:
    """Accuracy, macro and micro P/R/F1, per-class P/R/F1/support, confusion matrix, ECE (given confidences).

    Macro averages run over the gold labels (as ``macro_f1`` always has); the per-class table and
    the matrix (rows gold, columns predicted, both in ``confusion["labels"]`` order) cover every
    label either side uses. Single-label micro P/R/F1 all equal accuracy.

    >>> m = classification_metrics(["a", "a", "b"], ["a", "b", "b"])
    >>> m["per_class"]["a"]
    {'precision': 1.0, 'recall': 0.5, 'f1': 0.6667, 'support': 2}
    >>> m["confusion"], m["confused_pairs"]
    ({'labels': ['a', 'b'], 'matrix': [[1, 1], [0, 1]]}, [['a', 'b', 1]])
    """
    from sklearn.metrics import confusion_matrix
    from sklearn.metrics import precision_recall_fscore_support as prfs

    out = accuracy_f1(gold, pred)
    if not gold:
        return out
    labels = sorted(set(gold) | set(pred))
    for avg, subset in (("macro", sorted(set(gold))), ("micro", labels)):
        p, r, f, _ = prfs(gold, pred, labels=subset, average=avg, zero_division=0)
        out |= {f"{avg}_precision": _r(p), f"{avg}_recall": _r(r)} | ({"micro_f1": _r(f)} if avg == "micro" else {})
    if confidences is not None:
        out["ece"] = ece(confidences, [g == p for g, p in zip(gold, pred)])
    p, r, f, s = prfs(gold, pred, labels=labels, average=None, zero_division=0)
    out["per_class"] = {lab: {"precision": _r(p[i]), "recall": _r(r[i]), "f1": _r(f[i]), "support": int(s[i])}
                        for i, lab in enumerate(labels)}
    matrix = confusion_matrix(gold, pred, labels=labels).tolist()
    out["confusion"] = {"labels": labels, "matrix": matrix}
    out["confused_pairs"] = confused_pairs(labels, matrix)
    return out


def confused_pairs(labels: list[str], matrix: list[list[int]], top: int = 10) -> list[list]:
    """The ``top`` most frequent off-diagonal cells as ``[gold, predicted, count]``, most frequent first."""
    cells = [(-n, labels[i], labels[j]) for i, row in enumerate(matrix) for j, n in enumerate(row) if i != j and n]
    return [[g, p, -n] for n, g, p in sorted(cells)[:top]]


def oos_metrics(gold: list[str], pred: list[str]) -> dict:
    """CLINC150-style: accuracy on in-scope rows, recall and precision of ``out_of_scope``."""
    ins = [(g, p) for g, p in zip(gold, pred) if g != OOS]
    tp = sum(g == OOS and p == OOS for g, p in zip(gold, pred))
    n_gold, n_pred = sum(g == OOS for g in gold), sum(p == OOS for p in pred)
    return {"in_scope_accuracy": round(float(np.mean([g == p for g, p in ins])) if ins else 0.0, 4),
            "oos_recall": round(tp / n_gold, 4) if n_gold else 0.0,
            "oos_precision": round(tp / n_pred, 4) if n_pred else 0.0}


def urgent_f1(gold: list[str], pred: list[str], cut: str = "high") -> dict:
    """P/R/F1 of "urgent" = a level at or above ``cut`` (low < medium < high < critical), gold and predicted.

    A predicted label that is no level (a failed row) counts as not urgent.
    """
    from sklearn.metrics import precision_recall_fscore_support as prfs

    level = urgency_level(cut)
    g = [URGENCY_ORDER.get(str(x).lower(), -1) >= level for x in gold]
    p = [URGENCY_ORDER.get(str(x).lower(), -1) >= level for x in pred]
    prec, rec, f1, _ = prfs(g, p, average="binary", pos_label=True, zero_division=0) if g else (0, 0, 0, 0)
    return {"urgent_cut": cut.lower(), "urgent_precision": _r(prec), "urgent_recall": _r(rec), "urgent_f1": _r(f1),
            "urgent_support": sum(g), "urgent_predicted": sum(p)}


def urgency_level(cut: str) -> int:
    """The ordinal of an urgency level name; a clear error for anything else."""
    if str(cut).lower() not in URGENCY_ORDER:
        raise ConfigError(f"Unknown urgency level {cut!r} for --urgent-cut; choose low, medium, high or critical.")
    return URGENCY_ORDER[str(cut).lower()]


def _prf(tp: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def match_spans(gold: list[tuple[int, int, str]], pred: list[tuple[int, int, str]]) -> list[tuple[int, int]]:
    """One-to-one overlap matches (same type, any overlap), greedy in gold order, as (gold index, pred index)."""
    used: set[int] = set()
    pairs = []
    for i, (gs, ge, gl) in enumerate(gold):
        for j, (ps, pe, pl) in enumerate(pred):
            if j not in used and pl == gl and ps < ge and gs < pe:
                used.add(j)
                pairs.append((i, j))
                break
    return pairs


def span_f1(gold: list[list[tuple[int, int, str]]], pred: list[list[tuple[int, int, str]]]) -> dict:
    """Overlap-match P/R/F1 (same type, any overlap, one-to-one), exact-match P/R/F1, and both per type.

    ``span_by_type[type]`` holds ``precision``, ``recall``, ``f1`` (overlap), ``exact_precision``,
    ``exact_recall``, ``exact_f1``, ``support`` (gold spans) and ``predicted``.
    """
    per: dict[str, Counter] = {}
    for g_spans, p_spans in zip(gold, pred):
        for *_, lab in g_spans:
            per.setdefault(lab, Counter())["gold"] += 1
        for *_, lab in p_spans:
            per.setdefault(lab, Counter())["pred"] += 1
        for i, _ in match_spans(g_spans, p_spans):
            per[g_spans[i][2]]["tp"] += 1
        for (*_, lab), n in (Counter(map(tuple, g_spans)) & Counter(map(tuple, p_spans))).items():
            per[lab]["exact"] += n
    total = sum(per.values(), Counter())
    p, r, f = _prf(total["tp"], total["pred"], total["gold"])
    ep, er, ef = _prf(total["exact"], total["pred"], total["gold"])
    by_type = {}
    for lab, c in sorted(per.items()):
        tp, tr, tf = _prf(c["tp"], c["pred"], c["gold"])
        xp, xr, xf = _prf(c["exact"], c["pred"], c["gold"])
        by_type[lab] = {"precision": _r(tp), "recall": _r(tr), "f1": _r(tf), "exact_precision": _r(xp),
                        "exact_recall": _r(xr), "exact_f1": _r(xf), "support": c["gold"], "predicted": c["pred"]}
    return {"span_precision": _r(p), "span_recall": _r(r), "span_f1": _r(f),
            "exact_precision": _r(ep), "exact_recall": _r(er), "exact_f1": _r(ef),
            "span_f1_by_type": {lab: v["f1"] for lab, v in by_type.items()}, "span_by_type": by_type}


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
    if task in ("intent", "intents", "sentiment") and label_field not in row and "labels" not in row:
        raise ConfigError(f"{where}: no '{label_field}' field (set --label-field).")
    if "labels" in row and task in ("intent", "intents") and not isinstance(row["labels"], list):
        raise ConfigError(f"{where}: 'labels' must be a list of intent labels (it may be empty).")
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
    """Multi-label intents: micro P/R/F1 over (row, label) pairs, macro-F1 over the gold labels, per-label
    P/R/F1/support, exact-match ratio, and the mean number of labels per row on each side.

    >>> m = multilabel_f1([{"a", "b"}, {"a"}, set()], [{"a"}, {"a", "c"}, set()])
    >>> m["micro_f1"], m["macro_f1"], m["exact_match"], m["per_class"]["b"]["recall"]
    (0.6667, 0.5, 0.3333, 0.0)
    """
    from sklearn.metrics import precision_recall_fscore_support as prfs
    from sklearn.preprocessing import MultiLabelBinarizer

    labels = sorted(set().union(*gold, *pred))
    out = {"micro_precision": 0.0, "micro_recall": 0.0, "micro_f1": 0.0, "macro_f1": 0.0,
           "exact_match": _r(np.mean([g == p for g, p in zip(gold, pred)])) if gold else 0.0,
           "gold_labels_per_row": _r(np.mean([len(g) for g in gold])) if gold else 0.0,
           "pred_labels_per_row": _r(np.mean([len(p) for p in pred])) if pred else 0.0, "per_class": {}}
    if not labels:
        return out
    mlb = MultiLabelBinarizer(classes=labels)
    y, yhat = mlb.fit_transform(gold), mlb.transform(pred)
    mp, mr, mf, _ = prfs(y, yhat, average="micro", zero_division=0)
    p, r, f, s = prfs(y, yhat, average=None, zero_division=0)
    in_gold = [i for i, n in enumerate(s) if n]
    out |= {"micro_precision": _r(mp), "micro_recall": _r(mr), "micro_f1": _r(mf),
            "macro_f1": _r(np.mean(f[in_gold])) if in_gold else 0.0,
            "per_class": {lab: {"precision": _r(p[i]), "recall": _r(r[i]), "f1": _r(f[i]), "support": int(s[i])}
                          for i, lab in enumerate(labels)}}
    return out


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
             on_progress: Callable[[int], None] | None = None, *, urgent_cut: str = "high",
             keep_rows: bool = False) -> dict:
    """Run ``task`` on the test file and return the metrics dict that ``signals eval --json`` prints.

    ``intents`` (or ``intent`` on rows with ``labels: [...]``) scores multi-label intents: the
    prediction is the set of in-scope intent signals of the document. ``urgent_cut`` is the level
    from which urgency counts as urgent for ``urgent_f1``. With ``keep_rows`` the dict also holds
    ``rows``: one ``{line, id, text, gold, pred, confidence, correct}`` per test row, in file order
    (constraint rows add ``missed`` and ``spurious`` spans) — what ``signals eval --report`` shows.
    """
    if task not in TASKS:
        raise ConfigError(f"Unknown task {task!r}; choose one of {', '.join(TASKS)}.")
    urgency_level(urgent_cut)  # a bad cut fails before any model loads
    rows = load_rows(test, task, label_field)
    results, seconds = _predict(pipeline, rows, on_progress)
    failed = [r["_line"] for r, res in zip(rows, results) if not hasattr(res, "signals")]
    if failed:
        log.warning("%d eval rows could not be processed (lines %s); they count as wrong", len(failed), failed[:10])
    out: dict = {"task": task, "n": len(rows), "docs_per_s": round(len(rows) / seconds, 2) if seconds else 0.0}
    if task == "intents" or (task == "intent" and any("labels" in r for r in rows)):
        metrics, per_row = _multi_label(rows, results, label_field)
    elif task in ("intent", "sentiment"):
        metrics, per_row = _single_label(task, rows, results, label_field)
    elif task == "urgency":
        metrics, per_row = _urgency(rows, results, label_field, urgent_cut)
    else:
        metrics, per_row = _constraints(rows, results)
    out |= metrics
    if keep_rows:
        out["rows"] = per_row
    return out


def _row(r: dict, gold, pred, confidence: float | None, correct: bool | None) -> dict:
    conf = None if confidence is None else round(float(confidence), 4)
    return {"line": r["_line"], "id": r.get("id"), "text": r["text"], "gold": gold, "pred": pred,
            "confidence": conf, "correct": correct}


def _single_label(task: str, rows: list[dict], results: list, label_field: str) -> tuple[dict, list[dict]]:
    sig = [_first(r, task) for r in results]
    pred = [s.label if s else NO_PRED for s in sig]
    conf = [s.confidence if s else 0.0 for s in sig]
    gold = [str(r.get(label_field, "")) for r in rows]
    if task == "sentiment":
        gold = [SENTIMENT_ALIASES.get(g.lower(), g.lower()) for g in gold]
    out = classification_metrics(gold, pred, conf)
    if task == "intent" and OOS in gold:
        out |= oos_metrics(gold, pred)
    return out, [_row(r, g, p, c, g == p) for r, g, p, c in zip(rows, gold, pred, conf)]


def _gold_set(row: dict, label_field: str) -> set[str]:
    labels = row["labels"] if "labels" in row else [row.get(label_field)]
    return {str(x) for x in labels if x not in (None, "")} - {OOS}


def _multi_label(rows: list[dict], results: list, label_field: str) -> tuple[dict, list[dict]]:
    gold = [_gold_set(r, label_field) for r in rows]
    intents = [[s for s in getattr(res, "signals", []) if s.kind == "intent"] for res in results]
    pred = [{s.label for s in sigs} - {OOS} for sigs in intents]
    conf = [max((s.confidence for s in sigs), default=0.0) for sigs in intents]
    emitted = [(s.confidence, s.label in g) for sigs, g in zip(intents, gold) for s in sigs if s.label != OOS]
    out = {"multi_label": True} | multilabel_f1(gold, pred)
    out["ece"] = ece([c for c, _ in emitted], [ok for _, ok in emitted])  # of each emitted label: right or not
    return out, [_row(r, sorted(g), sorted(p), c, g == p) for r, g, p, c in zip(rows, gold, pred, conf)]


def _urgency(rows: list[dict], results: list, label_field: str, cut: str) -> tuple[dict, list[dict]]:
    sig = [_first(r, "urgency") for r in results]
    scores = [s.score if s and s.score is not None else 0.0 for s in sig]
    pred = [s.label if s else NO_PRED for s in sig]
    conf = [s.confidence if s else 0.0 for s in sig]
    if "score" in rows[0]:  # load_rows made sure every row has the same kind of gold
        gold = [float(r["score"]) for r in rows]
        out = {"spearman": spearman(gold, scores)}
        return out, [_row(r, g, p, c, None) for r, g, p, c in zip(rows, gold, pred, conf)]
    gold = [str(r.get(label_field, "")).lower() for r in rows]
    keep = [i for i, g in enumerate(gold) if g in URGENCY_ORDER]  # unknown levels cannot be ranked
    out = {"spearman": spearman([URGENCY_ORDER[gold[i]] for i in keep], [scores[i] for i in keep])}
    out |= classification_metrics([gold[i] for i in keep], [pred[i] for i in keep], [conf[i] for i in keep])
    out |= urgent_f1([gold[i] for i in keep], [pred[i] for i in keep], cut)
    return out, [_row(rows[i], gold[i], pred[i], conf[i], gold[i] == pred[i]) for i in keep]


def _constraints(rows: list[dict], results: list) -> tuple[dict, list[dict]]:
    gold = [[(s["start"], s["end"], s["label"]) for s in r.get("spans", [])] for r in rows]
    types = {lab for spans in gold for _, _, lab in spans}  # types the gold set does not annotate are ignored
    found = [[(e, s) for s in getattr(res, "signals", []) if s.kind == "constraint" and s.label in types
              for e in s.evidence] for res in results]
    pred = [[(e.start, e.end, s.label) for e, s in f] for f in found]
    per_row = []
    for r, g, p, f in zip(rows, gold, pred, found):
        pairs = match_spans(g, p)
        g_sp = [{"start": a, "end": b, "label": lab, "text": r["text"][a:b]} for a, b, lab in g]
        p_sp = [{"start": e.start, "end": e.end, "label": s.label, "text": e.text, "confidence": s.confidence}
                for e, s in f]
        missed = [x for i, x in enumerate(g_sp) if i not in {a for a, _ in pairs}]
        spurious = [x for j, x in enumerate(p_sp) if j not in {b for _, b in pairs}]
        row = _row(r, g_sp, p_sp, max((x["confidence"] for x in spurious), default=None), not missed and not spurious)
        per_row.append(row | {"missed": missed, "spurious": spurious})
    return span_f1(gold, pred), per_row


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
