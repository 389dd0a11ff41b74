"""``signals train intents``: multi-label intents (a message may carry several: "how long does a new
PIN take" is ``how_long`` + ``new`` + ``pin``).

Two methods, as for single-label intents: by default the encoder is fine-tuned end to end with a
cosine head and one bias per label under binary cross-entropy (``finetune.py``); ``--fast`` fits one
logistic regression per label on frozen sentence embeddings. Everything a user would otherwise
tune by hand is chosen on a 20% validation split of the training rows, never on test data: one
Platt scaling of all labels' logits (so a 0.8 means about 80% of such labels are right), the
probability above which a label is emitted (best micro-F1 on the validation rows) and, for
``--fast``, the regularisation (C, and whether rare labels are re-weighted). Then the model is
trained again on every row with those settings. A message with no label above the threshold is
``out_of_scope``.

>>> from extractor.train import train
>>> manifest = train("intents", "nlupp.jsonl", "models/nlupp", shots=10, method="fast")  # doctest: +SKIP
>>> manifest["metrics"]["micro_f1"]                                                     # doctest: +SKIP
0.74
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np

from .errors import ConfigError

GRID = ((10.0, None), (100.0, None), (10.0, "balanced"), (100.0, "balanced"))  # (C, class_weight)
THRESHOLDS = np.round(np.arange(0.2, 0.81, 0.05), 2)
SATURATED = 10.0  # the logit given to a label that every (or no) training row carries


def read_rows(path: Path, label_field: str = "label") -> list[tuple[str, list[str]]]:
    """``(text, labels)`` from JSONL rows ``{"text": ..., "labels": [...]}`` (or a single ``label_field``)."""
    out = []
    try:
        for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            row = json.loads(line)
            labels = row.get("labels") if isinstance(row, dict) else None
            if isinstance(row, dict) and labels is None and label_field in row:
                labels = [row[label_field]]
            if not isinstance(row, dict) or not isinstance(row.get("text"), str) or not isinstance(labels, list):
                raise ConfigError(f"{path}:{n}: expected {{\"text\": ..., \"labels\": [...]}}")
            out.append((row["text"], sorted({str(x) for x in labels})))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"Cannot read training file {path}: {exc}") from exc
    if len({lab for _, labels in out for lab in labels}) < 2:
        raise ConfigError(f"{path} needs at least two labels to train a classifier.")
    return out


def sample_shots(rows: list, k: int, seed: int = 0, labels_of=lambda r: r[1]) -> list:
    """Up to ``k`` rows carrying each label (labels in sorted order; a row drawn for one label also
    counts for its others), in their original order."""
    rng = random.Random(seed)
    chosen: dict[int, object] = {}
    for label in sorted({lab for r in rows for lab in labels_of(r)}):
        have = sum(label in labels_of(r) for r in chosen.values())
        pool = [i for i, r in enumerate(rows) if label in labels_of(r) and i not in chosen]
        for i in rng.sample(pool, min(len(pool), max(0, k - have))):
            chosen[i] = rows[i]
    return [chosen[i] for i in sorted(chosen)]


def _split(y: np.ndarray, seed: int, frac: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random split that leaves every label at least one training row."""
    order = np.random.default_rng(seed).permutation(len(y))
    val = set(order[: int(len(y) * frac)].tolist())
    for j in range(y.shape[1]):
        rows = np.flatnonzero(y[:, j])
        if len(rows) and all(int(i) in val for i in rows):
            val.discard(int(rows[0]))
    fit = np.array([i for i in range(len(y)) if i not in val], dtype=int)
    return fit, np.array(sorted(val), dtype=int)


