"""Next-best actions: a YAML policy maps customer states to actions, and every action explains itself.

A policy is a list of rules; a rule fires when all of its conditions hold. Each condition is one
line, ``FIELD OP VALUE``::

    version: 1
    rules:
      - name: retention_call
        action: Retention call within 24h
        priority: 90
        when:
          - intent in (subscription_cancel, switch_to_competitor)
          - urgency >= high
          - profile.plan = Nimbus Plus

Fields: ``intent`` (the active intents: true when one of them matches), ``urgency`` / ``urgency.peak``
(levels low < medium < high < critical), ``urgency.score``, ``sentiment`` (the latest label),
``sentiment.score``, ``sentiment.trend`` (improving / worsening / stable / new),
``sentiment.trend_score``, ``constraint`` (open constraint types), ``channel``, ``interactions``,
``days_since_contact`` and ``profile.<attribute>``. Operators: ``= != > >= < <= in``. Values
compare case-insensitively; ``in`` takes ``(a, b, c)``.

A suggested action lists the rules that fired, each condition with the value it saw and the evidence
quotes (or profile field) behind it. Suppressions (``signals override suppress``) win over the policy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from .errors import ConfigError
from .types import CustomerState, EvidenceRef

LEVELS = ("low", "medium", "high", "critical")
OPS = ("!=", ">=", "<=", "=", ">", "<", " in ")
FIELDS = ("intent", "urgency", "urgency.peak", "urgency.score", "sentiment", "sentiment.score", "sentiment.trend",
          "sentiment.trend_score", "constraint", "channel", "interactions", "days_since_contact")
CLOSED_VALUES = {"sentiment": ("negative", "neutral", "positive"),
                 "sentiment.trend": ("improving", "worsening", "stable", "new")}
POLICY_KEYS = {"version", "rules", "description"}
RULE_KEYS = {"name", "action", "priority", "when", "description"}
_COND = re.compile(r"^\s*(?P<field>[A-Za-z_][\w.]*)\s*(?P<op>!=|>=|<=|=|>|<|\bin\b)\s*(?P<value>.+?)\s*$")


class ConditionResult(BaseModel):
    condition: str
    value: Any = Field(default=None, description="What the state held for the field.")
    evidence: list[EvidenceRef] = Field(default_factory=list, description="The quotes behind the value seen.")
    documents: list[str] = Field(default_factory=list, description="The documents behind the value seen (for "
                                                                   "counts, channels and times, which have no quote).")
    profile_field: str | None = Field(default=None, description="For profile.* conditions: the profile attribute.")


class FiredRule(BaseModel):
    rule: str
    priority: int
    conditions: list[ConditionResult]


class Action(BaseModel):
    """A suggested action for one customer, with every rule that fired and the evidence for each condition."""

    customer_id: str
    action: str
    priority: int
    rules: list[FiredRule]
    suppressed: str | None = Field(default=None, description="Why an analyst suppressed it (then it is not shown "
                                                             "unless asked for).")


@dataclass(frozen=True)
class Condition:
    text: str
    field: str
    op: str
    value: Any  # str, float, or a tuple for `in`


@dataclass(frozen=True)
class Rule:
    name: str
    action: str
    priority: int
    when: tuple[Condition, ...]


def parse_condition(text: str, where: str) -> Condition:
    m = _COND.match(str(text))
    if not m:
        raise ConfigError(f"{where}: cannot read condition {text!r}; write FIELD OP VALUE, e.g. 'urgency >= high'")
    field, op, raw = m["field"], m["op"], m["value"].strip()
    if field not in FIELDS and not field.startswith("profile."):
        raise ConfigError(f"{where}: unknown field {field!r} in {text!r}; use one of {', '.join(FIELDS)} "
                          "or profile.<attribute>")
    if op == "in":
        if not (raw.startswith("(") and raw.endswith(")")):
            raise ConfigError(f"{where}: {text!r}: 'in' takes a list in parentheses, e.g. (a, b)")
        value: Any = tuple(v.strip().strip("'\"") for v in raw[1:-1].split(",") if v.strip())
    else:
        value = raw.strip("'\"")
    if field in ("urgency", "urgency.peak"):
        for v in value if isinstance(value, tuple) else (value,):
            if v.lower() not in LEVELS:
                raise ConfigError(f"{where}: {text!r}: urgency levels are {', '.join(LEVELS)}")
    for name, allowed in CLOSED_VALUES.items():
        if field == name:
            for v in value if isinstance(value, tuple) else (value,):
                if v.lower() not in allowed:
                    raise ConfigError(f"{where}: {text!r}: {field} is one of {', '.join(allowed)}, not {v!r}")
    if field in ("urgency.score", "sentiment.score", "sentiment.trend_score", "interactions", "days_since_contact"):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: {text!r}: {field} compares with a number") from None
    return Condition(str(text).strip(), field, op, value)


def load_policy(path: str | Path) -> list[Rule]:
    import yaml

    p = Path(path)
    if not p.exists():
        raise ConfigError(f"Policy file {p} does not exist")
    try:
        doc = yaml.safe_load(p.read_text("utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"Policy {p} is not valid YAML: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read policy {p}: {exc}; it must be a UTF-8 YAML file") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"Policy {p}: the file must be a mapping with `rules:` (a list of rules), "
                          f"not a {type(doc).__name__}")
    unknown = sorted(set(doc) - POLICY_KEYS)
    if unknown:
        raise ConfigError(f"Policy {p}: unknown key {', '.join(map(repr, unknown))}; a policy has "
                          f"{', '.join(sorted(POLICY_KEYS))}")
    if not isinstance(doc.get("rules") or [], list):
        raise ConfigError(f"Policy {p}: `rules:` must be a list of rules")
    rules = []
    for i, r in enumerate(doc.get("rules") or [], 1):
        where = f"{p.name}: rule {i}"
        if not isinstance(r, dict) or not r.get("name") or not r.get("action") or not r.get("when"):
            raise ConfigError(f"{where}: a rule needs name, action and a list of conditions under when")
        where = f"{where} ({r['name']})"
        unknown = sorted(set(r) - RULE_KEYS)
        if unknown:
            raise ConfigError(f"{where}: unknown key {', '.join(map(repr, unknown))}; a rule has "
                              f"{', '.join(sorted(RULE_KEYS))}")
        priority = r.get("priority", 50)
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise ConfigError(f"{where}: priority must be a whole number (higher comes first), not {priority!r}")
        conds = r["when"] if isinstance(r["when"], list) else [r["when"]]
        rules.append(Rule(str(r["name"]), str(r["action"]), priority, tuple(parse_condition(c, where) for c in conds)))
    if not rules:
        raise ConfigError(f"Policy {p} has no rules (expected `rules:` with a list)")
    return rules


def _compare(have: Any, op: str, want: Any, ordinal: bool = False) -> bool:
    if have is None:
        return False
    if ordinal:
        have, want = LEVELS.index(str(have).lower()), (tuple(LEVELS.index(w.lower()) for w in want)
                                                       if isinstance(want, tuple) else LEVELS.index(want.lower()))
    elif isinstance(want, float):
        try:
            have = float(have)
        except (TypeError, ValueError):
            return False
    elif op != "in" and _number(want) is not None and _number(have) is not None:
        have, want = _number(have), _number(want)  # a profile's 912.4 is not >= 2000, whatever the text says
    else:
        have = str(have).lower()
        want = tuple(w.lower() for w in want) if isinstance(want, tuple) else str(want).lower()
    if op == "in":
        return have in want
    return {"=": have == want, "!=": have != want, ">": have > want, ">=": have >= want, "<": have < want,
            "<=": have <= want}[op]


def _number(x: Any) -> float | None:
    """``x`` as a number when it is one or is written as one (a profile attribute read from text), else None."""
    if isinstance(x, bool):
        return None
    if isinstance(x, (int, float)):
        return float(x)
    try:
        return float(str(x).strip().replace(",", "")) if str(x).strip() else None
    except ValueError:
        return None


def evaluate(cond: Condition, st: CustomerState, now: datetime) -> ConditionResult | None:
    """The condition's result with its evidence when it holds on ``st``, else None."""
    f, op, v = cond.field, cond.op, cond.value
    def res(value, evidence=(), profile_field=None, documents=None) -> ConditionResult:
        evidence = list(evidence)
        docs = list(dict.fromkeys(documents if documents is not None else (e.doc_id for e in evidence)))
        return ConditionResult(condition=cond.text, value=value, evidence=evidence, documents=docs,
                               profile_field=profile_field)

    if f == "intent":
        active = [i for i in st.intents if i.active]
        hits = [i for i in active if _compare(i.label, op, v)] if op != "!=" else \
            ([] if any(_compare(i.label, "=", v) for i in active) else [None])
        if not hits:
            return None
        return res([i.label for i in hits if i], [e for i in hits if i for e in i.evidence])
    if f == "constraint":
        hits = [c for c in st.constraints if _compare(c.type, op, v)]
        return res([c.type for c in hits], [e for c in hits for e in c.evidence]) if hits else None
    if f == "channel":
        hits = [c for c in st.channels if _compare(c.channel, op, v)]
        return res([c.channel for c in hits], documents=[d for c in hits for d in c.documents]) if hits else None
    if f.startswith("urgency"):
        u = st.urgency
        if u is None:
            return None
        have = {"urgency": u.level, "urgency.peak": u.peak_level, "urgency.score": u.score}[f]
        ok = _compare(have, op, v, ordinal=f != "urgency.score")
        doc = u.peak_doc if f == "urgency.peak" else u.now_doc  # the peak's quotes for the peak, else today's
        return res(have, [e for e in u.evidence if doc is None or e.doc_id == doc]) if ok else None
    if f.startswith("sentiment"):
        s = st.sentiment
        if s is None:
            return None
        have = {"sentiment": s.label, "sentiment.score": s.score, "sentiment.trend": s.trend,
                "sentiment.trend_score": s.trend_score}[f]
        latest = s.history[-1].doc_id if s.history else None  # label and score are the latest contact's
        quotes = s.evidence if f.startswith("sentiment.trend") else [e for e in s.evidence if e.doc_id == latest]
        return res(have, quotes) if _compare(have, op, v) else None
    if f == "interactions":
        return res(st.interactions, documents=st.documents) if _compare(st.interactions, op, v) else None
    if f == "days_since_contact":
        if st.last_contact is None:
            return None
        days = round((now - st.last_contact).total_seconds() / 86400, 2)
        last = st.documents[-1:]  # listed by time, undated first: the last one is the last contact
        return res(days, documents=last) if _compare(days, op, v) else None
    attr = f.split(".", 1)[1]
    have = ((st.profile or {}).get("attributes") or {}).get(attr)
    return res(have, profile_field=attr) if _compare(have, op, v) else None


