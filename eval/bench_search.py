"""Issue 11 search benchmark: 1M vectors, ours (FAISS exact + HNSW, DuckDB filters) vs LanceDB vs Chroma.

    .venv/bin/python eval/bench_search.py                       # the full run (1,000,000 vectors)
    .venv/bin/python eval/bench_search.py --n 50000             # a quick development run
    .venv/bin/python eval/bench_search.py --json eval/out/bench_search/result.json

Vectors. Every text of /work/shared/data/*/data.jsonl (``text``; each turn's ``text`` for sgd_dialogues),
exact duplicates dropped, is embedded with the project's MiniLM (``extractor.embed.load_embedder``, unit
vectors) and cached in eval/out/bench_search/real.npy. ``--queries`` real vectors (seeded) are held out
as queries and never enter the corpus. The corpus is every other real vector plus synthetic ones up to
``--n``: for synthetic row r, i is a uniformly drawn real corpus vector, j is one of the 10 nearest real
neighbours of i (probability 0.8) or a uniformly drawn real vector (0.2), a ~ U(0.2, 0.8) and the row is
``normalise(a*v_i + (1-a)*v_j + e)`` with e ~ N(0, (0.1/sqrt(384))^2) per dimension (noise norm ~0.1).
The corpus order is then shuffled (seeded), so any prefix of it is a random sample.

Metadata. Corpus row r is segment r of document r // 10 (``--seg-per-doc``); documents get a customer
(``--customers``, uniform), a channel (chat .40, email .25, phone .20, review .10, survey .05), a
created_at uniform over 2026 and one document-level intent signal label_000..label_099 (uniform, so
``intent=label_XXX`` is ~1% of segments). They are written to a real workspace store with the project's
DuckDB schema (``extractor.store._DDL``) by bulk insert, and our filtered queries run
``Store(ws, read_only=True).filter_ids(where)`` + ``Index.rank_vector``, the path ``Index.search`` takes.

Each system builds and queries in its own subprocess (peak RSS is per system); vectors travel as .npy.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "eval" / "out" / "bench_search"
DATA = Path("/work/shared/data")
THREADS = 2

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ.setdefault(_v, str(THREADS))

import numpy as np  # noqa: E402

CHANNELS = ("chat", "email", "phone", "review", "survey")
CHANNEL_P = (0.40, 0.25, 0.20, 0.10, 0.05)
N_INTENTS = 100
DIM = 384


def console():
    from rich.console import Console

    return Console(stderr=True)


def log(msg: str) -> None:
    console().print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {msg}")


def peak_rss_mb() -> float:
    """This process's own peak RSS: VmHWM of its address space. (``ru_maxrss`` is not used: Linux carries it over
    from the parent across fork+exec, so a child would report at least the orchestrator's peak.)"""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def dir_size_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 2**20
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def pct(xs, q) -> float:
    return float(np.percentile(np.asarray(xs, dtype=np.float64), q)) if len(xs) else float("nan")


# --- real vectors ---------------------------------------------------------------------------------------------

def real_texts() -> list[str]:
    """Every text of the shared data sets (turn texts for dialogues), exact duplicates dropped, in file order."""
    seen: dict[str, None] = {}
    for path in sorted(glob.glob(str(DATA / "*" / "data.jsonl"))):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                turns = row.get("turns")
                texts = [t.get("text") for t in turns] if isinstance(turns, list) else [row.get("text")]
                for t in texts:
                    if isinstance(t, str) and t.strip():
                        seen.setdefault(t.strip(), None)
    return list(seen)


def load_real(progress: bool = True) -> tuple[np.ndarray, float | None]:
    """The cached real embeddings (computing them on the first run); returns (vectors, seconds spent embedding)."""
    path, meta = OUT / "real.npy", OUT / "real.json"
    texts = real_texts()
    if path.exists() and meta.exists() and json.loads(meta.read_text())["n"] == len(texts):
        return np.load(path), None
    import torch
    from rich.progress import Progress

    torch.set_num_threads(THREADS)
    from extractor.embed import load_embedder

    emb = load_embedder()
    t0 = time.perf_counter()
    order = np.argsort([len(t) for t in texts], kind="stable")  # similar lengths per batch: less padding
    out = np.empty((len(texts), emb.dim), dtype=np.float32)
    step = 2048
    with Progress(console=console(), disable=not progress) as bar:
        task = bar.add_task(f"embedding {len(texts):,} real texts", total=len(texts))
        for s in range(0, len(texts), step):
            sel = order[s:s + step]
            out[sel] = emb.encode([texts[i] for i in sel], batch_size=64)
            bar.advance(task, len(sel))
    took = time.perf_counter() - t0
    OUT.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    meta.write_text(json.dumps({"n": len(texts), "model": emb.model_id, "embed_s": took,
                                "norm_min": float(np.linalg.norm(out, axis=1).min())}))
    return out, took


# --- corpus: real + synthetic ---------------------------------------------------------------------------------

def real_knn(base: np.ndarray, k: int, cache: Path) -> np.ndarray:
    """The k nearest real neighbours (self excluded) of every real corpus vector, exact (cached)."""
    if cache.exists():
        knn = np.load(cache)
        if knn.shape == (len(base), k):
            return knn
    import faiss
    from rich.progress import Progress

    flat = faiss.IndexFlatIP(base.shape[1])
    flat.add(base)
    knn = np.empty((len(base), k), dtype=np.int64)
    step = 4096
    with Progress(console=console()) as bar:
        task = bar.add_task(f"exact {k}-NN among {len(base):,} real vectors (for synthetic pairs)", total=len(base))
        for s in range(0, len(base), step):
            _, nn = flat.search(base[s:s + step], k + 1)
            for r, row in enumerate(nn):  # drop self (usually first; duplicates of vectors may reorder)
                own = s + r
                knn[own] = [x for x in row if x != own][:k]
            bar.advance(task, min(step, len(base) - s))
    np.save(cache, knn)
    return knn