def _fit(x: np.ndarray, y: np.ndarray, c: float, weight: str | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One-vs-rest logistic regression: ``(coef (labels, dim), intercept (labels,))``."""
    from sklearn.linear_model import LogisticRegression

    coef, intercept = np.zeros((y.shape[1], x.shape[1])), np.full(y.shape[1], -SATURATED)
    for j in range(y.shape[1]):
        pos = int(y[:, j].sum())
        if pos == len(y):
            intercept[j] = SATURATED
        elif pos:
            m = LogisticRegression(C=c, class_weight=weight, max_iter=2000, random_state=seed).fit(x, y[:, j])
            coef[j], intercept[j] = m.coef_[0], m.intercept_[0]
    return coef, intercept


def _platt(z: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """``p = sigmoid(a * logit + b)`` fitted on every (row, label) pair of the validation rows."""
    from sklearn.linear_model import LogisticRegression

    if y.min() == y.max():
        return 1.0, 0.0
    m = LogisticRegression(C=1e4, max_iter=1000).fit(z.reshape(-1, 1), y.reshape(-1))
    return float(m.coef_[0, 0]), float(m.intercept_[0])


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))


def scores(p: np.ndarray, y: np.ndarray, threshold: float) -> dict:
    """Micro P/R/F1, exact match and the ECE of the emitted labels (confidence vs right)."""
    from .evaluate import ece

    pred = p >= threshold
    tp, n_pred, n_gold = int((pred & (y == 1)).sum()), int(pred.sum()), int(y.sum())
    prec = tp / n_pred if n_pred else 0.0
    rec = tp / n_gold if n_gold else 0.0
    emitted = pred.nonzero()
    return {"micro_precision": round(prec, 4), "micro_recall": round(rec, 4),
            "micro_f1": round(2 * prec * rec / (prec + rec) if prec + rec else 0.0, 4),
            "exact_match": round(float((pred == (y == 1)).all(axis=1).mean()), 4),
            "ece": ece(p[emitted].tolist(), (y[emitted] == 1).tolist()) if n_pred else None}


def calibrate(z: np.ndarray, y: np.ndarray) -> dict:
    """Platt scaling of validation logits ``z`` and the emission threshold with the best micro-F1."""
    a, b = _platt(z, y)
    p = sigmoid(a * z + b)
    best: dict = {}
    for t in THRESHOLDS:
        m = scores(p, y, float(t))
        if m["micro_f1"] > best.get("metrics", {}).get("micro_f1", -1.0):
            best = {"platt": [a, b], "threshold": float(t), "metrics": m}
    return best


def choose(x: np.ndarray, y: np.ndarray, fit_idx: np.ndarray, val_idx: np.ndarray, seed: int) -> dict:
    """The ``--fast`` settings with the best validation micro-F1, with their Platt scaling and threshold."""
    best: dict = {}
    for c, weight in GRID:
        coef, intercept = _fit(x[fit_idx], y[fit_idx], c, weight, seed)
        cal = calibrate(x[val_idx] @ coef.T + intercept, y[val_idx])
        if cal["metrics"]["micro_f1"] > best.get("metrics", {}).get("micro_f1", -1.0):
            best = {"C": c, "class_weight": weight, **cal}
    return best


def _matrix(rows: list[tuple[str, list[str]]]) -> tuple[list[str], np.ndarray]:
    names = sorted({lab for _, labels in rows for lab in labels})
    return names, np.array([[lab in set(labels) for lab in names] for _, labels in rows], dtype=np.int8)


def train_intents(rows: list[tuple[str, list[str]]], emb, seed: int = 0, progress=None) -> tuple[dict, dict]:
    """``(head, calibration)`` for multi-label intents: the head spec (``multi_label: true``) and what the
    validation split chose (settings, threshold, metrics)."""
    report = progress or (lambda done, total: None)
    names, y = _matrix(rows)
    report(0, 3)
    x = emb.encode([t for t, _ in rows])
    report(1, 3)
    fit_idx, val_idx = _split(y, seed)
    chosen = choose(x, y, fit_idx, val_idx, seed) if len(val_idx) else \
        {"C": 10.0, "class_weight": None, "platt": [1.0, 0.0], "threshold": 0.5, "metrics": {}}
    chosen["metrics"] = {"n_validation": int(len(val_idx)), **chosen["metrics"]}
    report(2, 3)
    coef, intercept = _fit(x, y, chosen["C"], chosen["class_weight"], seed)
    report(3, 3)
    return _head(emb.model_id, emb.dim, coef, intercept, chosen, names, y), chosen


def _head(encoder: str, dim: int, coef: np.ndarray, intercept: np.ndarray, chosen: dict, names: list[str],
          y: np.ndarray) -> dict:
    """The ``signals.linear_head/1`` fields of a multi-label head (``train._write`` adds the rest)."""
    return {"encoder": encoder, "dim": int(dim), "multi_label": True, "coef": coef.round(6).tolist(),
            "intercept": intercept.round(6).tolist(), "platt": [round(v, 6) for v in chosen["platt"]],
            "max_labels": int(y.sum(axis=1).max()), "labels": names}


def finetune_intents(rows: list[tuple[str, list[str]]], encoder: str | None, seed: int, config, progress,
                     out: Path) -> tuple[dict, dict, dict]:
    """``(head, calibration, manifest extra)``: the encoder fine-tuned on the fit rows, calibrated on the
    validation rows, then fine-tuned again on every row and saved under ``out``."""
    from .train import ENCODER_DIR, finetune_runs

    names, y = _matrix(rows)
    fit_idx, val_idx = _split(y, seed)
    coef, intercept, chosen, extra = finetune_runs(
        [t for t, _ in rows], y, len(names), encoder, fit_idx, val_idx, seed, config, progress, out, calibrate,
        {"platt": [1.0, 0.0], "threshold": 0.5, "metrics": {}})
    chosen["metrics"] = {"n_validation": int(len(val_idx)), **chosen["metrics"]}
    head = _head(f"model:{ENCODER_DIR}", coef.shape[1], coef, intercept, chosen, names, y)
    return head, chosen, extra
