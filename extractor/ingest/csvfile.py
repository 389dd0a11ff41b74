"""CSV and TSV reader: a header row, then one row per record; a bad record is rejected and
the lines it swallowed are read again.
"""

from __future__ import annotations

import csv
import io
import logging
from collections import deque
from collections.abc import Iterator
from typing import Any, BinaryIO

from extractor.ingest.common import SURROGATE, Options, Row, Source, reject
from extractor.ingest.decode import enc_name
from extractor.types import Reject

log = logging.getLogger("extractor.io")


class _LineFeed:
    """Feeds lines to csv.reader, remembering the lines of the current record so they can be replayed."""

    def __init__(self, stream: Any):
        self.stream = stream
        self.pending: deque[str] = deque()
        self.record: list[str] = []
        self.lineno = 0

    def __iter__(self) -> _LineFeed:
        return self

    def __next__(self) -> str:
        line = self.pending.popleft() if self.pending else next(self.stream)
        self.lineno += 1
        self.record.append(line)
        return line


def _csv_reason(err: csv.Error, lines: list[str], start: int, delim: str, max_chars: int) -> str:
    msg = str(err)
    if "field limit" in msg:
        return (
            f"too long: a field is over the --max-chars limit of {max_chars:,} characters (or a quote was "
            "never closed); split the document or raise --max-chars"
        )
    if msg == "unexpected end of data" or len(lines) > 1:
        return (
            f"unterminated quote: the quoted field opened on line {start} is never closed properly "
            f'({msg}); close the quote or write quotes inside a field as ""'
        )
    return (
        f'bad CSV row: {msg} — mixed quoting; quote the whole field and double the quotes inside it (""), '
        f"or quote fields that contain {delim!r}"
    )


def read_csv(src: Source, stream: BinaryIO, enc: str, opts: Options) -> Iterator[Row | Reject]:
    delim = "\t" if src.fmt == "tsv" else ","
    csv.field_size_limit(max(opts.max_chars + 1, 131072))
    feed = _LineFeed(io.TextIOWrapper(stream, encoding=enc, errors="surrogateescape", newline=""))
    reader = csv.reader(feed, delimiter=delim, strict=True)
    header: list[str] | None = None
    while True:
        feed.record.clear()
        start = feed.lineno + 1
        try:
            rec = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError as e:
            yield reject(
                src.name,
                start,
                f"invalid {enc_name(enc)}: cannot decode from line {start} on "
                f"({e.reason}); the rest of the file was skipped — check --encoding",
            )
            return
        except csv.Error as e:
            lines = list(feed.record)
            yield reject(src.name, start, _csv_reason(e, lines, start, delim, opts.max_chars), "parse", "".join(lines))
            feed.pending.extendleft(reversed(lines[1:]))  # re-read what the bad record swallowed
            feed.lineno = start
            reader = csv.reader(feed, delimiter=delim, strict=True)
            continue
        raw = "".join(feed.record)
        if not rec or rec == [""]:
            continue
        if header is None:
            header = rec
            if len(set(header)) != len(header):
                log.warning("%s: the header repeats a column name; the last one wins", src.name)
            continue
        if [c.lstrip("\ufeff") for c in rec] == [c.lstrip("\ufeff") for c in header]:
            yield reject(src.name, start, "repeated header: this row is the header again (files joined "
                         "together?); it is skipped, not read as a document", "parse", raw)
            continue
        if len(rec) != len(header):
            yield reject(
                src.name,
                start,
                f"wrong number of fields: the row has {len(rec)} fields but the header "
                f"has {len(header)}; quote fields that contain {delim!r} or fix the row",
                "parse",
                raw,
            )
            continue
        row = dict(zip(header, rec, strict=True))
        bad = next(((k, m.start()) for k, v in row.items() if (m := SURROGATE.search(v))), None)
        if bad is not None:
            yield reject(
                src.name,
                start,
                f"invalid {enc_name(enc)}: undecodable bytes in field '{bad[0]}' at "
                f"character {bad[1]}; re-save the file as UTF-8 or pass --encoding",
                "read",
                raw,
            )
            continue
        yield Row(start, row, raw)
