"""Run the issue-4 quality figures with `signals eval` and print them as Markdown rows for RESULTS.md.

    .venv/bin/python eval/run_evals.py            # all
    .venv/bin/python eval/run_evals.py --only intent

Banking77 here is the shared *train* release (10,003 rows; no official test split on this disk),
so it is split 80/20 stratified by label with a fixed seed into eval/.cache/ (never committed).
Every figure comes from the real CLI, one subprocess per command, so the commands below are exactly
what a user would type.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from collections import defaultdict
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CACHE = ROOT / "eval" / ".cache"
SIGNALS = [str(Path(sys.executable).parent / "signals")]


def split_banking(seed: int = 0) -> tuple[Path, Path]:
    CACHE.mkdir(parents=True, exist_ok=True)
    train, test = CACHE / "banking77_train80.jsonl", CACHE / "banking77_test20.jsonl"
    if train.exists() and test.exists():
        return train, test
    by_label: dict[str, list[dict]] = defaultdict(list)
    for line in (DATA / "banking77" / "data.jsonl").read_text("utf-8").splitlines():
        row = json.loads(line)
        by_label[row["label"]].append({"text": row["text"], "label": row["label"]})
    rng = random.Random(seed)
    tr, te = [], []
    for label in sorted(by_label):
        rows = by_label[label][:]
        rng.shuffle(rows)
        cut = max(1, round(len(rows) * 0.2))
        te += rows[:cut]
        tr += rows[cut:]
    for path, rows in ((train, tr), (test, te)):
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    return train, test


def tickets_english() -> Path:
    """English support tickets with their priority (CC BY-NC 4.0: evaluation only)."""
    out = CACHE / "tickets_en.jsonl"
    if not out.exists():
        rows = [json.loads(line) for line in (DATA / "support_tickets" / "data.jsonl").read_text("utf-8").splitlines()]
        keep = [{"text": r["text"], "label": r["priority"]} for r in rows if r.get("language", "en") == "en"]
        out.write_text("".join(json.dumps(r) + "\n" for r in keep), "utf-8")
    return out


def run(args: list[str]) -> dict:
    res = subprocess.run(SIGNALS + args + ["--json"], capture_output=True, text=True, cwd=ROOT)
    if res.returncode != 0:
        raise SystemExit(f"failed: signals {' '.join(args)}\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=["intent", "sentiment", "urgency", "constraints"])
    a = ap.parse_args()
    jobs: list[tuple[str, list[str]]] = []
    if a.only in (None, "intent"):
        train, test = split_banking()
        rel = lambda p: str(p.relative_to(ROOT))  # noqa: E731
        jobs += [("Banking77 intent, full train (80%)", ["eval", "intent", "--train", rel(train), "--test", rel(test)]),
                 ("Banking77 intent, 10 shots", ["eval", "intent", "--train", rel(train), "--shots", "10",
                                                 "--test", rel(test)])]
    if a.only in (None, "sentiment"):
        jobs += [("Airline sentiment (shared half)", ["eval", "sentiment", "--test",
                                                     str(DATA / "airline_sentiment" / "data.jsonl")])]
    if a.only in (None, "urgency"):
        jobs += [("Support tickets priority (English)", ["eval", "urgency", "--test", str(tickets_english())])]
    if a.only in (None, "constraints"):
        jobs += [("Constraint spans (eval/data)", ["eval", "constraints", "--test", "eval/data/constraints_gold.jsonl",
                                                  "--catalog", "eval/data/catalog.yaml"])]
    print(f"<!-- {date.today()} -->")
    for name, args in jobs:
        m = run(args)
        keys = [k for k in ("accuracy", "macro_f1", "ece", "spearman", "span_f1", "exact_f1", "span_precision",
                            "span_recall") if k in m]
        figures = ", ".join(f"{k} {m[k]}" for k in keys)
        print(f"| {name} | `signals {' '.join(args)} --json` | n={m['n']} | {figures} | {m['docs_per_s']} docs/s |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
