"""Readers and writers of extractor.io: every format, field mapping, exact text, sinks and resume."""

from __future__ import annotations

import io
import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from extractor.io import (
    DocumentReader,
    FieldMap,
    RejectSink,
    ResultSink,
    iter_documents,
    partial_path_for,
    read_results,
    reject_category,
    rejects_path_for,
    speaker_role,
    summary_path_for,
    write_summary,
)
from extractor.types import Document, Evidence, ExtractionResult, Provenance, Reject, RunSummary, Signal, Turn


def docs_and_rejects(*inputs: str | Path, **kw: Any) -> tuple[list[Document], list[Reject]]:
    items = list(iter_documents([str(i) for i in inputs], **kw))
    return [d for d in items if isinstance(d, Document)], [r for r in items if isinstance(r, Reject)]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


# ---------------------------------------------------------------- formats


def test_jsonl_basic_fields_and_metadata(tmp_path: Path) -> None:
    p = write_jsonl(
        tmp_path / "t.jsonl",
        [
            {
                "id": 7,
                "text": "Refund me",
                "customer_id": 42,
                "channel": "email",
                "created_at": "2024-03-01T10:00:00Z",
                "priority": "high",
                "tags": ["a", "b"],
            },
            {"text": "no id here"},
        ],
    )
    docs, rejects = docs_and_rejects(p)
    assert not rejects
    assert docs[0].id == "7" and docs[0].customer_id == "42" and docs[0].channel == "email"
    assert docs[0].created_at == datetime(2024, 3, 1, 10, tzinfo=timezone.utc)
    assert docs[0].metadata == {"priority": "high", "tags": ["a", "b"]}
    assert docs[1].id == "t:2"  # deterministic "{stem}:{line}"
    json.dumps(docs[0].metadata)


def test_jsonl_blank_lines_are_not_rows(tmp_path: Path) -> None:
    p = tmp_path / "b.jsonl"
    p.write_text('{"id":"a","text":"x"}\n\n   \n{"id":"b","text":"y"}\n', encoding="utf-8")
    docs, rejects = docs_and_rejects(p)
    assert [d.id for d in docs] == ["a", "b"] and not rejects


def test_ndjson_extension(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "t.ndjson", [{"id": "a", "text": "hello"}])
    docs, _ = docs_and_rejects(p)
    assert docs[0].text == "hello"


