"""Bytes -> text: :func:`sniff` detects a BOM and binary content, :func:`iter_lines` splits a
stream into decoded lines and turns decode problems into :class:`RowError` values.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterator
from typing import Any, BinaryIO

from extractor.ingest.common import SURROGATE, RowError, reject
from extractor.types import Reject

SNIFF_BYTES = 8192
MARK = "signals.mark-undecodable"
codecs.register_error(MARK, lambda e: ("\udfff", e.end))  # a lone surrogate: the line holding it is rejected


class _Prefixed(io.RawIOBase):
    """A readable stream that replays ``head`` and then continues with ``rest``."""

    def __init__(self, head: bytes, rest: BinaryIO):
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self._head:
            n = min(len(b), len(self._head))
            b[:n], self._head = self._head[:n], self._head[n:]
            return n
        data = self._rest.read(len(b))
        b[: len(data)] = data
        return len(data)


def is_wide(encoding: str) -> bool:
    """UTF-16/32 cannot be split into lines as bytes."""
    return codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))


def sniff(stream: BinaryIO, encoding: str, lines: bool = False) -> tuple[BinaryIO, str, str | None]:
    """Detect a BOM (dropping a UTF-8 one) and binary content. Returns (stream, encoding, problem).

    With ``lines`` (JSONL, CSV, TSV: one record per line) a file is only judged binary as a whole when
    no complete line in its first bytes is clean text; otherwise each bad line is rejected on its own,
    so one junk row does not cost the good rows around it."""
    head = stream.read(SNIFF_BYTES)
    skip = 0
    if head.startswith(codecs.BOM_UTF8):
        enc, skip = "utf-8", 3
    elif head[:4] in (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE):
        enc = "utf-32"
    elif head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        enc = "utf-16"
    else:
        enc = encoding
    body = head[skip:]
    out = io.BufferedReader(_Prefixed(body, stream))  # type: ignore[arg-type]
    problem = None if is_wide(enc) else _binary_problem(body, enc)
    if problem is not None and lines and not problem.startswith(MAGIC) and _has_clean_line(body, enc):
        problem = None
    return out, enc, problem  # type: ignore[return-value]


MAGIC = ("binary data: the file is",)  # gzip, zip, Parquet: never text, whatever the lines look like


def _has_clean_line(head: bytes, enc: str) -> bool:
    """Whether a complete line of ``head`` holds no NUL byte and decodes as ``enc`` (a text file with junk rows)."""
    for line in head.split(b"\n")[:-1]:  # the last piece may be cut off by the sniff window
        if line.strip() and b"\x00" not in line:
            try:
                line.decode(enc)
            except UnicodeDecodeError:
                continue
            return True
    return False


def _binary_problem(head: bytes, enc: str) -> str | None:
    if head.startswith(b"\x1f\x8b"):
        return "binary data: the file is gzip-compressed; decompress it first (gunzip FILE)"
    if head.startswith(b"PK\x03\x04"):
        return "binary data: the file is a zip archive; extract it first"
    if head.startswith(b"PAR1"):
        return "binary data: the file is Parquet; name it .parquet or pass --format parquet"
    if not head:
        return None
    nul = head.count(0)
    if nul / len(head) > 0.05:
        if nul / len(head) > 0.3 and (head[1::2].count(0) > 0.8 * nul or head[0::2].count(0) > 0.8 * nul):
            return (
                "binary data (NUL bytes): this looks like UTF-16 text without a BOM; "
                "pass --encoding utf-16-le (or utf-16-be)"
            )
        return "binary data (NUL bytes): this is not a text file"
    if codecs.lookup(enc).name == "utf-8" and head.decode("utf-8", "replace").count("\ufffd") > 0.3 * len(head):
        return (
            "binary data: most bytes are not valid UTF-8; if it is text in another encoding "
            "pass --encoding (e.g. --encoding cp1252)"
        )
    return None


def enc_name(enc: str) -> str:
    name = codecs.lookup(enc).name
    return name.upper() if name.startswith("utf") else name


def undecodable(src: str, data: bytes, enc: str, e: UnicodeDecodeError, id: str | None = None) -> Reject:
    """The reject for a whole-file read (JSON, TXT) that ``enc`` cannot decode."""
    return reject(
        src,
        data[: e.start].count(b"\n") + 1,
        f"invalid {enc_name(enc)}: undecodable byte at file offset {e.start} "
        f"({e.reason}); re-save the file as UTF-8 or pass --encoding",
        raw=data[e.start :],
        id=id,
    )


def iter_lines(stream: BinaryIO, enc: str, cap: int) -> Iterator[tuple[int, str | RowError, Any]]:
    """Yield ``(line number, text or RowError, raw)`` splitting on ``\\n`` only; ends are kept."""
    if is_wide(enc):  # undecodable code units become lone surrogates, and only their line is rejected
        reader: Any = io.TextIOWrapper(stream, encoding=enc, errors=MARK, newline="\n")
    else:
        reader = stream
    n = offset = 0
    while True:
        try:
            line = reader.readline(cap)
        except UnicodeDecodeError as e:
            yield (
                n + 1,
                RowError(
                    f"invalid {enc_name(enc)}: cannot decode line {n + 1} ({e.reason}); "
                    "the rest of the file was skipped — check --encoding",
                    "read",
                ),
                None,
            )
            return
        if not line:
            return
        n += 1
        start, offset = offset, offset + len(line)
        nl = "\n" if isinstance(line, str) else b"\n"
        if len(line) >= cap and not line.endswith(nl):
            while (more := reader.readline(cap)) and not more.endswith(nl):
                offset += len(more)
            offset += len(more)
            yield (
                n,
                RowError(
                    f"too long: line {n} is over {cap:,} bytes, more than a row can hold whose text is within "
                    "--max-chars characters; split the document or raise --max-chars",
                    "read",
                ),
                line,
            )
            continue
        if isinstance(line, bytes):
            if b"\x00" in line:
                yield (
                    n,
                    RowError(
                        "binary data: NUL bytes in the line; remove the binary junk or check that this is a text file",
                        "read",
                    ),
                    line,
                )
                continue
            try:
                line = line.decode(enc)
            except UnicodeDecodeError as e:
                yield (
                    n,
                    RowError(
                        f"invalid {enc_name(enc)}: undecodable byte at byte {e.start} of the line "
                        f"(file offset {start + e.start}): {e.reason}; re-save the file as UTF-8 or "
                        "pass --encoding (e.g. --encoding cp1252)",
                        "read",
                    ),
                    line,
                )
                continue
        elif "\x00" in line:
            yield n, RowError("binary data: NUL characters in the line; remove them", "read"), line
            continue
        elif (m := SURROGATE.search(line)) is not None:
            yield (
                n,
                RowError(
                    f"invalid {enc_name(enc)}: undecodable bytes at character {m.start()} of line {n}; "
                    "re-save the file or check --encoding",
                    "read",
                ),
                SURROGATE.sub("\ufffd", line),
            )
            continue
        yield n, line, line
