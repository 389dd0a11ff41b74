"""NLU++ banking (CC BY 4.0): multi-label intents, 10-shot and full, and constraint spans against its slots.

    .venv/bin/python eval/bench_nluplusplus.py

Intents: train on folds 0-17, test on folds 18-19 (204 rows); "10-shot" keeps, for each label in
sorted order, up to 10 training rows carrying it (``random.Random(0)``; a row drawn for one label
also counts for its others). signals reads the training rows as its taxonomy (`signals eval intents
--train`); the baseline in the same run is frozen MiniLM embeddings + one-vs-rest
LogisticRegression() with a 0.5 threshold, the multi-label version of what a user builds first.

Constraint spans: every row (the rules were never tuned on this set), slot types mapped to
constraint types — date/time slots to ``datetime``, ``amount_of_money`` to ``money``, ``number``
to ``quantity``; person, company and shopping-category slots have no constraint type and are
left out (`signals eval constraints` ignores predicted types the gold does not annotate).
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_evals import CACHE, DATA  # noqa: E402

from extractor.evaluate import evaluate  # noqa: E402

SLOT_TYPES = {"date": "datetime", "date_from": "datetime", "date_to": "datetime", "date_period": "datetime",
              "time": "datetime", "time_from": "datetime", "time_to": "datetime", "time_period": "datetime",
              "amount_of_money": "money", "number": "quantity"}


def _write(name: str, rows: list[dict]) -> Path:
    path = CACHE / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    return path


def _shots(rows: list[dict], k: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    chosen: dict[int, dict] = {}
    for label in sorted({lab for r in rows for lab in r["labels"]}):
        have = sum(label in r["labels"] for r in chosen.values())
        pool = [i for i, r in enumerate(rows) if label in r["labels"] and i not in chosen]
        for i in rng.sample(pool, min(len(pool), max(0, k - have))):
            chosen[i] = rows[i]
    return [chosen[i] for i in sorted(chosen)]


def baseline(train: list[dict], test: list[dict]) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import MultiLabelBinarizer

    from extractor.embed import load_embedder

    emb = load_embedder()
    mlb = MultiLabelBinarizer().fit([r["labels"] for r in train + test])
    clf = OneVsRestClassifier(LogisticRegression(max_iter=1000))
    clf.fit(emb.encode([r["text"] for r in train]), mlb.transform([r["labels"] for r in train]))
    pred = clf.predict_proba(emb.encode([r["text"] for r in test])) >= 0.5
    gold = mlb.transform([r["labels"] for r in test])
    return {"micro_f1": round(float(f1_score(gold, pred, average="micro", zero_division=0)), 4),
            "exact_match": round(float(np.mean((gold == pred).all(axis=1))), 4)}


def main() -> None:
    from extractor.pipeline import Pipeline

    CACHE.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(line) for line in (DATA / "nluplusplus_banking" / "data.jsonl").read_text("utf-8").splitlines()]
    train = [{"text": r["text"], "labels": r["labels"]} for r in rows if r["fold"] < 18]
    test = [{"text": r["text"], "labels": r["labels"]} for r in rows if r["fold"] >= 18]
    test_path = _write("nlupp_test.jsonl", test)
    print(f"NLU++ banking: train {len(train)} rows (folds 0-17), test {len(test)} rows (folds 18-19)")
    print("| setting | method | micro-F1 | exact match |\n|---|---|---|---|")
    for setting, part in (("full", train), ("10-shot", _shots(train, 10))):
        b = baseline(part, test)
        print(f"| {setting} ({len(part)} rows) | baseline: frozen MiniLM + one-vs-rest LogisticRegression() | "
              f"{b['micro_f1']} | {b['exact_match']} |")
        path = _write(f"nlupp_train_{setting}.jsonl", part)
        m = evaluate("intents", test_path, Pipeline(str(path), ner=False))
        cmd = f"signals eval intents --train {path.relative_to(CACHE.parents[1])}"
        print(f"| {setting} ({len(part)} rows) | signals (`{cmd}`) | {m['micro_f1']} | {m['exact_match']} |")
        sys.stdout.flush()
    spans = [{"id": f"nlupp{i}", "text": r["text"],
              "spans": [{"start": s["start"], "end": s["end"], "label": SLOT_TYPES[s["label"]]} for s in r["spans"]
                        if s["label"] in SLOT_TYPES]} for i, r in enumerate(rows)]
    path = _write("nlupp_constraints.jsonl", spans)
    m = evaluate("constraints", path, Pipeline())
    print(f"\nConstraint spans vs NLU++ slots ({len(spans)} rows, "
          f"{sum(len(r['spans']) for r in spans)} mapped spans; `signals eval constraints --test "
          f"{path.relative_to(CACHE.parents[1])}`)\n")
    print("| type | support | overlap P | overlap R | overlap F1 | exact F1 |\n|---|---|---|---|---|---|")
    n_spans = sum(len(r["spans"]) for r in spans)
    print(f"| all | {n_spans} | {m['span_precision']} | {m['span_recall']} | {m['span_f1']} | {m['exact_f1']} |")
    for t, v in sorted(m["span_by_type"].items()):
        print(f"| {t} | {v['support']} | {v['precision']} | {v['recall']} | {v['f1']} | {v['exact_f1']} |")


if __name__ == "__main__":
    main()
