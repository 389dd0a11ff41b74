"""Junk inside otherwise good files costs only the junk: one bad row, one reject, the rest read.

Found by a review of the reader: a NUL-padded row or a stray UTF-16 code unit used to turn a whole
file into one reject, same-named .txt files collided, and a few letters that regex case-folding
treats differently from ``str.lower`` crashed extraction.
"""

from __future__ import annotations

import codecs
import json

from typer.testing import CliRunner

from extractor.cli import app
from extractor.io import DocumentReader
from extractor.types import Document, Reject

from .conftest import SAMPLE

runner = CliRunner()


def _read(*paths, **kw):
    reader = DocumentReader([str(p) for p in paths], **kw)
    items = list(reader)
    docs = [i for i in items if isinstance(i, Document)]
    rejects = [i for i in items if isinstance(i, Reject)]
    assert reader.n_read == len(docs) + len(rejects) == reader.n_ok + reader.n_rejected
    return docs, rejects


def test_one_nul_padded_row_is_rejected_alone(tmp_path):
    rows = [json.dumps({"id": f"p{i}", "text": f"row {i} my refund is late"}) for i in range(100)]
    raw = "\n".join(rows).encode() + b"\n"
    raw = raw.replace(b"row 2 my", b"row 2 " + b"\x00" * 500 + b" my")  # 500 NULs: 6% of the file's head
    path = tmp_path / "pad.jsonl"
    path.write_bytes(raw)
    docs, rejects = _read(path)
    assert len(docs) == 99 and [r.line for r in rejects] == [3]
    assert rejects[0].reason.startswith("binary data") and "p2" not in {d.id for d in docs}


def test_a_real_binary_file_is_still_one_reject(tmp_path):
    path = tmp_path / "photo.jsonl"
    path.write_bytes(bytes(range(256)) * 40)  # no clean line anywhere
    docs, rejects = _read(path)
    assert not docs and len(rejects) == 1 and rejects[0].reason.startswith("binary data")
    short = tmp_path / "junk.txt"
    short.write_bytes(b"\x00\x01\x02binary")
    _, rejects = _read(short)
    assert "UTF-16" not in rejects[0].reason  # one NUL in nine bytes is junk, not UTF-16 text


def test_utf16_without_bom_still_gets_the_encoding_hint(tmp_path):
    path = tmp_path / "wide.jsonl"
    path.write_bytes((json.dumps({"id": "w1", "text": "hello there"}) + "\n").encode("utf-16-le") * 3)
    _, rejects = _read(path)
    assert len(rejects) == 1 and "--encoding utf-16-le" in rejects[0].reason


def test_utf16_lone_surrogate_costs_only_its_line(tmp_path):
    lines = [json.dumps({"id": f"s{i}", "text": f"row {i} refund"}) + "\n" for i in range(1, 6)]
    bad = '{"id": "s_bad", "text": "row X \uFFFF"}\n'.encode("utf-16-le").replace(b"\xff\xff", b"\x3d\xd8")
    raw = codecs.BOM_UTF16_LE + lines[0].encode("utf-16-le") + bad + b"".join(x.encode("utf-16-le") for x in lines[1:])
    path = tmp_path / "u16.jsonl"
    path.write_bytes(raw)
    docs, rejects = _read(path)
    assert [d.id for d in docs] == ["s1", "s2", "s3", "s4", "s5"]
    assert [r.line for r in rejects] == [2] and "UTF-16" in rejects[0].reason


def test_same_named_text_files_in_different_folders_get_different_ids(tmp_path):
    for call in ("c1", "c2"):
        (tmp_path / call).mkdir()
        (tmp_path / call / "transcript.txt").write_text(f"Agent: Hi\nCustomer: call {call}, refund me\n", "utf-8")
    docs, rejects = _read(tmp_path / "c1" / "transcript.txt", tmp_path / "c2" / "transcript.txt")
    assert not rejects and len({d.id for d in docs}) == 2
    docs, rejects = _read(str(tmp_path / "*" / "transcript.txt"))
    assert not rejects and len({d.id for d in docs}) == 2


