"""One huge, constraint-dense document through the local pipeline: seconds and peak memory.

    .venv/bin/python eval/bench_large_doc.py [--chars 900000]

Checks that a document near the default --max-chars limit (1,000,000) is processed in bounded
memory (spaCy reads it in windows) and in linear time.
"""

from __future__ import annotations

import argparse
import resource
import time

from extractor.pipeline import Pipeline
from extractor.types import Document

PARA = "I was charged $49.99 twice on Monday by Nimbus in Leeds, please call me before Friday. "


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chars", type=int, default=900_000)
    n = ap.parse_args().chars
    pipe = Pipeline()
    pipe.local  # noqa: B018 - load models first
    loaded = peak_mb()
    text = PARA * (n // len(PARA))
    t0 = time.perf_counter()
    result = pipe.extract_batch([Document(id="big", text=text)])[0]
    print(f"chars {len(text):,}  seconds {time.perf_counter() - t0:.1f}  signals {len(result.signals):,}  "
          f"peak RSS {peak_mb():.0f} MB ({peak_mb() - loaded:.0f} MB above the loaded models)")


if __name__ == "__main__":
    main()