def build_corpus(real: np.ndarray, n: int, nq: int, seed: int) -> dict:
    """Queries (held-out real vectors), the shuffled corpus of ``n`` rows, and each row's real text index (-1)."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(real))
    q_idx, base_idx = perm[:nq], perm[nq:]
    queries = real[q_idx]
    base = real[base_idx]
    if n <= len(base):
        pick = rng.choice(len(base), n, replace=False)
        return {"queries": queries, "corpus": base[pick], "src": base_idx[pick], "n_real": n, "n_synth": 0,
                "q_src": q_idx}
    knn = real_knn(base, 10, OUT / f"knn_{seed}_{len(base)}.npy")
    m = n - len(base)
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    out[:len(base)] = base
    sigma = 0.1 / np.sqrt(real.shape[1])
    step = 100_000
    for s in range(0, m, step):
        c = min(step, m - s)
        i = rng.integers(0, len(base), c)
        near = rng.random(c) < 0.8
        j = np.where(near, knn[i, rng.integers(0, knn.shape[1], c)], rng.integers(0, len(base), c))
        a = rng.uniform(0.2, 0.8, c).astype(np.float32)[:, None]
        v = a * base[i] + (1 - a) * base[j] + rng.normal(0.0, sigma, (c, real.shape[1])).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        out[len(base) + s:len(base) + s + c] = v
    order = rng.permutation(n)
    src = np.where(order < len(base), base_idx[np.minimum(order, len(base) - 1)], -1)
    return {"queries": queries, "corpus": out[order], "src": src, "n_real": len(base), "n_synth": m, "q_src": q_idx}


def make_meta(n: int, seed: int, seg_per_doc: int, n_customers: int) -> dict:
    rng = np.random.default_rng(seed + 1)
    n_docs = -(-n // seg_per_doc)
    t0 = int(datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp())
    return {
        "row_doc": np.arange(n, dtype=np.int64) // seg_per_doc,
        "doc_customer": rng.integers(0, n_customers, n_docs),
        "doc_channel": rng.choice(len(CHANNELS), n_docs, p=CHANNEL_P),
        "doc_created": t0 + rng.integers(0, 365 * 86400, n_docs),
        "doc_intent": rng.integers(0, N_INTENTS, n_docs),
        "seg_per_doc": seg_per_doc,
    }


def doc_name(d: int) -> str:
    return f"D{d:07d}"


def cust_name(c: int) -> str:
    return f"C{c:05d}"


def intent_name(i: int) -> str:
    return f"label_{i:03d}"


def seg_ids_of(meta: dict, n: int) -> np.ndarray:
    """Each row's segment id, made the way the store makes them (doc id, turn None, start offset)."""
    from extractor.store import segment_id

    spd = meta["seg_per_doc"]
    return np.fromiter((segment_id(doc_name(r // spd), None, 40 * (r % spd)) for r in range(n)), dtype=np.int64,
                       count=n)


def build_store(ws: Path, n: int, meta: dict, seg_ids: np.ndarray, texts: list[str], src: np.ndarray) -> dict:
    """A workspace store (the project's DDL) holding the first ``n`` rows' segments, documents and intent signals."""
    import duckdb
    import pyarrow as pa

    from extractor.store import _DDL, STORE_FILE

    ws.mkdir(parents=True, exist_ok=True)
    (ws / STORE_FILE).unlink(missing_ok=True)
    t0 = time.perf_counter()
    spd = meta["seg_per_doc"]
    n_docs = -(-n // spd)
    doc_ids = [doc_name(d) for d in range(n_docs)]
    docs = pa.table({
        "doc_id": doc_ids,
        "customer_id": [cust_name(c) for c in meta["doc_customer"][:n_docs]],
        "channel": [CHANNELS[c] for c in meta["doc_channel"][:n_docs]],
        "created_at": pa.array(meta["doc_created"][:n_docs] * 1_000_000, pa.timestamp("us", tz="UTC")),
        "text": pa.nulls(n_docs, pa.string()),
        "n_turns": pa.nulls(n_docs, pa.int32()),
    })
    rows = np.arange(n)
    segs = pa.table({
        "seg_id": seg_ids[:n],
        "doc_id": pa.array([doc_ids[r // spd] for r in range(n)]),
        "turn": pa.nulls(n, pa.int32()),
        "speaker": pa.nulls(n, pa.string()),
        "role": pa.array(["customer"] * n),
        "start": pa.array(40 * (rows % spd), pa.int32()),
        "end": pa.array(40 * (rows % spd) + 39, pa.int32()),
        "text": pa.array([texts[s] if s >= 0 else "[synthetic]" for s in src[:n]]),
    })
    sigs = pa.table({
        "doc_id": doc_ids, "sig_idx": pa.array(np.zeros(n_docs, np.int32)), "kind": ["intent"] * n_docs,
        "label": [intent_name(i) for i in meta["doc_intent"][:n_docs]], "score": pa.nulls(n_docs, pa.float64()),
        "confidence": pa.array(np.full(n_docs, 0.9)), "speaker": pa.nulls(n_docs, pa.string()),
        "value": pa.nulls(n_docs, pa.string()), "extractor": ["bench"] * n_docs, "scope": ["document"] * n_docs,
    })
    con = duckdb.connect(str(ws / STORE_FILE))
    con.execute(_DDL)
    doc_cols = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                          "WHERE table_name = 'documents'").fetchall()}
    if "customer_key" in doc_cols:  # newer schema: the normalised customer key, as Store.upsert writes it
        from extractor import store as store_mod

        norm = getattr(store_mod, "norm_key", lambda c: c)
        keys = {c: norm(cust_name(c)) for c in np.unique(meta["doc_customer"][:n_docs]).tolist()}
        docs = docs.append_column("customer_key", pa.array([keys[c] for c in meta["doc_customer"][:n_docs].tolist()]))
    for name, tab in (("documents", docs), ("segments", segs), ("signals", sigs)):
        con.register("src_t", tab)
        con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM src_t")  # columns matched by name
        con.unregister("src_t")
    con.execute("CHECKPOINT")
    counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("documents", "segments", "signals")}
    con.close()
    return {"store_build_s": time.perf_counter() - t0, "store_mb": dir_size_mb(ws / STORE_FILE), **counts}


# --- filters --------------------------------------------------------------------------------------------------

def make_filters(meta: dict, n: int, nq: int, nf: int, seed: int) -> list[dict]:
    """Filtered queries: intent (~1%), customer (~0.01%) and channel=survey (~5%), each on ``nf`` queries."""
    rng = np.random.default_rng(seed + 2)
    n_docs = -(-n // meta["seg_per_doc"])
    present = np.unique(meta["doc_customer"][:n_docs])
    out = []
    for kind in ("intent", "customer", "channel"):
        for qi in rng.choice(nq, min(nf, nq), replace=False):
            if kind == "intent":
                v = intent_name(int(rng.integers(0, N_INTENTS)))
                f = {"ours": f"intent={v}", "lance": f"intent = '{v}'", "chroma": {"intent": v}, "field": "intent"}
            elif kind == "customer":
                v = cust_name(int(rng.choice(present)))
                f = {"ours": f"customer_id={v}", "lance": f"customer_id = '{v}'", "chroma": {"customer_id": v},
                     "field": "customer_id"}
            else:
                v = "survey"
                f = {"ours": "channel=survey", "lance": "channel = 'survey'", "chroma": {"channel": "survey"},
                     "field": "channel"}
            out.append({"kind": kind, "qi": int(qi), "value": v, **f})
    return out


def row_field(meta: dict, field: str, n: int) -> np.ndarray:
    """Per-row values (strings) of a metadata field, for the first ``n`` rows."""
    doc = meta["row_doc"][:n]
    if field == "intent":
        names = np.array([intent_name(i) for i in range(N_INTENTS)])
        return names[meta["doc_intent"][doc]]
    if field == "customer_id":
        names = np.array([cust_name(i) for i in range(int(meta["doc_customer"].max()) + 1)])
        return names[meta["doc_customer"][doc]]
    if field == "channel":
        return np.array(CHANNELS)[meta["doc_channel"][doc]]
    raise ValueError(field)


# --- children: one system each --------------------------------------------------------------------------------

def timed_queries(fn, queries: np.ndarray, label: str, warm: int = 20) -> tuple[list[float], list[list[int]], list]:
    """Run ``fn(q)`` one query at a time: latencies (ms), returned rows, extra per-query info."""
    from rich.progress import Progress

    for q in queries[:warm]:
        fn(q)
    lat, rows, extra = [], [], []
    with Progress(console=console(), transient=True) as bar:
        task = bar.add_task(label, total=len(queries))
        for q in queries:
            t0 = time.perf_counter()
            got, info = fn(q)
            lat.append((time.perf_counter() - t0) * 1000)
            rows.append([int(x) for x in got])
            extra.append(info)
            bar.advance(task)
    return lat, rows, extra


def child_main(args) -> None:
    wd = Path(args.workdir)
    m = args.m
    import faiss  # noqa: F401  (thread pinning before any build)

    faiss.omp_set_num_threads(THREADS)
    corpus = np.ascontiguousarray(np.load(wd / "corpus.npy", mmap_mode="r")[:m])
    queries = np.load(wd / "queries.npy")
    filters = json.loads((wd / "filters.json").read_text())
    res = {"system": args.child, "n": m, "base_rss_mb": rss_mb()}
    fn = {"ours-exact": child_ours, "ours-hnsw": child_ours, "lance": child_lance, "chroma": child_chroma}[args.child]
    res.update(fn(args, wd, m, corpus, queries, filters))
    res["peak_rss_mb"] = peak_rss_mb()
    name = f"res_{args.child}_{m}_requery.json" if args.reuse_index else f"res_{args.child}_{m}.json"
    (wd / name).write_text(json.dumps(res))


def child_ours(args, wd, m, corpus, queries, filters) -> dict:
    import faiss

    from extractor.index import HNSW_ABOVE, Index
    from extractor.store import Store

    seg_ids = np.load(wd / "seg_ids.npy")[:m]
    order = np.argsort(seg_ids)
    sorted_ids = seg_ids[order]

    def to_rows(ids):
        pos = np.searchsorted(sorted_ids, ids)
        pos = np.minimum(pos, len(sorted_ids) - 1)
        return np.where(sorted_ids[pos] == ids, order[pos], -1)

    hnsw = args.child == "ours-hnsw"
    out: dict = {"hnsw_above_default": HNSW_ABOVE}
    idx = Index(wd / f"ws_{m}", embedder=None, embedder_id="bench", dim=DIM, hnsw_above=0 if hnsw else 10**12)
    path = wd / f"{args.child}_{m}.faiss"
    if args.reuse_index and path.exists():  # re-measure queries only: build figures come from the earlier run
        idx.vectors = faiss.read_index(str(path))
        out["reused_index"] = str(path)
        out["build_s"] = float("nan")
        out["disk_mb"] = dir_size_mb(path)
        log(f"[{args.child}] reusing {path.name} (queries only)")
    else:
        log(f"[{args.child}] building over {m:,} vectors")
        t0 = time.perf_counter()
        idx.vectors.add_with_ids(corpus, seg_ids)  # what Index.apply does after embedding
        t1 = time.perf_counter()
        idx._maybe_hnsw()  # the project's move to HNSW (M=32, efConstruction=80), as apply() calls it
        t2 = time.perf_counter()
        out["build_s"] = t2 - t0
        out["build_parts"] = {"flat_add_s": t1 - t0, "maybe_hnsw_s": t2 - t1}
        out["rss_after_build_mb"] = rss_mb()
        t0 = time.perf_counter()
        faiss.write_index(idx.vectors, str(path))
        out["write_s"] = time.perf_counter() - t0
        out["disk_mb"] = dir_size_mb(path)
    base = faiss.downcast_index(idx.vectors.index)
    out["index_type"] = type(base).__name__
    log(f"[{args.child}] {out['index_type']} over {int(idx.vectors.ntotal):,} vectors, build {out['build_s']:.1f} s, "
        f"{out['disk_mb']:.0f} MB on disk")

    def plain(q):
        found, strategy = idx.rank_vector(q, None, 10)
        return to_rows(np.array([i for i, _ in found], dtype=np.int64)), strategy

    configs = {}
    if hnsw:
        import extractor.index as index_mod

        # rank_vector may pass its own efSearch (index.EF_SEARCH) per query; otherwise the index's own value rules
        module_ef = getattr(index_mod, "EF_SEARCH", None)
        as_built = int(module_ef) if module_ef is not None else int(base.hnsw.efSearch)
        out["ef_search_as_built"] = as_built
        out["ef_search_stored_in_index"] = int(base.hnsw.efSearch)
        out["ef_construction"] = int(base.hnsw.efConstruction)
        for ef in [as_built] + [e for e in (16, 32, 64, 128, 256) if e != as_built]:
            base.hnsw.efSearch = ef
            if module_ef is not None:
                index_mod.EF_SEARCH = ef
            name = f"efSearch={ef}" + (" (as built)" if ef == as_built else "")
            lat, rows, strat = timed_queries(plain, queries, f"[ours-hnsw] {name}")
            configs[name] = {"lat_ms": lat, "rows": rows, "strategy": strat[0], "ef": ef}
        base.hnsw.efSearch = out["ef_search_stored_in_index"]
        if module_ef is not None:
            index_mod.EF_SEARCH = module_ef
    else:
        lat, rows, strat = timed_queries(plain, queries[:500], "[ours-exact] queries")  # 500: a flat scan is slow
        configs["exact"] = {"lat_ms": lat, "rows": rows, "strategy": strat[0]}
    out["configs"] = configs
    if hnsw:
        st = Store(wd / f"ws_{m}", read_only=True)
        fl: dict = {}
        for kind in dict.fromkeys(f["kind"] for f in filters):
            fs = [f for f in filters if f["kind"] == kind]
            for f in fs[:5]:  # warm-up
                idx.rank_vector(queries[f["qi"]], st.filter_ids(f["ours"]), 10)
            recs = {"lat_ms": [], "filter_ms": [], "rank_ms": [], "rows": [], "strategy": [], "n_allowed": []}
            for f in fs:
                t0 = time.perf_counter()
                allowed = st.filter_ids(f["ours"])
                t1 = time.perf_counter()
                found, strategy = idx.rank_vector(queries[f["qi"]], allowed, 10)
                t2 = time.perf_counter()
                recs["lat_ms"].append((t2 - t0) * 1000)
                recs["filter_ms"].append((t1 - t0) * 1000)
                recs["rank_ms"].append((t2 - t1) * 1000)
                recs["rows"].append([int(x) for x in to_rows(np.array([i for i, _ in found], dtype=np.int64))])
                recs["strategy"].append(strategy)
                recs["n_allowed"].append(int(len(allowed)))
            fl[kind] = recs
            log(f"[ours-hnsw] filter {kind}: p50 {pct(recs['lat_ms'], 50):.1f} ms "
                f"(filter_ids {pct(recs['filter_ms'], 50):.1f}, rank {pct(recs['rank_ms'], 50):.1f})")
        st.close()
        out["filtered"] = fl
    return out


def child_lance(args, wd, m, corpus, queries, filters) -> dict:
    os.environ.setdefault("RUST_LOG", "error")  # no deprecation warning on stderr per query
    import lancedb
    import pyarrow as pa
    from lancedb.index import Bitmap, BTree, IvfPq

    meta = dict(np.load(wd / "meta.npz"))
    path = wd / f"lance_{m}"
    import shutil

    if args.reuse_index and path.exists():
        tbl = lancedb.connect(str(path)).open_table("bench")
        out: dict = {"reused_index": str(path), "build_s": float("nan"), "disk_mb": dir_size_mb(path),
                     "versions": {"lancedb": lancedb.__version__}}
        return _lance_queries(args, tbl, out, queries, filters)
    shutil.rmtree(path, ignore_errors=True)
    db = lancedb.connect(str(path))
    t0 = time.perf_counter()
    tab = pa.table({
        "id": pa.array(np.arange(m, dtype=np.int64)),
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(corpus.reshape(-1)), DIM),
        "intent": pa.array(row_field(meta, "intent", m)),
        "customer_id": pa.array(row_field(meta, "customer_id", m)),
        "channel": pa.array(row_field(meta, "channel", m)),
        "created_at": pa.array(meta["doc_created"][meta["row_doc"][:m]] * 1_000_000, pa.timestamp("us", tz="UTC")),
    })
    tbl = db.create_table("bench", data=tab, mode="overwrite")
    del tab
    t1 = time.perf_counter()
    log(f"[lance] table written in {t1 - t0:.1f} s; building IVF_PQ")
    tbl.create_index("vector", config=IvfPq(distance_type="dot"))
    t2 = time.perf_counter()
    log(f"[lance] IVF_PQ built in {t2 - t1:.1f} s; scalar indices")
    tbl.create_index("intent", config=Bitmap())
    tbl.create_index("channel", config=Bitmap())
    tbl.create_index("customer_id", config=BTree())
    t3 = time.perf_counter()
    out: dict = {"build_s": t3 - t0, "build_parts": {"write_table_s": t1 - t0, "ivf_pq_s": t2 - t1,
                                                     "scalar_indices_s": t3 - t2},
                 "rss_after_build_mb": rss_mb(), "disk_mb": dir_size_mb(path),
                 "index": "IVF_PQ (distance dot; default partitions/sub-vectors/nprobes)",
                 "versions": {"lancedb": lancedb.__version__}}
    try:
        out["indices"] = [str(i) for i in tbl.list_indices()]
    except Exception as exc:  # informational only
        out["indices"] = [repr(exc)]
    return _lance_queries(args, tbl, out, queries, filters)


def _lance_queries(args, tbl, out: dict, queries, filters) -> dict:
    def q_default(q):
        r = tbl.search(q).distance_type("dot").limit(10).select(["id", "_distance"]).to_arrow()
        return r["id"].to_pylist(), None

    def q_refine(q):
        r = tbl.search(q).distance_type("dot").limit(10).refine_factor(10).select(["id", "_distance"]).to_arrow()
        return r["id"].to_pylist(), None

    configs = {}
    for name, fn in (("IVF_PQ default", q_default), ("IVF_PQ refine_factor=10", q_refine)):
        lat, rows, _ = timed_queries(fn, queries, f"[lance] {name}")
        configs[name] = {"lat_ms": lat, "rows": rows}
    out["configs"] = configs
    fl = {}
    for kind in dict.fromkeys(f["kind"] for f in filters):
        fs = [f for f in filters if f["kind"] == kind]
        recs: dict = {"lat_ms": [], "rows": []}
        for f in fs[:5]:
            tbl.search(queries[f["qi"]]).distance_type("dot").where(f["lance"], prefilter=True).limit(10).to_arrow()
        t_kind = time.perf_counter()
        for f in fs:
            if len(recs["lat_ms"]) >= 20 and time.perf_counter() - t_kind > args.filter_budget_s:
                break  # a slow filter: measured on the queries done so far
            t0 = time.perf_counter()
            r = tbl.search(queries[f["qi"]]).distance_type("dot").where(f["lance"], prefilter=True).limit(10) \
                .select(["id", "_distance"]).to_arrow()
            rows = r["id"].to_pylist()
            recs["lat_ms"].append((time.perf_counter() - t0) * 1000)
            recs["rows"].append(rows)
        fl[kind] = recs
        log(f"[lance] filter {kind}: p50 {pct(recs['lat_ms'], 50):.1f} ms")
    out["filtered"] = fl
    return out


def child_chroma(args, wd, m, corpus, queries, filters) -> dict:
    import shutil

    import chromadb
    from chromadb.config import Settings

    meta = dict(np.load(wd / "meta.npz"))
    path = wd / f"chroma_{m}"
    intents, custs, chans = (row_field(meta, f, m) for f in ("intent", "customer_id", "channel"))
    created = meta["doc_created"][meta["row_doc"][:m]]
    if args.reuse_index and path.exists():
        client = chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))
        t0 = time.perf_counter()
        col = client.get_collection("bench", embedding_function=None)
        col.query(query_embeddings=[queries[0]], n_results=10, include=["distances"])  # loads the index
        out = {"reused_index": str(path), "build_s": float("nan"), "open_s": time.perf_counter() - t0,
               "count": col.count(), "disk_mb": dir_size_mb(path), "versions": {"chromadb": chromadb.__version__}}
        return _chroma_queries(args, col, out, queries, filters)
    shutil.rmtree(path, ignore_errors=True)
    client = chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))
    col = client.create_collection("bench", configuration={"hnsw": {"space": "ip", "num_threads": THREADS}},
                                   embedding_function=None)
    bs = client.get_max_batch_size()
    from rich.progress import Progress

    t0 = time.perf_counter()
    built = 0
    with Progress(console=console()) as bar:
        task = bar.add_task(f"[chroma] adding {m:,} vectors (batches of {bs})", total=m)
        while built < m:
            e = min(built + bs, m)
            col.add(ids=[str(r) for r in range(built, e)], embeddings=corpus[built:e],
                    metadatas=[{"intent": str(intents[r]), "customer_id": str(custs[r]), "channel": str(chans[r]),
                                "created_at": int(created[r])} for r in range(built, e)])
            bar.advance(task, e - built)
            built = e
            if time.perf_counter() - t0 > args.peer_budget_s and built < m:
                log(f"[chroma] build budget {args.peer_budget_s:.0f} s spent at {built:,} of {m:,} vectors: stopping")
                break
    build_s = time.perf_counter() - t0
    count = col.count()
    out: dict = {"build_s": build_s, "n_built": built, "count": count, "rss_after_build_mb": rss_mb(),
                 "disk_mb": dir_size_mb(path), "index": "HNSW (space ip, defaults otherwise)",
                 "versions": {"chromadb": chromadb.__version__}}
    try:
        out["configuration"] = json.loads(json.dumps(col.configuration_json, default=str))
    except Exception as exc:
        out["configuration"] = repr(exc)
    log(f"[chroma] {built:,} vectors in {build_s:.1f} s, {out['disk_mb']:.0f} MB on disk")
    return _chroma_queries(args, col, out, queries, filters)


