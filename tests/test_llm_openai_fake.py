"""The ``openai`` backend and ``LLMExtractor`` against a fake OpenAI-compatible server (``fake_openai``).

Retries (429, 5xx, timeouts, dropped connections, a 200 that is not JSON), repair of invalid replies,
truncated replies, the ``schema_mode`` fallback, the API key, bounded concurrency, the cache and the
token budget, through the extractor and through ``Pipeline(mode="llm")``. No model, no network.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from extractor.cascade import LLMOptions
from extractor.llm.backends.openai_http import OpenAIBackend
from extractor.llm.cache import LLMCache
from extractor.llm.extractor import LLMExtractor
from extractor.llm.prompts import load_prompt
from extractor.llm.schema import MAX_CONSTRAINTS, MAX_QUOTE
from extractor.pipeline import Pipeline
from extractor.types import Document, Turn

from .fake_openai import FakeOpenAI, allowed_quotes, document_of, schema_of
from .ioutil import write_jsonl

INTENTS = {"refund": "wants money back", "cancel": "wants to end the subscription"}
SECRET = "sk-test-secret"


def chat(i: int) -> Document:
    return Document(id=f"c{i}", turns=[Turn(speaker="Agent", text="Hello, how can I help you today?"),
                                       Turn(speaker="Customer", text=f"I was charged twice for order {i}, "
                                                                     "please refund me now.")])


def backend(srv: FakeOpenAI, **kw) -> OpenAIBackend:
    kw.setdefault("backoff", 0.01)
    return OpenAIBackend("fake-model", base_url=srv.base_url, **kw)


def kinds(srv: FakeOpenAI) -> list[str | None]:
    return [(b.get("response_format") or {}).get("type") for b in srv.bodies]


def quote_limit(prop: dict) -> int:
    """The longest quote a schema's ``quote`` property allows (free text: maxLength; pinned: the longest choice)."""
    if "maxLength" in prop:
        return prop["maxLength"]
    return max(len(q) for q in prop.get("enum") or [prop["const"]])


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()] if path.exists() else []


def llm_pipeline(srv: FakeOpenAI, **options) -> Pipeline:
    backend_options = {"backoff": 0.01, "max_retries": 1, "parallel": 1, **options.pop("backend_options", {})}
    return Pipeline(mode="llm", llm=LLMOptions(backend="openai", model="fake-model", base_url=srv.base_url,
                                               backend_options=backend_options, **options))


def doc_rows(n: int, *, broken: tuple[int, ...] = ()) -> list[dict]:
    rows = []
    for i in range(n):
        text = "The printer is broken again and nobody answers my emails." if i in broken else \
            f"My order {i} arrived damaged, I want a refund before Friday."
        rows.append({"id": f"d{i}", "text": text} if i % 2 else
                    {"id": f"d{i}", "turns": [{"speaker": "Agent", "text": "Hi, how can I help?"},
                                              {"speaker": "Customer", "text": text}]})
    return rows


def fail_on_broken(body: dict, n: int) -> tuple:
    """Script: HTTP 500 for the document that mentions "broken", a valid reply for the others."""
    return ("status", 500) if "broken" in document_of(body["messages"]) else ("ok",)


# -- retries in the backend ------------------------------------------------------------------------------
def test_fake_server_429_then_ok_is_retried():
    with FakeOpenAI([("status", 429, {"retry-after": "0"})]) as srv:
        [out] = LLMExtractor(backend(srv), INTENTS).extract_batch([chat(1)])
    assert out.error is None and not out.stopped
    assert len(srv.requests) == 2
    assert srv.bodies[0] == srv.bodies[1]  # the same request, sent again
    assert out.usage.model_calls == 1 and out.usage.repairs == 0  # backend retries are not model calls
    assert out.usage.prompt_tokens == 100 and out.usage.completion_tokens == 20
    by_kind = {s.kind: s for s in out.signals}
    assert set(by_kind) == {"intent", "sentiment", "urgency"}
    assert by_kind["intent"].label == "refund" and by_kind["urgency"].label == "high"
    ev = by_kind["intent"].evidence[0]
    assert (ev.turn, ev.match) == (1, "exact") and ev.text.startswith("I was charged twice")
    assert chat(1).turns[1].text[ev.start:ev.end] == ev.text


