"""The ``--where`` filter of ``signals search``: a small boolean grammar, parsed to an AST, compiled to DuckDB SQL.

Grammar (keywords ``and or not in`` are case-insensitive)::

    expr       := or
    or         := and ("or" and)*
    and        := unary ("and" unary)*
    unary      := "not" unary | "(" expr ")" | comparison
    comparison := FIELD OP VALUE | FIELD "in" "(" VALUE ("," VALUE)* ")"
    OP         := = | != | < | <= | > | >=

A VALUE is a bare word (letters, digits and ``_ - . : + /``), a number, or a single- or double-quoted string with
backslash escapes. A FIELD is an identifier, dotted once for constraint values (``constraint.product``). Fields,
operators and values are checked while parsing, so every mistake is reported with a caret under the bad token.

The compiled condition is evaluated over one segment row ``s`` joined with its document ``d``, as in
``SELECT s.seg_id FROM segments s JOIN documents d USING (doc_id) WHERE <condition>``. Document-level fields
(``intent``, ``sentiment``, ``urgency``, ``constraint``) test the ``signals`` table with a semi-join. Every user
value travels as a ``?`` parameter; nothing the user typed is formatted into the SQL text.

>>> parse("sentiment=negative and channel=chat")
And(items=(Cmp(field='sentiment', op='=', value='negative'), Cmp(field='channel', op='=', value='chat')))
>>> to_sql(parse("urgency>=0.7 or customer=C001"))[1]
[0.7, 'C001']
>>> to_sql(None)
('TRUE', [])
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from extractor.errors import ConfigError

KNOWN_FIELDS: dict[str, str] = {
    "channel": "the document's channel, e.g. chat, phone, email",
    "customer_id": "the document's customer id (alias: customer)",
    "doc_id": "the document id (alias: id)",
    "created_at": "when the document was created; an ISO date or datetime (a bare date is midnight UTC)",
    "speaker": "the segment's speaker role (customer, agent) or speaker name, case-insensitive",
    "intent": "the document has an intent signal with this label",
    "sentiment": "the document's sentiment: negative|neutral|positive, or a score in [-1, 1]",
    "urgency": "the document's urgency: low|medium|high|critical (ordered), or a score in [0, 1]",
    "constraint": "the document has a constraint of this type; constraint.TYPE=VALUE matches its value",
    "profile": "profile.ATTR: an attribute of the customer's imported profile (text: = !=; numbers: any operator)",
}
ALIASES = {"customer": "customer_id", "id": "doc_id"}
URGENCY_LEVELS = ("low", "medium", "high", "critical")
SENTIMENT_LABELS = ("negative", "neutral", "positive")
OPS = ("=", "!=", "<", "<=", ">", ">=")
EQ_OPS = ("=", "!=")
KEYWORDS = ("and", "or", "not", "in")
MAX_DEPTH = 64

_FIELD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?\Z")
_NUMBER_RE = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\Z")
_BARE_EXTRA = set("_-.:+/")

Value = str | float | datetime


class WhereError(ConfigError):
    """A ``--where`` filter that cannot be parsed; the message points a caret at the bad token."""

    def __init__(self, text: str, pos: int | None, reason: str, hint: str = ""):
        self.text, self.pos, self.reason = text, pos, reason
        if pos is None:
            message = f"invalid --where filter {text!r}: {reason}"
        else:
            shown = text.replace("\n", " ").replace("\t", " ").replace("\r", " ")
            message = f"invalid --where filter:\n  {shown}\n  {' ' * pos}^ {reason}"
        super().__init__(message + (f"\n{hint}" if hint else ""))


@dataclass(frozen=True)
class Cmp:
    field: str
    op: str
    value: Value


@dataclass(frozen=True)
class In:
    field: str
    values: tuple[Value, ...]


@dataclass(frozen=True)
class Not:
    item: Node


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


Node = Cmp | In | Not | And | Or


# --- tokens -------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Token:
    kind: str  # word | string | op | ( | ) | , | end
    text: str  # the token's value (a string's unescaped content)
    pos: int

    def show(self) -> str:
        if self.kind == "end":
            return "end of filter"
        if self.kind == "string":
            return f"string {self.text!r}"
        return f"'{self.text}'"

    def is_kw(self, word: str) -> bool:
        return self.kind == "word" and self.text.lower() == word


def _is_bare(ch: str) -> bool:
    return ch.isalnum() or ch in _BARE_EXTRA


def _read_string(text: str, start: int) -> tuple[str, int]:
    """The unescaped content of the quoted string opening at ``start``, and the index after its closing quote."""
    quote, out, i = text[start], [], start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        elif ch == quote:
            return "".join(out), i + 1
        else:
            out.append(ch)
            i += 1
    raise WhereError(text, start, f"unterminated string: no closing {quote}")


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, ending with an ``end`` token; raises WhereError on a stray character."""
    tokens, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "(),":
            tokens.append(Token(ch, ch, i))
            i += 1
        elif ch in "<>!=":
            op = text[i:i + 2] if text[i:i + 2] in OPS else ch
            if op not in OPS:
                raise WhereError(text, i, f"unexpected '{ch}'; operators are {' '.join(OPS)}")
            tokens.append(Token("op", op, i))
            i += len(op)
        elif ch in "\"'":
            value, end = _read_string(text, i)
            tokens.append(Token("string", value, i))
            i = end
        elif _is_bare(ch):
            j = i
            while j < len(text) and _is_bare(text[j]):
                j += 1
            tokens.append(Token("word", text[i:j], i))
            i = j
        else:
            raise WhereError(text, i, f"unexpected character {ch!r}; quote values that contain it")
    tokens.append(Token("end", "", len(text)))
    return tokens


