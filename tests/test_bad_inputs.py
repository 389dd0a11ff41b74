"""Bad inputs never crash the reader: good rows become Documents, each bad row exactly one Reject
whose reason names the problem and the fix, and n_read == n_ok + n_rejected."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from extractor.io import DocumentReader, FieldMap, RejectSink
from extractor.types import Document, Reject


def row(**kw: Any) -> bytes:
    return (json.dumps(kw, ensure_ascii=False) + "\n").encode("utf-8")


GOOD_A = row(id="g1", text="My card was charged twice")
GOOD_B = row(id="g2", text="Please cancel my subscription")
CSV_HEAD = b"id,text,customer_id\n"
GOOD_CSV = b'g1,"Refund, please",c1\ng2,"Where is\nmy order?",c2\n'


def jsonl(*bad: bytes) -> bytes:
    """Good rows around the bad ones: g1, bad..., g2."""
    return GOOD_A + b"".join(bad) + GOOD_B


@dataclass
class Case:
    files: dict[str, bytes]  # name -> content, written under tmp_path
    n_good: int
    keywords: list[str]  # one per expected Reject, in order; each must appear in the reason
    inputs: list[str] | None = None  # defaults to the files, in order
    kw: dict[str, Any] = field(default_factory=dict)
    line: int | None = None  # line of the (first) reject, when it is known


CASES: dict[str, Case] = {
    "invalid_utf8": Case({"a.jsonl": jsonl(b'{"id":"b1","text":"caf\xe9 cr\xe8me"}\n')}, 2, ["invalid UTF-8"], line=2),
    "invalid_utf8_suggests_encoding": Case(
        {"a.jsonl": jsonl(b'{"id":"b1","text":"\xff\xfe"}\n')}, 2, ["--encoding"], line=2
    ),
    "nul_line": Case({"a.jsonl": jsonl(b'{"id":"b1","text":"x"}\x00\x00\x00\n')}, 2, ["NUL"], line=2),
    "binary_file": Case({"good.jsonl": jsonl(), "junk.jsonl": bytes(range(256)) * 40}, 2, ["binary"]),
    "gzip_file": Case({"good.jsonl": jsonl(), "z.jsonl": gzip.compress(jsonl() * 50)}, 2, ["gzip"]),
    "utf16_without_bom": Case(
        {"good.jsonl": jsonl(), "w.jsonl": jsonl().decode().encode("utf-16-le")}, 2, ["utf-16-le"]
    ),
    "empty_text": Case({"a.jsonl": jsonl(row(id="b1", text=""))}, 2, ["empty text"], line=2),
    "whitespace_only": Case({"a.jsonl": jsonl(row(id="b1", text=" \t\r\n  "))}, 2, ["whitespace-only"], line=2),
    "huge_document": Case(
        {"a.jsonl": jsonl(row(id="b1", text="a" * 5_000_000))},
        2,
        ["5,000,000 characters, over the limit of 1,000,000"],
        line=2,
    ),
    "huge_document_custom_limit": Case(
        {"a.jsonl": jsonl(row(id="b1", text="x" * 101))}, 2, ["--max-chars"], kw={"max_chars": 100}
    ),
    "wrong_field_names": Case(
        {"a.jsonl": jsonl(row(id="b1", body="text is here", when="today"))}, 2, ["--text-field"], line=2
    ),
    "null_text": Case({"a.jsonl": jsonl(row(id="b1", text=None))}, 2, ["null"], line=2),
    "nested_dict": Case({"a.jsonl": jsonl(row(id="b1", text={"body": "hi", "lang": "en"}))}, 2, ["nested"]),
    "nested_list": Case({"a.jsonl": jsonl(row(id="b1", text=["hi", "there"]))}, 2, ["nested"]),
    "text_is_number": Case({"a.jsonl": jsonl(row(id="b1", text=42))}, 2, ["not a string"]),
    "truncated_json": Case({"a.jsonl": jsonl(b'{"id":"b1","text":"cut of\n')}, 2, ["invalid JSON"], line=2),
    "json_array_line": Case({"a.jsonl": jsonl(b'[{"id":"b1","text":"x"}]\n')}, 2, ["JSON array"]),
    "json_scalar_lines": Case(
        {"a.jsonl": jsonl(b'"just a string"\n', b"42\n", b"null\n")}, 2, ["scalar", "scalar", "scalar"]
    ),
    "json_file_truncated": Case(
        {"good.jsonl": jsonl(), "t.json": b'[{"id":"b1","text":"x"}, {"id":'}, 2, ["invalid JSON"]
    ),
    "json_file_scalar_element": Case(
        {"t.json": json.dumps([{"id": "g1", "text": "a"}, "oops", {"id": "g2", "text": "b"}]).encode()},
        2,
        ["not a JSON object"],
        line=2,
    ),
    "csv_mixed_quoting": Case({"a.csv": CSV_HEAD + b'b1,"half"quoted,c9\n' + GOOD_CSV}, 2, ["quot"], line=2),
    "csv_unterminated_quote": Case(
        {"a.csv": CSV_HEAD + b'b1,"never closed,c9\ng1,Refund please,c1\ng2,ok,c2\n'},
        2,
        ["unterminated quote"],
        line=2,
    ),
    "csv_wrong_field_count": Case(
        {"a.csv": CSV_HEAD + b"b1,too,many,fields\n" + GOOD_CSV}, 2, ["4 fields but the header has 3"], line=2
    ),
    "tsv_wrong_field_count": Case(
        {"a.tsv": b"id\ttext\ng1\tfine\nb1\tone\ttoo many\ng2\tfine too\n"}, 2, ["fields"], line=3
    ),
    "csv_invalid_utf8_cell": Case({"a.csv": CSV_HEAD + b"b1,caf\xe9,c9\n" + GOOD_CSV}, 2, ["invalid UTF-8"]),
    "bom_reads_fine": Case(
        {"a.jsonl": b"\xef\xbb\xbf" + jsonl(), "b.csv": b"\xef\xbb\xbf" + CSV_HEAD + b"g3,x,c\n"}, 3, []
    ),
    "utf16_reads_fine": Case(
        {
            "a.jsonl": jsonl().decode().encode("utf-16"),
            "b.csv": (CSV_HEAD + b"g3,x,c\n").decode().encode("utf-16"),
        },
        3,
        [],
    ),
    "duplicate_ids": Case(
        {"a.jsonl": jsonl(row(id="g1", text="second copy")), "b.jsonl": row(id="g2", text="again")},
        2,
        ["already read at", "duplicate id"],
        line=2,
    ),
    "turns_missing_text": Case(
        {"a.jsonl": jsonl(row(id="b1", turns=[{"speaker": "Agent", "text": "hi"}, {"speaker": "Customer"}]))},
        2,
        ["no 'text'"],
    ),
    "turns_missing_speaker": Case({"a.jsonl": jsonl(row(id="b1", turns=[{"text": "hi"}]))}, 2, ["no 'speaker'"]),
    "turns_not_a_list": Case(
        {"a.jsonl": jsonl(row(id="b1", turns={"speaker": "Agent", "text": "hi"}))}, 2, ["not a list"]
    ),
    "turns_bad_json_string": Case({"a.jsonl": jsonl(row(id="b1", turns='[{"speaker": '))}, 2, ["not valid JSON"]),
    "turn_text_not_string": Case(
        {"a.jsonl": jsonl(row(id="b1", turns=[{"speaker": "Agent", "text": {"a": 1}}]))}, 2, ["not a string"]
    ),
    "turns_all_empty": Case(
        {
            "a.jsonl": jsonl(
                row(id="b1", turns=[{"speaker": "Agent", "text": ""}, {"speaker": "Customer", "text": "  "}])
            )
        },
        2,
        ["all 2 turns have empty text"],
    ),
    "control_char_junk": Case(
        {"a.jsonl": jsonl(row(id="b1", text="\x01\x02\x03\x04ab\x05\x06\x07\x08"))}, 2, ["control-character"]
    ),
    "unpaired_surrogate": Case(
        {"a.jsonl": jsonl(b'{"id":"b1","text":"bad \\ud800 escape"}\n')}, 2, ["unpaired surrogate"]
    ),
    "text_and_turns": Case(  # one of them would be dropped unseen
        {"a.jsonl": jsonl(row(id="b1", text="I will sue you", turns=[{"speaker": "Customer", "text": "cancel"}]))},
        2, ["both 'text' and 'turns'"], line=2
    ),
    "bad_id_type": Case({"a.jsonl": jsonl(row(id={"x": 1}, text="hello"))}, 2, ["bad id"]),
    "nonexistent_path": Case({"a.jsonl": jsonl()}, 2, ["does not exist"], inputs=["a.jsonl", "missing.jsonl"]),
    "glob_matches_nothing": Case({"a.jsonl": jsonl()}, 2, ["matched no files"], inputs=["a.jsonl", "*.csvx"]),
    "unknown_extension": Case({"a.jsonl": jsonl(), "notes.xml": b"<a/>"}, 2, ["--format"]),
    "empty_txt_file": Case({"a.jsonl": jsonl(), "blank.txt": b"  \n\n"}, 2, ["whitespace-only"]),
    "txt_binary": Case({"a.jsonl": jsonl(), "bin.txt": b"Agent: hi\x00\x00\nCustomer: x\n"}, 2, ["NUL"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(tmp_path: Path, name: str) -> None:
    case = CASES[name]
    for fname, content in case.files.items():
        (tmp_path / fname).write_bytes(content)
    inputs = [str(tmp_path / i) for i in (case.inputs or list(case.files))]
    reader = DocumentReader(inputs, **case.kw)
    items = list(reader)  # never raises
    docs = [i for i in items if isinstance(i, Document)]
    rejects = [i for i in items if isinstance(i, Reject)]

    assert len(docs) == case.n_good, [r.reason for r in rejects]
    assert len(rejects) == len(case.keywords), [r.reason for r in rejects]
    for rej, keyword in zip(rejects, case.keywords, strict=True):
        assert keyword.lower() in rej.reason.lower(), rej.reason
        assert rej.source and (rej.raw is None or len(rej.raw) <= 200)
        rej.model_dump_json()  # writable: no lone surrogates etc.
    if case.line is not None:
        assert rejects[0].line == case.line
    assert reader.n_read == len(items) == reader.n_ok + reader.n_rejected
    assert reader.n_ok == case.n_good and reader.n_rejected == len(case.keywords)
    for d in docs:  # good rows keep their text exactly
        assert d.id.startswith("g") and (d.text or d.turns)


def test_all_line_level_problems_in_one_file(tmp_path: Path) -> None:
    bad = {  # line -> keyword
        2: (b'{"id":"b1","text":"caf\xe9"}\n', "invalid UTF-8"),
        4: (b'{"id":"b2","text":"x"}\x00\n', "NUL"),
        6: (row(id="b3", text=""), "empty text"),
        8: (row(id="b4", text="   "), "whitespace-only"),
        10: (row(id="b5", text="z" * 1_200_000), "--max-chars"),
        12: (row(id="b6", message="hi"), "--text-field"),
        14: (row(id="b7", text=None), "null"),
        16: (row(id="b8", text={"a": "b"}), "nested"),
        18: (b'{"id":"b9","text":"trunc\n', "invalid JSON"),
        20: (b"[1, 2, 3]\n", "JSON array"),
        22: (b"3.14\n", "scalar"),
        24: (row(id="g1", text="dup"), "duplicate id"),
        26: (row(id="b10", turns=[{"speaker": "Agent"}]), "no 'text'"),
        28: (row(id="b11", turns="Agent"), "not valid JSON"),
        30: (row(id="b12", text="\x00\x01\x02\x03\x04\x05"), "control-character"),
    }
    lines: list[bytes] = []
    good_ids = []
    for n in range(1, 32):
        if n in bad:
            lines.append(bad[n][0])
        else:
            good_ids.append(f"g{n}")
            lines.append(row(id=f"g{n}", text=f"good row {n} 🙂"))
    p = tmp_path / "mixed.jsonl"
    p.write_bytes(b"".join(lines))
    reader = DocumentReader([str(p)])
    items = list(reader)
    docs = [i for i in items if isinstance(i, Document)]
    rejects = {r.line: r for r in items if isinstance(r, Reject)}
    assert [d.id for d in docs] == good_ids
    assert sorted(rejects) == sorted(bad)
    for n, (_, keyword) in bad.items():
        assert keyword.lower() in rejects[n].reason.lower(), (n, rejects[n].reason)
    assert reader.n_read == 31 == reader.n_ok + reader.n_rejected
    assert rejects[24].reason.endswith("drop the duplicate row") and f"{p}:1" in rejects[24].reason

    sink = RejectSink(tmp_path / "out.rejects.jsonl")  # every reject can be written
    for r in rejects.values():
        sink.write(r)
    sink.close()
    assert sink.count == len(bad)


def test_reasons_say_how_to_fix(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    p.write_bytes(row(id="1", body="x", lang="en"))
    (r,) = list(DocumentReader([str(p)]))
    assert isinstance(r, Reject)
    assert "body, id, lang" in r.reason or "id, body, lang" in r.reason
    assert "--turns-field" in r.reason and r.stage == "validate" and r.id == "1"
    docs = list(DocumentReader([str(p)], FieldMap(text="body")))
    assert isinstance(docs[0], Document) and docs[0].metadata == {"lang": "en"}


def test_csv_unterminated_quote_recovers_following_rows(tmp_path: Path) -> None:
    p = tmp_path / "q.csv"
    p.write_bytes(b'id,text\ng1,fine\nb1,"oops\ng2,still read\ng3,"quoted, ok"\ng4,last\n')
    items = list(DocumentReader([str(p)]))
    assert [i.id for i in items if isinstance(i, Document)] == ["g1", "g2", "g3", "g4"]
    (rej,) = [i for i in items if isinstance(i, Reject)]
    assert rej.line == 3 and "quote" in rej.reason


def test_a_line_too_long_to_read_keeps_its_id_in_the_reject(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    p.write_bytes(GOOD_A + row(id="LONG1", text="a" * 200_000) + GOOD_B)
    items = list(DocumentReader([str(p)], max_chars=1000))
    (rej,) = [i for i in items if isinstance(i, Reject)]
    assert rej.id == "LONG1" and rej.line == 2 and "--max-chars" in rej.reason


def test_rows_without_ids_in_files_of_the_same_name_are_all_read(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "d.jsonl").write_bytes((json.dumps({"text": f"from {folder}: cancel"}) + "\n").encode())
    docs = list(DocumentReader([str(tmp_path / "a" / "d.jsonl"), str(tmp_path / "b" / "d.jsonl")]))
    assert all(isinstance(d, Document) for d in docs) and len({d.id for d in docs}) == 2
    assert docs[0].id == "d:1" and docs[1].id.endswith("b/d:1")
