"""The local extractor: one batch of documents in, one ``ExtractionResult`` per document out.

All sentences of a batch (and each multi-sentence turn as a whole) are encoded in one call; the
intent, sentiment and urgency models read those vectors, spaCy NER runs once over the customer
texts that could hold an entity, and rules add the rest. Only customer (or unidentified) speakers'
words produce intent, urgency and constraints; the agent gets a sentiment of their own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from ..segment import Segment, is_customer, sentence_spans
from ..types import Document, Evidence, Signal
from .constraints import ConstraintExtractor
from .intent import IntentClassifier
from .linear import LinearIntent
from .sentiment import SentimentHead, emoji_shift
from .urgency import LearnedUrgency, UrgencySemantics, combine, confidence, find_calm, find_cues, level

log = logging.getLogger(__name__)

MAX_UNIT_SENTENCES = 8  # a turn with more sentences is read sentence by sentence only
SHORT_UNIT_CHARS = 120  # shorter turns/messages are read (and quoted) whole
MAX_SECONDARY_INTENTS = 2
TURN_DECAY = 0.85  # weight of the k-th customer turn's intent: 0.85 ** k
V = "1"


@dataclass
class _Unit:
    """A turn (or a plain document's text): its sentences and, if multi-sentence, its whole span."""

    turn: int | None
    role: str
    text: str
    sentences: list[Segment] = field(default_factory=list)
    whole: Segment | None = None
    row: int = -1                 # row of the unit's own vector (whole, or its single sentence)

    @property
    def candidates(self) -> list[Segment]:
        return self.sentences + ([self.whole] if self.whole else [])


def _units(doc: Document) -> list[_Unit]:
    units = []
    for turn, text, role in doc.units():
        spans = sentence_spans(text)
        if SHORT_UNIT_CHARS and 1 < len(spans) and spans[-1][1] - spans[0][0] <= SHORT_UNIT_CHARS:
            spans = [(spans[0][0], spans[-1][1])]  # a short message is one segment: one encode, one quote
        unit = _Unit(turn, role, text)
        unit.sentences = [Segment(0, turn, role, None, s, e, text[s:e]) for s, e in spans]
        if 1 < len(spans) <= MAX_UNIT_SENTENCES:
            s, e = spans[0][0], spans[-1][1]
            unit.whole = Segment(0, turn, role, None, s, e, text[s:e])
        units.append(unit)
    return units


def _mean_vector(x: np.ndarray, unit: _Unit, seg_rows: dict[int, int]) -> np.ndarray:
    """The unit's vector: the length-weighted mean of its sentences' rows of ``x``, unit-normalised."""
    idx = [seg_rows[id(s)] for s in unit.sentences]
    w = np.array([len(s.text) for s in unit.sentences], dtype=np.float32)
    v = (x[idx] * w[:, None]).sum(axis=0)
    return v / (np.linalg.norm(v) + 1e-12)


def _ev(seg: Segment) -> Evidence:
    return Evidence(start=seg.start, end=seg.end, text=seg.text, turn=seg.turn)


class LocalExtractor:
    """Holds the loaded models; ``extract_batch`` is pure with respect to its inputs."""

    def __init__(self, embedder, intent: IntentClassifier | LinearIntent, sentiment: SentimentHead,
                 constraints: ConstraintExtractor, model_embedder=None, model_task: str | None = None,
                 learned_urgency: LearnedUrgency | None = None):
        self.embedder = embedder
        # a fine-tuned model (``signals train``) reads its own encoder's vectors for its task
        self.model_embedder, self.model_task = model_embedder, model_task
        self.intent = intent
        self.sentiment = sentiment
        self.constraints = constraints
        self.urgency = UrgencySemantics(embedder)
        self.learned_urgency = learned_urgency

    # -- batch -------------------------------------------------------------------------------------
    def extract_batch(self, docs: list[Document]) -> list[list[Signal]]:
        """Signals for each document, in order."""
        all_units = [_units(d) for d in docs]
        segs: list[Segment] = []
        seg_rows: dict[int, int] = {}
        for units in all_units:
            for u in units:
                for seg in u.candidates:
                    seg_rows[id(seg)] = len(segs)
                    segs.append(seg)
                own = u.whole or (u.sentences[0] if len(u.sentences) == 1 else None)
                u.row = seg_rows[id(own)] if own is not None else -1
        flat = [u for units in all_units for u in units]
        x = self._embed(segs, seg_rows, flat, self.embedder)
        xm = self._model_vectors(segs, seg_rows, flat, x)
        xs = xm if self.model_task == "sentiment" else x
        probs = self.sentiment.predict_proba(xs) if len(xs) else np.zeros((0, 3), np.float32)
        probs = emoji_shift([s.text for s in segs], probs, self.sentiment.labels)
        urgent = self.urgency.score(x)
        customer_rows = [seg_rows[id(s)] for units in all_units for u in units if is_customer(u.role)
                         for s in u.candidates]
        xi = xm if self.model_task in ("intent", "intents") else x
        intent_scores = self.intent.scores(xi[customer_rows]) if customer_rows else None
        intent_at = {r: i for i, r in enumerate(customer_rows)}
        learned = self._learned_urgency(flat, seg_rows, xm if self.model_task == "urgency" else x)
        ner_docs = self._ner(docs, all_units)
        out = []
        for k, (doc, units) in enumerate(zip(docs, all_units)):
            ctx = _Ctx(x, probs, urgent, seg_rows, intent_scores, intent_at, ner_docs.get(k, {}), learned)
            out.append(self._signals(doc, units, ctx))
        return out

    def _model_vectors(self, segs: list[Segment], seg_rows: dict[int, int], units: list[_Unit],
                       x: np.ndarray) -> np.ndarray:
        """Vectors from a fine-tuned model's own encoder, only for the segments its task reads (intent and
        urgency: the customer's; sentiment: everyone's). Without such a model: the pipeline's vectors."""
        if self.model_embedder is None or not segs:
            return x
        if self.model_task != "sentiment":
            units = [u for u in units if is_customer(u.role)]
        rows = sorted({seg_rows[id(s)] for u in units for s in u.candidates})
        sub = [segs[i] for i in rows]
        xm = np.zeros((len(segs), self.model_embedder.dim), dtype=np.float32)
        if sub:
            xm[rows] = self._embed(sub, {id(s): k for k, s in enumerate(sub)}, units, self.model_embedder)
        return xm

    @staticmethod
    def _embed(segs: list[Segment], seg_rows: dict[int, int], units: list[_Unit], embedder) -> np.ndarray:
        """Encode every sentence once; a multi-sentence turn's vector is the length-weighted mean of its
        sentences' (the same tokens, so a turn costs no more than its sentences)."""
        wholes = {seg_rows[id(u.whole)]: u for u in units if u.whole is not None}
        rest = [i for i in range(len(segs)) if i not in wholes]
        x = np.zeros((len(segs), embedder.dim), dtype=np.float32)
        if rest:
            x[rest] = embedder.encode([segs[i].text for i in rest])
        for row, u in wholes.items():
            x[row] = _mean_vector(x, u, seg_rows)
        return x

    def _learned_urgency(self, units: list[_Unit], seg_rows: dict[int, int], x: np.ndarray) -> dict[int, float]:
        """A trained urgency head's score per customer turn, read from the turn's length-weighted mean vector
        (how whole tickets look in training)."""
        customer = [u for u in units if is_customer(u.role) and u.sentences]
        if self.learned_urgency is None or not customer:
            return {}
        vecs = np.stack([_mean_vector(x, u, seg_rows) for u in customer])
        return dict(zip((id(u) for u in customer), self.learned_urgency.score(vecs).tolist()))

    def _ner(self, docs: list[Document], all_units: list[list[_Unit]]) -> dict[int, dict[int | None, list]]:
        """NER entities of every customer unit worth reading, in one spaCy pass for the batch."""
        jobs = [(k, u.turn, u.text) for k, units in enumerate(all_units) for u in units
                if is_customer(u.role) and self.constraints.needs_ner(u.text)]
        found: dict[int, dict[int | None, list]] = {}
        for (k, turn, _), ents in zip(jobs, self.constraints.entities([j[2] for j in jobs])):
            found.setdefault(k, {})[turn] = ents
        return found

    # -- one document ------------------------------------------------------------------------------
    def _signals(self, doc: Document, units: list[_Unit], ctx: _Ctx) -> list[Signal]:
        customer = [u for u in units if is_customer(u.role) and u.sentences]
        signals = self._intent(customer, ctx)
        signals += self._sentiment(doc, units, ctx)
        constraints = self._constraints(doc, customer, ctx)
        signals.append(self._urgency(doc, customer, constraints, ctx))
        return signals + constraints

    def _intent(self, customer: list[_Unit], ctx: _Ctx) -> list[Signal]:
        """Decide on whole turns (long turns: their sentences); quote the sentence that matched best."""
        cands = [(u, seg) for u in customer
                 for seg in ([u.whole or u.sentences[0]] if u.row >= 0 else u.sentences)]
        if not cands or ctx.intent_scores is None:
            return [Signal(kind="intent", label="out_of_scope", confidence=0.5, speaker="customer",
                           extractor=f"local.intent@{V}", value={"reason": "no customer text"})]
        rows = [ctx.seg_rows[id(seg)] for _, seg in cands]
        s = np.stack([self._unit_scores(u, seg, ctx) for u, seg in cands])
        preds = self.intent.decide(self.intent.with_sentiment(s, self.sentiment.score(ctx.probs[rows])))
        # customers state why they came early; a closing "thanks, great help" must not outrank it
        order = {id(u): k for k, u in enumerate(customer)}
        ranked = sorted(range(len(cands)),
                        key=lambda i: -preds[i].confidence * TURN_DECAY ** min(order[id(cands[i][0])], 6))
        in_scope = [i for i in ranked if preds[i].label != "out_of_scope"]
        if not in_scope:
            i = max(range(len(cands)), key=lambda j: preds[j].confidence)
            return [Signal(kind="intent", label="out_of_scope", confidence=round(preds[i].confidence, 4),
                           speaker="customer", evidence=[_ev(cands[i][1])], extractor=f"local.intent@{V}",
                           value={"similarity": round(preds[i].similarity, 4), "nearest": preds[i].nearest,
                                  "nearest_confidence": None if preds[i].nearest_confidence is None
                                  else round(preds[i].nearest_confidence, 4)})]
        # a multi-label head says itself which labels apply (each above its calibrated threshold)
        limit, floor = (self.intent.max_labels, 0.0) if getattr(self.intent, "multi_label", False) else \
            (MAX_SECONDARY_INTENTS + 1, 0.5)
        out, seen = [], set()
        for i in in_scope:
            p = preds[i]
            for label, conf, score in ((p.label, p.confidence, p.similarity), *p.also):
                if label in seen or len(out) >= limit or (out and conf < floor):
                    continue
                seen.add(label)
                unit, seg = cands[i]
                out.append(Signal(kind="intent", label=label, confidence=round(conf, 4), speaker="customer",
                                  evidence=[_ev(self._best_sentence(unit, seg, label, ctx))],
                                  extractor=f"local.intent@{V}",
                                  value={"rank": len(out) + 1, "similarity": round(score, 4)}))
        return out

    def _unit_scores(self, unit: _Unit, seg: Segment, ctx: _Ctx) -> np.ndarray:
        """A multi-sentence turn: the mean of the whole turn's scores and its best sentence's, per label.

        The whole turn carries context; the best sentence carries the specific request a greeting
        or a story around it would dilute.
        """
        row = ctx.intent_of([seg])[0]
        if seg is not unit.whole:
            return row
        return 0.5 * row + 0.5 * ctx.intent_of(unit.sentences).max(axis=0)

    def _best_sentence(self, unit: _Unit, seg: Segment, label: str, ctx: _Ctx) -> Segment:
        """Within a multi-sentence turn, the sentence that scores highest for ``label``."""
        if seg is not unit.whole:
            return seg
        j = self.intent.labels.index(label)
        return unit.sentences[int(np.argmax(ctx.intent_of(unit.sentences)[:, j]))]

    def _unit_proba(self, u: _Unit, ctx: _Ctx) -> np.ndarray:
        if u.row >= 0:
            return ctx.probs[u.row]
        rows = [ctx.seg_rows[id(s)] for s in u.sentences]
        return ctx.probs[rows].mean(axis=0)

    def _sentiment_signal(self, p: np.ndarray, sents: list[Segment], ctx: _Ctx, speaker: str | None,
                          scope: str) -> Signal:
        j = int(np.argmax(p))
        label = self.sentiment.labels[j]
        rows = [ctx.seg_rows[id(s)] for s in sents]
        agree = [i for i in range(len(sents)) if int(np.argmax(ctx.probs[rows[i]])) == j] or list(range(len(sents)))
        best = sorted(agree, key=lambda i: -ctx.probs[rows[i], j])[:2 if label != "neutral" else 1]
        return Signal(kind="sentiment", label=label, score=round(float(self.sentiment.score(p)), 4),
                      confidence=round(float(p[j]), 4), speaker=speaker, scope=scope,
                      evidence=[_ev(sents[i]) for i in sorted(best)], extractor=f"local.sentiment@{V}")

    def _sentiment(self, doc: Document, units: list[_Unit], ctx: _Ctx) -> list[Signal]:
        out: list[Signal] = []
        by_role: dict[str, list[tuple[np.ndarray, float, _Unit]]] = {}
        for u in units:
            if not u.sentences or u.role == "system":  # "Call transferred" has no feelings, and is no agent's
                continue
            p = self._unit_proba(u, ctx)
            role = "customer" if is_customer(u.role) else "agent"
            weight = np.sqrt(len(u.text)) * (0.5 + 1.0 - float(p[self.sentiment.labels.index("neutral")]))
            by_role.setdefault(role, []).append((p, weight, u))
            if doc.turns is not None:
                out.append(self._sentiment_signal(p, u.sentences, ctx, role, "turn"))
        for role, items in by_role.items():
            w = np.array([it[1] for it in items])
            p = (np.stack([it[0] for it in items]) * w[:, None]).sum(axis=0) / w.sum()
            sents = [s for it in items for s in it[2].sentences]
            scope = "document" if role == "customer" else "speaker"
            out.insert(0, self._sentiment_signal(p, sents, ctx, role, scope))
        if not by_role.get("customer"):
            out.insert(0, Signal(kind="sentiment", label="neutral", score=0.0, confidence=0.5, speaker="customer",
                                 extractor=f"local.sentiment@{V}", value={"reason": "no customer text"}))
        return out

    def _constraints(self, doc: Document, customer: list[_Unit], ctx: _Ctx) -> list[Signal]:
        out = []
        ref = doc.created_at
        for u in customer:
            for c in self.constraints.extract(u.text, ref, ents=ctx.ner.get(u.turn, [])):
                out.append(Signal(kind="constraint", label=c.label, confidence=c.confidence, speaker="customer",
                                  value=c.value, extractor=f"local.constraints@{V}:{c.source}",
                                  evidence=[Evidence(start=c.start, end=c.end, text=c.text, turn=u.turn)]))
        return out

    def _urgency(self, doc: Document, customer: list[_Unit], constraints: list[Signal], ctx: _Ctx) -> Signal:
        cues, calm, evidence = [], False, []
        for u in customer:
            for c in find_cues(u.text):
                cues.append(c)
                evidence.append(Evidence(start=c.start, end=c.end, text=c.text, turn=u.turn))
            calm = calm or bool(find_calm(u.text))
        sents = [s for u in customer for s in u.sentences]
        rows = [ctx.seg_rows[id(s)] for s in sents]
        semantic = float(ctx.urgent[rows].max()) if rows else 0.0
        score = combine(cues, semantic, calm, near_deadline=_near_deadline(doc.created_at, constraints))
        value = {"cues": sorted({c.category for c in cues}), "semantic": round(semantic, 4), "calm": calm}
        learned = [ctx.learned[id(u)] for u in customer if id(u) in ctx.learned]
        if learned:  # a trained head: the higher of what the rules and the labelled data say
            value |= {"rules": round(score, 4), "learned": round(max(learned), 4)}
            score = max(score, max(learned))
        if not evidence and sents:  # no cue: the sentence that sounds most urgent is what was judged
            evidence = [_ev(sents[int(np.argmax(ctx.urgent[rows]))])]
        order = sorted(range(len(cues)), key=lambda i: -cues[i].weight)[:6]
        evidence = [evidence[i] for i in sorted(order)] if cues else evidence
        return Signal(kind="urgency", label=level(score), score=round(score, 4), confidence=confidence(score),
                      speaker="customer", value=value, evidence=evidence, extractor=f"local.urgency@{V}")


def _near_deadline(created: datetime | None, constraints: list[Signal]) -> bool:
    """A customer deadline within two days of the document's date."""
    if created is None:
        return False
    base = created.replace(tzinfo=None)
    for s in constraints:
        iso = (s.value or {}).get("iso") if s.label == "datetime" else None
        if not iso or not s.value.get("deadline") or iso.startswith("T"):
            continue
        try:
            when = datetime.fromisoformat(iso)
        except ValueError:
            continue
        if 0 <= (when.date() - base.date()).days <= 2:
            return True
    return False


@dataclass
class _Ctx:
    x: np.ndarray
    probs: np.ndarray
    urgent: np.ndarray
    seg_rows: dict[int, int]
    intent_scores: np.ndarray | None
    intent_at: dict[int, int]
    ner: dict
    learned: dict[int, float]  # trained urgency score per customer unit (id), empty without a model

    def intent_of(self, segs: list[Segment]) -> np.ndarray:
        """Intent score rows of customer segments."""
        return self.intent_scores[[self.intent_at[self.seg_rows[id(s)]] for s in segs]]
