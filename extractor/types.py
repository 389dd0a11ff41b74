"""Records that cross a boundary: input documents, evidence spans, signals, results, rejects.

Imports nothing of the package and no model stack, so it is cheap to import anywhere.

Offsets are Python string indices (code points: an emoji counts as one), end exclusive.
When ``Evidence.turn`` is set, offsets are into that turn's text; otherwise into ``Document.text``.

>>> doc = Document(id="t1", text="Refund me by Friday")
>>> ev = Evidence.of(doc.text, 13, 19)
>>> doc.text[ev.start:ev.end] == ev.text
True
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = "1"

Role = Literal["customer", "agent", "system", "unknown"]
Match = Literal["exact", "casefold", "fuzzy", "substring"]
SignalKind = Literal["intent", "sentiment", "urgency", "constraint"]
Scope = Literal["document", "speaker", "turn"]


class Turn(BaseModel):
    """One speaker turn of a transcript."""

    model_config = ConfigDict(extra="forbid")

    speaker: str = Field(description="Speaker as written in the input, e.g. 'Agent' or 'Customer'.")
    text: str
    ts: str | None = Field(default=None, description="Timestamp as written, e.g. '00:01:07'.")
    role: Role = Field(default="unknown", description="customer / agent / system, derived from speaker.")


class _DocumentFields(BaseModel):
    """What a document and its result share: identity, context and the original content."""

    model_config = ConfigDict(extra="forbid")

    id: str
    customer_id: str | None = None
    channel: str | None = None
    created_at: datetime | None = None
    text: str | None = None
    turns: list[Turn] | None = None


class Document(_DocumentFields):
    """One input document: either plain ``text`` or a transcript of ``turns``."""

    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _text_or_turns(self) -> Document:
        if (self.text is None) == (self.turns is None):
            raise ValueError("a document needs exactly one of 'text' or 'turns'")
        return self

    def units(self) -> list[tuple[int | None, str, Role]]:
        """The texts offsets point into: ``(turn index or None, text, role)``."""
        if self.turns is None:
            return [(None, self.text or "", "customer")]
        return [(i, t.text, t.role) for i, t in enumerate(self.turns)]

    def unit_text(self, turn: int | None) -> str:
        return (self.text or "") if turn is None else self.turns[turn].text  # type: ignore[index]


class Evidence(BaseModel):
    """A quote that justifies a signal, with exact offsets into the original text."""

    model_config = ConfigDict(extra="forbid")

    start: int = Field(ge=0)
    end: int = Field(ge=0)
    text: str
    turn: int | None = Field(default=None, description="Turn index when the document has turns.")
    match: Match = Field(default="exact", description="How the quote was located in the text.")

    @classmethod
    def of(cls, source: str, start: int, end: int, turn: int | None = None, match: Match = "exact") -> Evidence:
        """Evidence for ``source[start:end]``; the text is always sliced, never retyped."""
        if not 0 <= start <= end <= len(source):
            raise ValueError(f"span {start}:{end} outside text of length {len(source)}")
        return cls(start=start, end=end, text=source[start:end], turn=turn, match=match)


class Signal(BaseModel):
    """One extracted signal. ``confidence`` is a calibrated probability that ``label`` is right."""

    model_config = ConfigDict(extra="forbid")

    kind: SignalKind
    label: str
    score: float | None = Field(default=None, description="sentiment in [-1, 1], urgency in [0, 1].")
    confidence: float = Field(ge=0.0, le=1.0)
    speaker: str | None = Field(default=None, description="Role of the speaker the signal is about.")
    scope: Scope = "document"
    value: Any = Field(default=None, description="Normalised value, e.g. ISO date or {amount, currency}.")
    evidence: list[Evidence] = Field(default_factory=list)
    extractor: str = Field(default="", description="Component that produced it, e.g. 'local.intent@1'.")


class Provenance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    extractor: str = "signals"
    version: str
    mode: str = "local"
    models: dict[str, str] = Field(default_factory=dict)
    taxonomy: str | None = None
    created: datetime


class Usage(BaseModel):
    """What one document cost the LLM path: calls made, replies served from the cache, tokens, latency."""

    model_config = ConfigDict(extra="forbid")

    model_calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = Field(default=0.0, description="Latency of this document's model calls, summed.")
    repairs: int = Field(default=0, description="Calls that asked the model to fix an invalid reply.")
    chunks: int = 0
    packed: int = Field(default=1, description="Documents that shared this document's model call (packing); "
                                               "the call's cost is booked on the pack's first document.")
    ungrounded: int = Field(default=0, description="Items dropped because their quote is not in the text.")
    error: str | None = Field(default=None, description="cascade: why the LLM call failed (local signals kept).")


class ExtractionResult(_DocumentFields):
    """One output row per input document (same id), carrying the document's text so quotes resolve."""

    schema_version: str = SCHEMA_VERSION
    signals: list[Signal] = Field(default_factory=list)
    provenance: Provenance
    usage: Usage | None = Field(default=None, description="LLM cost of this document (llm and cascade modes).")

    def of_kind(self, kind: str) -> list[Signal]:
        return [s for s in self.signals if s.kind == kind]


