"""A crashed run resumes without duplicates and without losing rows."""

from __future__ import annotations

import json

from .conftest import SAMPLE


def test_resume_after_crash_has_no_duplicates(tmp_path, pipeline):
    out = tmp_path / "out.jsonl"
    inputs = [str(SAMPLE / "reviews.jsonl"), str(SAMPLE / "surveys.csv")]
    first = pipeline.run(inputs, out, batch_size=16)
    assert first.n_ok == 64
    lines = out.read_bytes().splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:20]) + lines[20][:25])  # crash: 20 rows and half a line
    second = pipeline.run(inputs, out, batch_size=16)
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 64
    assert second.n_resumed == 20 and second.n_ok == 64 and second.n_in == 64
    assert second.counts == first.counts  # the resumed rows are counted with the labels they have in the file


def test_resuming_with_a_changed_document_rejects_it_instead_of_keeping_a_stale_result(tmp_path, pipeline):
    out, src = tmp_path / "out.jsonl", tmp_path / "in.jsonl"
    rows = [{"id": "R1", "customer_id": "X", "text": "my internet is down"},
            {"id": "R2", "customer_id": "X", "text": "cancel my plan"}]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    pipeline.run([str(src)], out)
    rows[0]["text"] = "EDITED: I was charged twice, refund me $50"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    again = pipeline.run([str(src)], out)
    assert (again.n_in, again.n_ok, again.n_resumed, again.n_rejected) == (2, 1, 1, 1)
    (reject,) = [json.loads(line) for line in out.with_name("out.rejects.jsonl").read_text("utf-8").splitlines()]
    assert reject["id"] == "R1" and "--no-resume" in reject["reason"]
    fresh = pipeline.run([str(src)], out, resume=False)
    texts = {json.loads(line)["id"]: json.loads(line)["text"] for line in out.read_text("utf-8").splitlines()}
    assert fresh.n_ok == 2 and texts["R1"].startswith("EDITED")
