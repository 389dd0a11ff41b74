"""Urgency learned from ticket priorities, with the cue rules, against the rules alone: same run, same split.

    .venv/bin/python eval/bench_urgency.py

Data: the English rows of the shared support tickets (CC BY-NC 4.0: evaluation and training
experiments only; never shipped), priority low/medium/high, split 80/20 stratified by label with
seed 0 into eval/.cache/. Every row goes through the full local pipeline via `evaluate`, like
`signals eval urgency`: "rules only" is the default pipeline (cue lexicon + semantic prototypes);
"rules + learned" adds `signals train urgency --fast` (or the fine-tuned model) on the 80% part,
whose expected level joins the rule score as their maximum. Figures: Spearman of the urgency score
with the priority, accuracy and macro-F1 of the level, and P/R/F1 of "urgent" (level >= high).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sentiment import _split  # noqa: E402
from run_evals import CACHE, tickets_english  # noqa: E402

from extractor.evaluate import evaluate  # noqa: E402

COLS = ("spearman", "accuracy", "macro_f1", "urgent_precision", "urgent_recall", "urgent_f1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--finetune", action="store_true", help="also train the fine-tuned model (slow)")
    args = ap.parse_args()
    from extractor.pipeline import Pipeline
    from extractor.train import train

    rows = [json.loads(line) for line in tickets_english().read_text("utf-8").splitlines()]
    tr, te = _split(rows)
    train_path, test_path = CACHE / "tickets_en_train80.jsonl", CACHE / "tickets_en_test20.jsonl"
    for path, part in ((train_path, tr), (test_path, te)):
        path.write_text("".join(json.dumps(r) + "\n" for r in part), "utf-8")
    print(f"tickets (English): train {len(tr)}, test {len(te)}")
    print("| method | " + " | ".join(COLS) + " | train s |\n|" + "---|" * (len(COLS) + 2))

    def row(name: str, m: dict, seconds: float | None) -> None:
        print(f"| {name} | " + " | ".join(str(m.get(c, "-")) for c in COLS) + f" | {seconds or '-'} |")
        sys.stdout.flush()

    row("rules only (default pipeline)", evaluate("urgency", test_path, Pipeline(ner=False)), None)
    with tempfile.TemporaryDirectory() as tmp:
        for method in ("fast", "finetune") if args.finetune else ("fast",):
            t0 = time.perf_counter()
            train("urgency", train_path, Path(tmp) / method, method=method)
            seconds = round(time.perf_counter() - t0, 1)
            m = evaluate("urgency", test_path, Pipeline(model=Path(tmp) / method, ner=False))
            row(f"rules + learned (signals train urgency{' --fast' if method == 'fast' else ''})", m, seconds)


if __name__ == "__main__":
    main()
