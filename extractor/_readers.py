"""Private helpers behind :mod:`extractor.io`: input expansion, encoding sniffing, one row
iterator per format, the row -> :class:`~extractor.types.Document` mapping, and the file
helpers of the sinks (partial-line truncation, fsync, the Parquet result layout).

Nothing here raises for a bad row: every problem becomes a :class:`~extractor.types.Reject`
whose reason starts with a stable category (``"invalid JSON: ..."``) and says how to fix it.
Use :mod:`extractor.io`; this module is private.
"""

from __future__ import annotations

import codecs
import csv
import glob
import io
import json
import logging
import math
import os
import re
import sys
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from dateutil import parser as date_parser
from pydantic import ValidationError

from extractor.errors import ConfigError
from extractor.types import Document, ExtractionResult, Reject, Role, Turn

log = logging.getLogger("extractor.io")

EXTENSIONS: dict[str, str] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".txt": "txt",
}
FORMATS = ("jsonl", "json", "csv", "tsv", "parquet", "txt")
FORMAT_ALIASES = {"ndjson": "jsonl", "jsonlines": "jsonl", "text": "txt", "pq": "parquet"}
MAX_JSON_BYTES = 100 * 1024 * 1024
SNIFF_BYTES = 8192
RAW_CHARS = 200
BATCH = 1024  # Parquet rows per batch, in and out
OWN_OUTPUTS = (".rejects.jsonl", ".summary.json", ".partial.jsonl")  # skipped when walking folders

_JSON = json.JSONDecoder(strict=False)  # strict=False: raw tabs etc. inside strings are accepted
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_TURN_LINE = re.compile(
    r"[ \t]*(?:\[(?P<bts>\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d{1,3})?)\][ \t]*"
    r"|(?P<ts>\d{1,2}:\d{2}:\d{2}(?:[.,]\d{1,3})?)[ \t]+)?"
    r"(?P<speaker>[^\W\d_][\w.'’&()#@/-]*(?:[ \t]+[\w.'’&()#@/-]+){0,2})[ \t]*:(?![/\\\d])[ \t]?"
)
_SYSTEM_WORDS = frozenset({"system", "ivr"})
_AGENT_WORDS = frozenset(
    {
        "agent",
        "rep",
        "representative",
        "support",
        "advisor",
        "adviser",
        "operator",
        "assistant",
        "bot",
        "chatbot",
        "csr",
        "staff",
        "specialist",
        "service",
        "care",
        "helpdesk",
        "technician",
        "concierge",
    }
)
_CUSTOMER_WORDS = frozenset(
    {
        "customer",
        "client",
        "caller",
        "user",
        "member",
        "guest",
        "buyer",
        "shopper",
        "visitor",
        "consumer",
        "requester",
        "patient",
        "subscriber",
    }
)
_NOT_SPEAKERS = frozenset(
    {
        "note",
        "notes",
        "nb",
        "subject",
        "re",
        "fw",
        "fwd",
        "from",
        "to",
        "cc",
        "bcc",
        "date",
        "sent",
        "pros",
        "cons",
        "summary",
        "title",
        "ps",
        "p.s",
        "edit",
        "update",
        "warning",
        "error",
        "tip",
        "http",
        "https",
        "mailto",
        "ref",
        "tel",
        "phone",
        "email",
        "order",
        "ticket",
        "tldr",
        "tl;dr",
    }
)
_TURN_KEYS = {
    "speaker": ("speaker", "role", "author", "from"),
    "text": ("text", "content", "message"),
    "ts": ("ts", "timestamp", "time"),
}


@dataclass(frozen=True)
class FieldMap:
    """Which input field holds what. ``FieldMap(text="body", id="ticket_id")`` maps other schemas."""

    text: str = "text"
    id: str = "id"
    customer: str = "customer_id"
    turns: str = "turns"
    channel: str = "channel"
    created_at: str = "created_at"


@dataclass(frozen=True)
class Options:
    fields: FieldMap
    max_chars: int
    encoding: str
    agent_names: frozenset[str]


