"""The store (DuckDB) and the index (FAISS + BM25) over real results of the real pipeline on sample_data/."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from extractor.cli import app
from extractor.errors import ConfigError
from extractor.index import Index, forget_customer, index_results
from extractor.store import Store

from .conftest import ROOT

runner = CliRunner()


@pytest.fixture
def workspace(built, tmp_path):
    """A fresh copy of the built workspace for each test (some tests delete or crash)."""
    import shutil

    return Path(shutil.copytree(built, tmp_path / "ws"))


def test_build_stores_every_document_and_indexes_every_segment(workspace, results_file):
    n_docs = len(results_file.read_text().splitlines())
    with Store(workspace, read_only=True) as st:
        counts = st.counts()
    idx = Index.open(workspace)
    assert counts["documents"] == n_docs and counts["segments"] == idx.vectors.ntotal == len(idx.keywords)
    m = idx.stats()
    assert m["embedder"].endswith("all-MiniLM-L6-v2") and m["dim"] == 384 and m["count"] == counts["segments"]
    assert m["index_type"] == "IndexFlatIP" and m["versions"]["faiss"]


def test_hits_are_exact_quotes_with_their_signals(workspace, sample_docs):
    res = Index.open(workspace).search("I was charged twice", k=5)
    assert len(res.hits) == 5 and res.strategy == "faiss+bm25"
    for h in res.hits:
        assert sample_docs[h.doc_id].unit_text(h.turn)[h.start:h.end] == h.text
        assert all(s["kind"] in ("intent", "sentiment", "urgency", "constraint") for s in h.signals)
    assert "charged" in res.hits[0].text.lower()


@pytest.mark.parametrize("where", ["channel=chat", "sentiment=negative and channel=phone",
                                   "speaker=customer and created_at>=2026-10-15", "customer_id=C001"])
def test_a_filtered_query_returns_k_hits_that_all_match(workspace, where):
    idx = Index.open(workspace)
    with Store(workspace, read_only=True) as st:
        allowed = set(st.filter_ids(where))
        rows = st.segments(sorted(allowed))
    k = min(10, len(allowed))
    assert k >= 1
    for mode in ("vector", "keyword", "hybrid"):
        res = idx.search("my bill is wrong and I want a refund", where=where, k=10, mode=mode)
        assert {h.segment_id for h in res.hits} <= allowed, (mode, where)
        if mode != "keyword":  # keyword search returns only segments that share a word with the query
            assert len(res.hits) == k, (mode, where)
    assert all(rows[i]["doc_id"] for i in allowed)


def test_re_indexing_the_same_results_replaces_rows(workspace, results_file):
    before = Index.open(workspace)
    out = index_results(workspace, [str(results_file)])
    after = Index.open(workspace)
    assert out["segments"] == before.vectors.ntotal == after.vectors.ntotal == len(after.keywords)
    assert out["documents"] == before.documents.ntotal == after.documents.ntotal == len(after.doc_names)


def test_deleting_a_customer_removes_rows_vectors_and_keywords(workspace, sample_docs):
    phrase = "charged $54.99 twice for my Nimbus Plus bill"
    idx = Index.open(workspace)
    assert any(h.customer_id == "C001" for h in idx.search(phrase, k=3, mode="keyword").hits)
    gone = forget_customer(workspace, "C001")
    assert gone["documents"] >= 1 and gone["segments"] >= 1
    idx = Index.open(workspace)
    for mode in ("vector", "keyword", "hybrid"):
        assert not any(h.customer_id == "C001" for h in idx.search(phrase, k=50, mode=mode).hits)
    with Store(workspace, read_only=True) as st:
        assert len(st.filter_ids("customer_id=C001")) == 0
        assert st.db.execute("SELECT COUNT(*) FROM documents WHERE customer_id = 'C001'").fetchone()[0] == 0
    assert idx.vectors.ntotal == len(idx.keywords)


_CRASH = """
import sys, time, faiss
from extractor.index import Index
real = faiss.write_index
def slow(index, path):
    real(index, path)
    print("WRITTEN", flush=True)
    time.sleep(60)
