"""Grounding LLM quotes back to exact offsets: exact, folded and fuzzy tiers, and the span guarantee."""

from __future__ import annotations

import random
import unicodedata

import pytest

from extractor.llm.ground import Alignment, align, align_in_units


def nfc(s: str) -> str:
    return unicodedata.normalize("NFC", s)


def assert_clean_span(a: Alignment, text: str) -> str:
    """Rule 7: a non-empty in-bounds span that neither starts nor ends on whitespace."""
    assert 0 <= a.start < a.end <= len(text), a
    piece = text[a.start : a.end]
    assert piece and piece == piece.strip(), (a, piece)
    assert a.match in {"exact", "casefold", "fuzzy"}
    assert 0.0 < a.score <= 1.0
    return piece


def test_exact():
    text = "Hello. I was charged twice for Nimbus Plus."
    a = align("charged twice", text)
    assert a == Alignment(start=13, end=26, match="exact", score=1.0)
    assert text[a.start : a.end] == "charged twice"


def test_casefold_maps_back_to_original_case():
    text = "I was charged twice!"
    a = align("charged TWICE", text)
    assert a == Alignment(start=6, end=19, match="casefold", score=1.0)
    assert text[a.start : a.end] == "charged twice"


@pytest.mark.parametrize(
    ("text", "quote", "expected"),
    [
        ("line one\r\nline two", "line one line two", "line one\r\nline two"),
        ("say   it\t\tagain please", "say it again", "say   it\t\tagain"),
        ("pay\u00a0now or else", "pay now", "pay\u00a0now"),
        ("intro.\r\n\r\n  the app  crashed\r\n", "the app crashed", "the app  crashed"),
    ],
)
def test_whitespace_differences(text, quote, expected):
    a = align(quote, text)
    assert a is not None and a.match == "casefold"
    assert assert_clean_span(a, text) == expected


def test_curly_vs_straight_apostrophes_both_ways():
    curly_text = "Honestly I don’t want it anymore"
    a = align("I don't want it", curly_text)
    assert a is not None and a.match == "casefold"
    assert curly_text[a.start : a.end] == "I don’t want it"

    straight_text = 'He said "cancel it" twice'
    b = align("said “cancel it”", straight_text)
    assert b is not None and b.match == "casefold"
    assert straight_text[b.start : b.end] == 'said "cancel it"'


def test_emoji_before_span():
    text = "😡😡 I want my money back"
    a = align("I want my money back", text)
    assert a == Alignment(start=3, end=23, match="exact", score=1.0)
    assert text[a.start : a.end] == "I want my money back"
    b = align("i want MY money back", text)
    assert b is not None and b.match == "casefold" and (b.start, b.end) == (3, 23)


def test_cjk():
    text = "我想取消订阅，因为太贵了"
    a = align("取消订阅", text)
    assert a == Alignment(start=2, end=6, match="exact", score=1.0)
    assert text[a.start : a.end] == "取消订阅"
    b = align("“取消订阅”", text)
    assert b is not None and text[b.start : b.end] == "取消订阅"


@pytest.mark.parametrize(
    ("text", "quote"),
    [
        ("the cafe\u0301 app crashed again", "caf\u00e9 app crashed"),  # NFD text, NFC quote
        ("the caf\u00e9 app crashed again", "cafe\u0301 app crashed"),  # NFC text, NFD quote
        ("Zoe\u0308 here", "Zo\u00eb here"),
        ("ask Zo\u00eb", "ask Zoe\u0308"),  # the span must keep the last character's mark
    ],
)
def test_combining_characters(text, quote):
    a = align(quote, text)
    assert a is not None and a.match == "casefold"
    piece = assert_clean_span(a, text)
    assert nfc(piece) == nfc(quote)


def test_exact_never_splits_a_base_from_its_mark():
    text = "Zoe\u0308 here"
    a = align("Zoe", text)  # verbatim prefix of "Zoë", but cutting the mark off would be wrong
    assert a is not None
    assert text[a.start : a.end] == "Zoe\u0308"