@dataclass(frozen=True)
class Source:
    """One input: a file, or stdin when ``path`` is None."""

    name: str
    fmt: str
    path: Path | None = None

    @property
    def stem(self) -> str:
        return self.path.stem if self.path is not None else "stdin"


class Row(NamedTuple):
    line: int | None
    data: dict[str, Any]
    raw: str | None


Item = tuple[int | None, str | None, "Document | Reject"]  # (line, raw, document or reject)


class RowError(Exception):
    """Internal: a row that cannot become a Document. ``reason`` is the user-facing text."""

    def __init__(self, reason: str, stage: str = "validate"):
        super().__init__(reason)
        self.reason = reason
        self.stage = stage


def speaker_role(speaker: str, agent_names: frozenset[str] = frozenset()) -> Role:
    """Role for a speaker label as written in a transcript.

    >>> speaker_role("Agent 2"), speaker_role("Caller"), speaker_role("Priya", frozenset({"priya"}))
    ('agent', 'customer', 'agent')
    """
    label = speaker.strip().casefold()
    names = {n.strip().casefold() for n in agent_names}
    words = re.findall(r"[^\W\d_]+", label)
    if label in names:
        return "agent"
    if _SYSTEM_WORDS.intersection(words):
        return "system"
    if _AGENT_WORDS.intersection(words):
        return "agent"
    if _CUSTOMER_WORDS.intersection(words):
        return "customer"
    return "agent" if words and words[0] in names else "unknown"


def reject(
    src: str, line: int | None, reason: str, stage: str = "read", raw: Any = None, id: str | None = None
) -> Reject:
    """A Reject with ``raw`` cut to 200 characters and made safe to write as UTF-8."""
    if isinstance(raw, bytes):
        raw = raw[: RAW_CHARS * 4].decode("utf-8", "replace")
    elif raw is not None and not isinstance(raw, str):
        raw = json.dumps(jsonable(raw), ensure_ascii=False, default=str)
    if raw is not None:
        raw = _SURROGATE.sub("\ufffd", raw[:RAW_CHARS])
    return Reject(source=src, line=line, id=id, stage=stage, reason=reason, raw=raw)  # type: ignore[arg-type]


def normalise_format(fmt: str | None) -> str | None:
    if fmt is None:
        return None
    f = fmt.strip().lower().lstrip(".")
    return FORMAT_ALIASES.get(f, f)


# ---------------------------------------------------------------- inputs


def expand_inputs(inputs: Sequence[str], fmt: str | None) -> Iterator[Source | Reject]:
    """Turn paths, folders, globs and ``-`` into Sources (each file once), or Rejects."""
    seen: set[Path] = set()

    def one(path: Path, given: str) -> Source | Reject | None:
        key = path.resolve()
        if key in seen:
            log.info("%s is listed more than once; reading it once", path)
            return None
        seen.add(key)
        kind = fmt or EXTENSIONS.get(path.suffix.lower())
        if kind is None:
            return reject(
                given,
                None,
                f"unknown format: cannot tell the format of '{path.name}' from its "
                f"extension; supported: {', '.join(EXTENSIONS)} — or pass --format "
                f"({'|'.join(FORMATS)})",
            )
        return Source(str(path), kind, path)

    def walk(folder: Path) -> Iterator[Path]:
        for p in sorted(folder.rglob("*")):
            hidden = any(part.startswith(".") for part in p.relative_to(folder).parts)
            if p.is_file() and p.suffix.lower() in EXTENSIONS and not hidden:
                if p.name.endswith(OWN_OUTPUTS):
                    log.info("skipping %s: it looks like an output of signals", p)
                    continue
                yield p

    for given in inputs:
        if given == "-":
            yield Source("<stdin>", fmt or "jsonl")
            continue
        path = Path(given).expanduser()
        if path.is_dir():
            files = list(walk(path))
            if not files:
                log.warning("folder %s holds no %s files", path, "/".join(EXTENSIONS))
        elif path.exists():
            files = [path]
        elif glob.has_magic(given):
            files = []
            for m in sorted(glob.glob(str(path), recursive=True)):
                files.extend(walk(Path(m)) if Path(m).is_dir() else [Path(m)])
            if not files:
                yield reject(
                    given,
                    None,
                    f"path not found: the pattern '{given}' matched no files; "
                    "check the path (quote it so the shell does not expand it)",
                )
                continue
        else:
            yield reject(given, None, f"path not found: '{given}' does not exist; check the path")
            continue
        for f in files:
            item = one(f, str(f))
            if item is not None:
                yield item


