"""``signals train TASK --fast``: a logistic-regression head on frozen sentence embeddings.

The model directory holds ``head.json`` (``signals.linear_head/1``, JSON, never a pickle) and
``manifest.json`` (task, method, base encoder, ordered labels, training-data hash, held-out
metrics, seed, library version). ``signals extract --model DIR`` and ``Pipeline(model=DIR)`` use it.

>>> manifest = train("intent", "train.jsonl", "models/intent", shots=10)   # doctest: +SKIP
>>> manifest["metrics"]["accuracy"]                                           # doctest: +SKIP
0.83
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import __version__
from .errors import ConfigError

log = logging.getLogger(__name__)

TASKS = ("intent", "sentiment")  # urgency stays rule-based until issue 5 trains it
FORMAT = "signals.model/1"


def _rows(path: Path, label_field: str, shots: int | None, seed: int) -> tuple[list[str], list[str]]:
    by_label: dict[str, list[str]] = {}
    try:
        for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if not isinstance(row, dict) or not isinstance(row.get("text"), str) or label_field not in row:
                raise ConfigError(f"{path}:{n}: expected {{\"text\": ..., \"{label_field}\": ...}}")
            by_label.setdefault(str(row[label_field]), []).append(row["text"])
    except (OSError, ValueError) as exc:
        raise ConfigError(f"Cannot read training file {path}: {exc}") from exc
    if len(by_label) < 2:
        raise ConfigError(f"{path} needs at least two labels to train a classifier.")
    rng = random.Random(seed)
    texts, labels = [], []
    for label in sorted(by_label):
        items = by_label[label]
        if shots is not None and len(items) > shots:
            items = rng.sample(items, shots)
        texts += items
        labels += [label] * len(items)
    return texts, labels


def _split(labels: list[str], seed: int, frac: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split; every label keeps at least one training row."""
    rng = np.random.default_rng(seed)
    fit, val = [], []
    for label in sorted(set(labels)):
        idx = rng.permutation([i for i, x in enumerate(labels) if x == label])
        k = int(len(idx) * frac) if len(idx) > 2 else 0
        val += list(idx[:k])
        fit += list(idx[k:])
    return np.array(fit), np.array(val)


def _fit(x: np.ndarray, y: np.ndarray, seed: int, c: float = 10.0):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(x, y)


def _temperature(logits: np.ndarray, y: np.ndarray) -> float:
    grid = np.geomspace(0.05, 10.0, 80)
    nll = []
    for t in grid:
        z = logits / t
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        nll.append(-logp[np.arange(len(y)), y].mean())
    return float(grid[int(np.argmin(nll))])


def train(task: str, train_path: str | Path, out_dir: str | Path, *, shots: int | None = None, seed: int = 0,
          encoder: str | None = None, label_field: str = "label") -> dict:
    """Train a fast head for ``task`` and write the model directory; returns the manifest."""
    if task not in TASKS:
        raise ConfigError(f"Unknown task {task!r}; choose one of {', '.join(TASKS)}.")
    from .embed import load_embedder
    from .evaluate import ece

    texts, labels = _rows(Path(train_path), label_field, shots, seed)
    names = sorted(set(labels))
    if task == "sentiment" and not ({"negative", "positive"} <= set(names) <= {"negative", "neutral", "positive"}):
        raise ConfigError(f"Sentiment labels must be negative / neutral / positive (got {names[:5]}); map them first.")
    y = np.array([names.index(x) for x in labels])
    emb = load_embedder(encoder)
    x = emb.encode(texts)
    fit_idx, val_idx = _split(labels, seed)
    temperature, threshold, metrics = 1.0, 0.0, {}
    if len(val_idx):
        clf = _fit(x[fit_idx], y[fit_idx], seed)
        logits = clf.decision_function(x[val_idx])
        temperature = _temperature(logits, y[val_idx])
        z = logits / temperature
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        pred = p.argmax(axis=1)
        correct = pred == y[val_idx]
        threshold = float(np.quantile(p.max(axis=1)[correct], 0.02)) if task == "intent" and correct.any() else 0.0
        metrics = {"n_validation": int(len(val_idx)), "accuracy": round(float(correct.mean()), 4),
                   "ece": ece(p.max(axis=1).tolist(), correct.tolist())}
    clf = _fit(x, y, seed)  # final head on all rows, with the calibration found above
    digest = hashlib.sha256("".join(f"{t}\t{lab}\n" for t, lab in zip(texts, labels)).encode()).hexdigest()
    head = {"format": "signals.linear_head/1", "task": task, "labels": names, "encoder": emb.model_id,
            "dim": emb.dim, "normalize": True, "coef": clf.coef_.round(6).tolist(),
            "intercept": clf.intercept_.round(6).tolist(), "temperature": temperature, "threshold": threshold,
            "data_sha256": digest}
    if len(names) == 2:  # sklearn keeps one row for binary problems: expand to one row per label
        head["coef"] = (np.vstack([-clf.coef_, clf.coef_]) / 2).round(6).tolist()
        head["intercept"] = (np.array([-clf.intercept_[0], clf.intercept_[0]]) / 2).round(6).tolist()
    manifest = {"format": FORMAT, "task": task, "method": "fast (frozen embeddings + logistic regression)",
                "encoder": emb.model_id, "dim": emb.dim, "labels": names, "n_train": len(texts), "shots": shots,
                "seed": seed, "data_sha256": digest, "temperature": temperature, "threshold": threshold,
                "metrics": metrics, "signals_version": __version__,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "head.json").write_text(json.dumps(head) + "\n", "utf-8")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
    log.info("trained %s head on %d rows (%d labels) -> %s", task, len(texts), len(names), out)
    return manifest


def load_model(model_dir: str | Path) -> tuple[dict, dict]:
    """``(manifest, head)`` of a model directory written by :func:`train`."""
    path = Path(model_dir)
    try:
        manifest = json.loads((path / "manifest.json").read_text("utf-8"))
        head = json.loads((path / "head.json").read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} is not a signals model directory ({exc}); make one with `signals train`.") \
            from exc
    if manifest.get("format") != FORMAT:
        raise ConfigError(f"{path}/manifest.json is not a {FORMAT} manifest.")
    return manifest, head
