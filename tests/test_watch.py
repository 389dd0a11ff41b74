"""`signals watch`: new files are extracted, stored, indexed and reflected in state, each exactly once."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

from extractor.index import Index, close_readers
from extractor.profiles import import_profiles
from extractor.state import state
from extractor.store import Store
from extractor.watch import Watcher

from .conftest import SAMPLE


def _doc(i: int, customer: str, token: str) -> str:
    return json.dumps({"id": f"W{i}", "customer_id": customer, "channel": "chat",
                       "created_at": "2026-11-30T10:00:00Z",
                       "turns": [{"speaker": "Customer", "text": f"Order {token} never arrived, I want a refund."},
                                 {"speaker": "Agent", "text": "Sorry, I will chase it."}]}) + "\n"


def _ingested(ws: Path) -> list[tuple]:
    close_readers(ws)
    with Store(ws, read_only=True) as st:
        return st.db.execute("SELECT path, n_in, n_ok, n_opted_out FROM ingested ORDER BY path").fetchall()


def test_files_are_processed_once_across_restarts(built, pipeline, tmp_path):
    ws = Path(shutil.copytree(built, tmp_path / "ws"))
    import_profiles(ws, str(SAMPLE / "profiles.csv"))
    inbox = tmp_path / "in"
    inbox.mkdir()
    (inbox / "a.jsonl").write_text(_doc(1, "C005", "QX1001") + _doc(2, "C029", "QX1002"), "utf-8")  # C029 opted out
    (inbox / "b.jsonl").write_text(_doc(3, "C006", "QX1003"), "utf-8")
    (inbox / ".c.jsonl.tmp").write_text("half a file", "utf-8")  # still being written: ignored
    seen = []
    assert Watcher(ws, pipeline, settle=0.0).run(inbox, poll=0.01, once=True, on_file=seen.append) == 2
    assert [(Path(p).name, n_in, n_ok, out) for p, n_in, n_ok, out in _ingested(ws)] == \
        [("a.jsonl", 2, 1, 1), ("b.jsonl", 1, 1, 0)]
    close_readers(ws)
    assert "W1" in state(ws, "C005").documents and "W3" in state(ws, "C006").documents
    hits = Index.open(ws).search("QX1001", k=3, mode="keyword").hits
    assert hits and hits[0].doc_id == "W1"
    assert not Index.open(ws).search("QX1002", k=3, mode="keyword").hits  # the opted-out customer's file row
    # a restart finds nothing new
    assert Watcher(ws, pipeline, settle=0.0).run(inbox, poll=0.01, once=True) == 0
    # a file whose content changes is taken again, and its document replaced, not duplicated
    (inbox / "b.jsonl").write_text(_doc(3, "C006", "QX2003"), "utf-8")
    assert Watcher(ws, pipeline, settle=0.0).run(inbox, poll=0.01, once=True) == 1
    close_readers(ws)
    with Store(ws, read_only=True) as st:
        assert st.db.execute("SELECT COUNT(*) FROM documents WHERE doc_id = 'W3'").fetchone()[0] == 1
    assert Index.open(ws).search("QX2003", k=3, mode="keyword").hits[0].doc_id == "W3"
    assert not Index.open(ws).search("QX1003", k=3, mode="keyword").hits


def test_stdin_stream_in_micro_batches(built, pipeline, tmp_path):
    ws = Path(shutil.copytree(built, tmp_path / "ws"))
    import_profiles(ws, str(SAMPLE / "profiles.csv"))  # C029 is opted out
    lines = [_doc(10 + i, "C007", f"QY{i}") for i in range(5)] + [_doc(20, "C029", "QY20")]
    seen = []
    assert Watcher(ws, pipeline).run_stdin(batch=2, wait=0.5, stream=io.StringIO("".join(lines)),
                                           on_file=seen.append) == 3
    assert sum(s["n_ok"] for s in seen) == 5 and sum(s["n_opted_out"] for s in seen) == 1
    assert sum(s["n_in"] for s in seen) == 6
    close_readers(ws)
    assert {f"W{10 + i}" for i in range(5)} <= set(state(ws, "C007").documents)
    assert state(ws, "C029") is None
    assert not list((ws / "watch" / "stdin").iterdir())  # the micro-batch files are gone
    assert not [f for f in ws.rglob("*") if f.is_file() and b"QY20" in f.read_bytes()]


def test_a_customer_field_other_than_customer_id_still_skips_opted_out_customers(built, pipeline, tmp_path):
    from extractor.io import FieldMap

    ws = Path(shutil.copytree(built, tmp_path / "ws"))
    import_profiles(ws, str(SAMPLE / "profiles.csv"), key="email")  # C029 (callum.reid@…) is opted out
    rows = [json.loads(_doc(30, "", "QZ30")), json.loads(_doc(31, "", "QZ31"))]
    for row, email in zip(rows, ("hannah.okafor@example.com", "Callum.Reid@example.com ")):
        del row["customer_id"]
        row["customer_email"] = email
    fields = FieldMap(customer="customer_email")
    seen = []
    Watcher(ws, pipeline, fields=fields).run_stdin(batch=1, wait=0.2, on_file=seen.append,
                                                   stream=io.StringIO("".join(json.dumps(r) + "\n" for r in rows)))
    assert sum(s["n_ok"] for s in seen) == 1 and sum(s["n_opted_out"] for s in seen) == 1
    inbox = tmp_path / "in"
    inbox.mkdir()
    rows[1]["id"] = "W32"
    (inbox / "e.jsonl").write_text(json.dumps(rows[1]) + "\n", "utf-8")
    from typer.testing import CliRunner

    from extractor.cli import app

    close_readers(ws)
    res = CliRunner().invoke(app, ["watch", str(inbox), "--once", "--settle", "0", "--workspace", str(ws),
                                   "--customer-field", "customer_email"])  # the CLI had no way to name it
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout.strip().splitlines()[-1])
    assert info["n_opted_out"] == 1 and info["n_ok"] == 0
    close_readers(ws)
    assert not [f for f in ws.rglob("*") if f.is_file() and b"QZ31" in f.read_bytes()]


def test_stdin_rejects_name_stdin_and_its_line_numbers(built, pipeline, tmp_path):
    ws = Path(shutil.copytree(built, tmp_path / "ws"))
    import_profiles(ws, str(SAMPLE / "profiles.csv"))  # C029 is opted out
    lines = [_doc(40, "C029", "QV40"), "\n", _doc(41, "C007", "QV41"), "{not json\n",
             json.dumps({"id": "W42", "customer_id": "C007", "text": "   "}) + "\n"]
    seen = []
    Watcher(ws, pipeline).run_stdin(batch=10, wait=0.5, stream=io.StringIO("".join(lines)), on_file=seen.append)
    assert len(seen) == 1 and seen[0]["file"] == "<stdin>" and seen[0]["lines"] == [3, 5]
    assert (seen[0]["n_in"], seen[0]["n_ok"], seen[0]["n_rejected"], seen[0]["n_opted_out"]) == (4, 1, 2, 1)
    rejects = [json.loads(x) for f in (ws / "watch").glob("*.rejects.jsonl") for x in f.read_text("utf-8").splitlines()]
    # the lines as the producer numbered them on stdin (the opted-out line 1 and the blank line 2 included)
    assert sorted((r["source"], r["line"]) for r in rejects) == [("<stdin>", 4), ("<stdin>", 5)]
    assert all("stdin-" not in r["reason"] for r in rejects)