class Reject(BaseModel):
    """An input row that could not be processed, and why. Written to the rejects file."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(description="File (or '<stdin>') the row came from.")
    line: int | None = Field(default=None, description="1-based line / row number in that source.")
    id: str | None = None
    stage: Literal["read", "parse", "validate", "extract"] = "read"
    reason: str
    raw: str | None = Field(default=None, description="The start of the raw row, for inspection.")


class RunSummary(BaseModel):
    """Written beside the output as ``OUT.summary.json``."""

    n_in: int = 0
    n_ok: int = 0
    n_rejected: int = 0
    n_resumed: int = Field(default=0, description="Rows already present from an earlier, interrupted run.")
    n_opted_out: int = Field(default=0, description="Documents of opted-out customers, skipped unread "
                                                    "(n_in = n_ok + n_rejected + n_opted_out).")
    docs_per_s: float = 0.0
    seconds: float = 0.0
    output: str = ""
    rejects: str = ""
    counts: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="First intent/sentiment/urgency label per document extracted in this run "
                                          "(documents kept from an earlier run are not recounted).")
    reject_reasons: dict[str, int] = Field(default_factory=dict)
    mode: str = "local"
    model_calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_docs: int = Field(default=0, description="Documents sent to the LLM path (all of them in llm mode).")
    routed_fraction: float | None = Field(default=None, description="cascade: share of documents sent to the LLM.")
    llm_failures: int = Field(default=0, description="cascade: documents whose LLM call failed (local kept).")
    grounding: dict[str, float] = Field(
        default_factory=dict, description="LLM quotes: total, kept by match type, dropped, and the grounding rate.")
    stopped: str | None = Field(default=None, description="Why the run stopped early (token budget), if it did.")


# --- customer state (signals state) -----------------------------------------------------------------------------


class EvidenceRef(BaseModel):
    """A quote that supports a state field: the document, where in it, and the signal it backed."""

    doc_id: str
    created_at: datetime | None = None
    channel: str | None = None
    signal: str = Field(description="kind:label of the signal this quote backs, e.g. 'intent:cancel_order'.")
    turn: int | None = None
    start: int
    end: int
    text: str


class IntentState(BaseModel):
    label: str
    active: bool = Field(description="Seen within the active window (intent_active_days) before as_of.")
    count: int
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    confidence: float = Field(description="The highest confidence among its mentions.")
    documents: list[str] = Field(default_factory=list)
    evidence: list[EvidenceRef] = Field(default_factory=list)


class SentimentPoint(BaseModel):
    doc_id: str
    created_at: datetime | None = None
    label: str
    score: float
    weight: float = Field(description="Its weight in the trend: 0.5 ** (age / half-life).")


class SentimentState(BaseModel):
    label: str = Field(description="Of the latest contact.")
    score: float = Field(description="Of the latest contact, in [-1, 1].")
    at: datetime | None = None
    trend_score: float = Field(description="Exponentially weighted mean of all contacts' scores.")
    trend: Literal["improving", "worsening", "stable", "new"]
    previous_trend_score: float | None = Field(default=None, description="The weighted mean before the latest contact.")
    half_life_days: float
    history: list[SentimentPoint] = Field(default_factory=list)
    evidence: list[EvidenceRef] = Field(default_factory=list)


class UrgencyState(BaseModel):
    score: float = Field(description="Now: the highest urgency decayed by 0.5 ** (age / half-life), in [0, 1].")
    level: str
    half_life_days: float
    peak: float
    peak_level: str
    peak_at: datetime | None = None
    peak_doc: str | None = None
    now_doc: str | None = Field(default=None, description="The contact whose decayed urgency is the highest now.")
    evidence: list[EvidenceRef] = Field(default_factory=list)


class ConstraintState(BaseModel):
    type: str
    value: Any = None
    status: Literal["open", "closed", "superseded"]
    reason: str | None = Field(default=None, description="Why it is closed or superseded.")
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    documents: list[str] = Field(default_factory=list)
    evidence: list[EvidenceRef] = Field(default_factory=list)


class ChannelCount(BaseModel):
    channel: str
    count: int
    documents: list[str] = Field(default_factory=list)


class CustomerState(BaseModel):
    """One customer as the workspace knows them at ``as_of``; every field names its documents and quotes."""

    customer_id: str
    as_of: datetime
    version: int | None = Field(default=None, description="State version (bumped when new data touches them).")
    profile: dict[str, Any] | None = Field(default=None, description="Attributes, source and import time.")
    interactions: int = 0
    first_contact: datetime | None = None
    last_contact: datetime | None = None
    channels: list[ChannelCount] = Field(default_factory=list)
    intents: list[IntentState] = Field(default_factory=list)
    sentiment: SentimentState | None = None
    urgency: UrgencyState | None = None
    constraints: list[ConstraintState] = Field(default_factory=list, description="Open ones.")
    closed_constraints: list[ConstraintState] = Field(default_factory=list, description="Closed or superseded.")
    documents: list[str] = Field(default_factory=list)
    overrides: list[dict[str, Any]] = Field(default_factory=list, description="Analysts' corrections applied.")
