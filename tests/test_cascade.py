"""Cascade: the local models first, the LLM (real SmolLM2 via llamacpp) only for documents they are unsure of."""

from __future__ import annotations

import json

import pytest

from extractor.cascade import LLMOptions, merge, needs_llm
from extractor.types import Evidence, Signal

from .conftest import SAMPLE
from .llm_fixtures import LIMITS, smollm2_path


def _sig(kind, label, conf, start=0, end=4, turn=None):
    ev = Evidence(start=start, end=end, text="x" * (end - start), turn=turn)
    return Signal(kind=kind, label=label, confidence=conf, evidence=[ev])


def test_routing_rule():
    sure = [_sig("intent", "refund", 0.9), _sig("sentiment", "negative", 0.8)]
    assert not needs_llm(sure, threshold=0.6)
    assert needs_llm([*sure, _sig("sentiment", "neutral", 0.4)], threshold=0.6)
    assert needs_llm([_sig("intent", "out_of_scope", 0.9)], threshold=0.6)
    assert needs_llm([_sig("sentiment", "negative", 0.9)], threshold=0.6)  # no intent at all
    assert not needs_llm([_sig("intent", "refund", 0.5)], threshold=0.4)


def test_merge_replaces_judgements_and_adds_only_new_constraint_spans():
    local = [_sig("intent", "refund", 0.5), _sig("urgency", "low", 0.6), _sig("constraint", "money", 0.9, 10, 16)]
    llm = [_sig("intent", "cancel", 0.7), _sig("constraint", "money", 0.7, 12, 15),
           _sig("constraint", "datetime", 0.7, 30, 36)]
    out = merge(local, llm)
    assert [(s.kind, s.label) for s in out if s.kind == "intent"] == [("intent", "cancel")]
    assert [s.label for s in out if s.kind == "urgency"] == ["low"]  # the LLM gave none: local kept
    spans = sorted((s.label, s.evidence[0].start) for s in out if s.kind == "constraint")
    assert spans == [("datetime", 30), ("money", 10)]


@pytest.mark.parametrize("threshold", [0.0, 1.0])
def test_cascade_run_routes_by_threshold_and_reports_the_fraction(tmp_path, threshold):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (the dev extra installs it)")
    from extractor.pipeline import Pipeline

    src = tmp_path / "in.jsonl"
    rows = [json.loads(x) for x in (SAMPLE / "reviews.jsonl").read_text().splitlines()[:3]]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    opts = LLMOptions(model=str(smollm2_path()), workspace=tmp_path / "ws", threshold=threshold, **LIMITS)
    summary = Pipeline(catalog=SAMPLE / "catalog.yaml", mode="cascade", llm=opts).run([str(src)], tmp_path / "o.jsonl")
    assert summary.n_in == summary.n_ok == 3 and summary.mode == "cascade"
    out = [json.loads(x) for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    routed = [r for r in out if r["usage"] is not None]
    # threshold 0: only documents with no intent or an out_of_scope one go; threshold 1: every document goes
    if threshold == 1.0:
        assert len(routed) == 3 and summary.routed_fraction == 1.0 and summary.model_calls >= 3
    assert summary.routed_fraction == round(len(routed) / 3, 4) and summary.llm_docs == len(routed)
    for r in out:
        assert r["provenance"]["mode"] == "cascade" and r["provenance"]["models"]["llm"].startswith("llamacpp:")
        text = r["text"]
        for s in r["signals"]:
            for ev in s["evidence"]:
                assert text[ev["start"]:ev["end"]] == ev["text"]
