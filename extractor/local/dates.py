"""Normalise temporal expressions ("by Friday", "within 48 hours", "Nov 30th") relative to a date.

>>> from datetime import datetime
>>> normalise_datetime("next Friday", datetime(2026, 11, 24))["iso"]
'2026-12-04'
>>> normalise_datetime("within 48 hours", datetime(2026, 11, 24, 9))["iso"]
'2026-11-26T09:00:00'
>>> normalise_datetime("30 November", datetime(2026, 11, 24))["iso"]
'2026-11-30'
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
            "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "couple of": 2, "few": 3,
            "twenty-four": 24, "twenty four": 24, "forty-eight": 48, "seventy-two": 72}
_UNITS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1),
          "week": timedelta(weeks=1), "month": timedelta(days=30), "business day": timedelta(days=1),
          "working day": timedelta(days=1)}
_REL = re.compile(
    r"\b(?:in|within|next|another|the next)?\s*(\d+|" + "|".join(_NUMBERS) + r")\s+"
    r"(minute|hour|business day|working day|day|week|month)s?\b", re.I)
_TIME = re.compile(r"\b(\d{1,2})(?::(\d{2}))?\s*(am|pm|a\.m\.|p\.m\.)|\b(\d{1,2}):(\d{2})\b|\b(noon|midday|midnight)\b",
                   re.I)
_PAST = re.compile(r"\b(since|last|ago|was|were|told|had|did|went|came|arrived|got|called|happened|broke|stopped|"
                   r"started|been)\b", re.I)
_FUTURE = re.compile(r"\b(will|next|by|until|till|before|can|could|please|come|visit|schedule|book|need|want)\b|'ll\b",
                     re.I)
_MONTH_ONLY = re.compile(r"^\s*(?:in |of |for |the )?(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
                         r"(?:\s+(?:19|20)\d{2})?\s*$", re.I)
_DEADLINE = re.compile(r"\b(by|before|until|till|no later than|within|deadline|latest|due)\b", re.I)


def _weekday(text: str, ref: date, past: bool = False) -> date | None:
    low = text.lower()
    for i, name in enumerate(_WEEKDAYS):
        if re.search(rf"\b{name[:3]}(?:{name[3:]})?\b", low):
            if past or re.search(r"\blast\b", low):  # "down since Monday": the Monday before
                back = (ref.weekday() - i) % 7 or 7
                return ref - timedelta(days=back)
            ahead = (i - ref.weekday()) % 7
            if re.search(r"\bnext\b", low):  # "next Friday": the Friday of next week
                ahead = 7 - ref.weekday() + i
            elif ahead == 0 and re.search(r"\bthis\b", low) is None:
                ahead = 7 if re.search(r"\b(by|before|until)\b", low) else 0
            return ref + timedelta(days=ahead)
    return None


def _named_day(low: str, ref: datetime) -> datetime | None:
    if re.search(r"\b(today|tonight|this (morning|afternoon|evening)|end of (the )?day|eod)\b", low):
        return ref
    if re.search(r"\btomorrow\b", low):
        return ref + timedelta(days=1)
    if re.search(r"\bday after tomorrow\b", low):
        return ref + timedelta(days=2)
    if re.search(r"\byesterday\b", low):
        return ref - timedelta(days=1)
    if re.search(r"\bthis weekend\b|\bthe weekend\b", low):
        return ref + timedelta(days=(5 - ref.weekday()) % 7)
    if re.search(r"\b(end of|by the end of) (the |this )?week\b", low):
        return ref + timedelta(days=(4 - ref.weekday()) % 7)
    if re.search(r"\bnext week\b", low):
        return ref + timedelta(days=7 - ref.weekday())
    if re.search(r"\b(end of|by the end of) (the |this )?month\b", low):
        nxt = (ref.replace(day=28) + timedelta(days=4)).replace(day=1)
        return nxt - timedelta(days=1)
    if re.search(r"\bnext month\b", low):
        return (ref.replace(day=28) + timedelta(days=4)).replace(day=1)
    return None


def _absolute(text: str, ref: datetime) -> datetime | None:
    if not re.search(r"\d", text) and not re.search(r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)", text, re.I):
        return None
    from dateutil import parser

    cleaned = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", text)
    cleaned = re.sub(r"\b(by|before|until|on|the|of|at|around|no later than)\b", " ", cleaned, flags=re.I)
    try:
        got = parser.parse(cleaned, default=ref.replace(hour=0, minute=0, second=0, microsecond=0), fuzzy=True)
    except (ValueError, OverflowError):
        return None
    if not re.search(r"\b(19|20)\d{2}\b", text) and got.date() < ref.date() - timedelta(days=180):
        got = got.replace(year=got.year + 1)  # "30 Jan" said in December means next January
    return got


def _time_of_day(text: str) -> tuple[int, int] | None:
    m = _TIME.search(text)
    if not m:
        return None
    if m.group(6):
        return {"noon": (12, 0), "midday": (12, 0), "midnight": (0, 0)}[m.group(6).lower()]
    if m.group(1):
        hour, minute = int(m.group(1)) % 12, int(m.group(2) or 0)
        hour += 12 if m.group(3).lower().startswith("p") else 0
        return hour, minute
    return int(m.group(4)) % 24, int(m.group(5))


def normalise_datetime(text: str, ref: datetime | None, context: str = "") -> dict:
    """``{"iso", "deadline", "relative"}`` for a temporal expression; ``iso`` None if unresolvable.

    ``context`` is the text just before the expression (to see "by" / "before" / "within").
    """
    low = text.lower()
    out = {"iso": None, "deadline": bool(_DEADLINE.search(context[-20:] + " " + low)), "relative": True}
    base = ref.replace(tzinfo=None) if ref else None
    rel = _REL.search(low)
    tod = _time_of_day(text)
    if base is not None:
        if rel and not re.search(r"\b(ago|last|past|for)\b", context[-12:].lower() + low):
            word = rel.group(1).lower()
            n = int(word) if word.isdigit() else _NUMBERS.get(word, 1)
            got = base + n * _UNITS[rel.group(2).lower()]
            unit = rel.group(2).lower()
            out["iso"] = got.isoformat(timespec="seconds") if unit in ("minute", "hour") else got.date().isoformat()
            return out
        day = _named_day(low, base)
        if day is None and _MONTH_ONLY.match(text):  # "September": a month, not a day in it
            got = _absolute(text, base)
            if got is not None:
                out["iso"], out["relative"] = f"{got.year:04d}-{got.month:02d}", False
                return out
        if day is None:
            ctx = context[-25:]
            past = bool(_PAST.search(ctx)) and not _FUTURE.search(ctx) and not out["deadline"]
            wd = _weekday(low, base.date(), past=past)
            day = datetime.combine(wd, datetime.min.time()) if wd else None
        if day is None:
            day = _absolute(text, base)
            out["relative"] = day is None
        if day is not None:
            if tod:
                out["iso"] = day.replace(hour=tod[0], minute=tod[1], second=0).isoformat(timespec="minutes")
            else:
                out["iso"] = day.date().isoformat()
            return out
    if tod:
        out["iso"] = f"T{tod[0]:02d}:{tod[1]:02d}"
    return out