def test_fake_server_honours_retry_after():
    with FakeOpenAI([("status", 429, {"retry-after": "0.4"})]) as srv:
        t0 = time.perf_counter()
        [out] = LLMExtractor(backend(srv, backoff=0.001), INTENTS).extract_batch([chat(1)])
        elapsed = time.perf_counter() - t0
    assert out.error is None and len(srv.requests) == 2
    assert elapsed >= 0.4  # the server's Retry-After, not the 1 ms backoff


@pytest.mark.parametrize("step", [("status", 503), ("status", 502, {"retry-after": "soon"}), ("raw", 200, "not json"),
                                  ("raw", 200, '{"choices": []}'), ("drop",)],
                         ids=["503", "502-bad-retry-after", "200-not-json", "200-no-choices", "dropped-connection"])
def test_fake_server_transient_failure_is_retried(step):
    with FakeOpenAI([step, step]) as srv:
        [out] = LLMExtractor(backend(srv), INTENTS).extract_batch([chat(2)])
    assert out.error is None, out.error
    assert len(srv.requests) == 3 and [s.kind for s in out.signals] == ["intent", "sentiment", "urgency"]


MALFORMED = {"usage-not-a-number": {"choices": [{"message": {"content": "{}"}}], "usage": {"prompt_tokens": "n/a"}},
             "choice-not-an-object": {"choices": ["{}"]},
             "message-not-an-object": {"choices": [{"message": "{}"}]},
             "content-a-list": {"choices": [{"message": {"content": [{"type": "text", "text": "{}"}]}}]}}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_fake_server_malformed_completion_is_an_outcome_error(name):
    with FakeOpenAI(default=("raw", 200, json.dumps(MALFORMED[name]))) as srv:
        [out] = LLMExtractor(backend(srv, max_retries=1), INTENTS).extract_batch([chat(1)])
    assert out.signals is None and out.error and srv.requests


def test_fake_server_400_is_not_retried():
    with FakeOpenAI(default=("status", 400)) as srv:
        [out] = LLMExtractor(backend(srv, schema_mode="json_schema"), INTENTS).extract_batch([chat(1)])
    assert len(srv.requests) == 1
    assert out.signals is None and "HTTP 400" in out.error


def test_fake_server_500_every_time_becomes_an_error():
    with FakeOpenAI(default=("status", 500)) as srv:
        be = backend(srv, schema_mode="json_schema", max_retries=2)
        outs = LLMExtractor(be, INTENTS).extract_batch([chat(1)])
    assert len(srv.requests) == be.max_retries + 1 == 3
    [out] = outs
    assert out.signals is None and not out.stopped
    assert "HTTP 500" in out.error and srv.base_url.split("//")[1].split("/")[0] in out.error
    assert out.usage.model_calls == 0


def test_fake_server_500_in_auto_mode_fails_after_both_formats():
    with FakeOpenAI(default=("status", 500)) as srv:
        be = backend(srv, max_retries=1)
        [out] = LLMExtractor(be, INTENTS).extract_batch([chat(1)])
    assert "HTTP 500" in out.error
    # auto reads a 500 as "json_schema refused", so it tries json_object too; each form is retried at most
    # max_retries times, and never again after that.
    assert kinds(srv)[-1] == "json_object" and 2 <= len(srv.requests) <= 2 * (be.max_retries + 1)
    assert kinds(srv) == sorted(kinds(srv), key=lambda k: k != "json_schema")