# ---------------------------------------------------------------- bytes -> text


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


def sniff(stream: BinaryIO, encoding: str) -> tuple[BinaryIO, str, str | None]:
    """Detect a BOM (dropping a UTF-8 one) and binary content. Returns (stream, encoding, problem)."""
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
    return out, enc, (None if is_wide(enc) else _binary_problem(body, enc))  # type: ignore[return-value]


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
        if head[1::2].count(0) > 0.8 * nul or head[0::2].count(0) > 0.8 * nul:
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


def _enc_name(enc: str) -> str:
    name = codecs.lookup(enc).name
    return name.upper() if name.startswith("utf") else name


def iter_lines(stream: BinaryIO, enc: str, cap: int) -> Iterator[tuple[int, str | RowError, Any]]:
    """Yield ``(line number, text or RowError, raw)`` splitting on ``\\n`` only; ends are kept."""
    if is_wide(enc):
        reader: Any = io.TextIOWrapper(stream, encoding=enc, newline="\n")
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
                    f"invalid {_enc_name(enc)}: cannot decode line {n + 1} ({e.reason}); "
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
                    f"too long: line {n} is over {cap:,} bytes, longer than any document "
                    "--max-chars allows; split the document or raise --max-chars",
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
                        "binary data (NUL bytes) in the line; remove the binary junk or check that this is a text file",
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
                        f"invalid {_enc_name(enc)}: undecodable byte at byte {e.start} of the line "
                        f"(file offset {start + e.start}): {e.reason}; re-save the file as UTF-8 or "
                        "pass --encoding (e.g. --encoding cp1252)",
                        "read",
                    ),
                    line,
                )
                continue
        elif "\x00" in line:
            yield n, RowError("binary data (NUL characters) in the line; remove them", "read"), line
            continue
        yield n, line, line


# ---------------------------------------------------------------- formats -> rows


def parse_json_row(n: int, text: str) -> Row | RowError:
    """One JSONL line -> Row, or the reason it is not one JSON object."""
    text = text.lstrip("\ufeff")
    try:
        obj = _JSON.decode(text)
    except json.JSONDecodeError as e:
        return RowError(
            f"invalid JSON: {e.msg} at column {e.colno}; the line is truncated or malformed — "
            "each line must be one complete JSON object",
            "parse",
        )
    except RecursionError:
        return RowError("invalid JSON: nested too deeply to parse", "parse")
    if isinstance(obj, dict):
        return Row(n, obj, text)
    if isinstance(obj, list):
        return RowError(
            "not a JSON object: the line is a JSON array; JSONL needs one {...} object per line "
            "(for a file holding one array use .json or --format json)",
            "parse",
        )
    return RowError(
        f"not a JSON object: the line is a JSON scalar ({_kind(obj)}); JSONL needs one {{...}} object per line",
        "parse",
    )


def read_jsonl(src: Source, stream: BinaryIO, enc: str, opts: Options) -> Iterator[Row | Reject]:
    cap = 8 * opts.max_chars + 65536
    for n, item, raw in iter_lines(stream, enc, cap):
        if isinstance(item, RowError):
            yield reject(src.name, n, item.reason, item.stage, raw)
        elif item.strip():
            row = parse_json_row(n, item)
            yield reject(src.name, n, row.reason, row.stage, item) if isinstance(row, RowError) else row


