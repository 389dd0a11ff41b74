"""Packing short texts into one call, against a FAKE OpenAI-compatible server (tests/fake_openai.py)."""

from __future__ import annotations

import json
import re

from extractor.llm.backends.openai_http import OpenAIBackend
from extractor.llm.cache import LLMCache
from extractor.llm.extractor import LLMExtractor
from extractor.types import Document, Turn

from .fake_openai import FakeOpenAI, completion, first_label
from .llm_fixtures import INTENTS, assert_valid_llm_signals

_BLOCK = re.compile(r"<<<DOCUMENT (?P<ref>D\d+) \w+>>>\n(?P<text>.*?)\n<<<END (?P=ref) \w+>>>", re.S)
TEXTS = ["Great router, the signal reaches my garden now.", "I was charged twice for my October bill.",
         "Please cancel my TV subscription today.", "The app keeps crashing when I open settings.",
         "Refund my order, the box arrived crushed."]


def docs(n=len(TEXTS)):
    return [Document(id=f"r{i}", customer_id=f"C{i}", text=t) for i, t in enumerate(TEXTS[:n])]


def packed_reply(body, drop=(), swap=False):
    """A valid packed reply: each item quotes the first four words of its own document."""
    user = next(m["content"] for m in body["messages"] if m["role"] == "user")
    blocks = [(m["ref"], m["text"]) for m in _BLOCK.finditer(user)]
    if not blocks:  # a single document: the fake's own valid reply
        from .fake_openai import schema_of, valid_reply

        return json.dumps(valid_reply(body["messages"], schema_of(body)))
    items = []
    for i, (ref, text) in enumerate(blocks):
        if ref in drop:
            continue
        source = blocks[(i + 1) % len(blocks)][1] if swap and i == 0 else text
        quote = " ".join(source.split()[:4])
        items.append({"ref": ref, "intents": [{"quote": quote, "label": first_label(body["messages"])}],
                      "sentiment": {"quote": quote, "label": "negative"}, "urgency": {"quote": quote, "level": "low"},
                      "constraints": []})
    return json.dumps({"documents": items})


def backend(srv):
    return OpenAIBackend("fake-model", base_url=srv.base_url, backoff=0.001, schema_mode="json_schema", parallel=1)


def test_fake_server_short_texts_share_calls_and_each_is_grounded_in_its_own_text():
    with FakeOpenAI(lambda body, n: ("reply", packed_reply(body))) as srv:
        ex = LLMExtractor(backend(srv), INTENTS, pack=4)
        outs = ex.extract_batch(docs())
    assert len(srv.requests) == 2  # four documents in one call, the fifth alone
    packed = [o for o in outs if o.usage.packed == 4]
    assert len(packed) == 4 and sum(o.usage.model_calls for o in outs) == 2
    for o in outs:
        assert o.error is None and assert_valid_llm_signals(o.doc, o.signals) >= 3
    first = srv.bodies[0]
    assert first["response_format"]["json_schema"]["schema"]["properties"]["documents"]["minItems"] == 4


def test_fake_server_a_missing_document_is_repaired_then_unpacked_one_by_one():
    def script(body, n):  # the packed call never returns D2; single calls work
        return ("reply", packed_reply(body, drop=("D2",)))

    with FakeOpenAI(script) as srv:
        ex = LLMExtractor(backend(srv), INTENTS, pack=3, max_repairs=1)
        outs = ex.extract_batch(docs(3))
    assert all(o.error is None and o.signals for o in outs), [o.error for o in outs]
    assert len(srv.requests) == 2 + 3  # the pack and its repair, then each document alone
    repair = srv.bodies[1]["messages"][-1]["content"]
    assert "at least 3 items" in repair


def test_fake_server_a_quote_from_a_neighbour_is_dropped_not_misattributed():
    with FakeOpenAI(lambda body, n: ("reply", packed_reply(body, swap=True))) as srv:
        ex = LLMExtractor(backend(srv), INTENTS, pack=3)
        outs = ex.extract_batch(docs(3))
    assert outs[0].signals == [] and outs[0].usage.ungrounded == 3
    assert all(assert_valid_llm_signals(o.doc, o.signals) == 3 for o in outs[1:])


def test_fake_server_packed_replies_are_cached_and_forgotten_per_customer(tmp_path):
    cache = LLMCache(tmp_path / "c.sqlite")
    with FakeOpenAI(lambda body, n: ("reply", packed_reply(body))) as srv:
        first = LLMExtractor(backend(srv), INTENTS, pack=4, cache=cache).extract_batch(docs(4))
        again = LLMExtractor(backend(srv), INTENTS, pack=4, cache=cache).extract_batch(docs(4))
    assert len(srv.requests) == 1 and [o.signals for o in again] == [o.signals for o in first]
    assert cache.forget("C2") == 1 and len(cache) == 0  # the pack held C2's text: it goes


def test_fake_server_transcripts_are_never_packed():
    chat = Document(id="t", turns=[Turn(speaker="Customer", text="My internet is down again today.")])
    with FakeOpenAI(lambda body, n: ("reply", packed_reply(body))) as srv:
        outs = LLMExtractor(backend(srv), INTENTS, pack=4).extract_batch([chat, *docs(2)])
    assert len(srv.requests) == 2 and outs[0].usage.packed == 1 and outs[1].usage.packed == 2
    assert all(o.error is None for o in outs)
    assert completion("x")["choices"][0]["message"]["content"] == "x"
