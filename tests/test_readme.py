"""The README's quickstart commands and Python example really run."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

README = (ROOT / "README.md").read_text("utf-8")


def _block(marker: str, lang: str) -> str:
    section = README.split(f"<!-- {marker} -->", 1)[1].split(f"<!-- /{marker} -->", 1)[0]
    return re.search(rf"```{lang}\n(.*?)```", section, re.S).group(1)


def _workdir(tmp_path: Path) -> Path:
    (tmp_path / "sample_data").symlink_to(ROOT / "sample_data")
    return tmp_path


def test_quickstart_commands_run(tmp_path, pipeline):
    work = _workdir(tmp_path)
    bindir = Path(sys.executable).parent
    for line in _block("quickstart", "bash").strip().splitlines():
        argv = shlex.split(line)
        argv[0] = str(bindir / Path(argv[0]).name)  # the venv running the tests
        res = subprocess.run(argv, cwd=work, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, (line, res.stdout[-2000:], res.stderr[-2000:])
    summary = json.loads((work / "out/signals.jsonl.summary.json").read_text())
    assert summary["n_in"] == summary["n_ok"] + summary["n_rejected"] and summary["n_ok"] >= 99
    assert "T001" in res.stdout and "intent" in res.stdout
    for line in _block("search", "bash").strip().splitlines():  # search what the quickstart extracted
        argv = shlex.split(line)
        argv[0] = str(bindir / Path(argv[0]).name)
        res = subprocess.run(argv, cwd=work, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, (line, res.stdout[-2000:], res.stderr[-2000:])
    assert "charged" in res.stdout and "sentiment=negative" in res.stdout and "exact-scan" in res.stdout
    outs = []
    for line in _block("customers", "bash").strip().splitlines():  # then the customer commands
        argv = shlex.split(line)
        argv[0] = str(bindir / Path(argv[0]).name)
        res = subprocess.run(argv, cwd=work, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, (line, res.stdout[-2000:], res.stderr[-2000:])
        outs.append(res.stdout)
    assert "3 opted out" in outs[0]
    assert "profile:" in outs[1] and "intent billing_double_charge" in outs[1] and "“" in outs[1]
    assert "rule " in outs[2] and "✓" in outs[2]
    assert json.loads(outs[3])["documents"] >= 1 and json.loads(outs[3])["output_rows"] >= 1
    assert '"C066"' not in (work / "out/signals.jsonl").read_text("utf-8")  # a managed output: scrubbed


def test_python_example_runs(tmp_path, pipeline, capsys):
    work = _workdir(tmp_path)
    old = os.getcwd()
    os.chdir(work)
    try:
        exec(compile(_block("example", "python"), "README.md", "exec"), {})
    finally:
        os.chdir(old)
    printed = capsys.readouterr().out
    assert "intent" in printed and "32 32 0" in printed


def test_llm_cascade_example_runs(tmp_path):
    """The README's LLM example, run by bash as written, with the venv that runs the tests as .venv."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (the dev extra installs it)")
    work = _workdir(tmp_path)
    (work / ".venv").symlink_to(Path(sys.executable).parent.parent)
    res = subprocess.run(["bash", "-euo", "pipefail", "-c", _block("llm", "bash")], cwd=work, capture_output=True,
                         text=True, timeout=900, env={**os.environ, "COLUMNS": "120"})
    assert res.returncode == 0, (res.stdout[-2000:], res.stderr[-2000:])
    summary = json.loads((work / "out/cascade.jsonl.summary.json").read_text())
    assert summary["mode"] == "cascade" and summary["n_in"] == summary["n_ok"] == 32
    assert 0 <= summary["routed_fraction"] <= 1 and "sent to the LLM" in res.stdout
