"""Document-level search: rank whole documents (a call, a ticket), each shown with its best quote.

Vector ranking uses the index's document vectors (the mean of each document's segment vectors);
keyword ranking takes each document's best BM25 segment; hybrid fuses the two by reciprocal rank.
A ``--where`` filter keeps the documents with at least one matching segment, before ranking, and the
quote shown is the document's best *matching* segment.
"""

from __future__ import annotations

import time

import numpy as np

from .store import Store, document_id

KEYWORD_POOL = 2_000  # segments the keyword side ranks before keeping each document's best


def search_documents(idx, query: str, *, where: str | None, k: int, mode: str, weights: tuple[float, float],
                     store: Store):
    from .index import SearchResult, _fuse

    t0 = time.perf_counter()
    matched = store.filter_with_docs(where)
    allowed_segs, docs = (None, None) if matched is None else matched
    pool = k if mode == "vector" else max(4 * k, 50)
    qvec = np.asarray(idx.embedder.encode([query]), dtype=np.float32)[0] if mode != "keyword" else None
    ranked, strategy = [], "none"
    if mode != "keyword":
        allowed = None if docs is None else np.asarray([document_id(d) for d in docs], dtype=np.int64)
        found, strategy = idx.rank_vector(qvec, allowed, pool, over=idx.documents)
        ranked.append((weights[0], found))
    best_kw: dict[str, int] = {}
    if mode != "vector":
        doc_scores: dict[int, float] = {}
        hits = idx.keywords.rank(query, allowed_segs, max(KEYWORD_POOL, 20 * k))
        rows = store.segments([i for i, _ in hits])
        for seg, score in hits:
            doc = rows[seg]["doc_id"] if seg in rows else None
            if doc is not None and doc not in best_kw:  # hits come best first: the first is the document's best
                best_kw[doc] = seg
                doc_scores[document_id(doc)] = score
        ranked.append((weights[1], sorted(doc_scores.items(), key=lambda kv: -kv[1])[:pool]))
        strategy = f"{strategy}+bm25" if mode == "hybrid" else "bm25"
    scores = _fuse(ranked) if mode == "hybrid" else dict(ranked[0][1])
    top = sorted(scores.items(), key=lambda kv: -kv[1])[:k]
    top = [(idx.doc_names[i], score) for i, score in top if i in idx.doc_names]
    segs = store.segment_ids_of([d for d, _ in top], allowed_segs)
    quotes: list[tuple[int, float]] = []
    for doc, score in top:
        ids = segs.get(doc) or []
        if not ids:
            continue
        if qvec is not None:  # the segment closest to the query
            vecs = idx.vectors.reconstruct_batch(np.asarray(ids, dtype=np.int64))
            seg = ids[int(np.argmax(vecs @ qvec))]
        else:
            seg = best_kw.get(doc, ids[0])
        quotes.append((seg, score))
    return SearchResult(idx._hits(quotes, store), (time.perf_counter() - t0) * 1000, where, mode,
                        f"documents: {strategy}", None if docs is None else len(docs))