def test_csv_quoted_commas_and_newlines(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_bytes(b'id,text,customer_id\n1,"Hello, world",c1\n2,"line one\nline two",c2\n3,"say ""hi""",\n')
    docs, rejects = docs_and_rejects(p)
    assert not rejects
    assert [d.text for d in docs] == ["Hello, world", "line one\nline two", 'say "hi"']
    assert [d.customer_id for d in docs] == ["c1", "c2", None]
    assert [d.id for d in docs] == ["1", "2", "3"]


def test_csv_crlf_inside_quoted_field_is_kept(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_bytes(b'id,text\r\n1,"a\r\nb"\r\n')
    docs, _ = docs_and_rejects(p)
    assert docs[0].text == "a\r\nb"


def test_csv_missing_id_uses_line_number(tmp_path: Path) -> None:
    p = tmp_path / "s.csv"
    p.write_text('text\nfirst\n"multi\nline"\nthird\n', encoding="utf-8")
    docs, _ = docs_and_rejects(p)
    assert [d.id for d in docs] == ["s:2", "s:3", "s:5"]


def test_tsv(tmp_path: Path) -> None:
    p = tmp_path / "t.tsv"
    p.write_text("id\ttext\tchannel\n1\thello, there\tchat\n2\tsecond\tvoice\n", encoding="utf-8")
    docs, rejects = docs_and_rejects(p)
    assert not rejects
    assert [(d.id, d.text, d.channel) for d in docs] == [
        ("1", "hello, there", "chat"),
        ("2", "second", "voice"),
    ]


def test_parquet(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    p = tmp_path / "t.parquet"
    table = pa.table(
        {
            "id": [1, 2, 3],
            "text": ["first 🙂", "second", None],
            "created_at": [datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc), None, None],
            "score": [1.5, float("nan"), 3.0],
        }
    )
    pq.write_table(table, p)
    docs, rejects = docs_and_rejects(p)
    assert [d.id for d in docs] == ["1", "2"] and docs[0].text == "first 🙂"
    assert docs[0].created_at == datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert docs[1].metadata == {"score": None}  # NaN made JSON-safe
    assert len(rejects) == 1 and rejects[0].line == 3 and "null" in rejects[0].reason


def test_parquet_turns_column(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    p = tmp_path / "t.parquet"
    turns = [[{"speaker": "Agent", "text": "Hi"}, {"speaker": "Customer", "text": "Cancel it"}]]
    pq.write_table(pa.table({"id": ["c1"], "turns": turns}), p)
    docs, _ = docs_and_rejects(p)
    assert [(t.role, t.text) for t in docs[0].turns or []] == [("agent", "Hi"), ("customer", "Cancel it")]


def test_json_array(tmp_path: Path) -> None:
    p = tmp_path / "t.json"
    p.write_text(json.dumps([{"id": "a", "text": "one"}, {"id": "b", "text": "two"}, 5]), encoding="utf-8")
    docs, rejects = docs_and_rejects(p)
    assert [d.id for d in docs] == ["a", "b"]
    assert len(rejects) == 1 and rejects[0].line == 3 and "not a JSON object" in rejects[0].reason


def test_json_single_object_and_jsonl_in_json_file(tmp_path: Path) -> None:
    one = tmp_path / "one.json"
    one.write_text('{"id": "x", "text": "solo"}', encoding="utf-8")
    lines = write_jsonl(tmp_path / "lines.json", [{"id": "l1", "text": "a"}, {"id": "l2", "text": "b"}])
    docs, rejects = docs_and_rejects(one, lines)
    assert [d.id for d in docs] == ["x", "l1", "l2"]
    assert not rejects


def test_txt_transcript_with_timestamps(tmp_path: Path) -> None:
    p = tmp_path / "call_17.txt"
    p.write_text(
        "[00:00:01] Agent: Thanks for calling.\n[00:00:04] Customer: My card was charged twice\n"
        "[0:07] Agent 2: Let me check.\n",
        encoding="utf-8",
    )
    docs, _ = docs_and_rejects(p)
    (doc,) = docs
    assert doc.id == "call_17" and doc.text is None
    assert [(t.speaker, t.ts, t.role, t.text) for t in doc.turns or []] == [
        ("Agent", "00:00:01", "agent", "Thanks for calling."),
        ("Customer", "00:00:04", "customer", "My card was charged twice"),
        ("Agent 2", "0:07", "agent", "Let me check."),
    ]


def test_txt_transcript_bare_timestamps_and_no_timestamps(tmp_path: Path) -> None:
    a = tmp_path / "a.txt"
    a.write_text("00:01:02 Rep: Hello\n00:01:09 Caller: Hi there\n", encoding="utf-8")
    b = tmp_path / "b.txt"
    b.write_text("Agent: Hello\nCustomer: I want a refund\n", encoding="utf-8")
    docs, _ = docs_and_rejects(a, b)
    assert [t.ts for t in docs[0].turns or []] == ["00:01:02", "00:01:09"]
    assert [t.role for t in docs[0].turns or []] == ["agent", "customer"]
    assert [t.ts for t in docs[1].turns or []] == [None, None]
    assert docs[1].turns[1].text == "I want a refund"  # type: ignore[index]


def test_txt_continuation_lines(tmp_path: Path) -> None:
    p = tmp_path / "c.txt"
    p.write_text(
        "Agent: Hello\nCustomer: first line\nsecond line\n\nthird after blank\nAgent: ok\n\n",
        encoding="utf-8",
    )
    docs, _ = docs_and_rejects(p)
    turns = docs[0].turns or []
    assert [t.text for t in turns] == ["Hello", "first line\nsecond line\n\nthird after blank", "ok"]


def test_txt_preamble_goes_to_metadata(tmp_path: Path) -> None:
    p = tmp_path / "p.txt"
    p.write_text("Call log 2024-05-01\nAgent: Hi\nCustomer: Hello\n", encoding="utf-8")
    docs, _ = docs_and_rejects(p)
    assert docs[0].metadata["preamble"] == "Call log 2024-05-01\n"
    assert len(docs[0].turns or []) == 2


def test_txt_plain_text_when_not_a_transcript(tmp_path: Path) -> None:
    body = "I love this phone.\nNote: the battery could be better.\nWould buy again.\n"
    p = tmp_path / "review.txt"
    p.write_text(body, encoding="utf-8")
    pc = tmp_path / "pros.txt"
    pc.write_text("Pros: light\nCons: pricey\n", encoding="utf-8")
    docs, _ = docs_and_rejects(p, pc)
    assert docs[0].text == body and docs[0].turns is None
    assert docs[1].text == "Pros: light\nCons: pricey\n" and docs[1].turns is None


def test_directory_recursion_sorted_and_filtered(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    write_jsonl(tmp_path / "b.jsonl", [{"id": "b", "text": "bee"}])
    write_jsonl(tmp_path / "sub" / "a.jsonl", [{"id": "a", "text": "ay"}])
    (tmp_path / "notes.md").write_text("# not an input")
    write_jsonl(tmp_path / "out.rejects.jsonl", [{"source": "x", "reason": "y"}])
    docs, rejects = docs_and_rejects(tmp_path)
    assert [d.id for d in docs] == ["b", "a"]  # sorted by path: b.jsonl < sub/a.jsonl
    assert not rejects


def test_glob_and_missing(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "x1.jsonl", [{"id": "1", "text": "one"}])
    write_jsonl(tmp_path / "x2.jsonl", [{"id": "2", "text": "two"}])
    reader = DocumentReader(
        [str(tmp_path / "x*.jsonl"), str(tmp_path / "nope*.jsonl"), str(tmp_path / "missing.jsonl")]
    )
    items = list(reader)
    assert [i.id for i in items if isinstance(i, Document)] == ["1", "2"]
    reasons = [i.reason for i in items if isinstance(i, Reject)]
    assert "matched no files" in reasons[0] and "does not exist" in reasons[1]
    assert reader.n_read == 4 and reader.n_ok == 2 and reader.n_rejected == 2


def test_same_file_twice_read_once(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "x.jsonl", [{"id": "1", "text": "one"}])
    docs, rejects = docs_and_rejects(p, tmp_path / "*.jsonl")
    assert len(docs) == 1 and not rejects


def test_stdin_jsonl_and_csv(monkeypatch: pytest.MonkeyPatch) -> None:
    class FakeStdin:
        def __init__(self, data: bytes):
            self.buffer = io.BytesIO(data)

    monkeypatch.setattr(sys, "stdin", FakeStdin(b'{"id":"s1","text":"from stdin \xf0\x9f\x99\x82"}\n'))
    docs, _ = docs_and_rejects("-")
    assert docs[0].id == "s1" and docs[0].text == "from stdin 🙂"
    monkeypatch.setattr(sys, "stdin", FakeStdin(b"\xef\xbb\xbftext\nhello\n"))
    docs, _ = docs_and_rejects("-", fmt="csv")
    assert docs[0].text == "hello" and docs[0].id == "stdin:2"


def test_format_override(tmp_path: Path) -> None:
    p = tmp_path / "data.log"
    p.write_text('{"id":"a","text":"x"}\n', encoding="utf-8")
    docs, rejects = docs_and_rejects(p)
    assert not docs and "--format" in rejects[0].reason
    docs, rejects = docs_and_rejects(p, fmt="jsonl")
    assert docs[0].id == "a" and not rejects


def test_field_mapping(tmp_path: Path) -> None:
    p = write_jsonl(
        tmp_path / "m.jsonl",
        [
            {
                "ticket": "T-1",
                "body": "Please cancel",
                "account": "acc9",
                "src": "web",
                "opened": "2024-02-03 04:05",
            },
            {
                "ticket": "T-2",
                "messages": [{"speaker": "Support", "text": "Hi"}, {"speaker": "Client", "text": "Yo"}],
            },
        ],
    )
    fields = FieldMap(
        text="body", id="ticket", customer="account", turns="messages", channel="src", created_at="opened"
    )
    docs, rejects = docs_and_rejects(p, fields=fields)
    assert not rejects
    assert (docs[0].id, docs[0].text, docs[0].customer_id, docs[0].channel) == (
        "T-1",
        "Please cancel",
        "acc9",
        "web",
    )
    assert docs[0].created_at == datetime(2024, 2, 3, 4, 5, tzinfo=timezone.utc) and docs[0].metadata == {}
    assert [t.role for t in docs[1].turns or []] == ["agent", "customer"]


def test_turns_as_json_string_and_ts(tmp_path: Path) -> None:
    turns = json.dumps([{"speaker": "Agent", "text": "Hello", "ts": "00:00:01"}, {"speaker": "Bob", "text": "Hi"}])
    p = tmp_path / "t.csv"
    p.write_text("id,turns\n" + "c1," + '"' + turns.replace('"', '""') + '"\n', encoding="utf-8")
    docs, rejects = docs_and_rejects(p, agent_names=frozenset())
    assert not rejects
    assert [(t.speaker, t.ts, t.role) for t in docs[0].turns or []] == [
        ("Agent", "00:00:01", "agent"),
        ("Bob", None, "unknown"),
    ]


def test_agent_names(tmp_path: Path) -> None:
    p = write_jsonl(
        tmp_path / "n.jsonl",
        [{"id": "1", "turns": [{"speaker": "Priya", "text": "Hello"}, {"speaker": "Dan", "text": "Hi"}]}],
    )
    docs, _ = docs_and_rejects(p, agent_names=frozenset({"Priya"}))
    assert [t.role for t in docs[0].turns or []] == ["agent", "unknown"]


@pytest.mark.parametrize(
    "speaker,role",
    [
        ("Agent", "agent"),
        ("agent 2", "agent"),
        ("Rep", "agent"),
        ("Support", "agent"),
        ("Advisor", "agent"),
        ("Operator", "agent"),
        ("Assistant", "agent"),
        ("Bot", "agent"),
        ("Representative", "agent"),
        ("CSR", "agent"),
        ("Customer Service Rep", "agent"),
        ("Agent (Sarah)", "agent"),
        ("System", "system"),
        ("Customer", "customer"),
        ("Client", "customer"),
        ("Caller", "customer"),
        ("User", "customer"),
        ("Member", "customer"),
        ("Guest", "customer"),
        ("customer_1", "customer"),
        ("Bob", "unknown"),
        ("Username", "unknown"),
    ],
)
def test_speaker_role(speaker: str, role: str) -> None:
    assert speaker_role(speaker) == role


def test_speaker_role_agent_names() -> None:
    assert speaker_role("Maria", frozenset({"maria"})) == "agent"
    assert speaker_role("Maria") == "unknown"


@pytest.mark.parametrize(
    "value,expected",
    [
        ("2024-01-05T10:00:00+02:00", datetime(2024, 1, 5, 10, tzinfo=timezone(timedelta(hours=2)))),
        ("2024-01-05", datetime(2024, 1, 5, tzinfo=timezone.utc)),
        ("Jan 5, 2024 3:15 PM", datetime(2024, 1, 5, 15, 15, tzinfo=timezone.utc)),
        ("05 January 2024 10:00 UTC", datetime(2024, 1, 5, 10, tzinfo=timezone.utc)),
        (1704448800, datetime(2024, 1, 5, 10, tzinfo=timezone.utc)),
        (1704448800000, datetime(2024, 1, 5, 10, tzinfo=timezone.utc)),
        (None, None),
        ("", None),
    ],
)
def test_created_at_parsing(tmp_path: Path, value: Any, expected: datetime | None) -> None:
    p = write_jsonl(tmp_path / "d.jsonl", [{"id": "1", "text": "x", "created_at": value}])
    docs, _ = docs_and_rejects(p)
    assert docs[0].created_at == expected
    assert docs[0].created_at is None or docs[0].created_at.tzinfo is not None
    assert "warnings" not in docs[0].metadata


def test_created_at_unparseable_keeps_document(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "d.jsonl", [{"id": "1", "text": "x", "created_at": "xyz"}])
    docs, rejects = docs_and_rejects(p)
    assert not rejects and docs[0].created_at is None
    assert docs[0].metadata["warnings"] == ["created_at 'xyz' could not be parsed"]


# ---------------------------------------------------------------- exact text


EXACT = [
    "Emoji 👍🏽 and 👨‍👩‍👧 family",
    "中文客服：我的订单在哪里？",
    "e\u0301 combining cafe\u0301",
    "CRLF line\r\nsecond\r\n",
    "  leading and trailing spaces  ",
    "tab\there",
    "Ünïcödé ß ∑",
]


def test_text_preserved_exactly_jsonl(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "e.jsonl", [{"id": str(i), "text": t} for i, t in enumerate(EXACT)])
    docs, rejects = docs_and_rejects(p)
    assert not rejects and [d.text for d in docs] == EXACT


def test_text_preserved_exactly_csv_and_parquet(tmp_path: Path) -> None:
    import csv

    p = tmp_path / "e.csv"
    with open(p, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        w.writerows([str(i), t] for i, t in enumerate(EXACT))
    docs, rejects = docs_and_rejects(p)
    assert not rejects and [d.text for d in docs] == EXACT
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": [str(i) for i in range(len(EXACT))], "text": EXACT}), tmp_path / "e.parquet")
    docs, _ = docs_and_rejects(tmp_path / "e.parquet")
    assert [d.text for d in docs] == EXACT


def test_txt_preserved_exactly(tmp_path: Path) -> None:
    body = "Not a transcript 👍🏽\r\nkeep CRLF and  spaces \r\n"
    p = tmp_path / "plain.txt"
    p.write_bytes(body.encode("utf-8"))
    docs, _ = docs_and_rejects(p)
    assert docs[0].text == body
    t = tmp_path / "crlf.txt"
    t.write_bytes(b"Agent: Hi \xf0\x9f\x91\x8b\r\nmore\r\nCustomer: ok\r\n")
    docs, _ = docs_and_rejects(t)
    assert [x.text for x in docs[0].turns or []] == ["Hi 👋\r\nmore", "ok"]


def test_bom_stripped(tmp_path: Path) -> None:
    j = tmp_path / "bom.jsonl"
    j.write_bytes(b'\xef\xbb\xbf{"id":"1","text":"bom"}\n')
    c = tmp_path / "bom.csv"
    c.write_bytes(b"\xef\xbb\xbfid,text\n2,bom csv\n")
    t = tmp_path / "bom.txt"
    t.write_bytes(b"\xef\xbb\xbfplain")
    docs, rejects = docs_and_rejects(j, c, t)
    assert not rejects
    assert [(d.id, d.text) for d in docs] == [("1", "bom"), ("2", "bom csv"), ("bom", "plain")]


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be"])
def test_utf16_files(tmp_path: Path, codec: str) -> None:
    bom = b"\xfe\xff" if codec == "utf-16-be" else b""
    j = tmp_path / "w.jsonl"
    j.write_bytes(bom + '{"id":"1","text":"wide 🙂 中文"}\n{"id":"2","text":"two"}\n'.encode(codec))
    c = tmp_path / "w.csv"
    c.write_bytes(bom + 'id,text\n3,"wide, csv"\n'.encode(codec))
    t = tmp_path / "w.txt"
    t.write_bytes(bom + "Agent: hi\nCustomer: hello\n".encode(codec))
    docs, rejects = docs_and_rejects(j, c, t)
    assert not rejects
    assert [d.text for d in docs[:3]] == ["wide 🙂 中文", "two", "wide, csv"]
    assert [x.text for x in docs[3].turns or []] == ["hi", "hello"]


def test_other_encoding_option(tmp_path: Path) -> None:
    p = tmp_path / "l.csv"
    p.write_bytes("id,text\n1,caf\xe9 cr\xe8me\n".encode("latin-1"))
    docs, rejects = docs_and_rejects(p)
    assert not docs and "--encoding" in rejects[0].reason
    docs, rejects = docs_and_rejects(p, encoding="cp1252")
    assert docs[0].text == "café crème" and not rejects


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


def test_result_sink_jsonl_roundtrip(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    results = [make_result(i) for i in range(3)]
    results.append(
        ExtractionResult(
            id="t",
            turns=[Turn(speaker="Agent", text="hi", role="agent")],
            provenance=Provenance(version="1", created=datetime.now(timezone.utc)),
        )
    )
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
    results.append(
        ExtractionResult(
            id="t",
            turns=[Turn(speaker="Agent", text="hi", role="agent")],
            provenance=Provenance(version="1", created=datetime.now(timezone.utc)),
        )
    )
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
        assert sink.done_ids == {"1"} and sink.n_resumed == 1
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
        assert sink.done_ids == {"0", "1", "2"} and sink.n_resumed == 3
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
        assert sink.done_ids == {"1", "2"}
        sink.write(make_result(3))
    assert [r.id for r in read_results(out)] == ["1", "2", "3"]


def test_result_sink_no_resume_truncates(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with ResultSink(out) as sink:
        sink.write(make_result(1))
    with ResultSink(out, resume=False) as sink:
        assert sink.done_ids == set()
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
    assert sink.count == 2 and {"a.jsonl:3", "a.jsonl:4", "d1"} <= sink.done_keys
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