def suggest(st: CustomerState, rules: list[Rule], suppressed: dict[str, str] | None = None) -> list[Action]:
    """The actions whose rules fire on ``st``, best priority first; suppressed ones carry their reason."""
    by_action: dict[str, list[FiredRule]] = {}
    for rule in rules:
        results = [evaluate(c, st, st.as_of) for c in rule.when]
        if all(r is not None for r in results):
            by_action.setdefault(rule.action, []).append(FiredRule(rule=rule.name, priority=rule.priority,
                                                                   conditions=results))
    quiet = {k.strip().lower(): v for k, v in (suppressed or {}).items()}  # an action's text or a rule's name
    out = [Action(customer_id=st.customer_id, action=a, priority=max(r.priority for r in fired), rules=fired,
                  suppressed=quiet.get(a.lower()) or next((quiet[r.rule.lower()] for r in fired
                                                           if r.rule.lower() in quiet), None))
           for a, fired in by_action.items()]
    return sorted(out, key=lambda a: -a.priority)


def actions(workspace: str | Path, rules: list[Rule], *, as_of: datetime | None = None,
            include_suppressed: bool = False) -> list[Action]:
    """Every customer's suggested actions, highest priority (then highest urgency) first."""
    from .index import _reader_for
    from .overrides import suppressions
    from .state import states

    store = _reader_for(workspace)
    all_states = states(workspace, as_of=as_of, store=store)
    from .store import norm_key

    quiet = suppressions(store, [norm_key(s.customer_id) for s in all_states])
    out = []
    for st in all_states:
        for a in suggest(st, rules, quiet.get(norm_key(st.customer_id))):
            if include_suppressed or a.suppressed is None:
                out.append((a, st.urgency.score if st.urgency else 0.0))
    return [a for a, _ in sorted(out, key=lambda x: (-x[0].priority, -x[1], x[0].customer_id))]
