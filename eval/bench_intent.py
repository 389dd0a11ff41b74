"""Intent on Banking77 (shared train release, 80/20 seed-0 split): signals against the baselines a user
would otherwise reach for, all in the same run, on the same split.

    .venv/bin/python eval/bench_intent.py            # full and 10-shot
    .venv/bin/python eval/bench_intent.py --shots 10

Methods: TF-IDF + logistic regression; zero-shot embedding similarity (MiniLM, label names only);
the baseline a user builds in an afternoon (frozen MiniLM embeddings + scikit-learn's default
logistic regression, its predict_proba as confidence); signals' prototype classifier (`--train` as
taxonomy); `signals train --fast` (frozen MiniLM + tuned, temperature-calibrated logistic
regression); `signals train` (default: the encoder fine-tuned end to end); and the ensemble of the
last two (mean of their calibrated probabilities).

Two accuracies: "closed" is the argmax over the 77 intents (the standard Banking77 figure); "with
abstention" goes through the full local pipeline like `signals eval`, where a message under the
model's calibrated threshold becomes out_of_scope and counts as an error (the test has no
out-of-scope rows).
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


def afternoon_baseline(train: list[dict], test: list[dict]) -> dict:
    """Frozen MiniLM embeddings + LogisticRegression() with scikit-learn's defaults."""
    from sklearn.linear_model import LogisticRegression

    from extractor.embed import load_embedder

    emb = load_embedder()
    t0 = time.perf_counter()
    clf = LogisticRegression(max_iter=1000).fit(emb.encode([r["text"] for r in train]), [r["label"] for r in train])
    seconds = time.perf_counter() - t0
    p = clf.predict_proba(emb.encode([r["text"] for r in test]))
    return _closed(test, list(clf.classes_), p) | {"train_s": round(seconds, 1)}


def _closed(test: list[dict], labels: list[str], p: np.ndarray) -> dict:
    pred = [labels[i] for i in p.argmax(1)]
    gold = [r["label"] for r in test]
    return accuracy_f1(gold, pred) | {"ece": ece(p.max(1).tolist(), [g == q for g, q in zip(gold, pred)])}


def model_proba(model_dir: Path, texts: list[str]) -> tuple[list[str], np.ndarray]:
    """Calibrated closed-set probabilities of a `signals train` model directory."""
    from extractor.embed import load_embedder
    from extractor.local.linear import LinearHead
    from extractor.train import load_model

    manifest, spec = load_model(model_dir)
    enc = str(model_dir / manifest["model_encoder"]) if manifest.get("model_encoder") else None
    head = LinearHead(spec)
    return head.labels, head.proba(load_embedder(enc).encode(texts))


def signals_methods(train_path: Path, test_path: Path, shots: int | None, tmp: Path,
                    test: list[dict]) -> dict[str, dict]:
    from extractor.pipeline import Pipeline
    from extractor.train import train

    out = {"signals prototype (--train)": {"pipeline": evaluate(
        "intent", test_path, Pipeline(str(train_path), shots=shots, ner=False))}}
    texts = [r["text"] for r in test]
    probs = {}
    for name, method in (("signals train --fast", "fast"), ("signals train (fine-tune, default)", "finetune")):
        t0 = time.perf_counter()
        manifest = train("intent", train_path, tmp / method, shots=shots, method=method)
        seconds = time.perf_counter() - t0
        labels, probs[method] = model_proba(tmp / method, texts)
        out[name] = {"closed": _closed(test, labels, probs[method]), "train_s": round(seconds, 1),
                     "val": manifest["metrics"],
                     "pipeline": evaluate("intent", test_path, Pipeline(model=tmp / method, ner=False))}
    out["ensemble (fast + fine-tune)"] = {"closed": _closed(test, labels, (probs["fast"] + probs["finetune"]) / 2)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shots", type=int, action="append", help="K (repeatable); default: full and 10")
    args = ap.parse_args()
    train_path, test_path = split_banking()
    train_rows, test_rows = _rows(train_path), _rows(test_path)
    labels = sorted({r["label"] for r in train_rows})
    print(f"Banking77 80/20 split: {len(train_rows)} train, {len(test_rows)} test, {len(labels)} labels")
    print("| setting | method | accuracy (closed) | accuracy (with abstention) | macro-F1 | ECE | train s |\n"
          "|---|---|---|---|---|---|---|")
    zs = zero_shot(test_rows, labels)
    print(f"| any | zero-shot embedding similarity (label names) | {zs['accuracy']} | - | {zs['macro_f1']} | - | 0 |")
    for k in args.shots or [None, 10]:
        setting = "full" if k is None else f"{k}-shot"
        train_k = _shots(train_rows, k)
        for name, m in (("TF-IDF + logistic regression", tfidf_lr(train_k, test_rows)),
                        ("baseline: frozen MiniLM + LogisticRegression()", afternoon_baseline(train_k, test_rows))):
            print(f"| {setting} | {name} | {m['accuracy']} | - | {m['macro_f1']} | {m['ece']} | "
                  f"{m.get('train_s', '-')} |")
        sys.stdout.flush()
        with tempfile.TemporaryDirectory() as tmp:
            for name, m in signals_methods(train_path, test_path, k, Path(tmp), test_rows).items():
                c, pl = m.get("closed", {}), m.get("pipeline", {})
                print(f"| {setting} | {name} | {c.get('accuracy', '-')} | {pl.get('accuracy', '-')} | "
                      f"{c.get('macro_f1', pl.get('macro_f1', '-'))} | {c.get('ece', pl.get('ece', '-'))} | "
                      f"{m.get('train_s', '-')} |")
                sys.stdout.flush()


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
