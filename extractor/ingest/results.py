"""File helpers of the result and reject sinks: partial-line truncation and JSONL scanning for
resume, directory fsync, and the Parquet result layout (pyarrow is imported only when used).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from extractor.errors import ConfigError
from extractor.ingest.common import BATCH
from extractor.types import ExtractionResult

log = logging.getLogger("extractor.io")


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path.parent if str(path.parent) else ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def truncate_partial_line(path: Path) -> int:
    """Cut a trailing line without ``\\n`` (left by a crash). Returns the bytes removed."""
    size = path.stat().st_size
    if size == 0:
        return 0
    with open(path, "rb+") as f:
        pos = size
        while pos > 0:
            step = min(65536, pos)
            f.seek(pos - step)
            chunk = f.read(step)
            i = chunk.rfind(b"\n")
            if i >= 0:
                pos = pos - step + i + 1
                break
            pos -= step
        if pos < size:
            f.truncate(pos)
            log.warning("%s: removed a partial last line (%d bytes) left by an interrupted run", path, size - pos)
        return size - pos


def scan_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    log.warning("%s:%d is not valid JSON; ignored when resuming", path, n)


# ---------------------------------------------------------------- output helpers


def pyarrow_modules() -> Any:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError("Parquet needs pyarrow: pip install pyarrow (or write .jsonl instead)") from None
    return pa, pq


def result_schema(pa: Any) -> Any:
    """Nested columns mirroring the JSONL row, so DuckDB/pandas can query ``signals[1].label``.

    Only a signal's free-form ``value`` is a JSON string (its shape depends on the signal kind).
    """
    s, ts = pa.string(), pa.timestamp("us", tz="UTC")
    evidence = pa.struct([("start", pa.int64()), ("end", pa.int64()), ("text", s), ("turn", pa.int64()),
                          ("match", s)])
    signal = pa.struct([("kind", s), ("label", s), ("score", pa.float64()), ("confidence", pa.float64()),
                        ("speaker", s), ("scope", s), ("value", s), ("evidence", pa.list_(evidence)),
                        ("extractor", s)])
    turn = pa.struct([("speaker", s), ("text", s), ("ts", s), ("role", s)])
    provenance = pa.struct([("extractor", s), ("version", s), ("mode", s), ("models", pa.map_(s, s)),
                            ("taxonomy", s), ("created", ts)])
    return pa.schema([("id", s), ("customer_id", s), ("channel", s), ("created_at", ts), ("text", s),
                      ("turns", pa.list_(turn)), ("signals", pa.list_(signal)), ("provenance", provenance),
                      ("schema_version", s)])


def result_columns(r: ExtractionResult) -> dict[str, Any]:
    d = r.model_dump()
    for sig in d["signals"]:
        sig["value"] = None if sig["value"] is None else json.dumps(sig["value"], ensure_ascii=False, default=str)
    d["provenance"]["models"] = list(d["provenance"]["models"].items())
    return d


def write_parquet_results(results: Iterable[ExtractionResult], out: Path) -> None:
    """Write ``results`` to Parquet at ``out`` atomically (temp file, fsync, rename)."""
    pa, pq = pyarrow_modules()
    schema = result_schema(pa)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    with pq.ParquetWriter(tmp, schema) as writer:
        batch: list[dict[str, Any]] = []
        for r in results:
            batch.append(result_columns(r))
            if len(batch) >= BATCH:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                batch = []
        if batch:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, out)
    fsync_dir(out)


def read_parquet_results(path: Path) -> Iterator[ExtractionResult]:
    """Reverse of :func:`write_parquet_results`."""
    _, pq = pyarrow_modules()
    for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH):
        for row in batch.to_pylist():
            for sig in row.get("signals") or []:
                sig["value"] = None if sig["value"] is None else json.loads(sig["value"])
            row["provenance"]["models"] = dict(row["provenance"]["models"] or [])
            yield ExtractionResult.model_validate({k: v for k, v in row.items() if v is not None})
