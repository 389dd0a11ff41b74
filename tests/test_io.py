"""Readers of extractor.io: every format, field mapping, roles, dates and exact text."""

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
    speaker_role,
)
from extractor.types import Document, Reject

from .ioutil import docs_and_rejects, write_jsonl

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
