"""Word lists and patterns for the rule-based constraint extractor (data, no logic)."""

from __future__ import annotations

import re

CURRENCY_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR", "₩": "KRW"}
CURRENCY_WORDS = {
    "usd": "USD", "dollar": "USD", "dollars": "USD", "bucks": "USD", "eur": "EUR", "euro": "EUR",
    "euros": "EUR", "gbp": "GBP", "pound": "GBP", "pounds": "GBP", "quid": "GBP", "jpy": "JPY", "yen": "JPY",
    "cad": "CAD", "aud": "AUD", "chf": "CHF", "inr": "INR", "rupees": "INR",
}
_AMOUNT = r"\d{1,3}(?:[,.]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_CUR_WORD = "|".join(sorted(CURRENCY_WORDS, key=len, reverse=True))
MONEY = re.compile(
    rf"(?:(?:US|CA|AU)?[$€£¥₹₩]\s?(?:{_AMOUNT})(?:\s?(?:k|K|m|M)\b)?)"
    rf"|(?:\b(?:{_CUR_WORD})\s?(?:{_AMOUNT})\b)"
    rf"|(?:\b(?:{_AMOUNT})\s?(?:[$€£¥]|(?:{_CUR_WORD})\b))",
    re.I,
)

NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "twenty": 20, "a dozen": 12, "a couple of": 2,
                "a pair of": 2, "both": 2}
_QTY_NUM = r"\d+(?:[.,]\d+)?|" + "|".join(sorted(NUMBER_WORDS, key=len, reverse=True))
MEASURE_UNITS = r"gb|mb|tb|kb|mbps|gbps|kg|g|lbs?|km|miles?|m|cm|mm|ft|inch(?:es)?|litres?|liters?|ml"
_NOT_THINGS = (r"(?:minutes?|hours?|days?|weeks?|months?|years?|times|am|pm|percent|stars?|o'clock|"
               r"seconds?|mornings?|evenings?|calls?|attempts?)\b")
QUANTITY = re.compile(
    rf"\b(?P<num>{_QTY_NUM})\s?(?P<unit>{MEASURE_UNITS})\b"
    rf"|\b(?P<num2>{_QTY_NUM})\s+(?!{_NOT_THINGS})"
    rf"(?P<noun>(?:[a-z]{{3,}}\s+)?(?!{_NOT_THINGS})"
    r"(?:[a-z]{3,}s|people|children|men|women|staff)(?:\s+of\s+[a-z]{3,})?)\b",
    re.I,
)

CHANNELS = {"email": "email", "e-mail": "email", "mail": "email", "call": "phone", "phone": "phone",
            "ring": "phone", "telephone": "phone", "text": "sms", "sms": "sms", "whatsapp": "whatsapp",
            "chat": "chat", "post": "post", "letter": "post", "message": "sms"}
CHANNEL = re.compile(
    r"\b(?P<neg>don'?t|do not|never|please don'?t|no)\s+(?P<nverb>call|phone|ring|email|e-mail|text)(?:\s+me)?\b"
    r"|\b(?P<verb>call|phone|ring|email|e-mail|text|sms|whatsapp|message|write to)\s+me\b"
    r"|\b(?P<call>on a call|a call ?back|callback)\b"
    r"|\b(?:by|via|over|through)\s+(?:the\s+)?(?P<by>e-?mail|phone|telephone|post|text|sms|whatsapp|chat|letter)\b"
    r"|\b(?:prefer|rather have|rather get|rather)\s+(?:an?\s+|to\s+)?"
    r"(?P<pref>e-?mail|call|phone call|phone|text|chat)\b"
    r"|\b(?P<only>e-?mail|phone|text|chat) only\b",
    re.I,
)

LANGUAGES = {
    "english": "en", "spanish": "es", "español": "es", "espanol": "es", "french": "fr", "français": "fr",
    "german": "de", "deutsch": "de", "italian": "it", "portuguese": "pt", "dutch": "nl", "polish": "pl",
    "russian": "ru", "ukrainian": "uk", "turkish": "tr", "arabic": "ar", "hindi": "hi", "urdu": "ur",
    "bengali": "bn", "punjabi": "pa", "chinese": "zh", "mandarin": "zh", "cantonese": "yue", "japanese": "ja",
    "korean": "ko", "vietnamese": "vi", "tagalog": "tl", "thai": "th", "greek": "el", "swedish": "sv",
    "romanian": "ro", "hungarian": "hu", "czech": "cs", "farsi": "fa", "persian": "fa", "hebrew": "he",
    "somali": "so", "swahili": "sw", "sign language": "sgn", "asl": "ase", "bsl": "bfi",
    "italiano": "it", "português": "pt", "portugues": "pt", "polski": "pl", "nederlands": "nl",
    "русский": "ru", "日本語": "ja", "中文": "zh", "普通话": "zh", "한국어": "ko", "türkçe": "tr", "العربية": "ar",
}
LANGUAGE = re.compile(r"(?<![^\W\d_])(" + "|".join(sorted(LANGUAGES, key=len, reverse=True)) + r")(?![a-zA-Z])",
                      re.I)
# words just before ("in Spanish", "speaks only French") or after ("Spanish-speaking", "Deutsch bitte")
LANGUAGE_BEFORE = re.compile(r"\b(in|en|auf|speak|speaks|speaking|only|fluent|native|into|a|an|some)\s*$", re.I)
LANGUAGE_AFTER = re.compile(r"^\s*(-?speak\w*|speaker|translat\w*|interpret\w*|bitte|por favor|please|support|"
                            r"version|documentation|manual|subtitles|agent|[?？])", re.I)