# --- parser -------------------------------------------------------------------------------------------------------

class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return tok

    def fail(self, tok: Token, expected: str, hint: str = "") -> WhereError:
        return WhereError(self.text, tok.pos, f"{expected}, got {tok.show()}", hint)

    def parse(self) -> Node:
        node = self.parse_or()
        if self.tok.kind != "end":
            raise self.fail(self.tok, "expected 'and', 'or' or the end of the filter")
        return node

    def parse_or(self) -> Node:
        items = [self.parse_and()]
        while self.tok.is_kw("or"):
            self.advance()
            items.append(self.parse_and())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def parse_and(self) -> Node:
        items = [self.parse_unary()]
        while self.tok.is_kw("and"):
            self.advance()
            items.append(self.parse_unary())
        return items[0] if len(items) == 1 else And(tuple(items))

    def parse_unary(self) -> Node:
        tok = self.tok
        if tok.is_kw("not") or tok.kind == "(":
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise self.fail(tok, f"filter nested deeper than {MAX_DEPTH} levels")
            node = self._not_or_group(tok)
            self.depth -= 1
            return node
        return self.parse_comparison()

    def _not_or_group(self, tok: Token) -> Node:
        self.advance()
        if tok.kind != "(":
            return Not(self.parse_unary())
        node = self.parse_or()
        if self.tok.kind != ")":
            raise self.fail(self.tok, f"expected ')' to close the '(' at column {tok.pos + 1}")
        self.advance()
        return node

    def parse_comparison(self) -> Node:
        field_tok = self.advance()
        field = _check_field(self, field_tok)
        if self.tok.is_kw("in"):
            self.advance()
            return In(field, self.parse_value_list(field))
        op_tok = self.advance()
        if op_tok.kind != "op":
            raise self.fail(op_tok, f"expected an operator ({' '.join(OPS)}) or 'in' after '{field_tok.text}'")
        value_tok = self.advance()
        return Cmp(field, op_tok.text, _check_value(self, field, op_tok, value_tok))

    def parse_value_list(self, field: str) -> tuple[Value, ...]:
        open_tok = self.advance()
        if open_tok.kind != "(":
            raise self.fail(open_tok, "expected '(' after 'in'")
        values, eq = [], Token("op", "=", open_tok.pos)
        while True:
            values.append(_check_value(self, field, eq, self.advance()))
            sep = self.advance()
            if sep.kind == ")":
                return tuple(values)
            if sep.kind != ",":
                raise self.fail(sep, f"expected ',' or ')' to close the '(' at column {open_tok.pos + 1}")


def _known_fields_hint() -> str:
    width = max(map(len, KNOWN_FIELDS))
    lines = [f"  {name:<{width}}  {desc}" for name, desc in KNOWN_FIELDS.items()]
    return "known fields: " + ", ".join(KNOWN_FIELDS) + "\n" + "\n".join(lines)