def read_json(src: Source, stream: BinaryIO, enc: str, opts: Options) -> Iterator[Row | Reject]:
    data = stream.read(MAX_JSON_BYTES + 1)
    if len(data) > MAX_JSON_BYTES:
        yield reject(
            src.name,
            None,
            f"too long: the JSON file is over {MAX_JSON_BYTES // 2**20} MB; convert it "
            "to JSONL (one object per line, e.g. jq -c '.[]' FILE > FILE.jsonl) so it can be streamed",
        )
        return
    try:
        text = data.decode(enc)
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        yield reject(
            src.name,
            line,
            f"invalid {_enc_name(enc)}: undecodable byte at file offset {e.start} "
            f"({e.reason}); re-save the file as UTF-8 or pass --encoding",
            raw=data[e.start :],
        )
        return
    try:
        obj = _JSON.decode(text.lstrip("\ufeff"))
    except json.JSONDecodeError as e:
        if e.msg == "Extra data":  # one object per line in a .json file: read it as JSONL
            log.info("%s holds one JSON value per line; reading it as JSONL", src.name)
            for n, line in enumerate(text.split("\n"), 1):
                if line.strip():
                    row = parse_json_row(n, line)
                    yield (reject(src.name, n, row.reason, row.stage, line) if isinstance(row, RowError) else row)
            return
        yield reject(
            src.name,
            e.lineno,
            f"invalid JSON: {e.msg} at line {e.lineno} column {e.colno}; the file is truncated or malformed",
            "parse",
            text[max(0, e.pos - 100) :],
        )
        return
    if isinstance(obj, dict):
        obj = [obj]
    if not isinstance(obj, list):
        yield reject(
            src.name,
            None,
            f"not a JSON object: the file holds a JSON {_kind(obj)}; expected an array of objects",
            "parse",
            text,
        )
        return
    for i, el in enumerate(obj, 1):
        if isinstance(el, dict):
            yield Row(i, el, None)
        else:
            yield reject(
                src.name,
                i,
                f"not a JSON object: array element {i} is a JSON {_kind(el)}; expected an object with a text field",
                "parse",
                el,
            )


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
                f"invalid {_enc_name(enc)}: cannot decode from line {start} on "
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
        bad = next(((k, m.start()) for k, v in row.items() if (m := _SURROGATE.search(v))), None)
        if bad is not None:
            yield reject(
                src.name,
                start,
                f"invalid {_enc_name(enc)}: undecodable bytes in field '{bad[0]}' at "
                f"character {bad[1]}; re-save the file as UTF-8 or pass --encoding",
                "read",
                raw,
            )
            continue
        yield Row(start, row, raw)


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
        for batch in pf.iter_batches(batch_size=1024):
            for data in batch.to_pylist():
                n += 1
                yield Row(n, data, None)
    except Exception as e:
        yield reject(
            src.name,
            n + 1,
            f"bad Parquet: reading failed after row {n} ({e}); the rest of the file was skipped",
        )


def parse_transcript(text: str, agent_names: frozenset[str]) -> tuple[list[Turn], str] | None:
    """``Speaker: text`` lines (optionally ``[hh:mm:ss]``-stamped) -> (turns, preamble), or None when
    fewer than two lines look like turns. Continuation lines keep their original line ends."""
    pieces = text.split("\n")
    turns: list[dict[str, Any]] = []
    preamble: list[str] = []
    n_turn_lines = 0
    blank: list[str] = []
    for i, piece in enumerate(pieces):
        end = "\n" if i < len(pieces) - 1 else ""
        body = piece
        if body.endswith("\r"):
            body, end = body[:-1], "\r" + end
        m = _TURN_LINE.match(body)
        if m and m["speaker"].strip().casefold() not in _NOT_SPEAKERS:
            n_turn_lines += 1
            turns.append(
                {
                    "speaker": m["speaker"].strip(),
                    "ts": m["bts"] or m["ts"],
                    "parts": [body[m.end() :]],
                    "end": end,
                }
            )
            blank = []
        elif not turns:
            preamble.append(piece + ("\n" if end.endswith("\n") else ""))
        elif not body.strip():
            blank.append(turns[-1]["end"] + body)  # kept only if the turn goes on after the blank line
            turns[-1]["end"] = end
        else:
            t = turns[-1]
            t["parts"].extend(blank)
            t["parts"].append(t["end"] + body)
            t["end"], blank = end, []
    if n_turn_lines < 2:
        return None
    out = [
        Turn(
            speaker=t["speaker"],
            text="".join(t["parts"]),
            ts=t["ts"],
            role=speaker_role(t["speaker"], agent_names),
        )
        for t in turns
    ]
    return out, "".join(preamble)