def test_fake_server_500_lands_in_the_rejects_through_the_pipeline(tmp_path):
    inp = write_jsonl(tmp_path / "in.jsonl", doc_rows(3, broken=(1,)))
    out = tmp_path / "out.jsonl"
    with FakeOpenAI(fail_on_broken) as srv:
        summary = llm_pipeline(srv, backend_options={"schema_mode": "json_object"}).run([str(inp)], out)
    failed = [b for b in srv.bodies if "broken" in document_of(b["messages"])]
    assert len(failed) == 2  # max_retries=1: two attempts, then the dead-letter file
    assert [r["id"] for r in read_jsonl(out)] == ["d0", "d2"]
    [reject] = read_jsonl(tmp_path / "out.rejects.jsonl")
    assert reject["id"] == "d1" and reject["stage"] == "extract"
    assert reject["reason"].startswith("LLM extraction failed:") and "HTTP 500" in reject["reason"]
    assert (summary.n_in, summary.n_ok, summary.n_rejected) == (3, 2, 1)
    assert summary.n_in == summary.n_ok + summary.n_rejected
    assert summary.reject_reasons == {"LLM extraction failed": 1}
    assert summary.mode == "llm" and summary.llm_docs == 2 and summary.model_calls == 2
    assert summary.stopped is None
    written = json.loads((tmp_path / "out.jsonl.summary.json").read_text("utf-8"))
    assert (written["n_in"], written["n_ok"], written["n_rejected"]) == (3, 2, 1)
    for row in read_jsonl(out):
        assert row["usage"]["model_calls"] == 1 and row["provenance"]["models"]["llm"] == be_id(srv)
        for sig in row["signals"]:
            ev = sig["evidence"][0]
            source = row["text"] if ev["turn"] is None else row["turns"][ev["turn"]]["text"]
            assert source[ev["start"]:ev["end"]] == ev["text"]


def be_id(srv: FakeOpenAI) -> str:
    return f"openai:fake-model@{srv.base_url.split('//')[1].split('/')[0]}"


def test_fake_server_timeout_is_retried_then_succeeds():
    with FakeOpenAI([("sleep", 2.0)]) as srv:
        t0 = time.perf_counter()
        [out] = LLMExtractor(backend(srv, timeout=0.5), INTENTS).extract_batch([chat(3)])
        elapsed = time.perf_counter() - t0
    assert out.error is None and out.signals
    assert len(srv.requests) == 2 and srv.bodies[0] == srv.bodies[1]
    assert 0.5 <= elapsed < 2.0  # gave up on the slow reply instead of waiting for it


def test_fake_server_timeout_every_time_is_an_error():
    with FakeOpenAI(default=("sleep", 2.0)) as srv:
        [out] = LLMExtractor(backend(srv, timeout=0.2, max_retries=1), INTENTS).extract_batch([chat(3)])
    assert len(srv.requests) == 2  # timeouts have no status: auto mode does not fall back on them
    assert "Timeout" in out.error and out.signals is None


# -- repair and truncation in the extractor -------------------------------------------------------------
def test_fake_server_not_json_reply_is_repaired():
    bad = "Sure! The customer wants a refund."
    with FakeOpenAI([("reply", bad, "stop")]) as srv:
        [out] = LLMExtractor(backend(srv), INTENTS).extract_batch([chat(4)])
    assert out.error is None and out.signals
    assert len(srv.requests) == 2
    first, second = (b["messages"] for b in srv.bodies)
    assert second[:2] == first
    assert second[2] == {"role": "assistant", "content": bad}
    repair = second[3]
    head, tail = (part.strip() for part in load_prompt("extract").repair.split("$error"))
    assert repair["role"] == "user" and repair["content"].startswith(head) and repair["content"].endswith(tail)
    assert "not valid JSON" in repair["content"]
    assert out.usage.repairs == 1 and out.usage.model_calls == 2
    assert out.usage.prompt_tokens == 200 and out.usage.completion_tokens == 40


def test_fake_server_always_invalid_gives_up_after_max_repairs():
    wrong = json.dumps({"intents": "nope", "sentiment": None})
    with FakeOpenAI(default=("reply", wrong, "stop")) as srv:
        ex = LLMExtractor(backend(srv), INTENTS, max_repairs=2)
        [out] = ex.extract_batch([chat(5)])
        assert len(srv.requests) == ex.max_repairs + 1 == 3
        assert [len(b["messages"]) for b in srv.bodies] == [2, 4, 6]  # each repair adds the reply and the ask
        assert out.signals is None and "invalid after 3 attempts" in out.error
        assert "does not match the schema" in out.error
        assert out.usage.model_calls == 3 and out.usage.repairs == 2
        [again] = ex.extract_batch([chat(5)])  # the failure is cached: no new calls
        assert len(srv.requests) == 3 and again.error == out.error and again.usage.cache_hits == 1


