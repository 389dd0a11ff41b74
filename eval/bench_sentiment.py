"""Sentiment: one model for tweets, reviews and survey answers, against the baseline, same run, same split.

    .venv/bin/python eval/bench_sentiment.py [--epochs 2]

Data (read from ../shared/data at run time, split 80/20 stratified by label with seed 0 into
eval/.cache/): the shared airline half (CC BY-NC-SA: evaluation and training experiments only, so
a model trained on it is never shipped) and the UCI sentences (CC BY; 0/1 mapped to
negative/positive). The training set is airline 80% + UCI 80%; the test sets are the held-out 20%
of each. UCI accuracy is binary (argmax over negative vs positive), as that set has no neutral.

Methods: the shipped default head (trained on GoEmotions + UCI only, not on airline); the baseline a
user builds in an afternoon (frozen MiniLM + scikit-learn's default LogisticRegression); `signals
train sentiment --fast`; `signals train sentiment` (fine-tuned encoder).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_intent import model_proba  # noqa: E402
from run_evals import CACHE, DATA  # noqa: E402

from extractor.evaluate import accuracy_f1, ece  # noqa: E402

LABELS = ["negative", "neutral", "positive"]


def _split(rows: list[dict], seed: int = 0) -> tuple[list[dict], list[dict]]:
    by: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by[r["label"]].append(r)
    rng = random.Random(seed)
    train, test = [], []
    for lab in sorted(by):
        items = by[lab][:]
        rng.shuffle(items)
        k = len(items) // 5
        test += items[:k]
        train += items[k:]
    return train, test


def load_sets() -> tuple[Path, list[dict], list[dict]]:
    air = [{"text": r["text"], "label": r["label"]} for r in map(json.loads, (
        DATA / "airline_sentiment" / "data.jsonl").read_text("utf-8").splitlines()) if r.get("text")]
    uci = [{"text": r["text"], "label": "positive" if int(r["label"]) == 1 else "negative"} for r in map(
        json.loads, (DATA / "uci_sentences" / "data.jsonl").read_text("utf-8").splitlines())]
    air_tr, air_te = _split(air)
    uci_tr, uci_te = _split(uci)
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / "sentiment_train_airline80_uci80.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in air_tr + uci_tr), "utf-8")
    return path, air_te, uci_te


def figures(labels: list[str], p_air: np.ndarray, p_uci: np.ndarray, air: list[dict], uci: list[dict]) -> dict:
    idx = [labels.index(x) for x in LABELS]
    p_air, p_uci = p_air[:, idx], p_uci[:, idx]
    pred = [LABELS[i] for i in p_air.argmax(1)]
    gold = [r["label"] for r in air]
    m = accuracy_f1(gold, pred)
    binary = np.where(p_uci[:, 2] >= p_uci[:, 0], "positive", "negative")
    return {"airline_macro_f1": m["macro_f1"], "airline_accuracy": m["accuracy"],
            "airline_ece": ece(p_air.max(1).tolist(), [g == q for g, q in zip(gold, pred)]),
            "uci_accuracy": round(float(np.mean(binary == np.array([r["label"] for r in uci]))), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=2, help="fine-tuning epochs (default 2)")
    args = ap.parse_args()
    from sklearn.linear_model import LogisticRegression

    from extractor.embed import load_embedder
    from extractor.finetune import FinetuneConfig
    from extractor.local.sentiment import SentimentHead
    from extractor.train import train

    path, air, uci = load_sets()
    rows = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    print(f"train {len(rows)} rows (airline 80% + UCI 80%); test airline {len(air)}, UCI {len(uci)}")
    cols = ("airline_macro_f1", "airline_accuracy", "airline_ece", "uci_accuracy")
    print("| method | " + " | ".join(cols) + " | train s |\n|" + "---|" * (len(cols) + 2))
    emb = load_embedder()
    xa, xu = emb.encode([r["text"] for r in air]), emb.encode([r["text"] for r in uci])
    head = SentimentHead.load()
    fig = figures(list(head.labels), head.predict_proba(xa), head.predict_proba(xu), air, uci)
    print("| shipped default head (GoEmotions + UCI, no airline) | " + " | ".join(str(fig[c]) for c in cols) + " | - |")
    t0 = time.perf_counter()
    clf = LogisticRegression(max_iter=1000).fit(emb.encode([r["text"] for r in rows]), [r["label"] for r in rows])
    seconds = time.perf_counter() - t0
    fig = figures(list(clf.classes_), clf.predict_proba(xa), clf.predict_proba(xu), air, uci)
    print("| baseline: frozen MiniLM + LogisticRegression() | " + " | ".join(str(fig[c]) for c in cols)
          + f" | {seconds:.0f} |")
    sys.stdout.flush()
    with tempfile.TemporaryDirectory() as tmp:
        for method in ("fast", "finetune"):
            t0 = time.perf_counter()
            train("sentiment", path, Path(tmp) / method, method=method, config=FinetuneConfig(epochs=args.epochs))
            seconds = time.perf_counter() - t0
            labels, pa = model_proba(Path(tmp) / method, [r["text"] for r in air])
            _, pu = model_proba(Path(tmp) / method, [r["text"] for r in uci])
            fig = figures(labels, pa, pu, air, uci)
            name = "signals train sentiment --fast" if method == "fast" else \
                f"signals train sentiment (fine-tune, {args.epochs} epochs)"
            print(f"| {name} | " + " | ".join(str(fig[c]) for c in cols) + f" | {seconds:.0f} |")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
