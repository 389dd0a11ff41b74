"""Issue 11 retrieval quality on Banking77: precision@10 of "same intent" for vector, keyword and hybrid search.

    .venv/bin/python eval/bench_retrieval.py --json eval/out/bench_retrieval/result.json

Corpus: the shared Banking77 train rows (/work/shared/data/banking77/data.jsonl, the official TRAIN split,
CC-BY-4.0) minus a stratified held-out slice of ``--queries`` rows (fixed seed; each intent gives its share,
at least one). The corpus goes through the project's real path: minimal ``ExtractionResult`` objects (no
signals) -> ``Store(ws).upsert`` -> ``Index.apply(added, removed, store)`` -> ``Index.save()``; the saved
index is then reopened with ``Index.open(ws)`` (as ``signals search`` does, so queries are embedded by the
exported ONNX query encoder when present) and each held-out text is searched with ``Index.search(text, k=10,
mode=m)``. A hit is a segment (a sentence); its ``doc_id`` gives its row's intent.

Metrics per mode: precision@10 (same-intent hits / 10, so missing hits count as wrong), MRR@10 (first
same-intent hit), hit@10 (at least one same-intent hit), and p50/p95 of ``SearchResult.took_ms`` (filter +
query embedding + ranking + fetching hits from the store).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "eval" / "out" / "bench_retrieval"
DATA = Path("/work/shared/data/banking77/data.jsonl")
THREADS = 2
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, str(THREADS))

import numpy as np  # noqa: E402

MODES = ("vector", "keyword", "hybrid")


def split(rows: list[dict], n_queries: int, seed: int) -> tuple[list[int], list[int]]:
    """Stratified hold-out: each label contributes round(n_queries * share) rows (at least one)."""
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        by_label[r["label"]].append(i)
    held: list[int] = []
    for label in sorted(by_label):
        idx = by_label[label]
        take = max(1, round(n_queries * len(idx) / len(rows)))
        held += [idx[j] for j in rng.permutation(len(idx))[:take]]
    held_set = set(held)
    return sorted(held), [i for i in range(len(rows)) if i not in held_set]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    import faiss
    import torch
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    torch.set_num_threads(THREADS)
    faiss.omp_set_num_threads(THREADS)
    logging.basicConfig(level=logging.WARNING)
    con = Console(stderr=True)

    from extractor.embed import load_embedder
    from extractor.index import Index, close_readers
    from extractor.store import Store
    from extractor.types import ExtractionResult, Provenance

    started = datetime.now(timezone.utc)
    rows = [json.loads(line) for line in DATA.read_text("utf-8").splitlines() if line.strip()]
    q_idx, c_idx = split(rows, args.queries, args.seed)
    label_of = {f"b77-{i:05d}": rows[i]["label"] for i in c_idx}
    con.print(f"Banking77 train: {len(rows):,} rows, {len({r['label'] for r in rows})} intents; "
              f"{len(c_idx):,} in the corpus, {len(q_idx):,} held-out queries")

    ws = OUT / f"ws_s{args.seed}"
    close_readers(ws)
    shutil.rmtree(ws, ignore_errors=True)
    now = datetime.now(timezone.utc)
    prov = Provenance(version="bench", created=now)
    results = [ExtractionResult(id=f"b77-{i:05d}", text=rows[i]["text"], channel="chat", provenance=prov)
               for i in c_idx]

    t0 = time.perf_counter()
    emb = load_embedder()
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    idx = Index.open(ws, emb)
    with Store(ws) as store:
        added, removed = store.upsert(results)
        t_up = time.perf_counter() - t0
        t1 = time.perf_counter()
        idx.apply(added, removed, store)
        t_apply = time.perf_counter() - t1
        t2 = time.perf_counter()
        idx.save()
        t_save = time.perf_counter() - t2
        counts = store.counts()
    build = {"encoder_load_s": t_load, "upsert_s": t_up, "apply_s": t_apply, "save_s": t_save, **counts,
             "vectors": int(idx.vectors.ntotal), "index_type": idx.manifest.get("index_type")}
    con.print(f"indexed: {build}")

    idx = Index.open(ws)  # as `signals search` opens it
    encoder = type(idx.embedder).__name__
    queries = [rows[i]["text"] for i in q_idx]
    gold = [rows[i]["label"] for i in q_idx]
    out_modes: dict[str, dict] = {}
    for mode in MODES:
        for q in queries[:10]:  # warm-up (first ONNX/BM25 call)
            idx.search(q, k=args.k, mode=mode)
        p_at, rr, hit, took, wall, n_hits = [], [], [], [], [], []
        with Progress(console=con, transient=True) as bar:
            task = bar.add_task(f"{mode} search", total=len(queries))
            for q, g in zip(queries, gold):
                t0 = time.perf_counter()
                res = idx.search(q, k=args.k, mode=mode)
                wall.append((time.perf_counter() - t0) * 1000)
                took.append(res.took_ms)
                same = [label_of.get(h.doc_id) == g for h in res.hits[:args.k]]
                n_hits.append(len(res.hits))
                p_at.append(sum(same) / args.k)
                first = next((r for r, s in enumerate(same, 1) if s), None)
                rr.append(1.0 / first if first else 0.0)
                hit.append(1.0 if first else 0.0)
                bar.advance(task)
        out_modes[mode] = {"precision@10": float(np.mean(p_at)), "mrr@10": float(np.mean(rr)),
                           "hit@10": float(np.mean(hit)), "mean_hits": float(np.mean(n_hits)),
                           "p50_ms": float(np.percentile(took, 50)), "p95_ms": float(np.percentile(took, 95)),
                           "wall_p50_ms": float(np.percentile(wall, 50)), "strategy": res.strategy}

    table = Table(title=f"Banking77 retrieval, {len(queries):,} held-out queries, k={args.k}")
    for col in ("mode", "precision@10", "MRR@10", "hit@10", "p50 ms", "p95 ms", "strategy"):
        table.add_column(col)
    for mode, d in out_modes.items():
        table.add_row(mode, f"{d['precision@10']:.3f}", f"{d['mrr@10']:.3f}", f"{d['hit@10']:.3f}",
                      f"{d['p50_ms']:.1f}", f"{d['p95_ms']:.1f}", d["strategy"])
    Console().print(table)
    md = ["| mode | precision@10 | MRR@10 | hit@10 | p50 ms | p95 ms | strategy |", "|---|---|---|---|---|---|---|"]
    md += [f"| {m} | {d['precision@10']:.3f} | {d['mrr@10']:.3f} | {d['hit@10']:.3f} | {d['p50_ms']:.1f} | "
           f"{d['p95_ms']:.1f} | {d['strategy']} |" for m, d in out_modes.items()]
    print("\n".join(md))
    report = {"benchmark": "eval/bench_retrieval.py", "command": " ".join([sys.executable] + sys.argv),
              "started_utc": started.isoformat(timespec="seconds"), "corpus": len(c_idx), "queries": len(q_idx),
              "seed": args.seed, "k": args.k, "query_encoder": encoder, "build": build, "modes": out_modes,
              "machine": {"cpus": os.cpu_count(), "threads": THREADS}}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=str))
    close_readers(ws)


if __name__ == "__main__":
    main()
