"""The --where filter grammar: parsing, error messages with carets, and the SQL it compiles to, run on DuckDB."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from extractor.errors import ConfigError
from extractor.where import KNOWN_FIELDS, And, Cmp, In, Not, Or, WhereError, fields_used, parse, to_sql

# --- parsing ------------------------------------------------------------------------------------------------------


def test_and_binds_tighter_than_or():
    assert parse("channel=chat or channel=phone and speaker=customer") == Or((
        Cmp("channel", "=", "chat"),
        And((Cmp("channel", "=", "phone"), Cmp("speaker", "=", "customer"))),
    ))


def test_chains_are_flat():
    node = parse("channel=a and channel=b and channel=c or channel=d or channel=e")
    assert isinstance(node, Or) and len(node.items) == 3
    assert isinstance(node.items[0], And) and len(node.items[0].items) == 3


def test_not_binds_tightest_and_parentheses_group():
    assert parse("not channel=chat and speaker=agent") == And((Not(Cmp("channel", "=", "chat")),
                                                               Cmp("speaker", "=", "agent")))
    assert parse("not (channel=chat or channel=phone)") == Not(Or((Cmp("channel", "=", "chat"),
                                                                   Cmp("channel", "=", "phone"))))
    assert parse("intent=cancel_subscription and (channel=chat or channel=phone)") == And((
        Cmp("intent", "=", "cancel_subscription"),
        Or((Cmp("channel", "=", "chat"), Cmp("channel", "=", "phone"))),
    ))
    assert parse("not not ((speaker=agent))") == Not(Not(Cmp("speaker", "=", "agent")))


def test_in_list():
    assert parse("intent in (refund_request, billing_double_charge)") == In(
        "intent", ("refund_request", "billing_double_charge"))
    assert parse("channel in (chat)") == In("channel", ("chat",))
    assert parse("urgency in (HIGH, critical)") == In("urgency", ("high", "critical"))


def test_quoted_strings_with_spaces_and_escapes():
    assert parse('constraint.product="Nimbus Plus"') == Cmp("constraint.product", "=", "Nimbus Plus")
    assert parse(r'constraint.product="Nimbus \"Plus\" \\ 2"') == Cmp("constraint.product", "=", 'Nimbus "Plus" \\ 2')
    assert parse(r"customer_id='O\'Brien and co'") == Cmp("customer_id", "=", "O'Brien and co")
    assert parse("speaker = 'and'") == Cmp("speaker", "=", "and")  # a quoted keyword is a value


def test_keywords_are_case_insensitive():
    assert parse("NOT channel=chat AND speaker=agent Or intent IN (x, y)") == Or((
        And((Not(Cmp("channel", "=", "chat")), Cmp("speaker", "=", "agent"))),
        In("intent", ("x", "y")),
    ))


def test_values_are_typed_per_field():
    assert parse("urgency>=0.7") == Cmp("urgency", ">=", 0.7)
    assert parse("urgency=HIGH") == Cmp("urgency", "=", "high")
    assert parse("sentiment<-0.3") == Cmp("sentiment", "<", -0.3)
    assert parse("sentiment=Negative") == Cmp("sentiment", "=", "negative")
    assert parse("customer_id=123") == Cmp("customer_id", "=", "123")  # ids stay text
    assert parse("created_at>=2026-10-01") == Cmp("created_at", ">=", datetime(2026, 10, 1, tzinfo=timezone.utc))
    assert parse("created_at<2026-11-01T12:00:00Z") == Cmp("created_at", "<",
                                                           datetime(2026, 11, 1, 12, tzinfo=timezone.utc))


def test_aliases_resolve_and_fields_used():
    node = parse("customer=C001 or id=D1 or constraint.product=nimbus or not urgency=high")
    assert fields_used(node) == {"customer_id", "doc_id", "constraint.product", "urgency"}
    assert fields_used(None) == set()


def test_empty_filter_matches_everything():
    assert parse("") is None and parse("   ") is None
    assert to_sql(None) == ("TRUE", [])


def test_values_are_params_never_sql():
    sql, params = to_sql(parse("customer_id=\"x' OR 1=1 --\" and constraint.product='50% off'"))
    assert "1=1" not in sql and "50" not in sql and sql.count("?") == len(params)
    assert params == ["x' OR 1=1 --", "product", r"%50\% off%"]


# --- errors -------------------------------------------------------------------------------------------------------


def error(text: str) -> WhereError:
    with pytest.raises(WhereError) as info:
        parse(text)
    assert isinstance(info.value, ConfigError)
    return info.value


def caret(err: WhereError) -> int:
    """The column of the caret in the message, checked against the echoed filter line."""
    lines = str(err).splitlines()
    assert lines[1] == "  " + err.text
    return lines[2].index("^") - 2


def test_double_operator_points_at_the_second():
    text = "sentiment=negative and urgency>>0.7"
    err = error(text)
    assert caret(err) == text.index(">>") + 1
    assert "expected a value after '>', got '>'" in str(err)


def test_unclosed_paren():
    text = "intent=cancel_subscription and (channel=chat or channel=phone"
    err = error(text)
    assert caret(err) == len(text)
    assert "expected ')'" in str(err) and "end of filter" in str(err)


def test_trailing_and():
    err = error("channel=chat and")
    assert caret(err) == len("channel=chat and")
    assert "expected a field name" in str(err)


def test_unknown_field_lists_known_fields():
    text = "channel=chat and plan=premium"
    err = error(text)
    assert caret(err) == text.index("plan")
    assert "unknown field 'plan'" in str(err)
    for name in KNOWN_FIELDS:
        assert name in str(err)
    assert caret(error("confidence>0.5")) == 0  # not a field
    assert caret(error("channel.x=1")) == 0  # only constraint takes a dotted subfield


def test_bad_date_points_at_the_value():
    text = "created_at>=2026-13-01"
    err = error(text)
    assert caret(err) == text.index("2026")
    assert "ISO date" in str(err)


def test_bad_urgency_level_lists_levels():
    err = error("urgency>=extreme")
    assert caret(err) == len("urgency>=")
    assert "low|medium|high|critical" in str(err)
    assert "negative|neutral|positive" in str(error("sentiment=grumpy"))


def test_ordering_op_on_an_equality_field():
    err = error("intent>=x")
    assert caret(err) == len("intent")
    assert "only = != or in" in str(err)
    assert caret(error("channel<chat")) == len("channel")
    assert caret(error("sentiment>negative")) == len("sentiment")


@pytest.mark.parametrize("text, col, words", [
    ("channel=chat speaker=agent", 13, "expected 'and', 'or'"),
    ("channel=chat;", 12, "unexpected character"),
    ("customer_id='abc", 12, "unterminated string"),
    ("channel=and", 8, "quote a keyword"),
    ("intent in ()", 11, "expected a value"),
    ("intent in (a b)", 13, "expected ',' or ')'"),
    ("intent in a", 10, "expected '('"),
    ("channel chat", 8, "expected an operator"),
    ("channel!chat", 7, "unexpected '!'"),
    ("and channel=chat", 0, "expected a field name"),
    ("()", 1, "expected a field name"),
])
def test_other_errors(text, col, words):
    err = error(text)
    assert caret(err) == col and words in str(err), str(err)


def test_deep_nesting_is_an_error_not_a_crash():
    assert "nested deeper" in str(error("(" * 500 + "channel=chat" + ")" * 500))
    assert "nested deeper" in str(error("not " * 500 + "channel=chat"))


# --- DuckDB -------------------------------------------------------------------------------------------------------

DOCS = [  # doc_id, customer_id, channel, created_at
    ("D1", "C001", "chat", "2026-10-05 10:00:00+00"),
    ("D2", "C002", "phone", "2026-10-20 09:00:00+00"),
    ("D3", "C003", "email", "2026-11-02 08:00:00+00"),
    ("D4", "C004", None, None),
]
SEGMENTS = [  # seg_id, doc_id, turn, speaker, role
    (1, "D1", 0, "Dana", "customer"), (2, "D1", 1, "Sam", "agent"),
    (3, "D2", 0, "Lee", "customer"), (4, "D2", 1, "Sam", "agent"),
    (5, "D3", 0, None, "customer"),
    (6, "D4", 0, None, None),
]
SIGNALS = [  # doc_id, kind, label, score, value
    ("D1", "intent", "cancel_subscription", None, None),
    ("D1", "sentiment", "negative", -0.8, None),
    ("D1", "urgency", "high", 0.85, None),
    ("D1", "constraint", "product", None, '{"normalised": "Nimbus Plus"}'),
    ("D1", "constraint", "money", None, '{"normalised": "49.99 USD"}'),
    ("D2", "intent", "cancel_subscription", None, None),
    ("D2", "sentiment", "neutral", 0.0, None),
    ("D2", "urgency", "low", 0.2, None),
    ("D3", "intent", "refund_request", None, None),
    ("D3", "sentiment", "positive", 0.6, None),
    ("D3", "urgency", "critical", 0.95, None),
    ("D3", "constraint", "product", None, '{"normalised": "Nimbus Basic"}'),
    ("D4", "intent", "billing_double_charge", None, None),
]
ALL = {1, 2, 3, 4, 5, 6}


@pytest.fixture(scope="module")
def db():
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect(":memory:")
    con.execute("CREATE TABLE documents(doc_id VARCHAR, customer_id VARCHAR, channel VARCHAR, "
                "created_at TIMESTAMPTZ, text VARCHAR)")
    con.execute('CREATE TABLE segments(seg_id BIGINT, doc_id VARCHAR, turn INTEGER, speaker VARCHAR, role VARCHAR, '
                'start INTEGER, "end" INTEGER, text VARCHAR)')
    con.execute("CREATE TABLE signals(doc_id VARCHAR, sig_idx INTEGER, kind VARCHAR, label VARCHAR, score DOUBLE, "
                "confidence DOUBLE, speaker VARCHAR, value VARCHAR, extractor VARCHAR, "
                "scope VARCHAR DEFAULT 'document')")
    con.executemany("INSERT INTO documents VALUES (?, ?, ?, CAST(? AS TIMESTAMPTZ), 'text')", DOCS)
    con.executemany("INSERT INTO segments VALUES (?, ?, ?, ?, ?, 0, 4, 'text')", SEGMENTS)
    con.executemany("INSERT INTO signals (doc_id, sig_idx, kind, label, score, confidence, speaker, value) "
                    "VALUES (?, 0, ?, ?, ?, 0.9, NULL, ?)", SIGNALS)
    yield con
    con.close()


def seg_ids(con, text: str) -> set[int]:
    sql, params = to_sql(parse(text))
    rows = con.execute(f"SELECT s.seg_id FROM segments s JOIN documents d USING (doc_id) WHERE {sql}", params)
    return {row[0] for row in rows.fetchall()}


CASES = [
    ("sentiment=negative and urgency>=0.7 and channel=chat and created_at>=2026-10-01", {1, 2}),
    ("intent=cancel_subscription and (channel=chat or channel=phone)", {1, 2, 3, 4}),
    ("not sentiment=positive", {1, 2, 3, 4, 6}),
    ("sentiment!=negative", {3, 4, 5, 6}),  # documents with no negative sentiment signal
    ("sentiment<0", {1, 2}),
    ("customer_id=C001", {1, 2}),
    ("customer=C002 or id=D4", {3, 4, 6}),
    ("speaker=customer", {1, 3, 5}),
    ("speaker=dana", {1}),
    ("speaker!=customer", {2, 4, 6}),
    ("speaker=Sam and not channel=chat", {4}),
    ("constraint=money", {1, 2}),
    ("constraint!=money", {3, 4, 5, 6}),
    ('constraint.product="Nimbus Plus"', {1, 2}),
    ("constraint.product=nimbus", {1, 2, 5}),
    ("constraint.money=nimbus", set()),
    ("urgency=high", {1, 2}),
    ("urgency>=high", {1, 2, 5}),
    ("urgency<medium", {3, 4}),
    ("urgency>0.9", {5}),
    ("urgency!=low", {1, 2, 5, 6}),
    ("intent in (refund_request, billing_double_charge)", {5, 6}),
    ("channel in (chat, email)", {1, 2, 5}),
    ("channel!=chat", {3, 4, 5, 6}),  # a document without a channel is not chat
    ("created_at<2026-11-01T12:00:00Z", {1, 2, 3, 4}),
    ("created_at>=2026-10-10 and created_at<2026-11-01", {3, 4}),
    ("created_at=2026-10-05T12:00:00+02:00", {1, 2}),
    ("created_at!=2026-10-05T10:00:00Z", {3, 4, 5, 6}),
    ("", ALL),
]


@pytest.mark.parametrize("text, expected", CASES)
def test_filters_on_duckdb(db, text, expected):
    assert seg_ids(db, text) == expected


@pytest.mark.parametrize("text", [t for t, _ in CASES if t])
def test_not_is_the_complement(db, text):
    assert seg_ids(db, f"not ({text})") == ALL - seg_ids(db, text)


@pytest.mark.parametrize("text", [
    "customer_id=\"x' OR 1=1 --\"",
    "speaker='x\\' OR 1=1 --'",
    "intent=\"x') OR TRUE OR ('\"",
    'constraint.product="%"',
    'constraint.product="_"',
])
def test_injection_is_data(db, text):
    assert seg_ids(db, text) == set()


def test_a_turn_level_sentiment_does_not_make_the_document_match(db):
    before = seg_ids(db, "sentiment=neutral")
    doc = db.execute("SELECT doc_id FROM documents ORDER BY doc_id LIMIT 1").fetchone()[0]
    db.execute("INSERT INTO signals VALUES (?, 9, 'sentiment', 'neutral', 0.0, 0.9, 'agent', NULL, '', 'turn')", [doc])
    try:
        assert seg_ids(db, "sentiment=neutral") == before
    finally:
        db.execute("DELETE FROM signals WHERE sig_idx = 9")


def test_profile_attributes_keep_their_case_and_compare_as_text_or_number():
    assert parse("profile.Plan = 'Nimbus Plus'") == Cmp("profile.Plan", "=", "Nimbus Plus")
    assert parse("profile.lifetime_value >= 1000") == Cmp("profile.lifetime_value", ">=", 1000.0)
    sql, params = to_sql(parse("profile.plan != basic"))
    assert sql.startswith("(NOT EXISTS") and params == ['$."plan"', "basic"]
    with pytest.raises(WhereError, match="takes only = != or in"):
        parse("profile.plan > basic")
    with pytest.raises(WhereError, match="unknown field"):
        parse("profile = x")
