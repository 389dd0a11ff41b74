"""The llamacpp backend with the real SmolLM2 GGUF: valid output, exact offsets, cache, chunking, injection."""

from __future__ import annotations

import json

import pytest

from extractor.io import iter_documents
from extractor.llm.cache import LLMCache
from extractor.llm.extractor import LLMExtractor
from extractor.types import Document, Turn

from .conftest import ROOT, SAMPLE
from .llm_fixtures import INTENTS, LIMITS, assert_valid_llm_signals, smollm2_path


@pytest.fixture(scope="session")
def llama():
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (the dev extra installs it)")
    from extractor.llm.backends.llamacpp import LlamaCppBackend

    return LlamaCppBackend(smollm2_path(), context_tokens=2048)


def _extractor(backend, cache=None, **kw):
    return LLMExtractor(backend, INTENTS, cache=cache, **{**LIMITS, **kw})


def _sample(n_transcripts=3, n_reviews=2):
    docs = list(iter_documents([str(SAMPLE / "transcripts.jsonl")]))[:n_transcripts]
    return docs + list(iter_documents([str(SAMPLE / "reviews.jsonl")]))[:n_reviews]


def test_llamacpp_sample_documents_are_valid_and_grounded_exactly(llama, tmp_path):
    ex = _extractor(llama, LLMCache(tmp_path / "cache.sqlite"))
    docs = _sample()
    outcomes = ex.extract_batch(docs)
    assert len(outcomes) == len(docs)
    n_spans = 0
    for doc, out in zip(docs, outcomes):
        assert (out.signals is None) != (out.error is None), "each document is signals or a recorded failure"
        assert out.usage.model_calls >= 1 and out.usage.prompt_tokens > 0 and out.usage.completion_tokens > 0
        if out.signals is not None:
            n_spans += assert_valid_llm_signals(doc, out.signals)
    g = ex.grounding_summary()
    assert g["quotes"] == g["kept"] + g["dropped"] and 0 < n_spans <= g["kept"]  # merging drops repeats
    assert sum(o.signals is not None for o in outcomes) >= len(docs) - 1  # grammar: nearly every reply parses

    again = _extractor(llama, LLMCache(tmp_path / "cache.sqlite")).extract_batch(docs)
    assert sum(o.usage.model_calls for o in again) == 0, "a second run over the same text makes no model calls"
    assert all(o.usage.cache_hits >= 1 for o in again)
    assert [o.signals for o in again] == [o.signals for o in outcomes]
    assert [o.error for o in again] == [o.error for o in outcomes]


def test_llamacpp_a_changed_prompt_or_limit_is_a_cache_miss(llama, tmp_path):
    cache = LLMCache(tmp_path / "c.sqlite")
    doc = Document(id="d1", text="My internet has been down since Monday, fix it today please.")
    first = _extractor(llama, cache).extract_batch([doc])[0]
    assert first.usage.model_calls >= 1
    other = _extractor(llama, cache, max_tokens=LIMITS["max_tokens"] + 1).extract_batch([doc])[0]
    assert other.usage.cache_hits == 0 and other.usage.model_calls >= 1


def test_llamacpp_long_transcript_is_chunked_on_turns_with_offsets_in_the_original(llama):
    lines = [f"On day {i} the router dropped the connection again and I lost my work call." for i in range(60)]
    turns = [Turn(speaker="Customer" if i % 2 else "Agent", text=t, role="customer" if i % 2 else "agent")
             for i, t in enumerate(lines)]
    doc = Document(id="long", turns=turns)
    ex = _extractor(llama)
    out = ex.extract_batch([doc])[0]
    assert out.usage.chunks >= 2, "60 turns do not fit SmolLM2's 2048-token context in one call"
    assert out.signals is not None or out.error
    if out.signals:
        assert_valid_llm_signals(doc, out.signals)
        assert all(0 <= ev.turn < len(turns) for s in out.signals for ev in s.evidence)


def _injection_docs():
    return list(iter_documents([str(ROOT / "eval" / "data" / "injection_transcripts.jsonl")]))


def test_llamacpp_injection_transcripts_keep_structure_and_grounding(llama):
    docs = _injection_docs()
    assert len(docs) >= 10
    outcomes = _extractor(llama).extract_batch(docs)
    kept = 0
    for doc, out in zip(docs, outcomes):
        assert out.error is None or "invalid after" in out.error  # a recorded failure, never a crash
        for s in out.signals or []:
            assert s.label not in ("hacked", "password"), f"{doc.id}: an injected label reached the output"
        kept += assert_valid_llm_signals(doc, out.signals or [])
    assert kept > 0


def test_llm_mode_pipeline_run_writes_usage_and_summary(llama, tmp_path):
    from extractor.cascade import LLMOptions
    from extractor.pipeline import Pipeline

    src = tmp_path / "in.jsonl"
    rows = [{"id": "a", "customer_id": "C1", "text": "I was charged twice for October, refund it by Friday."},
            {"id": "b", "customer_id": "C2", "text": "   "},
            {"id": "c", "customer_id": "C3", "text": "Cancel my plan, the app never works."}]
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n{broken\n")
    taxonomy = tmp_path / "taxonomy.yaml"
    taxonomy.write_text("id: small@1\nintents:\n" + "".join(f"  - label: {k}\n    description: {v}\n"
                                                          for k, v in INTENTS.items()))
    opts = LLMOptions(backend="llamacpp", model=str(smollm2_path()), workspace=tmp_path / "ws",
                      **LIMITS, backend_options={"context_tokens": 2048})
    pipe = Pipeline(taxonomy, mode="llm", llm=opts)
    summary = pipe.run([str(src)], tmp_path / "out.jsonl")
    assert summary.n_in == summary.n_ok + summary.n_rejected == 4
    assert summary.mode == "llm" and summary.model_calls >= 2 and summary.prompt_tokens > 0
    assert summary.grounding["quotes"] >= summary.grounding["kept"]
    out = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    for row in out:
        assert row["usage"]["model_calls"] >= 1 and row["provenance"]["mode"] == "llm"
        assert row["provenance"]["models"]["llm"].startswith("llamacpp:SmolLM2")
        assert row["provenance"]["models"]["prompt"].startswith("extract@v1+")
    assert (tmp_path / "ws" / "cache" / "llm.sqlite").is_file()
    reasons = [json.loads(x)["reason"] for x in (tmp_path / "out.rejects.jsonl").read_text().splitlines()]
    assert len(reasons) == 2 and any("whitespace-only" in r for r in reasons)
    again = Pipeline(taxonomy, mode="llm", llm=opts).run([str(src)], tmp_path / "out2.jsonl")
    assert again.model_calls == 0 and again.cache_hits >= 2
