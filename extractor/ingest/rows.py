"""Row -> :class:`~extractor.types.Document`: :func:`to_document` validates the text or turns,
the id, customer and channel, and ``created_at``, and turns any problem into a Reject.
"""

from __future__ import annotations

import json
import logging
import math
import re
from datetime import date, datetime, timezone
from functools import lru_cache
from typing import Any

from dateutil import parser as date_parser
from pydantic import ValidationError

from extractor.ingest.common import JSON_DECODER, SURROGATE, Options, Row, RowError, Source, jsonable, kind, reject
from extractor.ingest.transcript import parse_transcript, speaker_role
from extractor.types import Document, Reject, Turn

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

_TURN_KEYS = {
    "speaker": ("speaker", "role", "author", "from"),
    "text": ("text", "content", "message"),
    "ts": ("ts", "timestamp", "time"),
}


log = logging.getLogger("extractor.io")

def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip())


def _check_str(s: str, what: str) -> str:
    if (m := SURROGATE.search(s)) is not None:
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
        raise RowError(f"bad {what}: the {what} field is a JSON {kind(v)}; expected a string or integer")
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
            f"text not a string: the text field '{name}' is a JSON {kind(v)} ({str(v)[:40]}); expected a string"
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
            v = JSON_DECODER.decode(v)
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
            f"malformed turns: the turns field '{name}' is a JSON {kind(v)}, not a list; give a "
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
                f"malformed turns: turn {i} of {len(v)} is a JSON {kind(t)}; each turn must be an "
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
            raise RowError(f"malformed turns: the text of turn {i} of {len(v)} is a JSON {kind(text)}, not a string")
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
            both = data.get(f.text)
            if not _is_missing(both) and (not isinstance(both, str) or both.strip()):  # never drop text unseen
                raise RowError(f"both '{f.text}' and '{f.turns}': a document is a text or a transcript, not both; "
                               f"drop one, or put the text in a turn")
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
            log.warning("%s:%s (%s): %s; relative dates in it stay unresolved", src.name, row.line, doc_id, warning)
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