OTHER = re.compile(
    r"\b(?P<contract>(?:my |the )?contract (?:ends|expires|runs out|term)|notice period|cooling[- ]off period"
    r"|under warranty|within warranty|warranty (?:expires|ends)|early termination fee)"
    r"|(?P<access>wheelchair|hearing[- ]impaired|deaf|blind|visually impaired|large print|screen reader"
    r"|accessible entrance)\b",
    re.I,
)

_STREET = (r"(?:Road|Rd|Street|St|Avenue|Ave|Lane|Ln|Drive|Dr|Way|Close|Court|Ct|Place|Pl|View|Terrace|"
           r"Crescent|Boulevard|Blvd|Square|Sq|Parade|Grove|Gardens|Hill|Row)")
ADDRESS = re.compile(
    r"(?:\b(?:Flat|Apt|Apartment|Unit|Suite)\s+\d+[A-Za-z]?,?\s+)?"
    rf"\b\d{{1,5}}[A-Za-z]?,?\s+(?:(?:[A-Z][a-z]+|des|de|la|du|del)\s+){{0,3}}(?:{_STREET}\b\.?|[A-Z][a-z]+)"
    r"(?<=[a-z.])(?:,\s*[A-Z][a-z]+(?:\s+[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2})?)?"
    r"|\b\d{1,5},?\s+(?:Rue|Via|Calle|Avenida|Avenue|Place|Plaza|Piazza)\s+(?:[A-Za-z]+\s+){0,3}[A-Z][a-z]+"
    r"(?:,\s*[A-Z][a-z]+)?"
)
# NER dates need an anchor: a weekday, month, relative day, numeric date, clock time or holiday
DATE_ANCHOR = re.compile(
    r"(?i:\b(mon|tue|wed|thu|fri|sat|sun)[a-z]*day\b|\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b"
    r"|\b(today|tonight|tomorrow|yesterday|weekend|christmas|easter|new year|eod|noon|midnight)\b"
    r"|\b(next|this|last|coming)\s+\w+|\d{1,2}[/.-]\d{1,2}|\d{1,2}:\d{2}|\d\s?(am|pm)\b|\d(st|nd|rd|th)\b"
    r"|\b(19|20)\d{2}\b)"
)
MONEY_CONTEXT = re.compile(r"\b(fee|price|cost|costs|paid|pay|charged?|bill|billed|refund|owe|total|invoice|"
                           r"subscription|renewal|rate|quote|budget)\b", re.I)
BARE_AMOUNT = re.compile(r"(?<![\d.,#/])\b\d{1,5}\.\d{2}\b(?![\d%/])")

NER_TYPES = {"DATE": "datetime", "TIME": "datetime", "MONEY": "money", "QUANTITY": "quantity",
             "GPE": "location", "LOC": "location", "FAC": "location", "PRODUCT": "product", "LANGUAGE": "language"}

# A text is worth the NER pass only if something in it could be an entity.
NER_GATE = re.compile(
    r"\d|(?<=[\w,;:)] )[A-Z][a-zA-Z]+|(?i:\b(?:today|tomorrow|tonight|yesterday|week|weekend|month|year|morning|"
    r"afternoon|evening|noon|midnight|monday|tuesday|wednesday|thursday|friday|saturday|sunday|january|"
    r"february|march|april|june|july|august|september|october|november|december|hours?|days?)\b)"
)

_MONTHS = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
           r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
_DAYS = r"(?:mon|tues?|wed(?:nes)?|thu(?:rs?)?|fri|sat(?:ur)?|sun)(?:day)?"
_ORD = r"\d{1,2}(?:st|nd|rd|th)?"
DATETIME = re.compile(
    rf"\b(?:(?:this|next|last|coming)\s+)?{_DAYS}\b(?:\s+(?:morning|afternoon|evening|night))?"
    rf"(?:,?\s+(?:the\s+)?{_ORD}(?:\s+(?:of\s+)?{_MONTHS})?)?(?:\s+(?:at\s+)?\d{{1,2}}(?::\d{{2}})?\s?(?:am|pm))?"
    rf"|\b{_MONTHS}\s+{_ORD}(?:,?\s+\d{{4}})?\b|\b(?:the\s+)?{_ORD}\s+(?:of\s+)?{_MONTHS}(?:,?\s+\d{{4}})?"
    r"|\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2})?\b|\b\d{1,2}/\d{1,2}(?:/\d{2,4})?\b"
    r"|\bthe\s+\d{1,2}(?:st|nd|rd|th)\b|\b\d{1,2}:\d{2}(?:\s?(?:UTC|GMT|CET|CEST|EST|EDT|PST|PDT|BST))?\b"

    r"|\b(?:today|tonight|tomorrow(?:\s+(?:morning|afternoon|evening|night))?|the day after tomorrow)\b"
    r"|\b(?:next|this|the end of the|end of the|end of)\s+(?:week|weekend|month|year)\b|\bEOD\b|\bend of (?:the )?day\b"

    r"|\b\d{1,2}(?::\d{2})?\s?(?:am|pm|a\.m\.|p\.m\.)|\b(?:noon|midday|midnight)\b",
    re.I,
)

# group 1 is the span: a bare duration is a deadline only after "within"/"in" ("within 48 hours"),
# and a bare month name only after a preposition ("invoice for march", not "I may")
DATETIME_AFTER = re.compile(
    r"\b(?:within|in|next|than|under)\s+((?:the next\s+)?(?:\d+|a|an|one|two|three|four|five|six|seven|ten|"
    r"twenty-four|forty-eight|seventy-two)\s+(?:business |working )?(?:hours?|days?|weeks?|months?))\b(?!\s+ago)"
    rf"|\b(?:for|in|of|since|until|by|before|after)\s+({_MONTHS})\b",
    re.I,
)