def _check_field(p: _Parser, tok: Token) -> str:
    """The canonical field name of ``tok``; raises WhereError for a non-field or an unknown field."""
    if tok.kind != "word" or tok.text.lower() in KEYWORDS or not _FIELD_RE.match(tok.text):
        raise p.fail(tok, "expected a field name")
    name = tok.text.lower()
    name = ALIASES.get(name, name)
    head, _, tail = name.partition(".")
    if head == "profile" and tail:
        return "profile." + tok.text.partition(".")[2]  # profile attributes keep their case
    if (name in KNOWN_FIELDS and name != "profile") or (head == "constraint" and tail):
        return name
    raise WhereError(p.text, tok.pos, f"unknown field '{tok.text}'", _known_fields_hint())


def _check_value(p: _Parser, field: str, op_tok: Token, tok: Token) -> Value:
    """The typed value of ``tok`` for ``field op``; raises WhereError at the operator or value when they don't fit."""
    if tok.kind not in ("word", "string"):
        raise p.fail(tok, f"expected a value after '{op_tok.text}'")
    if tok.kind == "word" and tok.text.lower() in KEYWORDS:
        raise p.fail(tok, f"expected a value after '{op_tok.text}' (quote a keyword to use it as a value)")
    number = _as_number(tok)
    kind = field.partition(".")[0]
    if kind == "created_at":
        return _parse_date(p, tok)
    if kind == "urgency" and number is None:
        return _check_label(p, tok, op_tok, URGENCY_LEVELS, "an urgency level", OPS)
    if kind == "sentiment" and number is None:
        return _check_label(p, tok, op_tok, SENTIMENT_LABELS, "a sentiment label", EQ_OPS)
    if kind in ("urgency", "sentiment"):
        return number
    if kind == "profile" and number is not None and tok.kind == "word":
        return number
    if op_tok.text not in EQ_OPS:
        raise WhereError(p.text, op_tok.pos, f"'{field}' takes only = != or in, got '{op_tok.text}'")
    return tok.text


def _as_number(tok: Token) -> float | None:
    return float(tok.text) if tok.kind == "word" and _NUMBER_RE.match(tok.text) else None


def _check_label(p: _Parser, tok: Token, op_tok: Token, labels: tuple[str, ...], what: str,
                 ops: tuple[str, ...]) -> str:
    if op_tok.text not in ops:
        raise WhereError(p.text, op_tok.pos, f"{what} takes only {' '.join(ops)} or in, got '{op_tok.text}'")
    label = tok.text.lower()
    if label not in labels:
        raise p.fail(tok, f"expected {what} ({'|'.join(labels)}) or a number")
    return label


def _parse_date(p: _Parser, tok: Token) -> datetime:
    """An ISO date (midnight UTC) or datetime (naive means UTC; a trailing Z is UTC)."""
    raw = tok.text.strip()
    iso = raw[:-1] + "+00:00" if raw[-1:] in ("Z", "z") else raw
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        raise p.fail(tok, "expected an ISO date like 2026-10-01 or datetime like 2026-11-01T12:00:00Z") from None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed


def parse(text: str) -> Node | None:
    """Parse a ``--where`` filter into its AST; an empty or blank filter is ``None`` (matches everything)."""
    if not text or not text.strip():
        return None
    return _Parser(text).parse()


def values_of(node: Node | None, field: str) -> set[str]:
    """Every value the filter compares ``field`` with (to check labels against what the store holds)."""
    if node is None:
        return set()
    if isinstance(node, Cmp):
        return {str(node.value)} if node.field == field else set()
    if isinstance(node, In):
        return {str(v) for v in node.values} if node.field == field else set()
    if isinstance(node, Not):
        return values_of(node.item, field)
    return set().union(*(values_of(n, field) for n in node.items))


# --- SQL ----------------------------------------------------------------------------------------------------------

# Document-level signals only: a per-turn sentiment does not make the document "negative".
_SIGNAL = ("s.doc_id IN (SELECT g.doc_id FROM signals g WHERE g.kind = '{kind}' "
           "AND coalesce(g.scope, 'document') = 'document' AND {cond})")  # a semi-join: faster than EXISTS
_LEVEL = "CASE lower(g.label) " + " ".join(f"WHEN '{w}' THEN {i}" for i, w in enumerate(URGENCY_LEVELS)) + " END"
_COLUMNS = {"channel": "d.channel", "customer_id": "d.customer_id", "doc_id": "d.doc_id"}
SQL = tuple[str, list]


def _signal(kind: str, op: str, cond: str, params: list) -> SQL:
    """A document-level signal test; ``!=`` means the document has no signal satisfying ``cond``."""
    sql = _SIGNAL.format(kind=kind, cond=cond)
    return (f"NOT {sql}", params) if op == "!=" else (sql, params)


