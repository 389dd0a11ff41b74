"""eval/bench_search.py's children: each system builds its index and runs the queries in its own process.

``child_main`` is what ``bench_search.py --child SYSTEM`` runs; ``filtered_queries`` is the loop every
system's filtered queries share (warm-up, then timed queries per filter kind within a time budget).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
from bench_search_data import (
    DIM,
    THREADS,
    console,
    dir_size_mb,
    log,
    pct,
    peak_rss_mb,
    row_field,
    rss_mb,
    timed_queries,
)


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
    def q_filtered(q, where):
        r = tbl.search(q).distance_type("dot").where(where, prefilter=True).limit(10) \
            .select(["id", "_distance"]).to_arrow()
        return r["id"].to_pylist()

    out["filtered"] = filtered_queries(args, queries, filters, q_filtered, "lance")
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
    def q_filtered(q, where):
        r = col.query(query_embeddings=[q], n_results=10, where=where, include=["distances"])
        return [int(x) for x in r["ids"][0]]

    out["filtered"] = filtered_queries(args, queries, filters, q_filtered, "chroma")
    return out


# --- the orchestrator -----------------------------------------------------------------------------------------


def filtered_queries(args, queries, filters, run, system: str) -> dict:
    """A peer's filtered queries, per filter kind: 5 warm-ups, then timed ones (``run(query, where)`` → ids)
    until all are done or, once 20 have run, past ``--filter-budget-s``. ``system`` names the filter text."""
    out = {}
    for kind in dict.fromkeys(f["kind"] for f in filters):
        fs = [f for f in filters if f["kind"] == kind]
        recs: dict = {"lat_ms": [], "rows": []}
        for f in fs[:5]:
            run(queries[f["qi"]], f[system])
        t_kind = time.perf_counter()
        for f in fs:
            if len(recs["lat_ms"]) >= 20 and time.perf_counter() - t_kind > args.filter_budget_s:
                break  # a slow filter: measured on the queries done so far
            t0 = time.perf_counter()
            rows = run(queries[f["qi"]], f[system])
            recs["lat_ms"].append((time.perf_counter() - t0) * 1000)
            recs["rows"].append(rows)
        out[kind] = recs
        log(f"[{system}] filter {kind}: p50 {pct(recs['lat_ms'], 50):.1f} ms")
    return out
