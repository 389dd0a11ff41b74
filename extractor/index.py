"""Semantic + keyword search over stored segments: FAISS vectors, BM25 keywords, filters before ranking.

The index lives beside the store in the workspace (``index/``). Each save writes a new version
directory, fsyncs it and then atomically repoints ``index/CURRENT`` at it, so a crash mid-save leaves
the previous version loadable. A manifest records the embedder id and dimension, the count, the
FAISS index type and parameters, the build time and library versions; opening an index built with
another embedder is an error naming both.

A ``--where`` filter is evaluated by the store to a set of segment ids first. A very selective
filter (few ids) is scanned exactly over just those vectors; otherwise FAISS searches with an id
selector. Either way a filtered query returns k hits whenever k matching segments exist.

>>> idx = Index.open(".signals")                                        # doctest: +SKIP
>>> [h.text for h in idx.search("charged twice", where="channel=chat", k=3).hits]  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, InputError
from .exact_scan import ExactScanner
from .ingest.results import fsync_dir
from .keyword import KeywordIndex
from .store import SegmentRow, Store, document_id

log = logging.getLogger(__name__)

INDEX_DIR = "index"
FORMAT = "signals-index/3"  # /2: keyword arrays read with numpy; /3: BM25 delta, document vectors
HNSW_ABOVE = 200_000  # segments; below this an exact IndexFlatIP is fast enough and has recall 1
EXACT_SCAN_BELOW = 20_000  # filter matches; below this, score just those vectors exactly
HNSW_M, EF_CONSTRUCTION = 32, 80
EF_SEARCH = 128  # measured on 1M vectors (eval/bench_search.py): recall@10 0.95 at p50 0.6 ms; 64 gave 0.92
EF_SEARCH_MAX = 4096
MODES = ("vector", "keyword", "hybrid")
RRF_K = 60


@dataclass
class Hit:
    doc_id: str
    segment_id: int
    score: float
    text: str
    start: int
    end: int
    turn: int | None
    speaker: str | None
    customer_id: str | None
    created_at: Any
    channel: str | None = None
    signals: list[dict] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self).items()}
        out["created_at"] = self.created_at.isoformat() if hasattr(self.created_at, "isoformat") else self.created_at
        return out


@dataclass
class SearchResult:
    hits: list[Hit]
    took_ms: float
    filter: str | None
    mode: str
    strategy: str
    n_matching: int | None

    def as_json(self) -> dict[str, Any]:
        return {"hits": [h.as_json() for h in self.hits], "took_ms": round(self.took_ms, 2), "filter": self.filter,
                "mode": self.mode, "strategy": self.strategy, "n_matching": self.n_matching}


def _check_embedder(root: Path, built_id: str, built_dim: int, emb) -> None:
    if emb.model_id != built_id or emb.dim != built_dim:
        raise ConfigError(f"The index in {root} was built with {built_id} ({built_dim}-d) but the embedder is "
                          f"{emb.model_id} ({emb.dim}-d); rebuild it with `signals index build`.")


class Index:
    """Vectors + BM25 over the store's segments. ``Index.open(workspace)`` to search, ``.add`` to grow."""

    def __init__(self, workspace: str | Path, embedder=None, *, hnsw_above: int = HNSW_ABOVE,
                 embedder_id: str | None = None, dim: int | None = None):
        import faiss

        self.workspace, self._embedder, self.hnsw_above = Path(workspace), embedder, hnsw_above
        self.embedder_id = embedder_id or self.embedder.model_id
        self.dim = int(dim or self.embedder.dim)
        self.vectors = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        self.documents = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))  # one vector per document: its segments' mean
        self.doc_names: dict[int, str] = {}  # document vector id -> doc_id
        self.keywords = KeywordIndex.empty()
        self.manifest: dict[str, Any] = {}
        self._scanner = ExactScanner()

    @property
    def embedder(self):
        """The query/segment encoder, loaded on first use (keyword search never loads it)."""
        if self._embedder is None:
            from .embed import load_embedder
            from .query_encoder import DIR, OnnxQueryEncoder

            fast = OnnxQueryEncoder.load(self.root / DIR)  # starts in a fraction of a second
            emb = fast if fast is not None and fast.model_id == self.embedder_id else load_embedder()
            _check_embedder(self.root, self.embedder_id, self.dim, emb)
            self._embedder = emb
        return self._embedder

    # -- persistence ----------------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        return self.workspace / INDEX_DIR

    @classmethod
    def open(cls, workspace: str | Path, embedder=None) -> Index:
        """The saved index of ``workspace`` (an empty one if none was built yet)."""
        import faiss

        from .embed import load_embedder

        root = Path(workspace) / INDEX_DIR
        current = root / "CURRENT"
        if not current.exists():
            return cls(workspace, embedder or load_embedder())
        version = root / current.read_text("utf-8").strip()
        manifest = json.loads((version / "manifest.json").read_text("utf-8"))
        if manifest.get("format") != FORMAT:
            raise ConfigError(f"The index in {root} has format {manifest.get('format')!r}, this version reads "
                              f"{FORMAT!r}; rebuild it with `signals index build RESULTS...`.")
        if embedder is not None:
            _check_embedder(root, manifest["embedder"], manifest["dim"], embedder)
        idx = cls(workspace, embedder, embedder_id=manifest["embedder"], dim=manifest["dim"])
        idx.vectors = faiss.read_index(str(version / "vectors.faiss"))
        idx.documents = faiss.read_index(str(version / "documents.faiss"))
        idx.doc_names = {int(i): d for i, d in json.loads((version / "documents.json").read_text("utf-8"))}
        idx.manifest = manifest
        idx.keywords = KeywordIndex.load(version)
        return idx

    def save(self) -> Path:
        """Write a new version directory, fsync it, then atomically point CURRENT at it."""
        import faiss

        self.root.mkdir(parents=True, exist_ok=True)
        name = f"v{time.time_ns()}"
        tmp = self.root / f".{name}.tmp"
        tmp.mkdir()
        faiss.write_index(self.vectors, str(tmp / "vectors.faiss"))
        faiss.write_index(self.documents, str(tmp / "documents.faiss"))
        (tmp / "documents.json").write_text(json.dumps(list(self.doc_names.items()), ensure_ascii=False), "utf-8")
        self.keywords.save(tmp)
        (tmp / "manifest.json").write_text(json.dumps(self._manifest(), indent=2), "utf-8")
        for f in tmp.rglob("*"):
            if f.is_file():
                with f.open("rb") as fh:
                    os.fsync(fh.fileno())
        os.replace(tmp, self.root / name)
        fsync_dir(self.root / name)  # fsyncs the directory holding it: self.root
        pointer = self.root / ".CURRENT.tmp"
        with pointer.open("w", encoding="utf-8") as fh:
            fh.write(name)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(pointer, self.root / "CURRENT")
        fsync_dir(self.root / "CURRENT")
        from .query_encoder import DIR, export

        for old in self.root.iterdir():  # earlier versions (and leftovers of crashed saves)
            if old.is_dir() and old.name not in (name, DIR):
                shutil.rmtree(old, ignore_errors=True)
        if self._embedder is not None and hasattr(self._embedder, "_model"):
            export(self._embedder, self.root / DIR)
        return self.root / name

    def _manifest(self) -> dict[str, Any]:
        from importlib.metadata import version

        import faiss

        base = self.vectors.index if hasattr(self.vectors, "index") else self.vectors
        kind = type(faiss.downcast_index(base)).__name__
        params = {"M": HNSW_M, "efConstruction": EF_CONSTRUCTION, "efSearch": EF_SEARCH,
                  "efSearch_filtered": f"EF_SEARCH scaled by 1/selectivity, up to {EF_SEARCH_MAX}"} \
            if "HNSW" in kind else {}
        self.manifest = {"format": FORMAT, "embedder": self.embedder_id, "dim": self.dim,
                         "count": int(self.vectors.ntotal), "documents": int(self.documents.ntotal),
                         "index_type": kind, "params": params,
                         "metric": "inner_product (normalised vectors: cosine)", "hnsw_above": self.hnsw_above,
                         "bm25_count": len(self.keywords), "built": datetime.now(timezone.utc).isoformat(),
                         "versions": {"faiss": faiss.__version__, "bm25s": version("bm25s")}}
        return self.manifest

    # -- building -------------------------------------------------------------------------------------
    def apply(self, added: list[SegmentRow], removed: list[int], store: Store, *, erase: bool = False,
              docs: list[str] = ()) -> None:
        """Follow a store change: drop ``removed`` segment ids, embed and add ``added``.

        Document vectors of ``docs`` (stored again or deleted) and of the documents of ``added`` are
        replaced by the mean of their new segment vectors.

        Keywords go to the BM25 delta (a full BM25 build once it has grown); ``erase`` rebuilds BM25
        at once, so no word of the removed segments stays in the saved vocabulary (erasure)."""
        self._scanner.forget()  # its kept id orders describe the index as it was
        if removed:
            self._remove(np.asarray(removed, dtype=np.int64))
        vecs = np.asarray(self.embedder.encode([s.text for s in added]), dtype=np.float32) if added else None
        if added:
            self.vectors.add_with_ids(vecs, np.asarray([s.seg_id for s in added], dtype=np.int64))
        self._update_documents(added, vecs, docs)
        self._maybe_hnsw()
        self.keywords.remove(removed)
        self.keywords.add([s.text for s in added], [s.seg_id for s in added])
        if erase or self.keywords.needs_rebuild():  # erasure, or the delta grew past its share
            self._rebuild_bm25(store.all_segments())

    def _update_documents(self, added: list[SegmentRow], vecs: np.ndarray | None, docs: list[str]) -> None:
        import faiss

        touched = sorted({s.doc_id for s in added} | set(docs))
        if touched:
            self.documents.remove_ids(faiss.IDSelectorBatch(np.asarray([document_id(d) for d in touched],
                                                                        dtype=np.int64)))
            for d in touched:
                self.doc_names.pop(document_id(d), None)
        if not added:
            return
        rows: dict[str, list[int]] = {}
        for i, s in enumerate(added):
            rows.setdefault(s.doc_id, []).append(i)
        means = np.stack([vecs[r].mean(axis=0) for r in rows.values()])
        means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
        self.documents.add_with_ids(means.astype(np.float32),
                                    np.asarray([document_id(d) for d in rows], dtype=np.int64))
        self.doc_names.update((document_id(d), d) for d in rows)

    def _remove(self, ids: np.ndarray) -> None:
        import faiss

        if not isinstance(faiss.downcast_index(self.vectors.index), faiss.IndexHNSWFlat):
            self.vectors.remove_ids(faiss.IDSelectorBatch(ids))
            return
        keep = ~np.isin(faiss.vector_to_array(self.vectors.id_map), ids)  # HNSW cannot remove: rebuild
        all_ids = faiss.vector_to_array(self.vectors.id_map).astype(np.int64)
        vecs = self.vectors.index.reconstruct_n(0, self.vectors.ntotal)
        self.vectors = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        self.vectors.add_with_ids(vecs[keep], all_ids[keep])
        self._maybe_hnsw()

    def _maybe_hnsw(self) -> None:
        """Past ``hnsw_above`` vectors, move to HNSW (approximate, much faster per query)."""
        import faiss

        base = faiss.downcast_index(self.vectors.index)
        if isinstance(base, faiss.IndexHNSWFlat) or self.vectors.ntotal <= self.hnsw_above:
            return
        ids = faiss.vector_to_array(self.vectors.id_map).astype(np.int64)
        vecs = self.vectors.index.reconstruct_n(0, self.vectors.ntotal)
        hnsw = faiss.IndexHNSWFlat(self.dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = EF_CONSTRUCTION
        hnsw.hnsw.efSearch = EF_SEARCH
        wrapped = faiss.IndexIDMap2(hnsw)
        wrapped.add_with_ids(vecs, ids)
        self.vectors = wrapped

    def _rebuild_bm25(self, segments: list[SegmentRow]) -> None:
        self.keywords = KeywordIndex.build([s.text for s in segments], [s.seg_id for s in segments])

    # -- searching ------------------------------------------------------------------------------------
    def search(self, query: str, *, where: str | None = None, k: int = 10, mode: str = "hybrid",
               weights: tuple[float, float] = (1.0, 1.0), store: Store | None = None,
               level: str = "segment") -> SearchResult:
        """The ``k`` best segments (or, with ``level="document"``, documents) for ``query`` among those
        matching ``where`` (filtered before ranking)."""
        if mode not in MODES:
            raise ConfigError(f"--mode {mode!r}: choose one of {', '.join(MODES)}")
        if k < 1:
            raise ConfigError(f"-k must be at least 1, not {k}")
        if level not in ("segment", "document"):
            raise ConfigError(f"--level {level!r}: choose segment or document")
        t0 = time.perf_counter()
        store = store or self._reader()
        if level == "document":
            from .doc_search import search_documents

            return search_documents(self, query, where=where, k=k, mode=mode, weights=weights, store=store)
        allowed = store.filter_ids(where)
        pool = k if mode == "vector" else max(4 * k, 50)
        ranked, strategy = [], "none"
        if mode != "keyword":
            vec, strategy = self._vector_rank(query, allowed, pool)
            ranked.append((weights[0], vec))
        if mode != "vector":
            ranked.append((weights[1], self._keyword_rank(query, allowed, pool)))
            strategy = f"{strategy}+bm25" if mode == "hybrid" else "bm25"
        scores = _fuse(ranked) if mode == "hybrid" else dict(ranked[0][1])
        top = sorted(scores.items(), key=lambda kv: -kv[1])[:k]
        hits = self._hits(top, store)
        return SearchResult(hits, (time.perf_counter() - t0) * 1000, where, mode, strategy,
                            None if allowed is None else len(allowed))

    def _reader(self) -> Store:
        return _reader_for(self.workspace)

    def _vector_rank(self, query: str, allowed: np.ndarray | None, pool: int) -> tuple[list[tuple[int, float]], str]:
        if int(self.vectors.ntotal) == 0 or (allowed is not None and not len(allowed)):
            return [], "empty"  # no need to load the encoder
        return self.rank_vector(np.asarray(self.embedder.encode([query]), dtype=np.float32)[0], allowed, pool)

    def rank_vector(self, qvec: np.ndarray, allowed: list[int] | np.ndarray | None,
                    pool: int, *, over=None) -> tuple[list[tuple[int, float]], str]:
        """The ``pool`` nearest segment ids to a normalised query vector among ``allowed`` (None: all).

        Returns ``[(segment_id, score)]`` best first and the strategy used (``--explain`` shows it).
        ``over``: another FAISS index of this one's (``self.documents``) to rank instead."""
        import faiss

        index = self.vectors if over is None else over
        n = int(index.ntotal)
        if n == 0 or (allowed is not None and not len(allowed)):
            return [], "empty"
        q = np.asarray(qvec, dtype=np.float32).reshape(1, -1)
        allowed = None if allowed is None else np.asarray(allowed, dtype=np.int64)
        if allowed is not None and len(allowed) <= EXACT_SCAN_BELOW:
            return self._scanner.top(index, q[0], allowed, pool), "exact-scan"
        hnsw = isinstance(faiss.downcast_index(index.index), faiss.IndexHNSWFlat)
        params = faiss.SearchParametersHNSW(efSearch=max(EF_SEARCH, pool)) if hnsw else None
        if allowed is not None:
            sel = faiss.IDSelectorBatch(allowed)
            # a filter leaves 1/selectivity fewer candidates per visited node: search that much wider
            ef = int(min(EF_SEARCH_MAX, max(EF_SEARCH, pool) * n / max(len(allowed), 1)))
            params = faiss.SearchParametersHNSW(sel=sel, efSearch=ef) if hnsw else faiss.SearchParameters(sel=sel)
        D, idx = index.search(q, min(pool, n), params=params)
        found = [(int(i), float(d)) for d, i in zip(D[0], idx[0]) if i != -1]
        if allowed is not None and len(found) < min(pool, len(allowed)):  # ANN missed some: be exact
            return self._scanner.top(index, q[0], allowed, pool), "exact-scan (ANN fell short)"
        return found, "faiss-selector" if allowed is not None else "faiss"

    def _keyword_rank(self, query: str, allowed: np.ndarray | None, pool: int) -> list[tuple[int, float]]:
        return self.keywords.rank(query, allowed, pool)

    def _hits(self, top: list[tuple[int, float]], store: Store) -> list[Hit]:
        rows = store.segments([i for i, _ in top])
        signals = store.signals_of(sorted({r["doc_id"] for r in rows.values()}))
        out = []
        for seg_id, score in top:
            r = rows.get(seg_id)
            if r is None:  # the index is ahead of (or behind) the store: skip, never invent
                continue
            out.append(Hit(r["doc_id"], seg_id, round(score, 6), r["text"], r["start"], r["end"], r["turn"],
                           r["role"] or r["speaker"], r["customer_id"], r["created_at"], r["channel"],
                           signals.get(r["doc_id"], [])))
        return out

    def stats(self) -> dict[str, Any]:
        return {**(self.manifest or self._manifest()), "workspace": str(self.workspace)}


_READERS: dict[Path, Store] = {}  # one read-only connection per workspace, closed before any write


def _reader_for(workspace: str | Path) -> Store:
    """The process's read-only store connection for a workspace (opening one costs ~80 ms).

    It sees the store as it was when opened; writes through this package close it first."""
    key = Path(workspace).resolve()
    if key not in _READERS:
        _READERS[key] = Store(workspace, read_only=True)
    return _READERS[key]


def close_readers(workspace: str | Path) -> None:
    """Close this process's read-only connection to ``workspace`` (DuckDB will not open a writer beside it)."""
    store = _READERS.pop(Path(workspace).resolve(), None)
    if store is not None:
        store.close()


def _fuse(ranked: list[tuple[float, list[tuple[int, float]]]]) -> dict[int, float]:
    """Reciprocal rank fusion: sum of weight / (60 + rank) over the rankings an id appears in."""
    out: dict[int, float] = {}
    for weight, ranking in ranked:
        for rank, (seg_id, _) in enumerate(ranking):
            out[seg_id] = out.get(seg_id, 0.0) + weight / (RRF_K + rank + 1)
    return out


def index_results(workspace: str | Path, paths: list[str], *, rebuild: bool = False, embedder=None,
                  index: Index | None = None, then=None) -> dict:
    """Store the results in ``paths`` (JSONL or Parquet from ``signals extract``) and index them.

    ``index``: an open Index to update (a long-running watcher keeps one) instead of loading it;
    ``then(store)``: called with the open store after the results are in (e.g. to record a file as done)."""
    from .io import read_results

    close_readers(workspace)
    if rebuild:
        shutil.rmtree(Path(workspace) / INDEX_DIR, ignore_errors=True)
        if (Path(workspace) / "store.duckdb").exists():
            with Store(workspace) as store:  # profiles, state history and overrides stay
                store.clear_documents()
    from . import audit
    from .state import bump_versions
    from .store import is_opted_out

    if len(paths) > 1:  # all or nothing: a bad file found after the first was stored would leave half a refresh
        for path in paths:
            try:
                for _ in read_results(path):
                    pass
            except InputError as exc:
                raise InputError(f"{exc}; nothing of the {len(paths)} files was stored") from exc
    idx = index if index is not None else Index.open(workspace, embedder)
    n_docs = n_skipped = 0
    bumped: dict[str, int] = {}
    with Store(workspace) as store:
        markers = store.opted_out()
        try:
            for path in paths:
                results = list(read_results(path))
                n_docs += len(results)
                kept = [r for r in results if not is_opted_out(r.customer_id, markers)]
                n_skipped += len(results) - len(kept)
                added, removed = store.upsert(kept)
                idx.apply(added, removed, store, docs=[r.id for r in kept])
                bumped.update(bump_versions(store, [r.customer_id for r in kept]))
        finally:
            idx.save()  # whatever reached the store is searchable too
        if then is not None:
            then(store)
        counts = store.counts()
    out = {"documents_read": n_docs, "opted_out_skipped": n_skipped, **counts, "vectors": int(idx.vectors.ntotal),
           "customers_updated": len(bumped)}
    audit.record(workspace, "index", inputs=[{"sha256": audit.file_digest(p)} for p in paths], rebuild=rebuild,
                 embedder=idx.embedder_id, counts=out)
    return {**out, "versions": bumped}


def forget_customer(workspace: str | Path, customer_id: str) -> dict[str, int]:
    """Erase a customer from the workspace (see ``extractor.forget``)."""
    from .forget import forget

    return forget(workspace, customer_id)