def _chroma_queries(args, col, out: dict, queries, filters) -> dict:
    def q_plain(q):
        r = col.query(query_embeddings=[q], n_results=10, include=["distances"])
        return [int(x) for x in r["ids"][0]], None

    lat, rows, _ = timed_queries(q_plain, queries, "[chroma] queries")
    out["configs"] = {"HNSW default": {"lat_ms": lat, "rows": rows}}
    fl = {}
    for kind in dict.fromkeys(f["kind"] for f in filters):
        fs = [f for f in filters if f["kind"] == kind]
        recs: dict = {"lat_ms": [], "rows": []}
        for f in fs[:5]:
            col.query(query_embeddings=[queries[f["qi"]]], n_results=10, where=f["chroma"], include=["distances"])
        t_kind = time.perf_counter()
        for f in fs:
            if len(recs["lat_ms"]) >= 20 and time.perf_counter() - t_kind > args.filter_budget_s:
                break  # a slow filter: measured on the queries done so far
            t0 = time.perf_counter()
            r = col.query(query_embeddings=[queries[f["qi"]]], n_results=10, where=f["chroma"], include=["distances"])
            rows = [int(x) for x in r["ids"][0]]
            recs["lat_ms"].append((time.perf_counter() - t0) * 1000)
            recs["rows"].append(rows)
        fl[kind] = recs
        log(f"[chroma] filter {kind}: p50 {pct(recs['lat_ms'], 50):.1f} ms")
    out["filtered"] = fl
    return out


