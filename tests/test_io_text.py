"""Text is kept exactly as given (emoji, CJK, combining marks, CRLF), BOMs and UTF-16 handled."""

from __future__ import annotations

from pathlib import Path

import pytest

from .ioutil import docs_and_rejects, write_jsonl

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