def test_fake_server_truncated_reply_asks_again_with_a_smaller_schema():
    long = ("I was charged twice for my order of the blue kettle last week and the second charge is still on my "
            "card statement today, which is not fine. Refund it.")
    doc = Document(id="long", turns=[Turn(speaker="Agent", text="Hello, how can I help?"),
                                     Turn(speaker="Customer", text=long)])
    cut = '{"intents": [{"quote": "I was charged twice for my order of the blue kettle last'
    with FakeOpenAI([("reply", cut, "length")]) as srv:
        [out] = LLMExtractor(backend(srv), INTENTS).extract_batch([doc])
    assert out.error is None and out.signals
    assert len(srv.requests) == 2
    first, second = srv.bodies
    assert second["messages"] == first["messages"]  # asked afresh, not "repair this"
    s1, s2 = schema_of(first), schema_of(second)
    assert s1["properties"]["constraints"]["maxItems"] == MAX_CONSTRAINTS
    assert s2["properties"]["constraints"]["maxItems"] == MAX_CONSTRAINTS // 2
    for kind in ("sentiment", "urgency"):
        assert quote_limit(s1["properties"][kind]["properties"]["quote"]) > MAX_QUOTE // 2
        assert quote_limit(s2["properties"][kind]["properties"]["quote"]) <= MAX_QUOTE // 2
    assert quote_limit(s2["properties"]["intents"]["items"]["properties"]["quote"]) <= MAX_QUOTE // 2
    assert out.usage.model_calls == 2
    for sig in out.signals:
        ev = sig.evidence[0]
        assert len(ev.text) <= MAX_QUOTE // 2 and doc.turns[ev.turn].text[ev.start:ev.end] == ev.text


# -- schema_mode -----------------------------------------------------------------------------------------
def test_fake_server_auto_falls_back_to_json_object_and_remembers():
    with FakeOpenAI(default=("reject_json_schema",)) as srv:
        be = backend(srv, max_retries=2, parallel=1)  # one document at a time: the second starts after the switch
        outs = LLMExtractor(be, INTENTS).extract_batch([chat(7), chat(8)])
    assert [o.error for o in outs] == [None, None] and all(o.signals for o in outs)
    assert be.schema_mode == "json_object"
    seen = kinds(srv)
    first_doc = [k for k, b in zip(seen, srv.bodies) if "order 7" in document_of(b["messages"])]
    second_doc = [k for k, b in zip(seen, srv.bodies) if "order 8" in document_of(b["messages"])]
    n = first_doc.index("json_object")
    assert 1 <= n <= be.max_retries + 1 and first_doc == ["json_schema"] * n + ["json_object"]
    assert second_doc == ["json_object"]  # remembered: no more json_schema probes
    refused, accepted = srv.bodies[n - 1], srv.bodies[n]
    assert accepted["response_format"] == {"type": "json_object", "schema": refused["response_format"]["json_schema"]
                                           ["schema"]}
    assert set(accepted["response_format"]["schema"]["properties"]) == {"intents", "sentiment", "urgency",
                                                                        "constraints"}