def test_german_sharp_s_both_ways():
    text = "I live on STRASSE 5 now"
    a = align("Straße 5", text)
    assert a is not None and a.match == "casefold"
    assert text[a.start : a.end] == "STRASSE 5"

    text2 = "I live on Straße 5 now"
    b = align("STRASSE 5", text2)
    assert b is not None and b.match == "casefold"
    assert text2[b.start : b.end] == "Straße 5"


def test_length_changing_lowercase_keeps_offsets():
    text = "İSTANBUL office called, then the İzmir one"
    a = align("izmir one", text)
    assert a is not None and a.match == "casefold"
    assert text[a.start : a.end] == "İzmir one"


def test_fuzzy_typo_covers_the_right_words():
    text = "Hello there. So I was charged twice for October and nobody helped me."
    a = align("I was chargd twice for october", text)
    assert a is not None and a.match == "fuzzy"
    assert 0.85 <= a.score < 1.0
    assert text[a.start : a.end] == "I was charged twice for October"


def test_fuzzy_span_is_widened_to_whole_words():
    text = "Well I want a refund please now ok"
    a = align("I want a refnd please now", text)
    assert a is not None and a.match == "fuzzy"
    assert text[a.start : a.end] == "I want a refund please now"


def test_fuzzy_threshold_is_respected():
    text = "Hello there. So I was charged twice for October and nobody helped me."
    assert align("I was chargd twice for october", text, fuzzy_min=0.99) is None


def test_unrelated_quote_is_none():
    text = "Hello there. So I was charged twice for October and nobody helped me."
    assert align("the weather in Paris is lovely today", text) is None


@pytest.mark.parametrize("quote", ["I", "  I ", "ok", '"…"', "...", "", "  ", "Customer: ok"])
def test_too_short_or_punctuation_only_is_none(quote):
    assert align(quote, "I was charged, ok... \"…\" Customer: ok") is None


def test_min_chars_is_configurable():
    assert align("ok", "it is ok now", min_chars=2) == Alignment(start=6, end=8, match="exact", score=1.0)


@pytest.mark.parametrize(
    "quote",
    [
        "Customer: I want a refund",
        "Agent: I want a refund",
        "[turn 3] Customer: I want a refund",
        "[3] I want a refund",
        "“I want a refund…”",
        '"I want a refund..."',
        "  'I want a refund'  ",
    ],
)
def test_prefix_and_decoration_stripping(quote):
    text = "Well, I want a refund please."
    a = align(quote, text)
    assert a is not None and a.match == "exact"
    assert text[a.start : a.end] == "I want a refund"


def test_label_really_in_text_is_matched_as_written():
    text = "Note: the app crashed"
    a = align("Note: the app crashed", text)
    assert a == Alignment(start=0, end=len(text), match="exact", score=1.0)


def test_repeated_quote_returns_first_occurrence():
    text = "refund now. REFUND NOW. refund now."
    a = align("refund now", text)
    assert a == Alignment(start=0, end=10, match="exact", score=1.0)
    b = align("Refund Now", text)
    assert b is not None and b.match == "casefold" and b.start == 0
    c = align("refund now", "xx REFUND  NOW yy Refund now")
    assert c is not None and c.start == 3 and c.end == 14


def test_align_in_units_prefers_given_turn():
    units = [(0, "Hi, how can I help?"), (1, "I want a refund."), (2, "Really, I want a refund!")]
    assert align_in_units("I want a refund", units, prefer=2) == (2, Alignment(8, 23, "exact", 1.0))
    assert align_in_units("I want a refund", units) == (1, Alignment(0, 15, "exact", 1.0))


def test_align_in_units_falls_back_to_other_turn():
    units = [(0, "Hi, how can I help?"), (1, "My router keeps dropping."), (2, "Also I was billed twice.")]
    found = align_in_units("Customer: I was billed twice", units, prefer=1)
    assert found == (2, Alignment(5, 23, "exact", 1.0))
    assert align_in_units("nothing like this at all", units, prefer=1) is None


def test_align_in_units_tier_order_beats_preference():
    units = [(0, "I WANT A REFUND"), (1, "i want a refund")]
    # exact in turn 1 wins over a casefold hit in the preferred turn 0
    assert align_in_units("i want a refund", units, prefer=0) == (1, Alignment(0, 15, "exact", 1.0))
    # casefold everywhere: the preferred turn wins
    assert align_in_units("I Want A Refund", units, prefer=1) == (1, Alignment(0, 15, "casefold", 1.0))


