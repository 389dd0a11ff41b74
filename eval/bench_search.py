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
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

# isort: off
from bench_search_data import THREADS  # first: importing it pins the BLAS/OpenMP threads before numpy loads
# isort: on
import numpy as np
from bench_search_data import (
    DIM,
    OUT,
    build_corpus,
    build_store,
    load_real,
    log,
    make_filters,
    make_meta,
    pct,
    real_texts,
    row_field,
    seg_ids_of,
)
from bench_search_systems import child_main


# --- children: one system each --------------------------------------------------------------------------------
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