def test_fake_server_auto_sends_json_schema_when_accepted():
    with FakeOpenAI() as srv:
        be = backend(srv, seed=7)
        ex = LLMExtractor(be, INTENTS, max_tokens=300, seed=7)
        [out] = ex.extract_batch([chat(9)])
    assert out.error is None and be.schema_mode == "json_schema"
    [body] = srv.bodies
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and set(fmt) == {"type", "json_schema"}
    assert set(fmt["json_schema"]) == {"name", "schema", "strict"}
    assert fmt["json_schema"]["name"] == "signals" and fmt["json_schema"]["strict"] is True
    schema = fmt["json_schema"]["schema"]
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert set(schema["required"]) == {"intents", "sentiment", "urgency", "constraints"}
    assert "$defs" not in json.dumps(schema) and "$ref" not in json.dumps(schema)  # self-contained
    intent = schema["properties"]["intents"]["items"]["properties"]
    assert intent["label"]["enum"] == [*INTENTS, "out_of_scope"]
    assert intent["turn"]["enum"] == [0, 1]
    turns = [t.text for t in chat(9).turns]
    assert all(any(q in t for t in turns) for q in allowed_quotes(schema) or [])  # pinned quotes: the document's
    assert (body["model"], body["max_tokens"], body["temperature"], body["seed"]) == ("fake-model", 300, 0.0, 7)
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert srv.requests[0]["path"] == "/v1/chat/completions"


def test_fake_server_schema_mode_none_sends_no_response_format():
    with FakeOpenAI() as srv:
        [out] = LLMExtractor(backend(srv, schema_mode="none"), INTENTS).extract_batch([chat(1)])
    assert out.error is None and "response_format" not in srv.bodies[0]


# -- the API key -----------------------------------------------------------------------------------------
def test_fake_server_api_key_from_env(monkeypatch):
    monkeypatch.delenv("SIGNALS_LLM_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with FakeOpenAI() as srv:
        LLMExtractor(backend(srv), INTENTS).extract_batch([chat(1)])
        monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
        LLMExtractor(backend(srv), INTENTS).extract_batch([chat(1)])
        monkeypatch.setenv("SIGNALS_LLM_API_KEY", SECRET)  # preferred over OPENAI_API_KEY
        LLMExtractor(backend(srv), INTENTS).extract_batch([chat(1)])
    assert [r["headers"].get("authorization") for r in srv.requests] == [None, "Bearer sk-openai", f"Bearer {SECRET}"]


def test_fake_server_api_key_is_sent_and_never_written(monkeypatch, tmp_path, caplog, capsys):
    monkeypatch.setenv("SIGNALS_LLM_API_KEY", SECRET)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    caplog.set_level(logging.DEBUG)
    inp = write_jsonl(tmp_path / "in.jsonl", doc_rows(3, broken=(2,)))
    summaries = []
    with FakeOpenAI(fail_on_broken) as srv:
        summaries.append(llm_pipeline(srv, workspace=tmp_path / "ws").run([str(inp)], tmp_path / "ok.jsonl"))
    with FakeOpenAI(default=("status", 401)) as dead:  # a failing run: every document rejected
        summaries.append(llm_pipeline(dead, workspace=tmp_path / "ws2").run([str(inp)], tmp_path / "bad.jsonl"))
    assert srv.requests and dead.requests
    assert {r["headers"]["authorization"] for r in srv.requests + dead.requests} == {f"Bearer {SECRET}"}
    assert (summaries[0].n_ok, summaries[0].n_rejected) == (2, 1)
    assert (summaries[1].n_ok, summaries[1].n_rejected) == (0, 3)
    assert "HTTP 401" in read_jsonl(tmp_path / "bad.rejects.jsonl")[0]["reason"]
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "in.jsonl"]
    names = {p.name for p in files}
    assert {"ok.jsonl", "ok.rejects.jsonl", "ok.jsonl.summary.json", "bad.rejects.jsonl", "llm.sqlite"} <= names
    for p in files:
        assert SECRET.encode() not in p.read_bytes(), p
    for s in summaries:
        assert SECRET not in s.model_dump_json()
    assert caplog.records  # DEBUG logs were captured (httpx, the extractor), and none holds the key
    assert SECRET not in caplog.text
    assert all(SECRET not in r.getMessage() for r in caplog.records)
    out, err = capsys.readouterr()
    assert SECRET not in out + err