# --- the orchestrator -----------------------------------------------------------------------------------------

def run_child(system: str, wd: Path, m: int, args) -> dict:
    """One system's build + queries in a subprocess; with --reuse-results an earlier result file is read instead,
    and with --requery SYSTEM that system's queries are re-run on its saved index (build figures kept)."""
    path = wd / f"res_{system}_{m}.json"
    requery = system in args.requery.split(",")
    if args.reuse_results and path.exists() and not requery:
        res = json.loads(path.read_text())
        rq = wd / f"res_{system}_{m}_requery.json"
        if rq.exists() and not args.first_pass:  # the later, re-measured queries (build figures stay)
            new = json.loads(rq.read_text())
            res.update(configs=new["configs"], requeried_utc=datetime.fromtimestamp(rq.stat().st_mtime, timezone.utc)
                       .isoformat(timespec="seconds"), requery_peak_rss_mb=new["peak_rss_mb"])
            if "filtered" in new:
                res["filtered"] = new["filtered"]
        log(f"{system} at n={m:,}: reusing {path.name}{' + ' + rq.name if 'requeried_utc' in res else ''}")
        return res
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", system, "--workdir", str(wd), "--m", str(m),
           "--peer-budget-s", str(args.peer_budget_s), "--filter-budget-s", str(args.filter_budget_s)]
    if requery and path.exists():
        cmd.append("--reuse-index")
    what = " (queries only, saved index)" if "--reuse-index" in cmd else ""
    log(f"[bold]{system}[/bold] at n={m:,}: subprocess{what}")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd)
    wall = time.perf_counter() - t0
    out_path = wd / (f"res_{system}_{m}_requery.json" if "--reuse-index" in cmd else path.name)
    if proc.returncode != 0 or not out_path.exists():
        log(f"[red]{system} failed (exit {proc.returncode})[/red]")
        return {"system": system, "n": m, "error": f"exit {proc.returncode}", "wall_s": wall}
    res = json.loads(out_path.read_text())
    if "--reuse-index" in cmd:
        old = json.loads(path.read_text())
        old.update(configs=res["configs"], requeried_utc=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   requery_peak_rss_mb=res["peak_rss_mb"])
        if "filtered" in res:
            old["filtered"] = res["filtered"]
        res = old
    res["wall_s"] = wall
    return res


