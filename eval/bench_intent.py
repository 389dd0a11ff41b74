"""Intent on Banking77 (shared train release, 80/20 seed-0 split): signals against the baselines a user
would otherwise reach for, all in the same run, on the same split.

    .venv/bin/python eval/bench_intent.py            # full and 10-shot
    .venv/bin/python eval/bench_intent.py --shots 10

Methods: TF-IDF + logistic regression; zero-shot embedding similarity (MiniLM, label names only);
signals' prototype classifier (`--train` as taxonomy); signals `train --fast` (frozen MiniLM +
logistic regression). The signals rows go through the full local pipeline, like `signals eval`.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_evals import split_banking  # noqa: E402

from extractor.evaluate import accuracy_f1, ece, evaluate  # noqa: E402


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def _shots(rows: list[dict], k: int | None, seed: int = 0) -> list[dict]:
    if k is None:
        return rows
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["label"], []).append(r)
    rng = random.Random(seed)
    return [r for lab in sorted(by) for r in (rng.sample(by[lab], k) if len(by[lab]) > k else by[lab])]


def tfidf_lr(train: list[dict], test: list[dict]) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    x = vec.fit_transform([r["text"] for r in train])
    clf = LogisticRegression(C=10, max_iter=2000).fit(x, [r["label"] for r in train])
    p = clf.predict_proba(vec.transform([r["text"] for r in test]))
    pred = clf.classes_[p.argmax(1)]
    gold = [r["label"] for r in test]
    return accuracy_f1(gold, list(pred)) | {"ece": ece(p.max(1).tolist(), [g == q for g, q in zip(gold, pred)])}


def zero_shot(test: list[dict], labels: list[str]) -> dict:
    from extractor.embed import load_embedder

    emb = load_embedder()
    lab = emb.encode([name.replace("_", " ") for name in labels])
    sims = emb.encode([r["text"] for r in test]) @ lab.T
    pred = [labels[i] for i in sims.argmax(1)]
    return accuracy_f1([r["label"] for r in test], pred)


def signals_methods(train_path: Path, test_path: Path, shots: int | None, tmp: Path) -> dict[str, dict]:
    from extractor.pipeline import Pipeline
    from extractor.train import train

    out = {"signals prototype (--train)": evaluate(
        "intent", test_path, Pipeline(str(train_path), shots=shots, ner=False))}
    t0 = time.perf_counter()
    train("intent", train_path, tmp / "fast", shots=shots)
    seconds = time.perf_counter() - t0
    out["signals train --fast"] = evaluate("intent", test_path, Pipeline(model=tmp / "fast", ner=False)) | {
        "train_s": round(seconds, 1)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shots", type=int, action="append", help="K (repeatable); default: full and 10")
    args = ap.parse_args()
    train_path, test_path = split_banking()
    train_rows, test_rows = _rows(train_path), _rows(test_path)
    labels = sorted({r["label"] for r in train_rows})
    print(f"Banking77 80/20 split: {len(train_rows)} train, {len(test_rows)} test, {len(labels)} labels")
    print("| setting | method | accuracy | macro-F1 | ECE |\n|---|---|---|---|---|")
    zs = zero_shot(test_rows, labels)
    print(f"| any | zero-shot embedding similarity (label names) | {zs['accuracy']} | {zs['macro_f1']} | - |")
    for k in args.shots or [None, 10]:
        setting = "full" if k is None else f"{k}-shot"
        base = tfidf_lr(_shots(train_rows, k), test_rows)
        print(f"| {setting} | TF-IDF + logistic regression | {base['accuracy']} | {base['macro_f1']} | {base['ece']} |")
        with tempfile.TemporaryDirectory() as tmp:
            for name, m in signals_methods(train_path, test_path, k, Path(tmp)).items():
                extra = f" (trained in {m['train_s']} s)" if "train_s" in m else ""
                print(f"| {setting} | {name}{extra} | {m['accuracy']} | {m['macro_f1']} | {m['ece']} |")
        sys.stdout.flush()


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
