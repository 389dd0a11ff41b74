"""Compose the stages: read → segment → embed → extract → write, in bounded batches, resumably.

>>> from extractor import Pipeline
>>> pipe = Pipeline()                                            # models load on first use
>>> result = pipe.extract("I was charged twice, fix it by Friday")  # doctest: +SKIP
>>> [s.kind for s in result.signals][:3]                           # doctest: +SKIP
['intent', 'sentiment', 'urgency']
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path

from pydantic import ValidationError

from . import __version__
from .errors import BudgetExceeded, ConfigError, SignalsError
from .types import Document, ExtractionResult, Provenance, Reject, RunSummary

log = logging.getLogger(__name__)

DEFAULT_BATCH = 256


def _batched(items: Iterable, n: int) -> Iterator[list]:
    it = iter(items)
    while chunk := list(itertools.islice(it, n)):
        yield chunk


class Pipeline:
    """Loaded models plus the run loop. Reuse one instance to pay model loading once.

    Parameters name what to load; nothing loads until the first document arrives.
    """

    def __init__(self, taxonomy: str | Path | None = None, *, shots: int | None = None, seed: int = 0,
                 label_field: str = "label", model: str | Path | None = None,
                 encoder: str | None = None, catalog: str | Path | None = None,
                 sentiment_head: str | Path | None = None, ner: bool = True, max_chars: int = 1_000_000,
                 mode: str = "local", llm=None, agent_names: Iterable[str] = ()):
        from .cascade import MODES

        if mode not in MODES:
            raise ConfigError(f"--mode {mode!r}: choose one of {', '.join(MODES)}")
        if mode != "local" and llm is None:
            raise ConfigError(f"--mode {mode} needs an LLM: give --backend and --llm-model (see `signals extract "
                              "--help`), or pass llm=LLMOptions(...) to Pipeline")
        self.mode, self.llm_options, self._llm = mode, llm, None
        self.taxonomy_spec, self.shots, self.seed, self.label_field = taxonomy, shots, seed, label_field
        self.model_spec = model
        self.encoder_spec, self.catalog_spec, self.head_spec = encoder, catalog, sentiment_head
        self.use_ner, self.max_chars = ner, max_chars
        # speakers who are agents although their label does not say so ("Dana: Hi, this is Dana from support")
        self.agent_names = frozenset(n.strip() for n in agent_names if n.strip())
        self._local = None
        self._provenance_models: dict[str, str] = {}
        self._taxonomy_id: str | None = None

    # -- models --------------------------------------------------------------------------------------
    @property
    def local(self):
        """The loaded ``LocalExtractor`` (loads encoder, taxonomy, heads and spaCy on first access)."""
        if self._local is None:
            self._local = self._load_local()
        return self._local

    def _load_local(self):
        from .embed import load_embedder
        from .local.constraints import SPACY_MODEL, ConstraintExtractor, load_catalog, load_spacy
        from .local.intent import IntentClassifier
        from .local.runner import LocalExtractor
        from .local.sentiment import SentimentHead
        from .taxonomy import load_taxonomy

        t0 = time.perf_counter()
        embedder = load_embedder(self.encoder_spec)
        manifest, trained = self._trained_model(embedder.model_id)
        model_embedder = self._model_embedder(manifest)
        if manifest and manifest["task"] in ("intent", "intents"):
            from .local.linear import LinearIntent

            intent = LinearIntent(trained, f"{self.model_spec}#{manifest['data_sha256'][:12]}")
            kind = "finetuned" if model_embedder else "linear"
            taxonomy_id = f"model:{Path(self.model_spec).name}"
            fingerprint = manifest["data_sha256"][:12]
        else:
            taxonomy = load_taxonomy(self.taxonomy_spec, shots=self.shots, seed=self.seed,
                                     label_field=self.label_field)
            intent = IntentClassifier.fit(taxonomy, embedder)
            kind, taxonomy_id, fingerprint = "prototype-knn", taxonomy.id, taxonomy.fingerprint()
        if manifest and manifest["task"] == "sentiment":
            head = SentimentHead(trained, str(self.model_spec))
            if model_embedder is None:  # a fine-tuned model's head reads its own encoder
                head.check_encoder(embedder)
        else:
            head = SentimentHead.load(self.head_spec)
            head.check_encoder(embedder)
        learned_urgency = None
        if manifest and manifest["task"] == "urgency":
            from .local.urgency import LearnedUrgency

            learned_urgency = LearnedUrgency(trained, f"model:{Path(self.model_spec).name}#"
                                                      f"{manifest['data_sha256'][:12]}")
        nlp = load_spacy(max_chars=self.max_chars) if self.use_ner else None
        constraints = ConstraintExtractor(nlp, load_catalog(self.catalog_spec))
        self._taxonomy_id = taxonomy_id
        self._provenance_models = {
            "encoder": embedder.model_id,
            **({"model_encoder": model_embedder.model_id} if model_embedder else {}),
            "intent": f"{kind}@{taxonomy_id}#{fingerprint}",
            "sentiment": head.id,
            **({"urgency": f"rules+learned@{learned_urgency.id}"} if learned_urgency else {}),
            "ner": SPACY_MODEL if nlp is not None else "none",
        }
        log.info("models loaded in %.1fs", time.perf_counter() - t0)
        return LocalExtractor(embedder, intent, head, constraints, model_embedder=model_embedder,
                              model_task=manifest["task"] if manifest else None, learned_urgency=learned_urgency)

    def _trained_model(self, wanted: str) -> tuple[dict | None, dict | None]:
        """The manifest and head of ``--model DIR``, checked against the encoder in use (``wanted``)."""
        if self.model_spec is None:
            return None, None
        from .train import load_model

        manifest, head = load_model(self.model_spec)
        if not manifest.get("model_encoder") and manifest["encoder"] != wanted:
            raise ConfigError(f"Model {self.model_spec} was trained on {manifest['encoder']} but the encoder is "
                              f"{wanted}; pass --encoder for the model's encoder or retrain.")
        return manifest, head

    def _model_embedder(self, manifest: dict | None):
        """The fine-tuned encoder inside ``--model DIR`` (None for a head on the pipeline's encoder)."""
        if not manifest or not manifest.get("model_encoder"):
            return None
        from .embed import load_embedder

        emb = load_embedder(str(Path(self.model_spec) / manifest["model_encoder"]))
        emb.model_id = f"model:{Path(self.model_spec).name}/{manifest['model_encoder']}"
        return emb

    @property
    def llm(self):
        """The loaded ``LLMExtractor`` (llm and cascade modes; loads the backend on first access)."""
        if self._llm is None:
            from .cascade import build_llm

            self._llm = build_llm(self.llm_options, self._llm_intents())
        return self._llm

    def _llm_intents(self) -> dict[str, str]:
        """The taxonomy the LLM prompt lists: a trained intent model's labels, else the taxonomy's."""
        if self.model_spec is not None:
            from .train import load_model

            manifest, _ = load_model(self.model_spec)
            if manifest["task"] in ("intent", "intents"):
                return {label: "" for label in manifest["labels"] if label != "out_of_scope"}
        from .cascade import taxonomy_intents
        from .taxonomy import load_taxonomy

        taxonomy = load_taxonomy(self.taxonomy_spec, shots=self.shots, seed=self.seed, label_field=self.label_field)
        if self._taxonomy_id is None:
            self._taxonomy_id = taxonomy.id
        return taxonomy_intents(taxonomy)

    def load(self) -> None:
        """Load every model this pipeline's mode needs now (and fail now on a bad option)."""
        if self.mode != "llm":
            self.local  # noqa: B018
        if self.mode != "local":
            self.llm  # noqa: B018

    def provenance(self) -> Provenance:
        self.load()  # make sure model ids are known
        models = dict(self._provenance_models)
        if self.mode != "local":
            models.update(llm=self.llm.backend.model_id, prompt=self.llm.prompt.id)
        return Provenance(version=__version__, mode=self.mode, models=models,
                          taxonomy=self._taxonomy_id, created=datetime.now(timezone.utc))

    # -- extraction ------------------------------------------------------------------------------------
    def extract(self, doc: Document | str, **fields) -> ExtractionResult:
        """Extract signals from one document (a ``Document`` or plain text)."""
        if not isinstance(doc, (str, Document)):
            raise ConfigError(f"extract() takes a str or a Document, not {type(doc).__name__}")
        if isinstance(doc, str):
            try:
                doc = Document(id=str(fields.pop("id", "doc-1")), text=doc, **fields)
            except ValidationError as exc:
                raise ConfigError(f"Invalid document fields: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}. "
                                  "Fields are id, customer_id, channel, created_at (ISO date), metadata.") from exc
        out = self.extract_batch([doc])[0]
        if out is None:
            raise BudgetExceeded(f"Document {doc.id} was not processed: the token budget is spent.")
        if isinstance(out, Reject):
            raise SignalsError(f"Document {doc.id} could not be processed: {out.reason}")
        return out

    def extract_batch(self, docs: Sequence[Document]) -> list[ExtractionResult | Reject | None]:
        """One result (or a Reject, if that document failed) per document, in order.

        In llm and cascade modes an item is None when the token budget ran out before its turn."""
        if not docs:
            return []
        docs = [_with_roles(d, self.agent_names) for d in docs]
        if self.mode == "local":
            return self._local_batch(docs)
        from .cascade import llm_stage

        local = self._local_batch(docs) if self.mode == "cascade" else None
        return llm_stage(self, docs, local)

    def _local_batch(self, docs: Sequence[Document]) -> list[ExtractionResult | Reject]:
        if not docs:
            return []
        empty = {i for i, d in enumerate(docs) if not _has_customer_text(d)}
        if empty:
            todo = [d for i, d in enumerate(docs) if i not in empty]
            done = iter(self._local_batch(todo))
            return [_no_customer_text(d) if i in empty else next(done) for i, d in enumerate(docs)]
        local = self.local  # loading the models is not a document's failure: a bad option fails the call
        try:
            batches = local.extract_batch(list(docs))
        except SignalsError:
            raise
        except Exception:  # a failure in one document must not lose the batch: retry one by one
            log.exception("batch of %d failed; retrying documents one at a time", len(docs))
            return [self._one(d) for d in docs]
        prov = self.provenance()
        return [self._result(d, sigs, prov) for d, sigs in zip(docs, batches)]

    def _one(self, doc: Document) -> ExtractionResult | Reject:
        try:
            return self._result(doc, self.local.extract_batch([doc])[0], self.provenance())
        except SignalsError:
            raise
        except Exception as exc:
            log.debug("document %s failed", doc.id, exc_info=True)
            return Reject(source=f"document {doc.id}", id=doc.id, stage="extract",
                          reason=f"extraction failed: {type(exc).__name__}: {exc}")

    @staticmethod
    def _result(doc: Document, signals, prov: Provenance) -> ExtractionResult:
        return ExtractionResult(id=doc.id, customer_id=doc.customer_id, channel=doc.channel,
                                created_at=doc.created_at, text=doc.text, turns=doc.turns,
                                signals=signals, provenance=prov)

    # -- batch run -------------------------------------------------------------------------------------
    def run(self, inputs: Sequence[str], out: str | Path, *, fields=None, fmt: str | None = None,
            encoding: str = "utf-8", resume: bool = True, batch_size: int = DEFAULT_BATCH,
            on_progress: Callable[[int, int], None] | None = None,
            opted_out: set[str] | frozenset[str] = frozenset()) -> RunSummary:
        """Extract every document of ``inputs`` into ``out`` (JSONL, or Parquet by extension).

        Rejected rows go to ``OUT.rejects.jsonl``; a summary to ``OUT.summary.json``. With
        ``resume`` (default) documents already in ``out`` are skipped, so a crashed run restarts
        where it stopped, without duplicates. ``on_progress(n_done, n_rejected)`` is called per batch.
        Documents of customers in ``opted_out`` (markers from ``Store.opted_out``) are counted and
        skipped: nothing of theirs is extracted, cached or written.
        """
        from .io import (
            DocumentReader,
            FieldMap,
            RejectSink,
            ResultSink,
            partial_path_for,
            rejects_path_for,
            summary_path_for,
            write_summary,
        )
        from .store import is_opted_out

        out = Path(out)
        own = [out, rejects_path_for(out), summary_path_for(out), partial_path_for(out)]
        _check_output_path(out, inputs, batch_size)
        reader = DocumentReader(inputs, fields or FieldMap(), fmt=fmt, max_chars=self.max_chars, encoding=encoding,
                                exclude=own, agent_names=self.agent_names)
        self.load()  # load models (and fail on a bad option) before any output is touched
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            sink, rejects = ResultSink(out, resume=resume), RejectSink(rejects_path_for(out), resume=resume)
        except OSError as exc:
            raise ConfigError(f"cannot write --out {out}: {exc.strerror or exc}; choose a writable folder "
                              "(its parents must be folders, not files)") from exc
        tally = _Tally()
        t0 = time.perf_counter()
        try:
            for batch in _batched(reader, batch_size):
                todo = []
                for item in batch:
                    if isinstance(item, Reject):
                        tally.rejected(item, rejects)
                    elif is_opted_out(item.customer_id, opted_out):
                        tally.n_in += 1
                        tally.n_opted_out += 1
                    elif item.id in sink.done_ids and sink.changed(item):
                        tally.rejected(Reject(source=str(out), id=item.id, stage="validate", reason=(
                            f"changed since {out.name} was written: its result there is of another text; to "
                            "extract it again, run with --no-resume or write to a new --out")), rejects)
                    elif item.id in sink.done_ids:
                        tally.resumed(sink.done_ids[item.id][1])
                    else:
                        todo.append(item)
                for res in self.extract_batch(todo):
                    if res is None:  # the token budget is spent: stop cleanly, the rest resumes later
                        tally.stopped = "token budget spent; rerun the same command to resume"
                        continue
                    if isinstance(res, Reject):
                        if res.id in reader.where:  # the file and line it came from, as read rejects have
                            res = res.model_copy(update=dict(zip(("source", "line"), reader.where[res.id])))
                        tally.rejected(res, rejects)
                    else:
                        sink.write(res)
                        tally.ok(res)
                for item in batch:
                    if isinstance(item, Document):
                        reader.where.pop(item.id, None)
                sink.flush()
                rejects.flush()
                if on_progress:
                    on_progress(tally.n_ok, tally.n_rej)
                if tally.stopped:
                    break
        finally:
            sink.close()
            rejects.close()
        summary = tally.summary(time.perf_counter() - t0, out, rejects_path_for(out))
        if self.mode != "local":
            from .cascade import llm_summary

            llm_summary(summary, tally, self)
        write_summary(summary, out)
        return summary


def _check_output_path(out: Path, inputs: Sequence[str], batch_size: int) -> None:
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, not {batch_size}")
    if out.is_dir():
        raise ConfigError(f"--out {out} is a directory; give a file name such as {out / 'signals.jsonl'}")
    given = {Path(i).expanduser().resolve() for i in inputs if i != "-"}
    if out.resolve() in given:
        raise ConfigError(f"--out {out} is also an input; write the results to another file")


def _with_roles(doc: Document, agent_names: frozenset[str] = frozenset()) -> Document:
    """Fill in ``role`` for turns built in code (``Turn(speaker="Agent", ...)``), as the readers do."""
    if doc.turns is None or all(t.role != "unknown" for t in doc.turns):
        return doc
    from .ingest.transcript import speaker_role

    turns = [t if t.role != "unknown" else t.model_copy(update={"role": speaker_role(t.speaker, agent_names)})
             for t in doc.turns]
    return doc.model_copy(update={"turns": turns})


def _has_customer_text(doc: Document) -> bool:
    return any(role in ("customer", "unknown") and text.strip() for _, text, role in doc.units())


def _no_customer_text(doc: Document) -> Reject:
    if doc.text is not None:  # the same reasons the file reader gives
        reason = "empty text: nothing to extract" if not doc.text else \
            "whitespace-only text: nothing to extract"
    else:
        reason = ("no customer text: every turn is the agent's (or empty), so there is no customer "
                  "intent, sentiment or urgency to extract; check the speaker names")
    return Reject(source=f"document {doc.id}", id=doc.id, stage="extract", reason=reason)


class _Tally:
    """Counts of one run; every item read is exactly one of ok (resumed ones too), rejected or opted out."""

    def __init__(self) -> None:
        self.n_in = self.n_ok = self.n_rej = self.n_resumed = self.n_opted_out = 0
        self.counts: dict[str, Counter] = {"intent": Counter(), "sentiment": Counter(), "urgency": Counter()}
        self.reasons: Counter = Counter()
        self.usage: Counter = Counter()
        self.stopped: str | None = None

    def rejected(self, item: Reject, sink) -> None:
        from .io import reject_category, reject_key

        self.n_in += 1
        self.n_rej += 1
        self.reasons[reject_category(item.reason)] += 1
        if reject_key(item) not in sink.done_keys:  # a resumed run does not write the same reject twice
            sink.write(item)

    def resumed(self, firsts: dict[str, str]) -> None:
        """A document already in the output: counted with the labels it has there."""
        self.n_in += 1
        self.n_ok += 1
        self.n_resumed += 1
        for kind, counter in self.counts.items():
            if firsts.get(kind) is not None:
                counter[firsts[kind]] += 1

    def ok(self, res: ExtractionResult) -> None:
        self.n_in += 1
        self.n_ok += 1
        if res.usage is not None:
            self.usage.update({k: v for k, v in res.usage.model_dump().items() if isinstance(v, int)})
            self.usage["llm_docs"] += 1
            self.usage["llm_failures"] += res.usage.error is not None
        for kind, counter in self.counts.items():
            first = next((s for s in res.signals if s.kind == kind), None)
            if first is not None:
                counter[first.label] += 1

    def summary(self, seconds: float, out: Path, rejects: Path) -> RunSummary:
        fresh = self.n_ok - self.n_resumed
        return RunSummary(n_in=self.n_in, n_ok=self.n_ok, n_rejected=self.n_rej, n_resumed=self.n_resumed,
                          n_opted_out=self.n_opted_out,
                          seconds=round(seconds, 3), docs_per_s=round(fresh / seconds, 2) if seconds > 0 else 0.0,
                          output=str(out), rejects=str(rejects),
                          counts={k: dict(v.most_common()) for k, v in self.counts.items()},
                          reject_reasons=dict(self.reasons.most_common()))
