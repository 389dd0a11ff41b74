"""Private readers and file helpers behind :mod:`extractor.io`.

:mod:`.inputs` expands paths into sources, :mod:`.dispatch` reads one source with the reader
of its format (:mod:`.jsonfile`, :mod:`.csvfile`, :mod:`.parquet`, :mod:`.txt`, on top of
:mod:`.decode`), :mod:`.rows` maps each row to a :class:`~extractor.types.Document`, and
:mod:`.results` holds the file helpers of the sinks.

Nothing here raises for a bad row: every problem becomes a :class:`~extractor.types.Reject`
whose reason starts with a stable category (``"invalid JSON: ..."``) and says how to fix it.
Use :mod:`extractor.io`; this package is private.
"""

from extractor.ingest.common import FieldMap, Options, reject
from extractor.ingest.dispatch import read_source
from extractor.ingest.inputs import FORMATS, expand_inputs, normalise_format
from extractor.ingest.results import (
    fsync_dir,
    read_parquet_results,
    scan_jsonl,
    truncate_partial_line,
    write_parquet_results,
)
from extractor.ingest.transcript import speaker_role

__all__ = [
    "FORMATS",
    "FieldMap",
    "Options",
    "expand_inputs",
    "fsync_dir",
    "normalise_format",
    "read_parquet_results",
    "read_source",
    "reject",
    "scan_jsonl",
    "speaker_role",
    "truncate_partial_line",
    "write_parquet_results",
]
