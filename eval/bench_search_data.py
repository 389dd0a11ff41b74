"""eval/bench_search.py's data and measuring helpers: the real and synthetic vectors, the workspace
store with their metadata, the filters, and timing / memory utilities (see bench_search.py's docstring).
"""

from __future__ import annotations

import glob
import json
import os
import resource
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
    os.environ.setdefault(_v, str(THREADS))  # before numpy and faiss load

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