# -- concurrency, cache, budget --------------------------------------------------------------------------
def test_fake_server_concurrency_is_bounded_by_parallel():
    docs = [chat(i) for i in range(6)]
    with FakeOpenAI(default=("sleep", 0.2)) as srv:
        t0 = time.perf_counter()
        outs = LLMExtractor(backend(srv, parallel=2), INTENTS).extract_batch(docs)
        elapsed = time.perf_counter() - t0
    assert [o.doc.id for o in outs] == [d.id for d in docs] and all(o.error is None for o in outs)
    assert len(srv.requests) == 6
    assert srv.max_in_flight == 2  # in parallel, and never more than asked
    assert elapsed < 6 * 0.2


def test_fake_server_cache_makes_the_second_run_free(tmp_path):
    docs = [chat(i) for i in range(3)] + [Document(id="p", text="Please cancel my plan, the app keeps crashing.")]
    with FakeOpenAI() as srv:
        cache = LLMCache(tmp_path / "c.sqlite")
        first = LLMExtractor(backend(srv), INTENTS, cache=cache).extract_batch(docs)
        cache.close()
        assert len(srv.requests) == 4
        cache = LLMCache(tmp_path / "c.sqlite")
        second = LLMExtractor(backend(srv), INTENTS, cache=cache).extract_batch(docs)
        cache.close()
        assert len(srv.requests) == 4  # zero new requests
    assert all(o.error is None for o in first + second)
    assert [[s.model_dump() for s in o.signals] for o in second] == [[s.model_dump() for s in o.signals]
                                                                      for o in first]
    assert all(o.usage.cache_hits == 1 and o.usage.model_calls == 0 for o in second)
    plain = first[-1].signals[0].evidence[0]
    assert plain.turn is None and plain.text.startswith("Please cancel my plan")
    assert docs[-1].text[plain.start:plain.end] == plain.text


def test_fake_server_budget_stops_later_documents():
    docs = [chat(i) for i in range(5)]
    with FakeOpenAI(usage=(100, 20)) as srv:  # 120 tokens a call
        ex = LLMExtractor(backend(srv, parallel=1), INTENTS, budget=250)
        outs = ex.extract_batch(docs)
    # calls 1-3 start under the budget (0, 120, 240 < 250); the fourth finds it spent
    assert [o.stopped for o in outs] == [False, False, False, True, True]
    assert all(o.signals for o in outs[:3]) and all(o.signals is None and o.error is None for o in outs[3:])
    assert len(srv.requests) == 3 and ex.tally.tokens == 360


def test_fake_server_budget_in_pipeline_then_resume(tmp_path):
    inp = write_jsonl(tmp_path / "in.jsonl", doc_rows(5))
    out = tmp_path / "out.jsonl"
    with FakeOpenAI(usage=(100, 20)) as srv:
        first = llm_pipeline(srv, budget=250).run([str(inp)], out)
        ids = [r["id"] for r in read_jsonl(out)]
        assert ids == ["d0", "d1", "d2"] and len(srv.requests) == 3
        assert first.stopped and "budget" in first.stopped
        assert (first.n_ok, first.n_rejected) == (3, 0) and first.n_in == first.n_ok + first.n_rejected
        assert read_jsonl(tmp_path / "out.rejects.jsonl") == []
        second = llm_pipeline(srv).run([str(inp)], out)
    ids = [r["id"] for r in read_jsonl(out)]
    assert sorted(ids) == [f"d{i}" for i in range(5)] and len(ids) == len(set(ids))
    assert len(srv.requests) == 5  # the finished documents were not asked again
    assert second.stopped is None and (second.n_in, second.n_ok, second.n_resumed) == (5, 5, 3)
    assert second.model_calls == 2


def test_fake_server_credentials_in_the_url_stay_out_of_ids_and_errors():
    with FakeOpenAI(default=("status", 500)) as srv:
        url = srv.base_url.replace("http://", "http://user:pa55word@")
        b = OpenAIBackend("m", base_url=url, backoff=0.001, max_retries=0)
        [out] = LLMExtractor(b, INTENTS).extract_batch([chat(1)])
    assert "pa55word" not in b.model_id and "user" not in b.model_id
    assert out.error and "pa55word" not in out.error
