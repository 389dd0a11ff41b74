"""Parquet reader: one row per record (pyarrow is imported only when a Parquet file is read)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import BinaryIO

from extractor.ingest.common import BATCH, Row, Source, reject
from extractor.types import Reject

log = logging.getLogger("extractor.io")


def read_parquet(src: Source, stream: BinaryIO | None) -> Iterator[Row | Reject]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        yield reject(src.name, None, "unknown format: reading Parquet needs pyarrow; pip install pyarrow")
        return
    if stream is not None:
        log.info("reading Parquet from stdin: the whole input is held in memory")
    try:
        pf = pq.ParquetFile(src.path if stream is None else io.BytesIO(stream.read()))
    except Exception as e:  # pyarrow raises several types for a bad file
        yield reject(
            src.name,
            None,
            f"bad Parquet: cannot open the file ({e}); is it really Parquet? "
            "pass --format to read it as another format",
        )
        return
    n = 0
    try:
        for batch in pf.iter_batches(batch_size=BATCH):
            for data in batch.to_pylist():
                n += 1
                yield Row(n, data, None)
    except Exception as e:
        yield reject(
            src.name,
            n + 1,
            f"bad Parquet: reading failed after row {n} ({e}); the rest of the file was skipped",
        )
