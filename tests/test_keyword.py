"""The numpy keyword reader scores exactly as bm25s does, and survives a save and load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from extractor.keyword import KeywordIndex, _bm25s

DATA = Path(__file__).resolve().parents[1] / "sample_data"


def _texts() -> list[str]:
    rows = [json.loads(line) for line in (DATA / "reviews.jsonl").read_text("utf-8").splitlines() if line.strip()]
    extra = ["Order #A-4412 was charged twice 😡", "退款 refund refund refund", "café cafe\u0301 CAFÉ", "",
             "the and of"]
    return [r["text"] for r in rows] + extra


@pytest.mark.parametrize("query", ["refund", "charged twice order 4412", "refund refund", "café", "the of and",
                                   "zzz-not-in-vocab", "Delivery LATE again!!"])
def test_scores_equal_bm25s(query):
    bm25s = _bm25s()
    texts = _texts()
    kw = KeywordIndex.build(texts, np.arange(len(texts)) + 1000)
    ref = bm25s.BM25()
    ref.index(bm25s.tokenize(texts, stopwords="english", show_progress=False), show_progress=False)
    tokens = bm25s.tokenize([query], stopwords="english", return_ids=False, show_progress=False)[0]
    want = ref.get_scores(tokens) if ref.get_tokens_ids(tokens) else np.zeros(len(texts), np.float32)
    np.testing.assert_allclose(kw.scores(query), want, rtol=1e-6, atol=1e-7)


def test_save_load_rank_and_filter(tmp_path):
    texts = _texts()
    ids = np.arange(len(texts), dtype=np.int64) * 7 + 3
    kw = KeywordIndex.build(texts, ids)
    kw.save(tmp_path)
    back = KeywordIndex.load(tmp_path)
    assert back.rank("refund", None, 50) == kw.rank("refund", None, 50)
    ranked = back.rank("refund", None, 50)
    assert ranked and all(score > 0 for _, score in ranked)
    assert [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)
    allowed = np.asarray([i for i, _ in ranked[1::2]], dtype=np.int64)
    filtered = back.rank("refund", allowed, 50)
    assert {i for i, _ in filtered} == set(allowed.tolist())  # every allowed match, nothing else
    assert back.rank("refund", np.zeros(0, np.int64), 5) == []


def test_empty_index(tmp_path):
    kw = KeywordIndex.build([], [])
    kw.save(tmp_path)
    assert len(KeywordIndex.load(tmp_path)) == 0
    assert KeywordIndex.load(tmp_path).rank("anything", None, 5) == []
