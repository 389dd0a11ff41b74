""":func:`read_source`: every document or reject of one source, read with the reader for its format."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import BinaryIO

from extractor.ingest.common import RAW_CHARS, Item, Options, Row, Source, reject
from extractor.ingest.csvfile import read_csv
from extractor.ingest.decode import sniff
from extractor.ingest.jsonfile import read_json, read_jsonl
from extractor.ingest.parquet import read_parquet
from extractor.ingest.rows import to_document
from extractor.ingest.txt import read_txt
from extractor.types import Reject


def _documents(rows: Iterator[Row | Reject], src: Source, opts: Options) -> Iterator[Item]:
    for r in rows:
        yield (r.line, r.raw, r) if isinstance(r, Reject) else (r.line, r.raw, to_document(r, src, opts))


def read_source(src: Source, opts: Options) -> Iterator[Item]:
    """Every document or reject of one source, as ``(line, raw, item)``."""
    try:
        if src.fmt == "parquet":
            yield from _documents(read_parquet(src, None if src.path else sys.stdin.buffer), src, opts)
            return
        with open(src.path, "rb") if src.path is not None else _NoClose(sys.stdin.buffer) as raw_stream:
            stream, enc, problem = sniff(raw_stream, opts.encoding, lines=src.fmt in ("jsonl", "csv", "tsv"))
            if problem is not None:
                yield None, None, reject(src.name, None, problem, raw=stream.read(RAW_CHARS))
                return
            if src.fmt == "txt":
                yield from read_txt(src, stream, enc, opts)
                return
            reader = {"jsonl": read_jsonl, "json": read_json, "csv": read_csv, "tsv": read_csv}[src.fmt]
            yield from _documents(reader(src, stream, enc, opts), src, opts)
    except OSError as e:
        yield (
            None,
            None,
            reject(src.name, None, f"cannot read: {e.strerror or e}; check the path and its permissions"),
        )


class _NoClose:
    """Context manager around stdin that leaves it open."""

    def __init__(self, stream: BinaryIO):
        self.stream = stream

    def __enter__(self) -> BinaryIO:
        return self.stream

    def __exit__(self, *exc: object) -> None:
        return None
