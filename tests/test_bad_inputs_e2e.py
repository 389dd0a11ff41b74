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
