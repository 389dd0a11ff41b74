"""Speaker turns in plain text: :func:`speaker_role` maps a speaker label to a role and
:func:`parse_transcript` splits ``Speaker: text`` lines into turns.
"""

from __future__ import annotations

import re
from typing import Any

from extractor.types import Role, Turn

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