def test_align_in_units_fuzzy_best_score_wins_and_document_units():
    units = [(None, "I was chraged twce for the plan"), (None, "I was charged twce for the plan")]
    found = align_in_units("I was charged twice for the plan", units)
    assert found is not None
    turn, a = found
    assert turn is None and a.match == "fuzzy"
    assert units[1][1][a.start : a.end] == "I was charged twce for the plan"


def test_align_in_units_passes_options():
    units = [(0, "ok then")]
    assert align_in_units("ok", units) is None
    assert align_in_units("ok", units, min_chars=2) == (0, Alignment(0, 2, "exact", 1.0))


MULTILINGUAL = (
    "😡😡 I was charged twice for Nimbus Plus!! Fix it by Friday or I cancel. 🙏\r\n"
    "我的订单还没到。我想取消订阅，因为太贵了。I need my 2 routers delivered to Leeds before 3 December.\r\n"
    "Zoe\u0308 here, the cafe\u0301 app crashed again… “Please” email me, it’s urgent!\t\n"
    "Die STRASSE heißt Hauptstraße, Größe XL. İstanbul ofisi aradı. Ça ne marche pas, déçu.\r\n"
    "👨‍👩‍👧 family plan — we need three lines by next week; my mother only speaks Español.\u00a0Gracias 👍🏽\n"
    "Привет, у меня не работает интернет уже 3 дня. नमस्ते, मेरा बिल गलत है। e\u0301\u0301 pile-up.\n"
)


def _splits_grapheme(text: str, start: int, end: int) -> bool:
    def is_mark(i: int) -> bool:
        return i < len(text) and unicodedata.category(text[i]).startswith("M")

    return is_mark(start) or is_mark(end)


def _perturb(rng: random.Random, quote: str) -> str:
    """A quote as a model might mangle it: case, whitespace, apostrophes, normal form, a typo."""
    kind = rng.randrange(5)
    if kind == 0:
        return quote.upper() if rng.random() < 0.5 else quote.lower()
    if kind == 1:
        return " ".join(quote.split())
    if kind == 2:
        return nfc(quote).replace("’", "'").replace("“", '"').replace("”", '"')
    if kind == 3:
        return unicodedata.normalize("NFD" if rng.random() < 0.5 else "NFC", quote)
    i = rng.randrange(len(quote))
    return quote[:i] + quote[i + 1 :]


def test_property_random_slices():
    rng = random.Random(0)
    text = MULTILINGUAL
    exact_checked = found_perturbed = 0
    for _ in range(600):
        start = rng.randrange(len(text) - 4)
        end = min(len(text), start + rng.randint(4, 60))
        raw = text[start:end]
        quote = raw.strip()
        if sum(ch.isalnum() for ch in quote) < 3:
            continue
        a = align(quote, text)
        qs = start + len(raw) - len(raw.lstrip())
        if not _splits_grapheme(text, qs, qs + len(quote)):
            assert a is not None, quote
            assert a.match == "exact", (quote, a)
            assert assert_clean_span(a, text) == quote
            exact_checked += 1
        elif a is not None:
            assert_clean_span(a, text)
        b = align(_perturb(rng, quote), text)
        if b is not None:
            assert_clean_span(b, text)
            found_perturbed += 1
    assert exact_checked > 300
    assert found_perturbed > 200


def test_property_units_and_garbage_never_break_the_guarantee():
    rng = random.Random(0)
    lines = [line for line in MULTILINGUAL.splitlines() if line.strip()]
    units = [(i, line) for i, line in enumerate(lines)]
    alphabet = MULTILINGUAL + "\u0301\u0308 \r\n\t\u00a0ßİ"
    for _ in range(300):
        quote = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 25)))
        for turn_text in (MULTILINGUAL, lines[rng.randrange(len(lines))]):
            a = align(quote, turn_text)
            if a is not None:
                assert_clean_span(a, turn_text)
        found = align_in_units(quote, units, prefer=rng.randrange(len(units)))
        if found is not None:
            turn, b = found
            assert_clean_span(b, lines[turn])
