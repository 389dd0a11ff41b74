"""A run never destroys or re-reads its own output, and API-built documents get speaker roles."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from extractor.cli import app
from extractor.errors import ConfigError, SignalsError
from extractor.types import Document

runner = CliRunner()
ROWS = [{"id": "a", "text": "My router is broken again"}, {"id": "b", "text": "Please refund the $20 fee"}]


def _write(path, rows=ROWS):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_output_inside_an_input_folder_is_not_read_back(tmp_path, pipeline):
    data = tmp_path / "data"
    data.mkdir()
    _write(data / "in.jsonl")
    for _ in range(2):
        summary = pipeline.run([str(data)], data / "out.jsonl")
    assert (summary.n_in, summary.n_ok, summary.n_rejected) == (2, 2, 0)


def test_output_equal_to_an_input_is_refused_and_left_intact(tmp_path, pipeline):
    path = _write(tmp_path / "b.jsonl")
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="also an input"):
        pipeline.run([str(path)], path, resume=False)
    assert path.read_bytes() == before


def test_a_bad_option_does_not_empty_an_earlier_output(tmp_path, pipeline):
    inp, out = _write(tmp_path / "in.jsonl"), tmp_path / "out.jsonl"
    assert runner.invoke(app, ["extract", str(inp), "--out", str(out)]).exit_code == 0
    before = out.read_bytes()
    res = runner.invoke(app, ["extract", str(inp), "--out", str(out), "--no-resume",
                              "--catalog", str(tmp_path / "typo.yaml")])
    assert res.exit_code == 2 and "catalog" in res.output.lower()
    assert out.read_bytes() == before


def test_turns_built_in_code_get_roles_from_speakers(pipeline):
    doc = Document.model_validate({"id": "x", "turns": [
        {"speaker": "Agent", "text": "I can cancel your subscription and refund $40 by Friday, it's urgent."},
        {"speaker": "Customer", "text": "Thanks, the app works again now."}]})
    res = pipeline.extract_batch([doc])[0]
    assert all(e.turn == 1 for s in res.signals if s.scope != "turn" and s.speaker == "customer"
               for e in s.evidence)
    assert not res.of_kind("constraint")


def test_no_customer_text_is_a_reject_not_empty_signals(pipeline):
    doc = Document.model_validate({"id": "x", "turns": [{"speaker": "Agent", "text": "Hello, how can I help?"}]})
    res = pipeline.extract_batch([doc])[0]
    assert res.stage == "extract" and "no customer text" in res.reason
    with pytest.raises(SignalsError, match="whitespace-only text"):  # the reason the file reader gives too
        pipeline.extract("   ")
    with pytest.raises(ConfigError):
        pipeline.extract("fine", created_at="next week")


def test_eval_rejects_malformed_rows_with_the_line(tmp_path):
    bad = tmp_path / "t.jsonl"
    bad.write_text('{"text": "ok", "label": "positive"}\n[1, 2]\n')
    res = runner.invoke(app, ["eval", "sentiment", "--test", str(bad), "--json"])
    assert res.exit_code == 2 and "t.jsonl:2" in res.output


def test_eval_multilabel_intent_reports_micro_f1(tmp_path):
    test = tmp_path / "ml.jsonl"
    test.write_text(json.dumps({"text": "I was charged twice and want a refund",
                                "labels": ["billing_double_charge", "billing_refund_request"]}) + "\n")
    res = runner.invoke(app, ["eval", "intent", "--test", str(test), "--json"])
    assert res.exit_code == 0, res.output
    metrics = json.loads(res.stdout)
    assert 0.0 < metrics["micro_f1"] <= 1.0 and "exact_match" in metrics