def read_txt(src: Source, stream: BinaryIO, enc: str, opts: Options) -> Iterator[Item]:
    cap = 4 * opts.max_chars + 4
    data = stream.read(cap + 1)
    if len(data) > cap:
        yield (
            None,
            None,
            reject(
                src.name,
                None,
                f"too long: the file is over {cap:,} bytes, more than "
                f"--max-chars {opts.max_chars:,} allows; split it or raise --max-chars",
                raw=data,
                id=src.stem,
            ),
        )
        return
    if not is_wide(enc) and b"\x00" in data:
        yield (
            None,
            None,
            reject(
                src.name,
                None,
                "binary data (NUL bytes): this .txt file is not plain text",
                raw=data,
                id=src.stem,
            ),
        )
        return
    try:
        text = data.decode(enc)
    except UnicodeDecodeError as e:
        yield (
            None,
            None,
            reject(
                src.name,
                data[: e.start].count(b"\n") + 1,
                f"invalid {_enc_name(enc)}: undecodable byte at file offset {e.start} "
                f"({e.reason}); re-save the file as UTF-8 or pass --encoding",
                raw=data[e.start :],
                id=src.stem,
            ),
        )
        return
    text = text.lstrip("\ufeff") if is_wide(enc) else text
    parsed = parse_transcript(text, opts.agent_names)
    if parsed is None:
        row = Row(None, {opts.fields.id: src.stem, opts.fields.text: text}, text)
    else:
        turns, preamble = parsed
        row = Row(None, {opts.fields.id: src.stem, opts.fields.turns: turns}, text)
        if preamble.strip():
            row.data["preamble"] = preamble
    yield None, text, to_document(row, src, opts)


# ---------------------------------------------------------------- row -> Document


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float, Decimal)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, dict):
        return "object"
    if isinstance(v, (list, tuple)):
        return "array"
    return type(v).__name__


def jsonable(v: Any) -> Any:
    """A JSON-serialisable copy of ``v`` (for metadata)."""
    if v is None or isinstance(v, (bool, int)):
        return v
    if isinstance(v, str):
        return _SURROGATE.sub("\ufffd", v)
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set, frozenset)):
        return [jsonable(x) for x in v]
    if isinstance(v, (datetime, date, time)):
        return v.isoformat()
    if isinstance(v, timedelta):
        return v.total_seconds()
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, Decimal):
        return str(v)
    if hasattr(v, "model_dump"):
        return jsonable(v.model_dump(mode="json"))
    if hasattr(v, "item"):  # numpy scalars
        return jsonable(v.item())
    return str(v)


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip())


def _check_str(s: str, what: str) -> str:
    if (m := _SURROGATE.search(s)) is not None:
        raise RowError(
            f"invalid UTF-8: {what} holds undecodable bytes or an unpaired surrogate escape at "
            f"character {m.start()}; re-save the file as UTF-8 or pass --encoding"
        )
    return s


def _scalar_str(v: Any, what: str) -> str | None:
    if _is_missing(v):
        return None
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, bool) or isinstance(v, (dict, list)):
        raise RowError(f"bad {what}: the {what} field is a JSON {_kind(v)}; expected a string or integer")
    return _check_str(v if isinstance(v, str) else str(v), what)


@lru_cache(maxsize=4096)
def _parse_date(s: str) -> datetime | None:
    """ISO 8601 first, then anything dateutil understands; None when neither does."""
    try:
        return datetime.fromisoformat(s.strip())
    except ValueError:
        pass
    try:
        return date_parser.parse(s)
    except (ValueError, OverflowError, TypeError):
        return None


