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
