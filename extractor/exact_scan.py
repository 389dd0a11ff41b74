"""Exact scoring of a filter's matches, read in place from a FAISS ``IndexIDMap2``'s storage.

A very selective filter is faster scanned exactly than searched through HNSW. The vectors are read
as a numpy view of FAISS's own storage (no copy through ``reconstruct_batch``), found through an
argsort of the index's ids that is kept between queries and checked against the live ids on every
use, and scored with ``einsum`` rather than BLAS: a matrix-vector product this size is ~0.5 ms on
one core, while BLAS worker threads spinning afterwards took the cores DuckDB needed for the next
filter (eval/RESULTS.md, issue 11, third part).
"""

from __future__ import annotations

import numpy as np


class ExactScanner:
    """``top(index, q, ids, pool)``: the ``pool`` best of ``ids`` for query ``q``, exactly."""

    def __init__(self) -> None:
        # per FAISS index (by object id): (count, last id), its ids sorted, and the order that sorts them
        self._orders: dict[int, tuple[tuple[int, int], np.ndarray, np.ndarray]] = {}

    def forget(self) -> None:
        """Drop the kept id orders (the index is about to change)."""
        self._orders.clear()

    def top(self, index, q: np.ndarray, ids: np.ndarray, pool: int) -> list[tuple[int, float]]:
        """``[(id, score)]`` best first, over those ``ids`` that ``index`` holds."""
        pos = self.positions(index, ids)
        if not len(pos):
            return []
        scores = np.einsum("ij,j->i", _stored_vectors(index)[pos], q)  # positions sorted: read in order
        top = np.argpartition(-scores, pool - 1)[:pool] if len(scores) > pool else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        live = _stored_ids(index)
        return [(int(live[pos[i]]), float(scores[i])) for i in top]

    def positions(self, index, ids: np.ndarray) -> np.ndarray:
        """The sorted storage positions of those ``ids`` that ``index`` holds.

        The id order (an argsort of the index's ids) is kept between queries and checked against the
        live ids on every use, so an add or remove since is noticed and the order made again."""
        live = _stored_ids(index)
        if not len(live):
            return np.empty(0, dtype=np.int64)
        for fresh in (False, True):
            cached = self._orders.get(id(index))
            if fresh or cached is None or cached[0] != (len(live), int(live[-1])):  # adds append at the end
                order = np.argsort(live, kind="stable")
                cached = self._orders[id(index)] = ((len(live), int(live[-1])), live[order], order)
            _, sorted_ids, order = cached
            at = np.minimum(np.searchsorted(sorted_ids, ids), len(order) - 1)
            held = sorted_ids[at] == ids
            pos = order[at[held]]
            if np.array_equal(live[pos], ids[held]):  # the kept order still matches the index
                return np.sort(pos)
        raise AssertionError("unreachable: a fresh id order always matches")


def _stored_ids(index) -> np.ndarray:
    """The ids of an ``IndexIDMap2``, by storage position: a view, valid until the index next changes."""
    import faiss

    return faiss.rev_swig_ptr(index.id_map.data(), index.id_map.size())


def _stored_vectors(index) -> np.ndarray:
    """The raw vectors of an ``IndexIDMap2`` over a flat or HNSW-flat index, by storage position (a view)."""
    import faiss

    base = faiss.downcast_index(index.index)
    flat = base if isinstance(base, faiss.IndexFlat) else faiss.downcast_index(base.storage)
    return faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d).reshape(flat.ntotal, flat.d)
