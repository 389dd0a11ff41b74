"""Arrival → visible latency of `signals watch`: how long after a file lands it shows in state and search.

Starts `signals watch DIR` as its own process (local mode) on a workspace that already holds the
sample data and profiles, then drops N new one-transcript files into DIR, one at a time, each
written to a temporary name and renamed (so it lands whole). For each, it polls from this process
(read-only, a fresh connection per poll) until the document is in `state(customer).documents` and a
keyword search for a token unique to the file finds it, and records both delays.

    python eval/bench_watch.py --n 100 --json eval/out/bench_watch.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"
SIGNALS = str(Path(sys.executable).with_name("signals"))


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def transcript(i: int, customer: str) -> dict:
    token = f"ZQ{i:05d}X"
    return {"id": f"W{i:05d}", "customer_id": customer, "channel": "chat", "created_at": "2026-11-30T10:00:00Z",
            "turns": [{"speaker": "Customer", "text": f"Order {token} still has not arrived and it was due on "
                                                      "Monday. I need it by Friday or I want a refund."},
                      {"speaker": "Agent", "text": "I'm sorry about that, let me chase the courier for you."},
                      {"speaker": "Customer", "text": "Thanks, please email me when you know more."}]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--poll", type=float, default=0.05, help="seconds between this script's visibility checks")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    from extractor.index import Index, close_readers
    from extractor.state import state

    work = Path(tempfile.mkdtemp(prefix="bench-watch-"))
    ws, inbox = work / "ws", work / "in"
    inbox.mkdir()
    t0 = time.perf_counter()
    subprocess.run([SIGNALS, "extract", str(SAMPLE / "transcripts.jsonl"), "--out", str(work / "base.jsonl"),
                    "--workspace", str(ws), "--index"], check=True, capture_output=True)
    subprocess.run([SIGNALS, "profiles", "import", str(SAMPLE / "profiles.csv"), "--workspace", str(ws)], check=True,
                   capture_output=True)
    print(f"workspace ready in {time.perf_counter() - t0:.1f}s", flush=True)
    proc = subprocess.Popen([SIGNALS, "watch", str(inbox), "--workspace", str(ws), "--poll", "0.05", "--settle",
                             "0.05"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    customers = [f"C{c:03d}" for c in range(1, 67) if c not in (29, 34, 59)]  # the sample's opted-in customers

    def drop(i: int) -> tuple[str, str, str, float]:
        doc = transcript(i, customers[i % len(customers)])
        tmp = inbox / f".w{i:05d}.tmp"
        tmp.write_text(json.dumps(doc) + "\n", "utf-8")
        os.replace(tmp, inbox / f"w{i:05d}.jsonl")
        return doc["id"], doc["customer_id"], doc["turns"][0]["text"].split()[1], time.perf_counter()

    def visible(doc_id: str, customer: str, token: str) -> tuple[bool, bool]:
        close_readers(ws)
        try:
            st = state(ws, customer)
            in_state = st is not None and doc_id in st.documents
            hits = Index.open(ws).search(token, k=3, mode="keyword").hits if in_state else []
            return in_state, any(h.doc_id == doc_id for h in hits)
        except Exception:  # noqa: BLE001 - the watcher is mid-write (or holds the lock): look again
            return False, False
        finally:
            close_readers(ws)

    try:
        # warm-up: the first file waits for the watcher to load its models
        doc_id, cust, token, t = drop(0)
        while not all(visible(doc_id, cust, token)):
            time.sleep(0.2)
        print(f"watcher warm after {time.perf_counter() - t:.1f}s", flush=True)
        state_lat, search_lat = [], []
        for i in range(1, args.n + 1):
            doc_id, cust, token, t = drop(i)
            s_at = None
            while True:
                in_state, in_search = visible(doc_id, cust, token)
                now = time.perf_counter()
                if in_state and s_at is None:
                    s_at = now
                if in_state and in_search:
                    break
                if now - t > 120:
                    raise SystemExit(f"{doc_id} not visible after 120 s")
                time.sleep(args.poll)
            state_lat.append(s_at - t)
            search_lat.append(now - t)
            if i % 10 == 0:
                print(f"{i}/{args.n}: last {search_lat[-1]:.2f}s", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    out = {"files": args.n, "machine": "2-core CPU, 24 GiB, no GPU", "date": time.strftime("%Y-%m-%d"),
           "state_visible_s": {"p50": round(statistics.median(state_lat), 3), "p95": round(pct(state_lat, 0.95), 3),
                               "max": round(max(state_lat), 3)},
           "state_and_search_visible_s": {"p50": round(statistics.median(search_lat), 3),
                                          "p95": round(pct(search_lat, 0.95), 3), "max": round(max(search_lat), 3)}}
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2), "utf-8")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
