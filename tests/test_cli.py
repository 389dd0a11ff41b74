"""The command line, run in-process with typer's CliRunner, and `--help` speed / laziness in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from extractor.cli import app

from .conftest import ROOT, SAMPLE, SHARED

runner = CliRunner()


def test_help_and_import_do_not_load_model_stacks():
    code = ("import sys, extractor, extractor.cli; "
            "heavy = ('torch', 'sentence_transformers', 'spacy', 'sklearn', 'pyarrow'); "
            "print([m for m in heavy if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    res = subprocess.run([sys.executable, str(ROOT / "cli.py"), "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "extract" in res.stdout


def test_schema_is_json_schema_of_the_output_row():
    res = runner.invoke(app, ["schema"])
    assert res.exit_code == 0
    schema = json.loads(res.stdout)
    assert schema["title"] == "ExtractionResult"
    assert {"id", "signals", "provenance"} <= set(schema["properties"])


def test_extract_sample_data_end_to_end(tmp_path, pipeline):
    out = tmp_path / "signals.jsonl"
    inputs = [str(SAMPLE / "transcripts.jsonl"), str(SAMPLE / "reviews.jsonl"), str(SAMPLE / "surveys.csv")]
    res = runner.invoke(app, ["extract", *inputs, "--catalog", str(SAMPLE / "catalog.yaml"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "signals.jsonl.summary.json").read_text())
    assert summary["n_in"] == summary["n_ok"] + summary["n_rejected"] == 96
    assert summary["docs_per_s"] > 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len({r["id"] for r in rows}) == 96
    checker = SHARED / "tools" / "check_output.py"
    if checker.exists():  # the project's contract checker, on the transcripts alone
        only = tmp_path / "transcripts.jsonl"
        assert runner.invoke(app, ["extract", str(SAMPLE / "transcripts.jsonl"), "--out", str(only)]).exit_code == 0
        chk = subprocess.run([sys.executable, str(checker), str(SAMPLE / "transcripts.jsonl"), str(only)],
                             capture_output=True, text=True)
        assert chk.returncode == 0 and "findings 0" in chk.stdout, chk.stdout
    shown = runner.invoke(app, ["show", str(out), "--id", "T001"])
    assert shown.exit_code == 0 and "intent" in shown.stdout


def test_bad_rows_are_rejected_not_fatal(tmp_path, pipeline):
    inp = tmp_path / "in.jsonl"
    inp.write_bytes(b'{"id": "a", "text": "My router is broken"}\n{"id": "b", "text": ""}\n'
                    b'not json\n{"id": "c", "body": "wrong field"}\n\xff\xfe junk\n{"id": "d", "text": "thanks!"}\n')
    out = tmp_path / "out.jsonl"
    res = runner.invoke(app, ["extract", str(inp), "--out", str(out)])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "out.jsonl.summary.json").read_text())
    assert (summary["n_in"], summary["n_ok"], summary["n_rejected"]) == (6, 2, 4)
    rejects = [json.loads(line) for line in (tmp_path / "out.rejects.jsonl").read_text().splitlines()]
    assert len(rejects) == 4 and all(r["reason"] for r in rejects)


def test_eval_json_contract_for_constraints():
    res = runner.invoke(app, ["eval", "constraints", "--test", str(ROOT / "eval/data/constraints_gold.jsonl"),
                              "--catalog", str(ROOT / "eval/data/catalog.yaml"), "--json"])
    assert res.exit_code == 0, res.output
    metrics = json.loads(res.stdout)
    assert metrics["n"] == 150 and metrics["docs_per_s"] > 0
    assert metrics["span_f1"] > 0.7


def test_nothing_read_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    res = runner.invoke(app, ["extract", str(tmp_path / "empty"), "--out", str(tmp_path / "o.jsonl")])
    assert res.exit_code == 1 and "no documents were read" in res.output


def test_unknown_mode_is_a_clear_error(tmp_path):
    res = runner.invoke(app, ["extract", str(SAMPLE / "reviews.jsonl"), "--out", str(tmp_path / "o.jsonl"),
                              "--mode", "fast"])
    assert res.exit_code == 2 and "local, llm, cascade" in res.output
    assert not (tmp_path / "o.jsonl").exists()


def test_llm_mode_without_a_model_says_what_to_give(tmp_path):
    res = runner.invoke(app, ["extract", str(SAMPLE / "reviews.jsonl"), "--out", str(tmp_path / "o.jsonl"),
                              "--mode", "llm"])
    assert res.exit_code == 2 and "--llm-model" in res.output
    assert not (tmp_path / "o.jsonl").exists()


def test_show_prints_ids_and_quotes_literally(tmp_path):
    """Markup in an id, escape codes and emoji shortcodes in a quote: shown as written, never interpreted."""
    from datetime import datetime, timezone

    from extractor.types import Evidence, ExtractionResult, Provenance, Signal, Turn

    said = "refund me [/] £5 :smile: now \x1b[2J\x1b[31mred"
    res = ExtractionResult(id="[M3]", customer_id="[/C3]", turns=[Turn(speaker="Agent", text="hi"),
                                                                    Turn(speaker="Customer", text=said)],
                           provenance=Provenance(version="0", created=datetime.now(timezone.utc)),
                           signals=[Signal(kind="intent", label="[bold]refund", confidence=0.9, speaker="customer",
                                           evidence=[Evidence(start=0, end=len(said), text=said, turn=1)])])
    path = tmp_path / "r.jsonl"
    path.write_text(res.model_dump_json() + "\n", "utf-8")
    shown = runner.invoke(app, ["show", str(path)])
    assert shown.exit_code == 0, shown.output  # a MarkupError before
    assert "[M3]" in shown.output and "[/C3]" in shown.output and "[bold]refund" in shown.output
    assert ":smile:" in shown.output and "\x1b[2J" not in shown.output and "\\x1b[2J" in shown.output
