"""Out-of-scope detection, CLINC150 protocol, on Banking77 with 10 intents held out.

    .venv/bin/python eval/bench_oos.py

The 80/20 seed-0 split of the shared Banking77 train release (eval/run_evals.py); 10 intents drawn
with ``random.Random(0)`` are removed from training and their test rows relabelled
``out_of_scope``. No out-of-scope example is seen in training, and each model's threshold is the
one `signals train` calibrates on its own validation split (2% quantile of the confidence of
correctly classified validation rows), so the test data chooses nothing.

Reported per method, in the same run: in-scope accuracy (an in-scope row predicted out_of_scope is
an error), out-of-scope recall and precision at the calibrated threshold; AUROC of the confidence
for in-scope vs out-of-scope; and, for comparison with published operating points, the
out-of-scope recall at the best threshold giving in-scope accuracy >= 0.95 — chosen on the test set,
so labelled "oracle". The baseline is frozen MiniLM + LogisticRegression() with its max probability
and the same threshold rule.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_intent import _rows, model_proba  # noqa: E402
from run_evals import CACHE, split_banking  # noqa: E402

from extractor.evaluate import oos_metrics  # noqa: E402
from extractor.taxonomy import OUT_OF_SCOPE  # noqa: E402

HELD_OUT = 10


def oos_figures(gold: list[str], labels: list[str], p: np.ndarray, threshold: float) -> dict:
    from sklearn.metrics import roc_auc_score

    conf = p.max(1)
    best = np.array([labels[i] for i in p.argmax(1)])
    is_oos = np.array(gold) == OUT_OF_SCOPE

    def at(t: float) -> dict:
        return oos_metrics(gold, np.where(conf < t, OUT_OF_SCOPE, best).tolist())

    m = at(threshold)
    curve = [at(t) for t in np.unique(conf)]
    oracle = max((c["oos_recall"] for c in curve if c["in_scope_accuracy"] >= 0.95), default=None)
    return {"threshold": round(threshold, 4), **m, "auroc": round(float(roc_auc_score(is_oos, -conf)), 4),
            "closed_in_scope_accuracy": oos_metrics(gold, best.tolist())["in_scope_accuracy"],
            "oracle_recall_at_in_scope_0.95": oracle}


def baseline(train: list[dict], test_texts: list[str], seed: int = 0) -> tuple[list[str], np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    from extractor.embed import load_embedder
    from extractor.train import _split

    emb = load_embedder()
    x, y = emb.encode([r["text"] for r in train]), [r["label"] for r in train]
    fit, val = _split(y, seed)
    clf = LogisticRegression(max_iter=1000).fit(x[fit], [y[i] for i in fit])
    pv = clf.predict_proba(x[val])
    ok = clf.classes_[pv.argmax(1)] == np.array([y[i] for i in val])
    threshold = float(np.quantile(pv.max(1)[ok], 0.02))
    clf = LogisticRegression(max_iter=1000).fit(x, y)
    return list(clf.classes_), clf.predict_proba(emb.encode(test_texts)), threshold


def main() -> None:
    from extractor.train import load_model, train

    train_path, test_path = split_banking()
    train_rows, test_rows = _rows(train_path), _rows(test_path)
    labels = sorted({r["label"] for r in train_rows})
    held = set(random.Random(0).sample(labels, HELD_OUT))
    kept = [r for r in train_rows if r["label"] not in held]
    path = CACHE / "banking77_oos_train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in kept), "utf-8")
    gold = [OUT_OF_SCOPE if r["label"] in held else r["label"] for r in test_rows]
    texts = [r["text"] for r in test_rows]
    print(f"held out ({HELD_OUT}): {', '.join(sorted(held))}")
    print(f"train {len(kept)} rows / {len(labels) - HELD_OUT} intents; test {len(gold)} rows, "
          f"{gold.count(OUT_OF_SCOPE)} out-of-scope")
    cols = ("in_scope_accuracy", "oos_recall", "oos_precision", "auroc", "closed_in_scope_accuracy",
            "oracle_recall_at_in_scope_0.95", "threshold")
    print("| method | " + " | ".join(cols) + " | train s |\n|" + "---|" * (len(cols) + 2))
    t0 = time.perf_counter()
    names, p, thr = baseline(kept, texts)
    rows = [("baseline: frozen MiniLM + LogisticRegression()", oos_figures(gold, names, p, thr),
             time.perf_counter() - t0)]
    print("| " + rows[0][0] + " | " + " | ".join(str(rows[0][1][c]) for c in cols) + f" | {rows[0][2]:.0f} |")
    sys.stdout.flush()
    with tempfile.TemporaryDirectory() as tmp:
        for method in ("fast", "finetune"):
            t0 = time.perf_counter()
            train("intent", path, Path(tmp) / method, method=method)
            seconds = time.perf_counter() - t0
            names, p = model_proba(Path(tmp) / method, texts)
            thr = load_model(Path(tmp) / method)[0]["threshold"]
            fig = oos_figures(gold, names, p, thr)
            print(f"| signals train {'--fast' if method == 'fast' else '(fine-tune)'} | "
                  + " | ".join(str(fig[c]) for c in cols) + f" | {seconds:.0f} |")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
