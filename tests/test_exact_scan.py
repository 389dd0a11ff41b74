"""The exact scan of filtered matches reads FAISS's stored vectors in place: same answer as brute force."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from extractor.index import Index


def _unit(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _brute(x: np.ndarray, ids: np.ndarray, q: np.ndarray, allowed: np.ndarray, pool: int) -> list[int]:
    keep = np.isin(ids, allowed)
    scores = x[keep] @ q
    return ids[keep][np.argsort(-scores, kind="stable")][:pool].tolist()


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_exact_scan_matches_brute_force_and_skips_unknown_ids(tmp_path, kind):
    d, n = 16, 3000
    x = _unit(n, d, 0)
    ids = np.random.default_rng(1).choice(10**12, n, replace=False).astype(np.int64)
    idx = Index(tmp_path, embedder_id="test-vectors", dim=d)
    base = faiss.IndexFlatIP(d) if kind == "flat" else faiss.IndexHNSWFlat(d, 16, faiss.METRIC_INNER_PRODUCT)
    idx.vectors = faiss.IndexIDMap2(base)
    idx.vectors.add_with_ids(x, ids)
    rng = np.random.default_rng(2)
    for trial in range(5):
        allowed = rng.choice(ids, 400, replace=False)
        unknown = np.asarray([7, 8, 9], dtype=np.int64)  # in the store but not (yet) in the index
        q = _unit(1, d, 10 + trial)[0]
        got, strategy = idx.rank_vector(q, np.concatenate([allowed, unknown]), 10)
        assert strategy == "exact-scan"
        assert [i for i, _ in got] == _brute(x, ids, q, allowed, 10)
        assert all(np.isclose(s, x[ids == i][0] @ q, atol=1e-5) for i, s in got)


def test_exact_scan_notices_an_index_changed_behind_its_back(tmp_path):
    d = 8
    x = _unit(50, d, 3)
    idx = Index(tmp_path, embedder_id="test-vectors", dim=d)
    idx.vectors.add_with_ids(x[:40], np.arange(40, dtype=np.int64))
    q = x[45]
    idx.rank_vector(q, np.arange(50), 5)  # keeps the id order of 40 vectors
    idx.vectors.remove_ids(faiss.IDSelectorBatch(np.asarray([0], dtype=np.int64)))
    idx.vectors.add_with_ids(x[40:41], np.asarray([40], dtype=np.int64))  # same count, different ids
    idx.vectors.add_with_ids(x[41:], np.arange(41, 50, dtype=np.int64))
    got, _ = idx.rank_vector(q, np.arange(50), 5)
    ids = np.arange(1, 50)
    assert [i for i, _ in got] == _brute(x[1:], ids, q, ids, 5)
    assert got[0][0] == 45


def test_exact_scan_notices_a_swap_that_keeps_the_count(tmp_path):
    d = 8
    x = _unit(41, d, 4)
    idx = Index(tmp_path, embedder_id="test-vectors", dim=d)
    idx.vectors.add_with_ids(x[:40], np.arange(40, dtype=np.int64))
    idx.rank_vector(x[40], np.arange(41), 3)
    idx.vectors.remove_ids(faiss.IDSelectorBatch(np.asarray([39], dtype=np.int64)))
    idx.vectors.add_with_ids(x[40:41], np.asarray([40], dtype=np.int64))  # 40 vectors again, one id new
    got, _ = idx.rank_vector(x[40], np.arange(41), 3)
    assert got[0][0] == 40 and 39 not in [i for i, _ in got]
