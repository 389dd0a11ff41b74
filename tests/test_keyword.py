"""The numpy keyword reader scores exactly as bm25s does (on the normalised text), and survives a save and load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from extractor.keyword import KeywordIndex, _bm25s, prepare

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
    ref.index(bm25s.tokenize([prepare(t) for t in texts], stopwords="english", show_progress=False),
              show_progress=False)
    tokens = bm25s.tokenize([prepare(query)], stopwords="english", return_ids=False, show_progress=False)[0]
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


def _bm25s_scores(texts: list[str], query: str) -> np.ndarray:
    bm25s = _bm25s()
    ref = bm25s.BM25()
    ref.index(bm25s.tokenize([prepare(t) for t in texts], stopwords="english", show_progress=False),
              show_progress=False)
    tokens = bm25s.tokenize([prepare(query)], stopwords="english", return_ids=False, show_progress=False)[0]
    return ref.get_scores(tokens) if ref.get_tokens_ids(tokens) else np.zeros(len(texts), np.float32)


@pytest.mark.parametrize("query", ["refund", "charged twice order 4412", "router wifi", "delivery late refund"])
def test_added_segments_score_as_a_full_rebuild_would(query):
    texts = _texts()
    main, extra = texts[:25], texts[25:]
    kw = KeywordIndex.build(main, np.arange(len(main)))
    kw.add(extra, np.arange(len(main), len(texts)))
    want = _bm25s_scores(texts, query)[len(main):]  # the delta's scores in a build over everything
    ids, got = kw.delta_scores(query)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert list(ids) == list(range(len(main), len(texts)))


def test_removed_and_replaced_segments_leave_the_ranking(tmp_path):
    texts = _texts()
    kw = KeywordIndex.build(texts, np.arange(len(texts)))
    top = kw.rank("refund", None, 3)[0][0]
    kw.remove([top])
    assert top not in {i for i, _ in kw.rank("refund", None, 50)}
    kw.add(["this segment now talks about a zebra"], [5])  # replace segment 5's text
    assert kw.rank("zebra", None, 5)[0][0] == 5
    assert 5 not in {i for i, _ in kw.rank(texts[5].split()[0], None, 50)} or "zebra" in texts[5]
    assert len(kw) == len(texts) - 1
    kw.save(tmp_path)
    back = KeywordIndex.load(tmp_path)
    assert back.rank("zebra", None, 5) == kw.rank("zebra", None, 5) and len(back) == len(kw)
    assert back.rank("refund", None, 50) == kw.rank("refund", None, 50)


def test_an_index_started_empty_grows_by_delta_and_asks_for_a_rebuild():
    kw = KeywordIndex.empty()
    texts = _texts()
    kw.add(texts, np.arange(len(texts)))
    np.testing.assert_allclose(kw.delta_scores("refund")[1], _bm25s_scores(texts, "refund"), rtol=1e-5, atol=1e-6)
    assert not kw.needs_rebuild()
    kw.add(["x"] * 2100, np.arange(1000, 3100))
    assert kw.needs_rebuild()


def test_composition_does_not_matter_and_cjk_words_are_found(tmp_path):
    texts = ["Cafe\u0301 closed", "Café open", "我的订单还没到。", "我要取消订阅，太贵了。",
             "ﾃﾞﾝﾜ full-width ＲＥＦＵＮＤ"]
    kw = KeywordIndex.build(texts[:2], [1, 2])
    kw.add(texts[2:], [3, 4, 5])  # the delta tokenises as the build does
    kw.save(tmp_path)
    kw = KeywordIndex.load(tmp_path)
    hits = lambda q: {i for i, _ in kw.rank(q, None, 10)}  # noqa: E731
    assert hits("café") == hits("cafe\u0301") == {1, 2}  # precomposed or not: the same word
    assert hits("订单") == {3} and hits("取消订阅") == {4} and hits("refund") == {5}
    big = KeywordIndex.build(texts, [1, 2, 3, 4, 5])  # the main index too
    assert {i for i, _ in big.rank("订单", None, 10)} == {3}
