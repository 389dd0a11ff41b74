"""Writers of extractor.io: result and reject sinks, Parquet, resume after a crash, summaries."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from extractor.io import (
    DocumentReader,
    RejectSink,
    ResultSink,
    partial_path_for,
    read_results,
    reject_category,
    rejects_path_for,
    summary_path_for,
    write_summary,
)
from extractor.types import Evidence, ExtractionResult, Provenance, Reject, RunSummary, Signal, Turn

# ---------------------------------------------------------------- writers


def make_result(i: int, **kw: Any) -> ExtractionResult:
    text = f"Please refund order {i} by Friday 🙂"
    ev = Evidence.of(text, 7, 13)
    return ExtractionResult(
        id=str(i),
        customer_id=f"c{i}",
        channel="email",
        created_at=datetime(2024, 1, 5, 10, i % 60, tzinfo=timezone.utc),
        text=text,
        signals=[
            Signal(
                kind="intent",
                label="refund",
                confidence=0.9,
                evidence=[ev],
                value={"order": i},
                extractor="local.intent@1",
            )
        ],
        provenance=Provenance(version="0.1.0", created=datetime(2024, 6, 1, tzinfo=timezone.utc)),
        **kw,
    )


def transcript_result() -> ExtractionResult:
    """A result for a transcript (turns, no text, no signals)."""
    return ExtractionResult(id="t", turns=[Turn(speaker="Agent", text="hi", role="agent")],
                            provenance=Provenance(version="1", created=datetime.now(timezone.utc)))


def test_result_sink_jsonl_roundtrip(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    results = [make_result(i) for i in range(3)]
    results.append(transcript_result())
    with ResultSink(out) as sink:
        for r in results:
            sink.write(r)
        sink.flush()
    assert list(read_results(out)) == results
    first = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert "customer_id" in first and first["turns"] is None  # exclude_none=False


def test_result_sink_parquet_roundtrip(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "out.parquet"
    results = [make_result(i) for i in range(5)]
    results.append(transcript_result())
    sink = ResultSink(out)
    for r in results:
        sink.write(r)
    assert partial_path_for(out).exists()
    sink.close()
    assert not partial_path_for(out).exists() and out.exists()
    assert pq.ParquetFile(out).schema_arrow.names == [
        "id",
        "customer_id",
        "channel",
        "created_at",
        "text",
        "turns",
        "signals",
        "provenance",
        "schema_version",
    ]
    assert list(read_results(out)) == results


def test_parquet_resume_appends_to_finished_output(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    out = tmp_path / "out.parquet"
    with ResultSink(out) as sink:
        sink.write(make_result(1))
    with ResultSink(out) as sink:
        assert set(sink.done_ids) == {"1"} and sink.n_resumed == 1
        sink.write(make_result(1))  # already there: skipped
        sink.write(make_result(2))
    assert [r.id for r in read_results(out)] == ["1", "2"]
    with ResultSink(out, resume=False) as sink:
        sink.write(make_result(3))
    assert [r.id for r in read_results(out)] == ["3"]


def test_resume_after_crash_truncates_partial_line(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    sink = ResultSink(out)
    for i in range(3):
        sink.write(make_result(i))
    sink.flush()
    sink._f.close()  # simulate a crash: no close(), then a torn write
    with open(out, "ab") as f:
        f.write(make_result(3).model_dump_json().encode()[:40])
    with ResultSink(out) as sink:
        assert set(sink.done_ids) == {"0", "1", "2"} and sink.n_resumed == 3
        for i in range(5):
            sink.write(make_result(i))
    ids = [r.id for r in read_results(out)]
    assert ids == ["0", "1", "2", "3", "4"]
    assert out.read_bytes().endswith(b"\n")


def test_parquet_resume_from_partial_after_crash(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    out = tmp_path / "out.parquet"
    sink = ResultSink(out)
    sink.write(make_result(1))
    sink.write(make_result(2))
    sink.flush()
    sink._f.close()  # crash before close(): only the partial JSONL exists
    with open(partial_path_for(out), "ab") as f:
        f.write(b'{"schema_version":"1","id":"3","cust')
    assert not out.exists()
    with ResultSink(out) as sink:
        assert set(sink.done_ids) == {"1", "2"}
        sink.write(make_result(3))
    assert [r.id for r in read_results(out)] == ["1", "2", "3"]


def test_result_sink_no_resume_truncates(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with ResultSink(out) as sink:
        sink.write(make_result(1))
    with ResultSink(out, resume=False) as sink:
        assert set(sink.done_ids) == set()
        sink.write(make_result(2))
    assert [r.id for r in read_results(out)] == ["2"]


def test_reject_sink_resume(tmp_path: Path) -> None:
    path = rejects_path_for(tmp_path / "out.jsonl")
    with RejectSink(path) as sink:
        sink.write(Reject(source="a.jsonl", line=3, reason="empty text: x", raw="{}"))
        sink.write(Reject(source="a.jsonl", line=4, id="d1", stage="validate", reason="duplicate id: x"))
        assert sink.count == 2
    with open(path, "ab") as f:
        f.write(b'{"source": "a.jsonl", "li')  # torn last line
    sink = RejectSink(path)
    assert sink.count == 2 and sink.done_keys == {"a.jsonl:3", "a.jsonl:4"}  # a reject is its source and line
    sink.write(Reject(source="b.csv", line=1, reason="bad CSV row: x"))
    sink.close()
    assert sink.count == 3
    rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in rows] == [3, 4, 1]
    assert RejectSink(path, resume=False).count == 0


def test_paths() -> None:
    assert rejects_path_for(Path("out.jsonl")) == Path("out.rejects.jsonl")
    assert rejects_path_for(Path("runs/res.parquet")) == Path("runs/res.rejects.jsonl")
    assert summary_path_for(Path("out.jsonl")) == Path("out.jsonl.summary.json")
    assert summary_path_for(Path("runs/res.parquet")) == Path("runs/res.parquet.summary.json")
    assert partial_path_for(Path("res.parquet")) == Path("res.parquet.partial.jsonl")


def test_write_summary_atomic(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    write_summary(RunSummary(n_in=3, n_ok=2, n_rejected=1, reject_reasons={"empty text": 1}), out)
    write_summary(RunSummary(n_in=4, n_ok=4), out)
    data = json.loads(summary_path_for(out).read_text(encoding="utf-8"))
    assert data["n_in"] == 4 and data["n_ok"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl.summary.json"]


def test_reader_counters_and_categories(tmp_path: Path) -> None:
    p = tmp_path / "c.jsonl"
    p.write_text('{"id":"1","text":"ok"}\n{"id":"2","text":""}\n{"id":"3"}\nnot json\n', encoding="utf-8")
    reader = DocumentReader([str(p)])
    items = list(reader)
    assert len(items) == reader.n_read == 4 and reader.n_ok == 1 and reader.n_rejected == 3
    assert reader.reject_reasons == {"empty text": 1, "no text field": 1, "invalid JSON": 1}
    assert reject_category("too long: whatever") == "too long"


def test_resume_from_damaged_parquet_says_what_to_do(tmp_path: Path) -> None:
    from extractor.errors import InputError

    out = tmp_path / "out.parquet"
    out.write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match="--no-resume"):
        ResultSink(out)
    assert not partial_path_for(out).exists()
    with ResultSink(out, resume=False) as sink:  # overwriting works
        sink.write(make_result(1))
    assert [r.id for r in read_results(out)] == ["1"]


def test_bad_options_raise_config_error() -> None:
    from extractor.errors import ConfigError

    with pytest.raises(ConfigError, match="--format"):
        DocumentReader(["x.jsonl"], fmt="xml")
    with pytest.raises(ConfigError, match="--encoding"):
        DocumentReader(["x.jsonl"], encoding="klingon")
    assert DocumentReader(["x.jsonl"], fmt="NDJSON").fmt == "jsonl"


def test_parquet_columns_are_nested_not_json_strings(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    out = tmp_path / "out.parquet"
    sink = ResultSink(out, resume=False)
    sink.write(make_result(1))
    sink.close()
    schema = pq.read_schema(out)
    assert str(schema.field("signals").type).startswith("list<")
    assert "evidence" in str(schema.field("signals").type)
    table = pq.read_table(out).to_pylist()
    assert table[0]["signals"][0]["evidence"][0]["text"]