def recall_at(rows: list[list[int]], gt: np.ndarray, k: int = 10) -> float:
    return float(np.mean([len(set(r[:k]) & set(g[:k].tolist())) / k for r, g in zip(rows, gt)]))


def gt_filtered(corpus: np.ndarray, queries: np.ndarray, filters: list[dict], fields: dict, m: int, k: int = 10):
    out = []
    for f in filters:
        rows = np.flatnonzero(fields[f["field"]][:m] == f["value"])
        scores = corpus[rows] @ queries[f["qi"]]
        top = rows[np.argsort(-scores)[:k]]
        out.append((top, rows))
    return out


def summarise(res: dict, gt: np.ndarray, fgt: list, filters: list[dict], fields: dict, m: int) -> dict:
    """Latency/recall per config and filter checks for one child's raw result."""
    if "error" in res:
        return res
    s = {k: v for k, v in res.items() if k not in ("configs", "filtered")}
    s["n"] = m  # the size measured (a peer stopped by the build budget holds fewer than --n)
    s["configs"] = {}
    for name, c in res.get("configs", {}).items():
        s["configs"][name] = {"p50_ms": pct(c["lat_ms"], 50), "p95_ms": pct(c["lat_ms"], 95),
                              "recall@10": recall_at(c["rows"], gt), "queries": len(c["lat_ms"]),
                              **({"strategy": c["strategy"]} if "strategy" in c else {})}
    s["filtered"] = {}
    for kind, c in res.get("filtered", {}).items():
        idx = [i for i, f in enumerate(filters) if f["kind"] == kind][:len(c["rows"])]  # peers may stop early
        n_match = np.array([len(fgt[i][1]) for i in idx])
        k_ok = [len(r) == min(10, nm) for r, nm in zip(c["rows"], n_match)]
        match_ok = [all(fields[filters[i]["field"]][x] == filters[i]["value"] for x in r if 0 <= x < m) and
                    all(0 <= x < m for x in r) for r, i in zip(c["rows"], idx)]
        rec = np.mean([len(set(r) & set(fgt[i][0].tolist())) / min(10, len(fgt[i][1]))
                       for r, i in zip(c["rows"], idx) if len(fgt[i][1])])  # queries with no match: no recall
        d = {"queries": len(idx), "selectivity": float(n_match.mean() / m), "matching_p50": float(np.median(n_match)),
             "p50_ms": pct(c["lat_ms"], 50), "p95_ms": pct(c["lat_ms"], 95),
             "k_hits_share": float(np.mean(k_ok)), "all_match": bool(all(match_ok)),
             "mean_hits": float(np.mean([len(r) for r in c["rows"]])), "recall@10": float(rec),
             "example": filters[idx[0]]}
        if "filter_ms" in c:
            d["filter_ids_p50_ms"] = pct(c["filter_ms"], 50)
            d["rank_vector_p50_ms"] = pct(c["rank_ms"], 50)
            d["strategies"] = {st: c["strategy"].count(st) for st in sorted(set(c["strategy"]))}
        s["filtered"][kind] = d
    return s