def _created_at(v: Any) -> tuple[datetime | None, str | None]:
    if _is_missing(v):
        return None, None
    dt: datetime | None = None
    try:
        if isinstance(v, datetime):
            dt = v
        elif isinstance(v, date):
            dt = datetime(v.year, v.month, v.day)
        elif (
            isinstance(v, (int, float))
            and not isinstance(v, bool)
            or (isinstance(v, str) and v.strip().isdigit() and len(v.strip()) in (10, 13))
        ):
            secs = float(v)
            dt = datetime.fromtimestamp(secs / 1000 if abs(secs) > 1e11 else secs, tz=timezone.utc)
        elif isinstance(v, str):
            dt = _parse_date(v)
    except (ValueError, OverflowError, OSError, TypeError):
        dt = None
    if dt is None:
        return None, f"created_at {v!r} could not be parsed"
    return (dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt), None


def _check_text(text: str, what: str, max_chars: int) -> None:
    _check_str(text, what)
    if len(text) > max_chars:
        raise RowError(
            f"too long: the document is {len(text):,} characters, over the limit of {max_chars:,}; "
            "split it or raise --max-chars"
        )
    junk = len(_CONTROL.findall(text))
    if junk > 0.3 * len(text):
        ex = _CONTROL.search(text)
        raise RowError(
            f"control-character junk: {100 * junk // len(text)}% of the {what} is control characters "
            f"(e.g. {ex[0] if ex else ''!r}); this is binary or mis-decoded data — check the source "
            "or --encoding"
        )


def _text(v: Any, name: str, max_chars: int) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        raise RowError(f"null text: the text field '{name}' is null; give the row some text or drop it")
    if isinstance(v, dict):
        keys = ", ".join(list(map(str, v))[:10])
        raise RowError(
            f"nested text: the text field '{name}' is nested (a JSON object with keys {keys}); "
            "expected a string — point --text-field at the string field"
        )
    if isinstance(v, (list, tuple)):
        raise RowError(
            f"nested text: the text field '{name}' is nested (a JSON array of {len(v)} items); "
            "expected a string — if it holds speaker turns, use --turns-field"
        )
    if not isinstance(v, str):
        raise RowError(
            f"text not a string: the text field '{name}' is a JSON {_kind(v)} ({str(v)[:40]}); expected a string"
        )
    if v == "":
        raise RowError(f"empty text: the text field '{name}' is an empty string; nothing to extract")
    if not v.strip():
        raise RowError(
            f"whitespace-only text: the text field '{name}' holds only whitespace ({len(v)} "
            "characters); nothing to extract"
        )
    _check_text(v, "text", max_chars)
    return v


def _pick(d: dict[str, Any], key: str) -> tuple[bool, Any]:
    for k in _TURN_KEYS[key]:
        if k in d:
            return True, d[k]
    return False, None


def _turns(v: Any, name: str, opts: Options) -> list[Turn]:
    if isinstance(v, str):
        try:
            v = _JSON.decode(v)
        except json.JSONDecodeError as e:
            parsed = parse_transcript(v, opts.agent_names)
            if parsed is None:
                raise RowError(
                    f"malformed turns: the turns field '{name}' is a string that is not valid JSON "
                    f"({e.msg}); give a list of {{speaker, text}} objects"
                ) from None
            v = parsed[0]
    if not isinstance(v, (list, tuple)):
        raise RowError(
            f"malformed turns: the turns field '{name}' is a JSON {_kind(v)}, not a list; give a "
            "list of {speaker, text} objects"
        )
    if not v:
        raise RowError(f"empty turns: the turns field '{name}' is an empty list; nothing to extract")
    out: list[Turn] = []
    for i, t in enumerate(v, 1):
        if isinstance(t, Turn):
            out.append(t)
            continue
        if not isinstance(t, dict):
            raise RowError(
                f"malformed turns: turn {i} of {len(v)} is a JSON {_kind(t)}; each turn must be an "
                "object with 'speaker' and 'text'"
            )
        has, speaker = _pick(t, "speaker")
        if not has or _is_missing(speaker):
            raise RowError(
                f"malformed turns: turn {i} of {len(v)} has no 'speaker' (keys: "
                f"{', '.join(map(str, t)) or 'none'}); each turn needs 'speaker' and 'text'"
            )
        has, text = _pick(t, "text")
        if not has or text is None:
            raise RowError(
                f"malformed turns: turn {i} of {len(v)} has no 'text' (keys: "
                f"{', '.join(map(str, t)) or 'none'}); each turn needs 'speaker' and 'text'"
            )
        if not isinstance(text, str):
            raise RowError(f"malformed turns: the text of turn {i} of {len(v)} is a JSON {_kind(text)}, not a string")
        speaker = _check_str(str(speaker), f"speaker of turn {i}")
        _, ts = _pick(t, "ts")
        out.append(
            Turn(
                speaker=speaker,
                text=_check_str(text, f"turn {i}"),
                ts=None if _is_missing(ts) else str(ts),
                role=speaker_role(speaker, opts.agent_names),
            )
        )
    if not any(t.text.strip() for t in out):
        raise RowError(f"empty turns: all {len(out)} turns have empty text; nothing to extract")
    _check_text("".join(t.text for t in out), "turns text", opts.max_chars)
    return out


