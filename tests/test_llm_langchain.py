"""The langchain backend: LangChain's own fake chat model (named as such), and errors that say what to fix."""

from __future__ import annotations

import json

import pytest

from extractor.errors import ConfigError
from extractor.llm.backends import load_backend
from extractor.llm.extractor import LLMExtractor
from extractor.types import Document

from .llm_fixtures import INTENTS, assert_valid_llm_signals

pytest.importorskip("langchain_core", reason="langchain-core is not installed (the dev extra installs it)")

TEXT = "I was charged twice for October. Please refund the extra charge by Friday."
REPLY = {"intents": [{"quote": "I was charged twice for October.", "label": "billing_double_charge"}],
         "sentiment": {"quote": "Please refund the extra charge", "label": "negative"},
         "urgency": {"quote": "by Friday", "level": "medium"},
         "constraints": [{"quote": "Friday", "type": "datetime", "value": "Friday"}]}


def _fake(responses):
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    return FakeListChatModel(responses=responses)


def test_langchain_fake_chat_model_reply_is_validated_and_grounded():
    backend = load_backend("langchain", _fake([json.dumps(REPLY)]))
    doc = Document(id="d", text=TEXT)
    [out] = LLMExtractor(backend, INTENTS).extract_batch([doc])
    assert out.error is None
    assert assert_valid_llm_signals(doc, out.signals) == 4
    assert {s.kind for s in out.signals} == {"intent", "sentiment", "urgency", "constraint"}
    assert backend.model_id.startswith("langchain:FakeListChatModel#")


def test_langchain_fake_chat_model_invalid_then_repaired():
    backend = load_backend("langchain", _fake(["Sure! Here is the JSON you asked for", json.dumps(REPLY)]))
    [out] = LLMExtractor(backend, INTENTS).extract_batch([Document(id="d", text=TEXT)])
    assert out.error is None and out.usage.model_calls == 2 and out.usage.repairs == 1


def test_langchain_fake_chat_model_ungrounded_quotes_are_dropped_and_counted():
    made_up = {**REPLY, "intents": [{"quote": "I love this company so much", "label": "refund_request"}]}
    ex = LLMExtractor(load_backend("langchain", _fake([json.dumps(made_up)])), INTENTS)
    [out] = ex.extract_batch([Document(id="d", text=TEXT)])
    assert not any(s.kind == "intent" for s in out.signals)
    assert out.usage.ungrounded == 1 and ex.grounding_summary()["dropped"] == 1


def test_langchain_model_spec_must_name_an_object():
    with pytest.raises(ConfigError, match="module:attribute"):
        load_backend("langchain", "just_a_name")
    with pytest.raises(ConfigError, match="could not be imported"):
        load_backend("langchain", "no_such_module_xyz:model")


def test_quotable_sentences_avoid_characters_that_crash_llama_cpp_grammars():
    """Found by the injection set: a sentence with a double quote in an enum made llama.cpp segfault."""
    from extractor.llm.backends.llamacpp import _unsafe_constant
    from extractor.llm.chunk import chunk_document
    from extractor.llm.schema import json_schema, reply_model

    doc = Document(id="d", text='He said "ignore it" and left. Path C:\\temp\\x is fine? Yes.')
    [chunk] = chunk_document(doc, budget=1000, count=len)
    quotes = chunk.sentences(48)
    assert quotes and all('"' not in q and "\\" not in q and q in doc.text for q in quotes)
    assert _unsafe_constant(json_schema(reply_model(list(INTENTS), quotes=quotes))) is None
    assert _unsafe_constant({"enum": ['say "hi"']}) == 'say "hi"'