def prepare(args, wd: Path) -> dict:
    """Embeddings (cached), corpus + queries, metadata, segment ids, filters, the store; returns what was done."""
    info: dict = {}
    real, embed_s = load_real()
    meta_path = OUT / "real.json"
    rj = json.loads(meta_path.read_text())
    info["real_vectors"] = int(len(real))
    info["embed_s_this_run"] = embed_s
    info["embed_s_when_cached"] = rj.get("embed_s")
    info["embedder"] = rj.get("model")
    took = f"{embed_s:.0f} s this run" if embed_s is not None else f"cached, took {rj.get('embed_s', 0):.0f} s"
    log(f"{len(real):,} real vectors (embedding: {took})")
    done = wd / "prep.json"
    if done.exists():
        info.update(json.loads(done.read_text()))
        return info
    wd.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    c = build_corpus(real, args.n, args.queries, args.seed)
    info["synth_s"] = time.perf_counter() - t0
    info.update(n_real_in_corpus=int(c["n_real"]), n_synthetic=int(c["n_synth"]), n_queries=int(len(c["queries"])))
    np.save(wd / "corpus.npy", c["corpus"])
    np.save(wd / "queries.npy", c["queries"])
    meta = make_meta(args.n, args.seed, args.seg_per_doc, args.customers)
    np.savez(wd / "meta.npz", **meta)
    seg_ids = seg_ids_of(meta, args.n)
    if len(np.unique(seg_ids)) != len(seg_ids):
        raise SystemExit("segment id collision")
    np.save(wd / "seg_ids.npy", seg_ids)
    filters = make_filters(meta, args.n, args.queries, args.filter_queries, args.seed)
    (wd / "filters.json").write_text(json.dumps(filters))
    log(f"corpus ready: {c['n_real']:,} real + {c['n_synth']:,} synthetic ({info['synth_s']:.0f} s); building store")
    texts = real_texts()
    info["store"] = build_store(wd / f"ws_{args.n}", args.n, meta, seg_ids, texts, c["src"])
    log(f"store: {info['store']}")
    done.write_text(json.dumps(info))
    return info


