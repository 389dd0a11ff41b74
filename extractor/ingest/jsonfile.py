"""JSONL and JSON readers: one JSON object per line, or one file holding an object or an array."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any, BinaryIO

from extractor.ingest.common import JSON_DECODER, Options, Row, RowError, Source, kind, reject
from extractor.ingest.decode import iter_lines, undecodable
from extractor.types import Reject

log = logging.getLogger("extractor.io")

MAX_JSON_BYTES = 100 * 1024 * 1024


def parse_json_row(n: int, text: str) -> Row | RowError:
    """One JSONL line -> Row, or the reason it is not one JSON object."""
    text = text.lstrip("\ufeff")
    try:
        obj = JSON_DECODER.decode(text)
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
        f"not a JSON object: the line is a JSON scalar ({kind(obj)}); JSONL needs one {{...}} object per line",
        "parse",
    )


def _json_line(src: Source, n: int, line: str) -> Row | Reject:
    row = parse_json_row(n, line)
    return reject(src.name, n, row.reason, row.stage, line) if isinstance(row, RowError) else row


def _id_in_prefix(raw: Any, field: str) -> str | None:
    """The id of a row too long (or too broken) to parse, when its first few KB name it: for the reject."""
    import re

    head = raw[:4096] if isinstance(raw, (str, bytes)) else ""
    text = head.decode("utf-8", "replace") if isinstance(head, bytes) else head
    m = re.search('"' + re.escape(field) + r'"\s*:\s*("(?:[^"\\]|\\.){1,200}"|-?\d{1,30})', text)
    if not m:
        return None
    try:
        return str(json.loads(m[1]))
    except ValueError:
        return None


def read_jsonl(src: Source, stream: BinaryIO, enc: str, opts: Options) -> Iterator[Row | Reject]:
    cap = 8 * opts.max_chars + 65536
    for n, item, raw in iter_lines(stream, enc, cap):
        if isinstance(item, RowError):
            yield reject(src.name, n, item.reason, item.stage, raw, _id_in_prefix(raw, opts.fields.id))
        elif item.strip():
            yield _json_line(src, n, item)


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
        yield undecodable(src.name, data, enc, e)
        return
    try:
        obj = JSON_DECODER.decode(text.lstrip("\ufeff"))
    except json.JSONDecodeError as e:
        if e.msg == "Extra data":  # one object per line in a .json file: read it as JSONL
            log.info("%s holds one JSON value per line; reading it as JSONL", src.name)
            for n, line in enumerate(text.split("\n"), 1):
                if line.strip():
                    yield _json_line(src, n, line)
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
            f"not a JSON object: the file holds a JSON {kind(obj)}; expected an array of objects",
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
                f"not a JSON object: array element {i} is a JSON {kind(el)}; expected an object with a text field",
                "parse",
                el,
            )
