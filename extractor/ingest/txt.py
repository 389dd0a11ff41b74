"""Plain-text reader: one document per file, split into speaker turns when it looks like a transcript."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from extractor.ingest.common import Item, Options, Row, Source, reject
from extractor.ingest.decode import is_wide, undecodable
from extractor.ingest.rows import to_document
from extractor.ingest.transcript import parse_transcript


def read_txt(src: Source, stream: BinaryIO, enc: str, opts: Options) -> Iterator[Item]:
    cap = 4 * opts.max_chars + 4
    data = stream.read(cap + 1)
    problem = None
    if len(data) > cap:
        problem = (f"too long: the file is over {cap:,} bytes, more than "
                   f"--max-chars {opts.max_chars:,} allows; split it or raise --max-chars")
    elif not is_wide(enc) and b"\x00" in data:
        problem = "binary data (NUL bytes): this .txt file is not plain text"
    if problem:
        yield None, None, reject(src.name, None, problem, raw=data, id=src.stem)
        return
    try:
        text = data.decode(enc)
    except UnicodeDecodeError as e:
        yield None, None, undecodable(src.name, data, enc, e, id=src.stem)
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