def machine() -> dict:
    import psutil

    return {"cpus": os.cpu_count(), "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "platform": platform.platform(), "threads": THREADS}


def versions() -> dict:
    from importlib.metadata import version

    out = {}
    for p in ("faiss-cpu", "duckdb", "numpy", "lancedb", "pylance", "chromadb", "pyarrow", "sentence-transformers"):
        try:
            out[p] = version(p)
        except Exception:
            out[p] = None
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="corpus size (real + synthetic vectors)")
    ap.add_argument("--queries", type=int, default=1000, help="held-out real vectors used as queries")
    ap.add_argument("--filter-queries", type=int, default=300, help="queries per filter kind")
    ap.add_argument("--seg-per-doc", type=int, default=10)
    ap.add_argument("--customers", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--systems", default="ours-exact,ours-hnsw,lance,chroma")
    ap.add_argument("--peer-budget-s", type=float, default=900.0,
                    help="stop adding to a peer (Chroma) after this long; it is then measured at the size reached")
    ap.add_argument("--filter-budget-s", type=float, default=60.0,
                    help="a peer's filtered queries of one kind stop after this long (at least 20 are run)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--workdir", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--m", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--embed-only", action="store_true", help="just compute/cache the real embeddings")
    ap.add_argument("--reuse-results", action="store_true",
                    help="read the result files an earlier run of the same --n/--seed left instead of re-running")
    ap.add_argument("--first-pass", action="store_true",
                    help="with --reuse-results: ignore re-measured (requery) results, report the first pass")
    ap.add_argument("--requery", default="", help="with --reuse-results: re-run these ours-* systems' queries on "
                    "their saved index (e.g. after a noisy latency phase); build figures are kept")
    ap.add_argument("--reuse-index", action="store_true",
                    help="children of ours load the FAISS index an earlier run saved (to re-measure queries only)")
    args = ap.parse_args(argv)
    if args.child:
        child_main(args)
        return
    if args.embed_only:
        v, s = load_real()
        print(v.shape, s)
        return
    import faiss

    faiss.omp_set_num_threads(THREADS)
    started = datetime.now(timezone.utc)
    t_all = time.perf_counter()
    wd = OUT / f"run_n{args.n}_s{args.seed}"
    info = prepare(args, wd)
    corpus = np.load(wd / "corpus.npy", mmap_mode="r")
    queries = np.load(wd / "queries.npy")
    meta = dict(np.load(wd / "meta.npz"))
    filters = json.loads((wd / "filters.json").read_text())
    fields = {f: row_field(meta, f, args.n) for f in ("intent", "customer_id", "channel")}

    gts: dict[int, tuple] = {}

    def ground_truth(m: int):
        if m not in gts:
            t0 = time.perf_counter()
            flat = faiss.IndexFlatIP(DIM)
            flat.add(np.ascontiguousarray(corpus[:m]))
            _, gt = flat.search(queries, 10)
            del flat
            cm = np.asarray(corpus[:m])
            gts[m] = (gt, gt_filtered(cm, queries, filters, fields, m))
            log(f"exact ground truth at n={m:,}: {time.perf_counter() - t0:.1f} s")
        return gts[m]

    ground_truth(args.n)
    systems = [s for s in args.systems.split(",") if s]
    results: dict[str, dict] = {}
    for system in systems:
        raw = run_child(system, wd, args.n, args)
        m = raw.get("n_built", args.n) if "error" not in raw else args.n
        if m != args.n and "error" not in raw:
            log(f"{system} reached only {m:,} vectors: measuring it there and running ours-hnsw at that size too")
        gt, fgt = ground_truth(m)
        results[f"{system}@{m}"] = summarise(raw, gt, fgt, filters, fields, m)
    for key in list(results):
        system, m = key.split("@")[0], int(key.split("@")[1])
        if m != args.n and f"ours-hnsw@{m}" not in results and "ours-hnsw" in systems:
            seg_ids = np.load(wd / "seg_ids.npy")
            src = np.full(m, -1)  # texts are not needed for vector search
            if not (wd / f"ws_{m}" / "store.duckdb").exists():
                build_store(wd / f"ws_{m}", m, meta, seg_ids, ["[synthetic]"], src)
            raw = run_child("ours-hnsw", wd, m, args)
            gt, fgt = ground_truth(m)
            results[f"ours-hnsw@{m}"] = summarise(raw, gt, fgt, filters, fields, m)
    report = {"benchmark": "eval/bench_search.py", "command": " ".join([sys.executable] + sys.argv),
              "started_utc": started.isoformat(timespec="seconds"), "wall_s": time.perf_counter() - t_all,
              "machine": machine(), "versions": versions(), "args": {k: (str(v) if isinstance(v, Path) else v)
                                                                       for k, v in vars(args).items()},
              "data": info, "systems": results}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=str))
    print(markdown(report))


