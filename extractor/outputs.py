"""Managed outputs: the result files ``signals extract`` wrote for a workspace, so erasure reaches them.

``register`` records an output path in ``WS/outputs.json``; ``scrub`` rewrites one file (and its
rejects file) without a customer's rows, atomically (temp file, fsync, rename), so ``signals forget``
leaves none of the customer's bytes in the files it manages.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from .store import norm_key

OUTPUTS_FILE = "outputs.json"


def register(workspace: str | Path, path: str | Path) -> None:
    ws = Path(workspace)
    ws.mkdir(parents=True, exist_ok=True)
    known = paths(ws)
    p = Path(path).resolve()
    if p not in known:
        tmp = ws / f".{OUTPUTS_FILE}.tmp"
        tmp.write_text(json.dumps([str(x) for x in [*known, p]], indent=1), "utf-8")
        os.replace(tmp, ws / OUTPUTS_FILE)


def paths(workspace: str | Path) -> list[Path]:
    f = Path(workspace) / OUTPUTS_FILE
    return [Path(p) for p in json.loads(f.read_text("utf-8"))] if f.exists() else []


def scrub(path: Path, customer_key: str, doc_ids: set[str]) -> int:
    """Remove the customer's rows from a JSONL or Parquet result file and its side files; rows removed."""
    from .io import partial_path_for, rejects_path_for

    def theirs(row: dict) -> bool:
        return norm_key(row.get("customer_id")) == customer_key or row.get("id") in doc_ids

    removed = 0
    jsonl = [path]
    if path.suffix.lower() == ".parquet":
        removed += _scrub_parquet(path, theirs) if path.exists() else 0
        jsonl = [partial_path_for(path)]  # an interrupted Parquet run keeps its rows here
    for f in jsonl:
        removed += _scrub_jsonl(f, theirs) if f.exists() else 0
    rejects = rejects_path_for(path)
    if rejects.exists():  # a reject has no parsed customer id: match its document id, or the key as a word
        key = re.compile(rf"(?<![\w@.-]){re.escape(customer_key)}(?![\w@.-])")
        removed += _scrub_jsonl(rejects, lambda r: r.get("id") in doc_ids or bool(key.search((r.get("raw") or "")
                                                                                             .lower())))
    return removed


def partition_lines(lines, drop) -> tuple[list[str], int]:
    """The JSONL lines to keep (unparsable ones too) and how many JSON-object lines ``drop(row)`` matched."""
    keep, removed = [], 0
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            keep.append(line)
            continue
        if isinstance(row, dict) and drop(row):
            removed += 1
        else:
            keep.append(line)
    return keep, removed


def _scrub_jsonl(path: Path, drop) -> int:
    with path.open(encoding="utf-8", errors="surrogateescape") as fh:
        keep, removed = partition_lines(fh, drop)
    if removed:
        _replace(path, "".join(keep).encode("utf-8", "surrogateescape"))
    return removed


def _scrub_parquet(path: Path, theirs) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    keep = [not theirs(row) for row in table.select([c for c in ("id", "customer_id")
                                                      if c in table.column_names]).to_pylist()]
    removed = keep.count(False)
    if removed:
        sink = pa.BufferOutputStream()
        pq.write_table(table.filter(pa.array(keep, type=pa.bool_())), sink)
        _replace(path, sink.getvalue().to_pybytes())
    return removed


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.scrub")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
