"""NLU++ banking (CC BY 4.0): multi-label intents, 10-shot and full, and constraint spans against its slots.

    .venv/bin/python eval/bench_nluplusplus.py [--finetune]

Intents: train on folds 0-17, test on folds 18-19 (204 rows); "10-shot" keeps, for each label in
sorted order, up to 10 training rows carrying it (``random.Random(0)``; a row drawn for one label
also counts for its others; ``signals train --shots 10`` draws the same rows). Three methods on
the same split: the baseline, frozen MiniLM embeddings + one-vs-rest LogisticRegression() with a
0.5 threshold (the multi-label version of what a user builds first); signals reading the training
rows as its taxonomy (`signals eval intents --train`, one intent per sentence, no training); and
`signals train intents --fast` (one calibrated logistic regression per label, settings and
threshold chosen on a validation split of the training rows) and, with ``--finetune``, the default
`signals train intents` (the encoder fine-tuned), each scored with `signals eval intents --model`.

Constraint spans: every row (the rules were never tuned on this set), slot types mapped to
constraint types — date/time slots to ``datetime``, ``amount_of_money`` to ``money``, ``number``
to ``quantity``; person, company and shopping-category slots have no constraint type and are
left out (`signals eval constraints` ignores predicted types the gold does not annotate).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_evals import CACHE, DATA  # noqa: E402

from extractor.evaluate import evaluate  # noqa: E402
from extractor.train import train as train_model  # noqa: E402
from extractor.train_multi import sample_shots  # noqa: E402

SLOT_TYPES = {"date": "datetime", "date_from": "datetime", "date_to": "datetime", "date_period": "datetime",
              "time": "datetime", "time_from": "datetime", "time_to": "datetime", "time_period": "datetime",
              "amount_of_money": "money", "number": "quantity"}


def _write(name: str, rows: list[dict]) -> Path:
    path = CACHE / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    return path


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
    import argparse

    from extractor.pipeline import Pipeline

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--finetune", action="store_true",
                    help="also train the default method (fine-tuning: tens of minutes per setting on 2 cores)")
    args = ap.parse_args()

    CACHE.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(line) for line in (DATA / "nluplusplus_banking" / "data.jsonl").read_text("utf-8").splitlines()]
    train = [{"text": r["text"], "labels": r["labels"]} for r in rows if r["fold"] < 18]
    test = [{"text": r["text"], "labels": r["labels"]} for r in rows if r["fold"] >= 18]
    test_path = _write("nlupp_test.jsonl", test)
    print(f"NLU++ banking: train {len(train)} rows (folds 0-17), test {len(test)} rows (folds 18-19)")
    print("| setting | method | micro-F1 | exact match |\n|---|---|---|---|")
    for setting, part in (("full", train), ("10-shot", sample_shots(train, 10, labels_of=lambda r: r["labels"]))):
        b = baseline(part, test)
        print(f"| {setting} ({len(part)} rows) | baseline: frozen MiniLM + one-vs-rest LogisticRegression() | "
              f"{b['micro_f1']} | {b['exact_match']} |")
        path = _write(f"nlupp_train_{setting}.jsonl", part)
        m = evaluate("intents", test_path, Pipeline(str(path), ner=False))
        cmd = f"signals eval intents --train {path.relative_to(CACHE.parents[1])}"
        print(f"| {setting} ({len(part)} rows) | signals (`{cmd}`) | {m['micro_f1']} | {m['exact_match']} |")
        for method in ("fast", "finetune") if args.finetune else ("fast",):
            model = CACHE / "models" / f"nlupp_{method}_{setting}"
            t0 = time.perf_counter()
            train_model("intents", path, model, method=method)
            train_s = time.perf_counter() - t0
            m = evaluate("intents", test_path, Pipeline(model=str(model), ner=False))
            flag = " --fast" if method == "fast" else ""
            cmd = f"signals train intents{flag} --train {path.relative_to(CACHE.parents[1])}"
            print(f"| {setting} ({len(part)} rows) | `{cmd}` ({train_s:.0f} s; micro P {m['micro_precision']}, "
                  f"R {m['micro_recall']}, emitted-label ECE {m['ece']}) | {m['micro_f1']} | {m['exact_match']} |")
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