def to_document(row: Row, src: Source, opts: Options) -> Document | Reject:
    """Map one row to a Document using ``opts.fields``; any problem becomes a Reject."""
    f, data = opts.fields, row.data
    given_id: str | None = None
    try:
        given_id = _scalar_str(data.get(f.id), "id")
        doc_id = given_id if given_id is not None else f"{src.stem}:{row.line}"
        text: str | None = None
        turns: list[Turn] | None = None
        used = {f.id, f.customer, f.channel, f.created_at}
        if f.turns in data and not _is_missing(data[f.turns]):
            turns = _turns(data[f.turns], f.turns, opts)
            used.add(f.turns)
        elif f.text in data:
            text = _text(data[f.text], f.text, opts.max_chars)
            used.update((f.text, f.turns))
        else:
            fields = ", ".join(map(str, list(data)[:20])) or "none"
            raise RowError(
                f"no text field: the row has no '{f.text}' field and no '{f.turns}' field (its fields: "
                f"{fields}); name the text field with --text-field NAME or the turns field with "
                "--turns-field NAME"
            )
        created, warning = _created_at(data.get(f.created_at))
        meta = {str(k): jsonable(v) for k, v in data.items() if k not in used}
        if warning:
            old = meta.get("warnings")
            meta["warnings"] = (old if isinstance(old, list) else ([] if old is None else [old])) + [warning]
        return Document(
            id=doc_id,
            customer_id=_scalar_str(data.get(f.customer), "customer_id"),
            channel=_scalar_str(data.get(f.channel), "channel"),
            created_at=created,
            text=text,
            turns=turns,
            metadata=meta,
        )
    except RowError as e:
        return reject(src.name, row.line, e.reason, e.stage, row.raw if row.raw is not None else data, given_id)
    except ValidationError as e:
        return reject(
            src.name,
            row.line,
            f"invalid document: {e.errors()[0]['msg']}",
            "validate",
            row.raw if row.raw is not None else data,
            given_id,
        )


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
            stream, enc, problem = sniff(raw_stream, opts.encoding)
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
    s = pa.string()
    return pa.schema(
        [
            ("id", s),
            ("customer_id", s),
            ("channel", s),
            ("created_at", pa.timestamp("us", tz="UTC")),
            ("text", s),
            ("turns", s),
            ("signals", s),
            ("provenance", s),
            ("schema_version", s),
        ]
    )


def result_columns(r: ExtractionResult) -> dict[str, Any]:
    def dump(v: Any) -> str:
        return json.dumps(v, ensure_ascii=False)

    d = r.model_dump(mode="json")
    return {
        "id": r.id,
        "customer_id": r.customer_id,
        "channel": r.channel,
        "created_at": r.created_at,
        "text": r.text,
        "turns": None if r.turns is None else dump(d["turns"]),
        "signals": dump(d["signals"]),
        "provenance": dump(d["provenance"]),
        "schema_version": r.schema_version,
    }


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
            for key in ("turns", "signals", "provenance"):
                if row.get(key) is not None:
                    row[key] = json.loads(row[key])
            yield ExtractionResult.model_validate({k: v for k, v in row.items() if v is not None})