def test_a_repeated_csv_header_is_rejected_not_read_as_a_document(tmp_path):
    path = tmp_path / "joined.csv"
    path.write_bytes("\ufeffid,text\nb1,hello\n\ufeffid,text\nb2,again\n".encode())
    docs, rejects = _read(path)
    assert [d.id for d in docs] == ["b1", "b2"] and [r.line for r in rejects] == [3]
    assert rejects[0].reason.startswith("repeated header")


def test_letters_regex_folds_differently_from_lower_do_not_crash_extraction(pipeline):
    """re.I matches ſ to s and İ to i; str.lower does not: the catalog and language lookups used to KeyError."""
    res = pipeline.extract("I have the Nimbuſ Plus plan and it broke. Please answer in ſpanish.")
    values = {s.label: s.value for s in res.signals if s.kind == "constraint"}
    assert values["product"]["name"] == "Nimbus Plus"
    assert values["language"]["code"] == "es"


def test_named_agents_are_not_read_as_the_customer(pipeline, monkeypatch, tmp_path):
    path = tmp_path / "named.txt"
    path.write_text("Dana: Hi, this is Dana from Nimbus support. I can refund $50 by Friday.\n"
                    "John: ok thanks, my router is still broken though\n", "utf-8")
    monkeypatch.setattr(pipeline, "agent_names", frozenset({"Dana"}))
    summary = pipeline.run([str(path)], tmp_path / "o.jsonl")
    assert summary.n_ok == 1
    res = json.loads((tmp_path / "o.jsonl").read_text("utf-8"))
    assert [t["role"] for t in res["turns"]] == ["agent", "unknown"]  # an unnamed speaker is read as the customer
    customer = [s for s in res["signals"] if s["speaker"] == "customer" and s["evidence"]]
    assert customer and all(e["turn"] == 1 for s in customer for e in s["evidence"])
    assert not [s for s in res["signals"] if s["kind"] == "constraint" and s["label"] == "money"]


def test_a_changed_document_is_rejected_once_however_often_the_run_is_resumed(pipeline, tmp_path):
    src = tmp_path / "in.jsonl"
    rows = [{"id": f"t{i}", "text": f"ticket {i}: my order is late"} for i in range(3)]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    out = tmp_path / "o.jsonl"
    pipeline.run([str(src)], out)
    rows[1]["text"] = "ticket 1 CHANGED: my order is late"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    for _ in range(2):
        summary = pipeline.run([str(src)], out)
        assert (summary.n_in, summary.n_ok, summary.n_rejected) == (3, 2, 1)
    rejects = (tmp_path / "o.rejects.jsonl").read_text("utf-8").splitlines()
    assert len(rejects) == 1 and "changed since" in json.loads(rejects[0])["reason"]


def test_user_mistakes_get_an_error_line_not_a_traceback(tmp_path):
    res = runner.invoke(app, ["extract", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o.jsonl")])
    assert res.exit_code == 1 and "no documents were read" in res.output  # a typo is not a successful run
    (tmp_path / "a_file").write_text("x", "utf-8")
    res = runner.invoke(app, ["extract", str(SAMPLE / "reviews.jsonl"), "--out", str(tmp_path / "a_file" / "o.jsonl")])
    assert res.exit_code != 0 and "cannot write --out" in res.output and isinstance(res.exception, SystemExit)
    catalog = tmp_path / "latin1.yaml"
    catalog.write_bytes("products:\n  - name: Café Plus\n".encode("latin-1"))
    res = runner.invoke(app, ["extract", str(SAMPLE / "reviews.jsonl"), "--out", str(tmp_path / "o2.jsonl"),
                              "--catalog", str(catalog)])
    assert res.exit_code != 0 and "re-save it as UTF-8" in res.output and isinstance(res.exception, SystemExit)
