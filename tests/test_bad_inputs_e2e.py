"""Every bad-input case, end to end through `Pipeline.run`: the run finishes, each bad row is one line
of the rejects file with its reason, each good row one output row, and the summary adds up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .test_bad_inputs import CASES


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_end_to_end(tmp_path: Path, name: str, pipeline) -> None:
    case = CASES[name]
    unsupported = set(case.kw) - {"fields", "fmt", "encoding", "max_chars"}
    if unsupported:
        pytest.skip(f"reader-only options {unsupported}")
    for fname, content in case.files.items():
        (tmp_path / fname).write_bytes(content)
    inputs = [str(tmp_path / i) for i in (case.inputs or list(case.files))]
    out = tmp_path / "out" / "signals.jsonl"
    out.parent.mkdir()
    kw = {k: v for k, v in case.kw.items() if k != "max_chars"}
    old = pipeline.max_chars
    pipeline.max_chars = case.kw.get("max_chars", old)
    try:
        summary = pipeline.run(inputs, out, **kw)
    finally:
        pipeline.max_chars = old
    rejects = [json.loads(line) for line in (tmp_path / "out" / "signals.rejects.jsonl").read_text().splitlines()]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert summary.n_in == summary.n_ok + summary.n_rejected
    assert (summary.n_ok, summary.n_rejected) == (case.n_good, len(case.keywords)) == (len(rows), len(rejects))
    for rej, keyword in zip(rejects, case.keywords):
        assert keyword.lower() in rej["reason"].lower(), rej
    on_disk = json.loads((tmp_path / "out" / "signals.jsonl.summary.json").read_text())
    assert on_disk["n_in"] == on_disk["n_ok"] + on_disk["n_rejected"]


def test_extraction_rejects_name_their_file_and_line_and_empty_text_says_so(tmp_path, pipeline):
    from extractor import extract
    from extractor.errors import SignalsError

    src = tmp_path / "a.jsonl"
    src.write_text(json.dumps({"id": "ok", "text": "cancel my plan"}) + "\n"
                   + json.dumps({"id": "E11", "turns": [{"speaker": "Agent", "text": "Hello?"}]}) + "\n", "utf-8")
    out = tmp_path / "out.jsonl"
    summary = pipeline.run([str(src)], out)
    assert summary.n_ok == 1 and summary.n_rejected == 1
    (rej,) = [json.loads(line) for line in out.with_name("out.rejects.jsonl").read_text("utf-8").splitlines()]
    assert rej["id"] == "E11" and rej["source"] == str(src) and rej["line"] == 2  # as read rejects name it
    for text, reason in (("", "empty text"), ("   ", "whitespace-only")):
        try:
            got = extract(text)
        except SignalsError as exc:
            got = str(exc)
        assert reason in str(got), got
