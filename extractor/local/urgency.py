"""Urgency: level, score in [0, 1] and the cues that raised it, each cue an exact span.

Cues are rules (deadlines, threats to leave or escalate, legal threats, outages, money at risk,
safety, repeated contact, plain urgency words) plus a semantic term: similarity of each sentence
to short urgent vs calm prototypes, so urgency phrased without a keyword still counts a little.
Calm phrases ("no rush", "whenever suits") damp the score.

>>> [c.category for c in find_cues("This is the third time I call. Fix it by Friday or I cancel!")]
['repeated_contact', 'deadline', 'churn_threat']
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .linear import LinearHead

LEVELS = ("low", "medium", "high", "critical")
CUTS = (0.25, 0.5, 0.75)

_CUES: dict[str, tuple[float, str]] = {
    "safety": (0.75, r"\b(spark(s|ing|ed)?|smok(e|ing)|on fire|caught fire|burn(ing|t|ed)|overheat\w*|electric shock"
                     r"|injur\w*|danger\w*|unsafe|gas leak|explod\w*|exploded|melt(ed|ing))\b"),
    "legal": (0.45, r"\b(lawyer|attorney|solicitor|legal action|sue|suing|court|ombudsman|regulator|small claims"
                    r"|trading standards|consumer protection|bbb|fcc|ofcom|chargeback|report (you|this|it) to)\b"),
    "churn_threat": (0.35, r"\b(cancel(l?ing)? (my|the|our) (subscription|account|contract|service|plan)"
                           r"|(i'?ll|i will|i'?m going to|going to|gonna|about to|ready to) (cancel|leave|switch|quit)"
                           r"|or i('?ll| will)? (cancel|leave|switch|go)|switch(ing)? to (another|a different|\w+ "
                           r"(telecom|mobile|broadband))|find (another|a new|a different) (provider|company)"
                           r"|take my business elsewhere|close my account|done with (you|this company|nimbus)"
                           r"|never (buy|order|use) (from )?(you|this|again)|last chance)\b"),
    "escalation": (0.35, r"\b(manager|supervisor|escalat\w+|formal complaint|complaints? department|speak to someone"
                         r" (senior|in charge)|head office|ceo)\b"),
    "outage": (0.3, r"\b((is|are|has been|have been|been|went|gone) (down|offline|dead)|outage|not working at all"
                    r"|(didn'?t|doesn'?t|does not|did not|won'?t) (work|turn on|power on|connect) at all"
                    r"|stopped working|no (internet|service|signal|connection|power|dial tone)"
                    r"|can'?t (access|log ?in|connect|make calls|work)|completely (broken|dead|unusable))\b"),
    "money": (0.3, r"\b(charged (me )?(twice|again|double|three times)|double[- ]charged?|overcharg\w+|fraud\w*"
                   r"|unauthori[sz]ed|stolen|overdraft|lost (my )?money|taken money|money back|bounced)\b"),
    "repeated_contact": (0.25, r"\b((second|third|fourth|fifth|sixth|\d+(st|nd|rd|th)) time|again and again"
                               r"|(called|contacted|emailed|written|messaged|chatted|rang) (you )?(\w+ )?"
                               r"(times|already|before|again|twice)|still (not|no|haven'?t|hasn'?t|waiting)"
                               r"|(for|over) (weeks|months|\d+ (days|weeks))|nobody (has )?(replied|answered|called"
                               r"|responded|got back)|no one (has )?(replied|answered|called|got back)|keep(s)? "
                               r"(getting|calling|happening))\b"),
    "persistent_problem": (0.2, r"\b(keeps? (crashing|failing|dropping|freezing|disconnecting|rebooting|happening)"
                                 r"|still (crashes|crashing|broken|fails|failing|doesn'?t work|not fixed)"
                                 r"|(did|does|happened|happening|it) (this |it )?again|every (single )?time)\b"),
    "deadline": (0.3, r"\b(by (today|tonight|tomorrow|monday|tuesday|wednesday|thursday|friday|saturday|sunday"
                      r"|the end of|end of|eod|noon|\d)|before (the )?(\d|monday|tuesday|wednesday|thursday|friday"
                      r"|saturday|sunday|tomorrow|tonight|end|my|our|the weekend|then)|within (\d+|an?|24|48|one|two)"
                      r" (hours?|days?)|no later than|deadline|in time for|today)\b"),
    "urgent_words": (0.35, r"\b(urgent(ly)?|asap|as soon as possible|immediately|right (now|away)|emergency"
                           r"|critical|time[- ]sensitive|can'?t wait|desperate(ly)?|straight away)\b"),
    "intensity": (0.1, r"!{2,}|\b[A-Z]{4,}\b(?:\s+\b[A-Z]{3,}\b)+|[😡🤬😤]"),
}
_CALM = re.compile(r"\b(no rush|not urgent|no hurry|whenever (you|it)|at your (convenience|leisure)|in your own time"
                   r"|no worries|just curious|not a big deal|when you get a chance|when you have time)\b", re.I)
_COMPILED = {k: (w, re.compile(p, re.I if k != "intensity" else 0)) for k, (w, p) in _CUES.items()}

URGENT_PROTOTYPES = (
    "I need this fixed right now, it cannot wait", "this is an emergency, please help immediately",
    "if this is not solved today I will cancel", "my business is losing money every hour this is down",
    "I have been waiting for weeks and nobody helps me", "I am going to take legal action",
    "the device is dangerous and could hurt someone", "I need an answer before tomorrow morning",
)
CALM_PROTOTYPES = (
    "just a quick question when you have time", "thanks, everything is fine now", "I was wondering how this works",
    "no rush at all, whenever is convenient", "I would like some information about your plans",
    "great service, thank you", "can you tell me your opening hours", "I'd like to update my address",
)


@dataclass(frozen=True)
class Cue:
    category: str
    weight: float
    start: int
    end: int
    text: str


def find_cues(text: str) -> list[Cue]:
    """Urgency cues in ``text`` (offsets into it), in text order."""
    cues = [Cue(cat, w, m.start(), m.end(), m.group()) for cat, (w, rx) in _COMPILED.items()
            for m in rx.finditer(text)]
    return sorted(cues, key=lambda c: c.start)


def find_calm(text: str) -> list[Cue]:
    return [Cue("calm", 0.0, m.start(), m.end(), m.group()) for m in _CALM.finditer(text)]


def combine(cues: list[Cue], semantic: float, calm: bool, near_deadline: bool = False) -> float:
    """Noisy-or of the strongest cue per category (+ a little per repeat), the semantic term, damping."""
    best: dict[str, float] = {}
    for c in cues:
        best[c.category] = min(best.get(c.category, 0.0) + (c.weight if c.category not in best else 0.05),
                               c.weight + 0.1)
    if near_deadline:
        best["deadline"] = max(best.get("deadline", 0.0), 0.45)
    keep = 1.0
    for w in best.values():
        keep *= 1.0 - w
    keep *= 1.0 - 0.3 * min(max(semantic, 0.0), 1.0)
    score = 1.0 - keep
    return score * 0.4 if calm and "safety" not in best else score


def level(score: float) -> str:
    return LEVELS[sum(score >= c for c in CUTS)]


def confidence(score: float) -> float:
    """Heuristic confidence: distance from the nearest level boundary (0.55 on a boundary, up to 0.95)."""
    edges = (0.0, *CUTS, 1.0)
    i = sum(score >= c for c in CUTS)
    lo, hi = edges[i], edges[i + 1]
    margin = min(score - lo, hi - score) / ((hi - lo) / 2) if hi > lo else 1.0
    return round(0.55 + 0.4 * min(max(margin, 0.0), 1.0), 4)


class UrgencySemantics:
    """Sentence-level urgency from prototype similarity: ``sigmoid(k * (sim_urgent - sim_calm))``."""

    def __init__(self, embedder):
        self._urgent = embedder.encode(list(URGENT_PROTOTYPES))
        self._calm = embedder.encode(list(CALM_PROTOTYPES))

    def score(self, x: np.ndarray) -> np.ndarray:
        if not len(x):
            return np.zeros(0, dtype=np.float32)
        diff = (x @ self._urgent.T).max(axis=1) - (x @ self._calm.T).max(axis=1)
        return (1.0 / (1.0 + np.exp(-12.0 * (diff - 0.1)))).astype(np.float32)


class LearnedUrgency(LinearHead):
    """A priority head trained with ``signals train urgency`` (labels among LEVELS): the expected level,
    ``sum_k p(level_k) * k / 3``, in [0, 1] on the same scale as the rule score it is combined with."""

    def __init__(self, spec: dict, model_id: str):
        super().__init__(spec)
        self.values = np.array([LEVELS.index(lab) / (len(LEVELS) - 1) for lab in self.labels], dtype=np.float32)
        self.id = model_id

    def score(self, x: np.ndarray) -> np.ndarray:
        if not len(x):
            return np.zeros(0, dtype=np.float32)
        return (self.proba(x) @ self.values).astype(np.float32)