def _sql_signal_field(field: str, op: str, value: Value) -> SQL:
    kind, _, sub = field.partition(".")
    cmp = "=" if op == "!=" else op
    if kind == "constraint" and sub:
        like = "%" + re.sub(r"([\\%_])", r"\\\1", str(value).lower()) + "%"
        return _signal(kind, op, "lower(g.label) = lower(?) AND lower(g.value) LIKE ? ESCAPE '\\'", [sub, like])
    if isinstance(value, float):
        return _signal(kind, op, f"g.score {cmp} ?", [value])
    if kind == "urgency" and cmp != "=":
        return _signal(kind, op, f"{_LEVEL} {cmp} ?", [URGENCY_LEVELS.index(str(value))])
    return _signal(kind, op, "lower(g.label) = lower(?)", [value])


_PROFILE = ("EXISTS (SELECT 1 FROM profiles p WHERE p.customer_key = d.customer_key AND NOT p.opted_out "
            "AND {cond})")


def _sql_profile(attr: str, op: str, value: Value) -> SQL:
    """A profile attribute test (the attribute name is an identifier; it travels as a JSON path parameter)."""
    path = f'$."{attr}"'
    cmp = "=" if op == "!=" else op
    if isinstance(value, float):
        sql = _PROFILE.format(cond=f"TRY_CAST(json_extract_string(p.attrs, ?) AS DOUBLE) {cmp} ?")
    else:
        sql = _PROFILE.format(cond="lower(json_extract_string(p.attrs, ?)) = lower(?)")
    return (f"(NOT {sql})" if op == "!=" else sql), [path, value]


def _sql_cmp(node: Cmp) -> SQL:
    field, op, value = node.field, node.op, node.value
    if op not in OPS:
        raise WhereError(str(node), None, f"unknown operator {op!r}")
    if field in _COLUMNS:
        sql = f"coalesce({_COLUMNS[field]} = ?, FALSE)"
        return (f"(NOT {sql})" if op == "!=" else sql), [value]
    if field == "created_at":
        stamp = value.isoformat() if isinstance(value, datetime) else str(value)
        sql = f"coalesce(d.created_at {'=' if op == '!=' else op} CAST(? AS TIMESTAMPTZ), FALSE)"
        return (f"(NOT {sql})" if op == "!=" else sql), [stamp]
    if field == "speaker":
        sql = "(coalesce(lower(s.role), '') = lower(?) OR coalesce(lower(s.speaker), '') = lower(?))"
        return (f"(NOT {sql})" if op == "!=" else sql), [value, value]
    if field.partition(".")[0] in ("intent", "sentiment", "urgency", "constraint"):
        return _sql_signal_field(field, op, value)
    if field.startswith("profile."):
        return _sql_profile(field.partition(".")[2], op, value)
    raise WhereError(str(node), None, f"unknown field {field!r}", _known_fields_hint())


def _join(nodes: tuple[Node, ...], word: str) -> SQL:
    parts = [to_sql(n) for n in nodes]
    return "(" + f" {word} ".join(sql for sql, _ in parts) + ")", [p for _, ps in parts for p in ps]


def to_sql(node: Node | None) -> SQL:
    """Compile ``node`` to a DuckDB boolean expression over ``s`` (segments) and ``d`` (documents), with params."""
    if node is None:
        return "TRUE", []
    if isinstance(node, And):
        return _join(node.items, "AND")
    if isinstance(node, Or):
        return _join(node.items, "OR")
    if isinstance(node, Not):
        sql, params = to_sql(node.item)
        return f"(NOT {sql})", params
    if isinstance(node, In):
        return _join(tuple(Cmp(node.field, "=", v) for v in node.values), "OR")
    if isinstance(node, Cmp):
        return _sql_cmp(node)
    raise TypeError(f"not a --where node: {node!r}")


def fields_used(node: Node | None) -> set[str]:
    """The canonical field names ``node`` tests (aliases resolved; ``constraint.TYPE`` kept dotted)."""
    if node is None:
        return set()
    if isinstance(node, (Cmp, In)):
        return {node.field}
    if isinstance(node, Not):
        return fields_used(node.item)
    return set().union(*(fields_used(n) for n in node.items))


__all__ = ["KNOWN_FIELDS", "And", "Cmp", "In", "Node", "Not", "Or", "WhereError", "fields_used", "parse", "to_sql"]