def _f(x, nd=1) -> str:
    return "n/a" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:,.{nd}f}"


def markdown(report: dict) -> str:
    sysres = report["systems"]
    lines = [f"### bench_search: n={report['args']['n']:,}, {report['machine']['cpus']} CPUs, "
             f"{report['started_utc']}", ""]
    lines += ["| system | n | config | build s | peak RSS MB | disk MB | p50 ms | p95 ms | recall@10 |",
              "|---|---|---|---|---|---|---|---|---|"]
    for _key, r in sysres.items():
        if "error" in r:
            lines.append(f"| {r['system']} | {r['n']:,} | ERROR {r['error']} | | | | | | |")
            continue
        for name, c in r["configs"].items():
            lines.append(f"| {r['system']} | {r['n']:,} | {name} | {_f(r['build_s'])} | {_f(r['peak_rss_mb'], 0)} | "
                         f"{_f(r['disk_mb'], 0)} | {_f(c['p50_ms'], 2)} | {_f(c['p95_ms'], 2)} | "
                         f"{_f(c['recall@10'], 3)} |")
    lines += ["", "| system | n | filter | selectivity | p50 ms | p95 ms | k hits | all match | recall@10 | "
              "strategy (ours) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for _key, r in sysres.items():
        for _kind, d in r.get("filtered", {}).items():
            strat = ", ".join(f"{k} ×{v}" for k, v in d.get("strategies", {}).items())
            extra = (f" (filter_ids {_f(d['filter_ids_p50_ms'], 1)} + rank {_f(d['rank_vector_p50_ms'], 1)})"
                     if "filter_ids_p50_ms" in d else "")
            lines.append(f"| {r['system']} | {r['n']:,} | {d['example']['ours'].split('=')[0]}=… | "
                         f"{d['selectivity'] * 100:.3f}% | {_f(d['p50_ms'], 2)}{extra} | {_f(d['p95_ms'], 2)} | "
                         f"{d['k_hits_share'] * 100:.0f}% (mean {d['mean_hits']:.1f}) | "
                         f"{'yes' if d['all_match'] else 'NO'} | {_f(d['recall@10'], 3)} | {strat} |")
    # ratios: ours HNSW as built vs each peer config, at the peer's size
    lines += ["", "| ratio ours(HNSW as built)/peer | n | peer config | build | peak RSS | disk | p50 | recall |",
              "|---|---|---|---|---|---|---|---|"]
    for _key, r in sysres.items():
        if r.get("system") not in ("lance", "chroma") or "error" in r:
            continue
        ours = sysres.get(f"ours-hnsw@{r['n']}")
        if not ours or "error" in ours:
            continue
        oc = next(c for n, c in ours["configs"].items() if "as built" in n)
        for name, c in r["configs"].items():
            lines.append(f"| vs {r['system']} | {r['n']:,} | {name} | {ours['build_s'] / r['build_s']:.2f} | "
                         f"{ours['peak_rss_mb'] / r['peak_rss_mb']:.2f} | {ours['disk_mb'] / r['disk_mb']:.2f} | "
                         f"{oc['p50_ms'] / c['p50_ms']:.2f} | {oc['recall@10'] / max(c['recall@10'], 1e-9):.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
