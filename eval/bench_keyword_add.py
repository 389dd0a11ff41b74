"""Adding segments to a large keyword index: the BM25 delta against the full rebuild it replaces.

Corpus: GoEmotions texts (CC BY 4.0, ../shared/data/goemotions), repeated with a suffix to reach
--n segments. In one run: build the main index; add --add new segments through the delta and run
a query; then rebuild over all of them (what `index add` did before the delta); and check that the
new segments' scores are the same both ways.

    python eval/bench_keyword_add.py --n 200000 --add 100
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from extractor.keyword import KeywordIndex

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "goemotions" / "data.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--add", type=int, default=100)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    base = [json.loads(line)["text"] for line in DATA.open(encoding="utf-8")]
    texts = [f"{base[i % len(base)]} batch{i // len(base)}" for i in range(args.n + args.add)]
    main_texts, new = texts[: args.n], texts[args.n:]
    t = time.perf_counter()
    kw = KeywordIndex.build(main_texts, np.arange(args.n))
    build_s = time.perf_counter() - t
    t = time.perf_counter()
    kw.add(new, np.arange(args.n, args.n + args.add))
    hits = kw.rank(new[0], None, 10)
    delta_s = time.perf_counter() - t
    t = time.perf_counter()
    full = KeywordIndex.build(texts, np.arange(len(texts)))
    rebuild_s = time.perf_counter() - t
    got = dict(zip(*kw.delta_scores(new[0])))
    want = full.scores(new[0])[args.n:]
    same = bool(np.allclose([got[i] for i in range(args.n, args.n + args.add)], want, rtol=1e-4, atol=1e-5))
    out = {"segments": args.n, "added": args.add, "build_s": round(build_s, 2), "delta_add_and_query_s":
           round(delta_s, 4), "full_rebuild_s": round(rebuild_s, 2), "speedup": round(rebuild_s / delta_s),
           "delta_scores_equal_rebuild": same, "top_hit_is_new": hits[0][0] >= args.n,
           "date": time.strftime("%Y-%m-%d"), "machine": "2-core CPU, 24 GiB, no GPU"}
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2), "utf-8")


if __name__ == "__main__":
    main()