faiss.write_index = slow
Index.open(sys.argv[1]).save()
"""


def test_a_crash_during_save_leaves_the_previous_index_loadable(workspace):
    before = Index.open(workspace).vectors.ntotal
    proc = subprocess.Popen([sys.executable, "-c", _CRASH, str(workspace)], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == "WRITTEN"  # midway: the new version's vectors are on disk
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    idx = Index.open(workspace)
    assert idx.vectors.ntotal == before and idx.search("refund", k=3).hits
    idx.save()  # the next save clears the crashed attempt's leftovers
    assert [p.name for p in (workspace / "index").iterdir() if p.name.startswith(".")] == []


def test_another_embedder_is_refused_naming_both(workspace):
    class Other:
        model_id, dim = "other-encoder", 384

    with pytest.raises(ConfigError, match="other-encoder"):
        Index.open(workspace, Other())


def test_export_parquet(workspace, tmp_path):
    import pyarrow.parquet as pq

    with Store(workspace, read_only=True) as st:
        paths = st.export_parquet(tmp_path / "pq")
        n = st.counts()["segments"]
    assert pq.read_table([p for p in paths if p.stem == "segments"][0]).num_rows == n


def test_cli_search_json_and_bad_filter(workspace):
    t0 = time.perf_counter()
    res = runner.invoke(app, ["search", "internet down", "--workspace", str(workspace), "-k", "3", "--json",
                              "--where", "channel=phone"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert len(out["hits"]) == 3 and {"doc_id", "segment_id", "score", "text", "start", "end", "turn", "speaker",
                                      "customer_id", "created_at", "signals"} <= set(out["hits"][0])
    assert out["filter"] == "channel=phone" and out["took_ms"] < (time.perf_counter() - t0) * 1000 + 1
    bad = runner.invoke(app, ["search", "x", "--workspace", str(workspace), "--where", "urgency>>0.7"])
    assert bad.exit_code == 2 and "^" in bad.output


def test_langchain_retriever_returns_documents_with_hit_metadata(workspace):
    pytest.importorskip("langchain_core", reason="langchain-core is not installed (the dev extra installs it)")
    from extractor.retriever import SignalsRetriever

    docs = SignalsRetriever(workspace=str(workspace), where="channel=chat", k=4).invoke("refund for a double charge")
    assert len(docs) == 4
    for d in docs:
        assert d.metadata["channel"] == "chat" and d.metadata["doc_id"] and "segment_id" in d.metadata
        assert isinstance(d.page_content, str) and d.page_content


def test_queries_use_the_onnx_export_with_the_same_vectors(workspace, pipeline):
    from extractor.query_encoder import DIR, OnnxQueryEncoder

    fast = OnnxQueryEncoder.load(workspace / "index" / DIR)
    assert fast is not None, "index build exports the query encoder (onnx + onnxruntime are dependencies)"
    texts = ["Where is my parcel? It was due on Monday.", "最悪のサービス", "refund"]
    ref = pipeline.local.embedder.encode(texts)
    assert ((fast.encode(texts) * ref).sum(1) > 0.9999).all()
    idx = Index.open(workspace)
    idx.search("parcel late", k=1, mode="vector")
    assert isinstance(idx.embedder, OnnxQueryEncoder) and idx.embedder.model_id == pipeline.local.embedder.model_id


def test_extract_with_index_lands_in_the_store_and_is_searchable(tmp_path):
    from .conftest import SAMPLE

    ws = tmp_path / "ws"
    res = runner.invoke(app, ["extract", str(SAMPLE / "reviews.jsonl"), "--out", str(tmp_path / "o.jsonl"),
                              "--catalog", str(SAMPLE / "catalog.yaml"), "--workspace", str(ws), "--index"])
    assert res.exit_code == 0, res.output
    with Store(ws, read_only=True) as st:
        assert st.counts()["documents"] == 32
    hits = Index.open(ws).search("battery", k=3, where="channel=review").hits
    assert len(hits) == 3 and all(h.channel == "review" for h in hits)


def test_document_level_search_ranks_documents_with_their_best_matching_quote(workspace, sample_docs):
    idx = Index.open(workspace)
    assert idx.documents.ntotal == len({d for d in idx.doc_names.values()}) == len(sample_docs)
    for mode in ("vector", "keyword", "hybrid"):
        res = idx.search("charged twice for my bill", k=5, mode=mode, level="document")
        docs = [h.doc_id for h in res.hits]
        assert len(docs) == len(set(docs)) == 5, (mode, docs)  # one hit per document
        assert res.strategy.startswith("documents:")
        for h in res.hits:
            unit = sample_docs[h.doc_id].units()[h.turn if h.turn is not None else 0][1]
            assert unit[h.start:h.end] == h.text
    assert "T001" in [h.doc_id for h in idx.search("charged twice for my bill", k=5, level="document").hits]
    res = idx.search("charged twice", where="channel=chat", k=4, mode="hybrid", level="document")
    assert len(res.hits) == 4 and all(h.channel == "chat" for h in res.hits)
    gone = forget_customer(workspace, "C001")
    idx = Index.open(workspace)
    assert gone["documents"] == 2 and idx.documents.ntotal == len(sample_docs) - 2
    assert not [h for h in idx.search("charged twice", k=20, level="document").hits if h.customer_id == "C001"]
