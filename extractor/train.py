"""``signals train TASK``: fine-tune the encoder with a cosine head (default) or, with ``--fast``, fit a
logistic-regression head on frozen sentence embeddings.

The model directory holds ``head.json`` (``signals.linear_head/1``, JSON, never a pickle),
``manifest.json`` (task, method, base encoder, ordered labels, training-data hash, held-out
metrics, seed, training time, library version) and, for a fine-tuned model, ``encoder/`` (a
sentence-transformers directory the head applies to). ``signals extract --model DIR`` and
``Pipeline(model=DIR)`` use it.

>>> manifest = train("intent", "train.jsonl", "models/intent", shots=10)   # doctest: +SKIP
>>> manifest["metrics"]["accuracy"]                                           # doctest: +SKIP
0.83
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import __version__
from .errors import ConfigError
from .local.intent import _softmax
from .local.urgency import LEVELS as URGENCY_LEVELS

log = logging.getLogger(__name__)

TASKS = ("intent", "intents", "sentiment", "urgency")  # intents: multi-label
METHODS = ("finetune", "fast")
METHOD_NAMES = {"finetune": "finetune (encoder fine-tuned end to end + cosine head)",
                "fast": "fast (frozen embeddings + logistic regression)"}
ENCODER_DIR = "encoder"  # the fine-tuned sentence-transformers model inside a finetune model directory
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


def _calibrate(task: str, logits: np.ndarray, y: np.ndarray) -> tuple[float, float, dict]:
    """Temperature (NLL on the validation rows), the abstention threshold (the 2% quantile of correct
    rows' confidence, intent only) and the validation metrics after calibration."""
    from .evaluate import ece

    temperature = _temperature(logits, y)
    p = _softmax(logits / temperature)
    correct = p.argmax(axis=1) == y
    threshold = float(np.quantile(p.max(axis=1)[correct], 0.02)) if task == "intent" and correct.any() else 0.0
    return temperature, threshold, {"n_validation": int(len(y)), "accuracy": round(float(correct.mean()), 4),
                                    "ece": ece(p.max(axis=1).tolist(), correct.tolist())}


class _Steps:
    """One progress callback over several training runs: ``progress(done, total)`` across all of them."""

    def __init__(self, progress, runs: list[int]):
        self.progress, self.total, self.offset = progress, sum(runs), 0

    def run(self, n: int):
        base = self.offset
        self.offset += n
        return (lambda done, _total: self.progress(base + done, self.total)) if self.progress else None


def train(task: str, train_path: str | Path, out_dir: str | Path, *, shots: int | None = None, seed: int = 0,
          encoder: str | None = None, label_field: str = "label", method: str = "finetune",
          config=None, progress=None) -> dict:
    """Train ``task`` with ``method`` (``finetune``: the encoder itself learns; ``fast``: a linear head on
    frozen embeddings) and write the model directory; returns the manifest.

    Calibration (temperature, abstention threshold) is fitted on a stratified 20% validation split of
    the training rows, then the final model is trained on all rows with the same settings.
    ``progress(done, total)`` reports optimiser steps (``finetune``) or the three stages of ``fast``
    (encode, calibrate, fit).
    """
    if task not in TASKS:
        raise ConfigError(f"Unknown task {task!r}; choose one of {', '.join(TASKS)}.")
    if method not in METHODS:
        raise ConfigError(f"Unknown training method {method!r}; choose one of {', '.join(METHODS)}.")
    from .embed import load_embedder

    if task == "intents":
        return _train_multi(Path(train_path), Path(out_dir), shots, seed, encoder, label_field, method, config,
                            progress)
    texts, labels = _rows(Path(train_path), label_field, shots, seed)
    names = sorted(set(labels))
    if task == "sentiment" and not ({"negative", "positive"} <= set(names) <= {"negative", "neutral", "positive"}):
        raise ConfigError(f"Sentiment labels must be negative / neutral / positive (got {names[:5]}); map them first.")
    if task == "urgency" and not set(names) <= set(URGENCY_LEVELS):
        raise ConfigError(f"Urgency labels must be among {' / '.join(URGENCY_LEVELS)} (got {names[:5]}); "
                          "map your priorities to them first.")
    y = np.array([names.index(x) for x in labels])
    fit_idx, val_idx = _split(labels, seed)
    base = load_embedder(encoder)
    out = Path(out_dir)
    t0 = time.perf_counter()
    if method == "fast":
        head, calibration = _train_fast(task, base, texts, y, fit_idx, val_idx, seed, progress)
        extra: dict = {}
    else:
        head, calibration, extra = _train_finetune(task, base, encoder, texts, y, fit_idx, val_idx, seed, config,
                                                   progress, out)
    temperature, threshold, metrics = calibration
    digest = hashlib.sha256("".join(f"{t}\t{lab}\n" for t, lab in zip(texts, labels)).encode()).hexdigest()
    head.update({"labels": names, "temperature": temperature})
    return _write(out, task, method, base, head, extra, n_train=len(texts), shots=shots, seed=seed, digest=digest,
                  threshold=threshold, metrics=metrics, seconds=time.perf_counter() - t0)


def _train_multi(path: Path, out: Path, shots, seed, encoder, label_field, method, config, progress) -> dict:
    from .embed import load_embedder
    from .train_multi import finetune_intents, read_rows, sample_shots, train_intents

    rows = read_rows(path, label_field)
    rows = sample_shots(rows, shots, seed) if shots is not None else rows
    base = load_embedder(encoder)
    t0 = time.perf_counter()
    if method == "fast":
        head, chosen = train_intents(rows, base, seed, progress)
        extra = {"settings": {k: chosen[k] for k in ("C", "class_weight", "platt")}}
    else:
        head, chosen, extra = finetune_intents(rows, encoder, seed, config, progress, out)
        extra["settings"] = {"platt": chosen["platt"]}
    digest = hashlib.sha256("".join(f"{t}\t{','.join(labs)}\n" for t, labs in rows).encode()).hexdigest()
    return _write(out, "intents", method, base, head, extra, n_train=len(rows), shots=shots, seed=seed,
                  digest=digest, threshold=chosen["threshold"], metrics=chosen["metrics"],
                  seconds=time.perf_counter() - t0)


def _write(out: Path, task: str, method: str, base, head: dict, extra: dict, *, n_train: int, shots, seed: int,
           digest: str, threshold: float, metrics: dict, seconds: float) -> dict:
    """Write ``head.json`` and ``manifest.json``; returns the manifest."""
    head.update({"format": "signals.linear_head/1", "task": task, "normalize": True, "threshold": threshold,
                 "data_sha256": digest})
    manifest = {"format": FORMAT, "task": task, "method": METHOD_NAMES[method], "encoder": base.model_id,
                "dim": base.dim, **extra, "labels": head["labels"], "n_train": n_train, "shots": shots,
                "seed": seed, "data_sha256": digest, "temperature": head.get("temperature", 1.0),
                "threshold": threshold, "metrics": metrics, "train_seconds": round(seconds, 1),
                "signals_version": __version__,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    out.mkdir(parents=True, exist_ok=True)
    (out / "head.json").write_text(json.dumps(head) + "\n", "utf-8")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
    log.info("trained %s (%s) on %d rows (%d labels) -> %s", task, method, n_train, len(head["labels"]), out)
    return manifest


def _train_fast(task, emb, texts, y, fit_idx, val_idx, seed, progress=None) -> tuple[dict, tuple]:
    report = progress or (lambda done, total: None)
    report(0, 3)
    x = emb.encode(texts)
    report(1, 3)
    calibration = (1.0, 0.0, {})
    if len(val_idx):
        clf = _fit(x[fit_idx], y[fit_idx], seed)
        z = clf.decision_function(x[val_idx])
        z = np.stack([-z / 2, z / 2], axis=1) if z.ndim == 1 else z  # binary: one column per label
        calibration = _calibrate(task, z, y[val_idx])
    report(2, 3)
    clf = _fit(x, y, seed)  # final head on all rows, with the calibration found above
    report(3, 3)
    coef, intercept = clf.coef_, clf.intercept_
    if coef.shape[0] == 1:  # sklearn keeps one row for binary problems: expand to one row per label
        coef, intercept = np.vstack([-coef, coef]) / 2, np.array([-intercept[0], intercept[0]]) / 2
    head = {"encoder": emb.model_id, "dim": emb.dim, "coef": coef.round(6).tolist(),
            "intercept": intercept.round(6).tolist()}
    return head, calibration


def _train_finetune(task, base, encoder, texts, y, fit_idx, val_idx, seed, config, progress, out: Path):
    n_labels = int(y.max()) + 1
    coef, _, calibration, extra = finetune_runs(texts, y, n_labels, encoder, fit_idx, val_idx, seed, config,
                                                progress, out, lambda z, yv: _calibrate(task, z, yv), (1.0, 0.0, {}))
    head = {"encoder": f"model:{ENCODER_DIR}", "dim": int(coef.shape[1]), "coef": coef.round(6).tolist(),
            "intercept": [0.0] * n_labels}
    return head, calibration, extra


def finetune_runs(texts, y, n_labels, encoder, fit_idx, val_idx, seed, config, progress, out: Path, calibrate,
                  uncalibrated):
    """The fine-tuning protocol of every trainer: fine-tune on the fit rows and ``calibrate(logits, y)`` on the
    validation rows (``uncalibrated`` when there are none), then fine-tune again on every row and save that
    encoder under ``out``. Returns ``(coef, intercept, calibration, manifest extra)``."""
    from .embed import resolve_encoder
    from .finetune import FinetuneConfig, encode, finetune

    cfg = config or FinetuneConfig()
    _, path = resolve_encoder(encoder)
    steps = _Steps(progress, ([cfg.total_steps(len(fit_idx))] if len(val_idx) else []) + [cfg.total_steps(len(y))])
    calibration = uncalibrated
    if len(val_idx):
        model, coef, intercept = finetune([texts[i] for i in fit_idx], y[fit_idx], n_labels, path, seed=seed,
                                          config=cfg, progress=steps.run(cfg.total_steps(len(fit_idx))))
        calibration = calibrate(encode(model, [texts[i] for i in val_idx]) @ coef.T + intercept, y[val_idx])
        del model
    model, coef, intercept = finetune(texts, y, n_labels, path, seed=seed, config=cfg,
                                      progress=steps.run(cfg.total_steps(len(y))))
    out.mkdir(parents=True, exist_ok=True)
    model.save(str(out / ENCODER_DIR))
    return coef, intercept, calibration, finetune_extra(cfg, len(y))


def finetune_extra(cfg, n_rows: int) -> dict:
    """What a fine-tuned model's manifest adds: where its encoder is, the settings and the epochs."""
    return {"model_encoder": ENCODER_DIR, "finetune": dict(vars(cfg)), "epochs": cfg.n_epochs(n_rows)}


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
