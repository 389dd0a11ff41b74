"""Throughput: the local pipeline against raw MiniLM ``encode`` on the same short messages, same run.

The encoder is the physical floor: everything the pipeline adds (sentence split, intent, sentiment,
urgency, spaCy NER, rules, result records, JSONL output) should cost little next to it. Goal:
pipeline docs/s >= 0.6 x raw encode docs/s.

    .venv/bin/python eval/bench_extract.py              # 10,000 Banking77 messages
    .venv/bin/python eval/bench_extract.py --n 2000     # quicker

Messages come from ../shared/data/banking77 (CC-BY-4.0), read at run time, never copied.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "banking77" / "data.jsonl"


def load_texts(n: int) -> list[str]:
    texts = [json.loads(line)["text"] for line in DATA.read_text("utf-8").splitlines() if line.strip()]
    while len(texts) < n:
        texts += texts
    return texts[:n]


def raw_encode(texts: list[str]) -> float:
    from sentence_transformers import SentenceTransformer

    from extractor.embed import resolve_encoder, set_offline

    set_offline()
    model = SentenceTransformer(str(resolve_encoder(None)[1]), device="cpu")
    model.encode(texts[:64], batch_size=64)  # warm-up
    t0 = time.perf_counter()
    model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    return len(texts) / (time.perf_counter() - t0)


def pipeline_run(texts: list[str]) -> tuple[float, dict]:
    from extractor.pipeline import Pipeline

    with tempfile.TemporaryDirectory() as tmp:
        inp, out = Path(tmp) / "in.jsonl", Path(tmp) / "out.jsonl"
        with inp.open("w", encoding="utf-8") as fh:
            for i, t in enumerate(texts):
                fh.write(json.dumps({"id": f"m{i}", "text": t, "created_at": "2026-11-24T09:00:00Z"}) + "\n")
        pipe = Pipeline()
        pipe.extract("warm up the models, please")  # model loading is not throughput
        pipe.local.embedder._cache.clear()
        t0 = time.perf_counter()
        summary = pipe.run([str(inp)], out)
        rate = len(texts) / (time.perf_counter() - t0)
        return rate, summary.model_dump()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000)
    args = ap.parse_args()
    texts = load_texts(args.n)
    raw = raw_encode(texts)
    pipe, summary = pipeline_run(texts)
    print(f"date       {date.today()}  machine {platform.machine()} {platform.processor() or ''} "
          f"python {platform.python_version()}")
    print(f"messages   {len(texts)} (banking77, mean {sum(map(len, texts)) / len(texts):.0f} chars)")
    print(f"raw encode {raw:8.1f} docs/s   (SentenceTransformer.encode, batch 64)")
    print(f"pipeline   {pipe:8.1f} docs/s   (signals local: read, segment, embed, intent, sentiment, urgency, "
          f"NER+rules, write JSONL; n_ok={summary['n_ok']}, n_rejected={summary['n_rejected']})")
    print(f"ratio      {pipe / raw:8.2f}   (goal >= 0.60)")


if __name__ == "__main__":
    main()
