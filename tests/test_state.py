"""Customer state on the real pipeline's results for sample_data/: profiles join, evidence, --as-of, refresh,
opt-out and erasure (checked by searching the bytes of every file the workspace holds)."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from extractor.cli import app
from extractor.index import Index, close_readers
from extractor.llm.cache import LLMCache
from extractor.profiles import import_profiles, read_profiles
from extractor.state import state, states
from extractor.store import Store, norm_key
from extractor.types import Document, Turn

from .conftest import SAMPLE

runner = CliRunner()
PROFILES = SAMPLE / "profiles.csv"


@pytest.fixture
def ws(built, tmp_path):
    """A copy of the built sample workspace with the sample profiles imported."""
    path = Path(shutil.copytree(built, tmp_path / "ws"))
    import_profiles(path, str(PROFILES))
    return path


def _unit_text(doc: Document, turn: int | None) -> str:
    return doc.text if turn is None else doc.turns[turn].text


def _all_evidence(st) -> list:
    out = [e for i in st.intents for e in i.evidence]
    out += st.sentiment.evidence if st.sentiment else []
    out += st.urgency.evidence if st.urgency else []
    out += [e for c in st.constraints + st.closed_constraints for e in c.evidence]
    return out


def test_state_shows_every_field_with_exact_evidence(ws, sample_docs):
    st = state(ws, "C001")
    assert st.profile["attributes"]["email"] == "hannah.okafor@example.com"
    assert st.profile["attributes"]["plan"] == "Nimbus Plus"
    assert st.interactions == 2 and set(st.documents) == {"T001", "S011"}
    assert {c.channel: c.documents for c in st.channels} == {"chat": ["T001"], "survey": ["S011"]}
    assert st.intents and all(i.evidence and i.documents and i.count >= 1 for i in st.intents)
    assert "billing_double_charge" in {i.label for i in st.intents}
    assert st.sentiment and st.sentiment.evidence and len(st.sentiment.history) == 2
    assert st.urgency and st.urgency.evidence and st.urgency.peak >= st.urgency.score
    assert all(c.evidence and c.documents for c in st.constraints + st.closed_constraints)
    for e in _all_evidence(st):  # every quote is exactly where it says, in the original text
        assert _unit_text(sample_docs[e.doc_id], e.turn)[e.start:e.end] == e.text, e
        assert e.doc_id in st.documents


def test_state_of_an_unknown_customer_is_none(ws):
    import extractor

    assert state(ws, "NOBODY") is None
    assert extractor.customer_state("C001", workspace=str(ws)).documents == state(ws, "C001").documents
    result = runner.invoke(app, ["state", "NOBODY", "--workspace", str(ws)])
    assert result.exit_code == 1 and "No customer" in result.output


def test_keys_match_whatever_the_case_and_spaces(ws):
    assert state(ws, "  c001 ").documents == state(ws, "C001").documents


def test_as_of_before_the_last_contact_drops_exactly_that_contact(ws):
    now, before = state(ws, "C001"), state(ws, "C001", as_of=datetime(2026, 10, 5, tzinfo=timezone.utc))
    assert set(now.documents) - set(before.documents) == {"S011"} and before.documents == ["T001"]
    assert before.interactions == now.interactions - 1 and before.last_contact.date().isoformat() == "2026-10-01"
    assert before.sentiment.trend == "new" and len(before.sentiment.history) == 1
    assert before.sentiment.label == next(p.label for p in now.sentiment.history if p.doc_id == "T001")
    count_now = {i.label: i.count for i in now.intents}
    count_before = {i.label: i.count for i in before.intents}
    s011 = {i.label for i in now.intents if "S011" in i.documents}
    for label, n in count_now.items():
        assert count_before.get(label, 0) == n - (label in s011), label
    assert all(e.doc_id == "T001" for e in _all_evidence(before))
    # on 2026-10-01 at 10:00 the deadline (2026-10-02) was still open; now it has passed
    early = state(ws, "C001", as_of=datetime(2026, 10, 1, 10, tzinfo=timezone.utc))
    assert any(c.type == "deadline" for c in early.constraints)
    assert any(c.type == "deadline" and c.status == "closed" for c in now.closed_constraints)


def test_sentiment_half_life_changes_the_trend_weighting(ws):
    from extractor.state import StateConfig

    short = state(ws, "C001", cfg=StateConfig(sentiment_half_life_days=1))
    long = state(ws, "C001", cfg=StateConfig(sentiment_half_life_days=365))
    latest = short.sentiment.score
    assert abs(short.sentiment.trend_score - latest) < abs(long.sentiment.trend_score - latest)


def _versions(path: Path) -> dict[str, int]:
    close_readers(path)
    with Store(path, read_only=True) as st:
        return dict(st.db.execute("SELECT customer_key, max(version) FROM state_versions GROUP BY 1").fetchall())


def test_refresh_touches_only_the_customer_of_the_new_transcript(ws, pipeline, tmp_path):
    before = _versions(ws)
    doc = Document(id="T900", customer_id="C005", channel="chat",
                   created_at=datetime(2026, 11, 30, tzinfo=timezone.utc),
                   turns=[Turn(speaker="Customer", text="My router has been offline since this morning, I need it "
                                                         "fixed today or I cancel."),
                          Turn(speaker="Agent", text="I'm sorry, let me check the line.")])
    new = tmp_path / "new.jsonl"
    new.write_text(pipeline.extract(doc).model_dump_json() + "\n", "utf-8")
    result = runner.invoke(app, ["refresh", str(new), "--workspace", str(ws)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["versions"] == {"c005": before["c005"] + 1}
    after = _versions(ws)
    assert after == {**before, "c005": before["c005"] + 1}  # nobody else's version moved
    st = state(ws, "C005")
    assert "T900" in st.documents and st.version == before["c005"] + 1
    assert runner.invoke(app, ["refresh", str(new), "--workspace", str(ws)]).exit_code == 0
    assert _versions(ws) == after  # the same data again is not a new version
    # several files are all or nothing: a broken second file stores nothing of the first
    doc.id, doc.customer_id = "T901", "C006"
    good, bad = tmp_path / "good.jsonl", tmp_path / "bad.jsonl"
    good.write_text(pipeline.extract(doc).model_dump_json() + "\n", "utf-8")
    bad.write_text('{"id": 1\n', "utf-8")
    failed = runner.invoke(app, ["refresh", str(good), str(bad), "--workspace", str(ws)])
    assert failed.exit_code != 0 and "nothing of the 2 files was stored" in failed.output
    assert _versions(ws) == after and "T901" not in state(ws, "C006").documents


def _files(*roots: Path) -> list[Path]:
    return [f for r in roots for f in ([r] if r.is_file() else r.rglob("*")) if f.is_file()]


def _grep(needles: list[str], *roots: Path) -> list[tuple[str, str]]:
    found = []
    for f in _files(*roots):
        data = f.read_bytes()
        found += [(str(f), n) for n in needles if n.encode("utf-8") in data]
    return found


def _assert_words_gone(ws: Path, sample_docs, customer: str) -> None:
    """No word that only ``customer`` used is in the saved keyword vocabulary (or its delta)."""
    from extractor.keyword import TOKEN

    def words(docs) -> set[str]:
        return {w for d in docs for _, t, _ in d.units() for w in TOKEN.findall(t.lower())}

    unique = sorted(w for w in words(d for d in sample_docs.values() if d.customer_id == customer)
                    - words(d for d in sample_docs.values() if d.customer_id != customer)
                    if len(w) >= 4 and not w.isdigit())
    assert unique, f"{customer} has words no one else uses"
    saved = "".join(f.read_text("utf-8") for f in (ws / "index").glob("v*/kw_*.json"))
    assert not [w for w in unique if f'"{w}"' in saved]  # their words left the keyword index too


def test_forget_leaves_none_of_the_customers_bytes(ws, results_file, sample_docs, tmp_path):
    from extractor import outputs

    out = tmp_path / "outputs" / "run.jsonl"
    out.parent.mkdir()
    shutil.copy(results_file, out)
    outputs.register(ws, out)
    text = "charged $54.99 twice for my Nimbus Plus bill"
    cache = LLMCache(ws / "cache" / "llm.sqlite")  # a real cached reply holding their text
    cache.put("k1", {"text": json.dumps({"quote": text})}, customer_id="C001")
    cache.put("k2", {"text": "someone else"}, customer_id="C002")
    cache.close()
    needles = [text, "hannah.okafor@example.com", "Hannah Okafor", "C001", "okafor", "54.99 twice"]
    found = {n for _, n in _grep(needles, ws, out.parent)}
    assert found >= set(needles) - {"okafor"}, found

    result = runner.invoke(app, ["forget", "C001", "--workspace", str(ws)])
    assert result.exit_code == 0, result.output
    gone = json.loads(result.output)
    assert gone["documents"] == 2 and gone["cached_replies"] == 1 and gone["output_rows"] == 2
    assert _grep(needles, ws, out.parent) == []
    _assert_words_gone(ws, sample_docs, "C001")
    assert state(ws, "C001") is None
    close_readers(ws)
    for mode in ("vector", "keyword", "hybrid"):
        assert not [h for h in Index.open(ws).search(text, k=50, mode=mode).hits if h.customer_id == "C001"]
    assert LLMCache(ws / "cache" / "llm.sqlite").get("k2") is not None  # others are kept
    record = json.loads((ws / "audit.jsonl").read_text("utf-8").splitlines()[-1])
    assert record["event"] == "forget" and record["audit_id"] == gone["audit_id"]
    assert state(ws, "C002") is not None


def test_opted_out_customers_are_never_processed(built, sample_docs, tmp_path):
    """Plant an opted-out customer before extraction: they appear in no output, store, index or cache."""
    ws = tmp_path / "ws"
    profiles = tmp_path / "profiles.csv"
    rows = PROFILES.read_text("utf-8").replace(
        "C001,Hannah Okafor,hannah.okafor@example.com,Nimbus Plus,consumer,us-east,2021-03-14,2140.50,false",
        "C001,Hannah Okafor,hannah.okafor@example.com,Nimbus Plus,consumer,us-east,2021-03-14,2140.50,true")
    profiles.write_text(rows, "utf-8")
    assert runner.invoke(app, ["profiles", "import", str(profiles), "--workspace", str(ws)]).exit_code == 0
    out = tmp_path / "out" / "signals.jsonl"
    result = runner.invoke(app, ["extract", str(SAMPLE / "transcripts.jsonl"), str(SAMPLE / "surveys.csv"),
                                 "--out", str(out), "--workspace", str(ws), "--index"])
    assert result.exit_code == 0, result.output
    summary = json.loads(Path(str(out) + ".summary.json").read_text("utf-8"))
    from extractor.io import iter_documents

    opted = {r["customer_id"] for r in read_profiles(str(profiles)) if r["opted_out"]}
    assert "C001" in opted and len(opted) == 4  # and the three the sample profiles opt out
    docs = list(iter_documents([str(SAMPLE / "transcripts.jsonl"), str(SAMPLE / "surveys.csv")]))
    assert summary["n_opted_out"] == sum(d.customer_id in opted for d in docs) >= 2  # T001 and S011 among them
    assert summary["n_in"] == summary["n_ok"] + summary["n_rejected"] + summary["n_opted_out"]
    assert {json.loads(line)["customer_id"] for line in out.read_text("utf-8").splitlines()} >= {"C002"}
    needles = ["charged $54.99 twice for my Nimbus Plus bill", "hannah.okafor@example.com", "Hannah Okafor", "C001"]
    assert _grep(needles, ws, out.parent) == []
    _assert_words_gone(ws, sample_docs, "C001")
    assert state(ws, "C001") is None and state(ws, "C002") is not None


def _state_json(path: Path, customer: str) -> dict:
    close_readers(path)
    st = state(path, customer, as_of=datetime(2026, 12, 1, tzinfo=timezone.utc)).model_dump(mode="json")
    st["profile"].pop("source"), st["profile"].pop("imported_at"), st.pop("version")
    return st


def test_profiles_from_csv_parquet_jsonl_and_duckdb_give_identical_states(built, tmp_path):
    import duckdb

    con = duckdb.connect()
    src = str(PROFILES)
    con.execute(f"COPY (SELECT * FROM read_csv('{src}')) TO '{tmp_path / 'p.parquet'}' (FORMAT PARQUET)")
    con.execute(f"COPY (SELECT * FROM read_csv('{src}')) TO '{tmp_path / 'p.jsonl'}' (FORMAT JSON)")
    con.execute(f"ATTACH '{tmp_path / 'p.duckdb'}' AS db")
    con.execute(f"CREATE TABLE db.profiles AS SELECT * FROM read_csv('{src}')")
    con.close()
    states = {}
    for name in ("csv", "parquet", "jsonl", "duckdb"):
        path = Path(shutil.copytree(built, tmp_path / name))
        import_profiles(path, src if name == "csv" else str(tmp_path / f"p.{name}"))
        states[name] = [_state_json(path, c) for c in ("C001", "C005", "C040")]
    assert states["parquet"] == states["csv"] == states["jsonl"] == states["duckdb"]
    assert states["csv"][0]["profile"]["attributes"]["lifetime_value"] == 2140.5


def test_reimport_updates_in_place_and_counts_unmatched_documents(ws, tmp_path):
    changed = tmp_path / "profiles.jsonl"
    records = [r for r in read_profiles(str(PROFILES)) if r["customer_id"] != "C040"]
    for r in records:
        if r["customer_id"] == "C001":
            r["plan"], r["customer_id"] = "Nimbus Premium", "  c001 "  # key written differently: same customer
    records.append({"customer_id": None, "plan": "x"})
    changed.write_text("".join(json.dumps(r) + "\n" for r in records), "utf-8")
    report = import_profiles(ws, str(changed))
    assert report.n_rejected == 1 and report.n_new == 0
    assert report.n_updated == 1 and report.n_unchanged == len(records) - 2  # only C001 changed
    assert state(ws, "C001").profile["attributes"]["plan"] == "Nimbus Premium"
    with Store(ws, read_only=True) as st:
        assert st.db.execute("SELECT COUNT(*) FROM profiles WHERE customer_key = 'c001'").fetchone()[0] == 1
    # C040's profile was imported before and is kept; a fresh workspace would list C040's documents as unmatched
    fresh = Path(shutil.copytree(ws, tmp_path / "fresh"))
    with Store(fresh) as st:
        st.db.execute("DELETE FROM profiles WHERE customer_key = ?", [norm_key("C040")])
    report = import_profiles(fresh, str(changed))
    assert "C040" in report.customers_without_profile and report.documents_without_profile >= 1
    assert state(fresh, "C040").profile is None and state(fresh, "C040").interactions >= 1


def test_a_bad_key_or_source_is_a_clear_error(ws, tmp_path):
    bad = runner.invoke(app, ["profiles", "import", str(PROFILES), "--key", "mail", "--workspace", str(ws)])
    assert bad.exit_code == 2 and "--key 'mail' is not a field" in bad.output
    missing = runner.invoke(app, ["profiles", "import", str(tmp_path / "nope.csv"), "--workspace", str(ws)])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_state_cli_and_audit_log(ws):
    result = runner.invoke(app, ["state", "C005", "--workspace", str(ws), "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["customer_id"] == "C005"
    text = runner.invoke(app, ["state", "C005", "--workspace", str(ws)])
    assert text.exit_code == 0 and "profile:" in text.output and "“" in text.output
    log = runner.invoke(app, ["audit", "--workspace", str(ws), "--json"])
    events = [r["event"] for r in json.loads(log.output)]
    assert events == ["index", "forget", "forget", "forget", "profiles"]  # the three opted out are erased
    assert "C0" not in log.output and "@example.com" not in log.output  # no personal data in the audit log


def test_search_filters_on_profile_attributes_before_ranking(ws):
    close_readers(ws)
    with Store(ws, read_only=True) as st:
        premium = {r[0] for r in st.db.execute(
            "SELECT d.customer_id FROM documents d JOIN profiles p USING (customer_key) "
            "WHERE json_extract_string(p.attrs, '$.plan') = 'Nimbus Premium'").fetchall()}
        rich = {r[0] for r in st.db.execute(
            "SELECT d.customer_id FROM documents d JOIN profiles p USING (customer_key) "
            "WHERE CAST(json_extract_string(p.attrs, '$.lifetime_value') AS DOUBLE) >= 2000").fetchall()}
    assert premium and rich
    idx = Index.open(ws)
    for where, allowed in (('profile.plan = "nimbus premium"', premium), ("profile.lifetime_value >= 2000", rich),
                           ('profile.plan = "Nimbus Premium" and channel = chat', None)):
        for mode in ("vector", "keyword", "hybrid"):
            res = idx.search("my bill is wrong", where=where, k=5, mode=mode)
            assert res.hits or mode == "keyword", (where, mode)
            if allowed is not None:
                assert {h.customer_id for h in res.hits} <= allowed, (where, mode)
            else:
                assert all(h.customer_id in premium and h.channel == "chat" for h in res.hits)


def test_commands_on_an_empty_workspace_say_what_to_do(tmp_path):
    for argv in (["state", "C001"], ["actions"], ["segments"], ["override", "list"]):
        result = runner.invoke(app, [*argv, "--workspace", str(tmp_path / "nothing")])
        assert result.exit_code == 2 and "No store in" in result.output, (argv, result.output)
    assert not (tmp_path / "nothing").exists()  # asking did not create a workspace


def test_scrub_removes_only_the_customers_rows_and_rejects(tmp_path):
    from extractor import outputs

    out = tmp_path / "run.jsonl"
    out.write_text(json.dumps({"id": "D1", "customer_id": " C001 "}) + "\n" +
                   json.dumps({"id": "D2", "customer_id": "C0012"}) + "\nnot json\n", "utf-8")
    rejects = tmp_path / "run.rejects.jsonl"
    rejects.write_text(json.dumps({"id": None, "raw": '{"customer_id": "C001", "text": broken'}) + "\n" +
                       json.dumps({"id": None, "raw": '{"customer_id": "C0012"'}) + "\n" +
                       json.dumps({"id": "D9", "raw": "x"}) + "\n", "utf-8")
    assert outputs.scrub(out, norm_key("C001"), {"D9"}) == 3
    assert [json.loads(line)["id"] for line in out.read_text("utf-8").splitlines()[:1]] == ["D2"]
    assert "not json" in out.read_text("utf-8")  # lines it cannot read are kept, not dropped
    assert [json.loads(line)["raw"] for line in rejects.read_text("utf-8").splitlines()] == ['{"customer_id": "C0012"']


def test_documents_of_the_same_moment_are_listed_in_one_order_however_they_were_read():
    """Ties in time are ordered by document id, not by the store's scan order or a set's hash order."""
    from collections import defaultdict

    from extractor.state import build

    t = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)
    ids = ["d3", "d1", "d2"]

    def data(order):
        ev = defaultdict(list)
        rows = []
        for doc_id in order:
            rows.append((doc_id, 0, "intent", "cancel_order", None, 0.9, None))
            rows.append((doc_id, 1, "constraint", "datetime", None, 0.9, '{"iso": "2026-12-24", "deadline": true}'))
            ev[(doc_id, 0)].append((None, 0, 6, "cancel"))
            ev[(doc_id, 1)].append((None, 10, 16, "Dec 24"))
        return {"docs": {d: {"customer_id": "C9", "channel": "chat", "created_at": t} for d in order},
                "signals": rows, "evidence": ev, "overrides": []}

    built = [build("C9", data(o), None, t) for o in (ids, ids[::-1], sorted(ids))]
    assert all(b.documents == ["d1", "d2", "d3"] for b in built)
    assert all(b.intents[0].documents == ["d1", "d2", "d3"] for b in built)
    assert all(b.constraints[0].documents == ["d1", "d2", "d3"] for b in built)
    assert all(b.channels[0].documents == ["d1", "d2", "d3"] for b in built)


def test_the_customer_id_is_written_as_their_earliest_document_writes_it(tmp_path):
    """Documents may spell one customer's id differently ("C9", " c9"); the state shows one of them,
    the earliest document's, whichever order the store returns the documents in."""
    from extractor.types import ExtractionResult, Provenance

    prov = Provenance(version="test", created=datetime(2026, 11, 1, tzinfo=timezone.utc))
    later = ExtractionResult(id="d2", customer_id=" c9", text="hi", provenance=prov,
                             created_at=datetime(2026, 11, 20, tzinfo=timezone.utc))
    earlier = ExtractionResult(id="d1", customer_id="C9", text="hello", provenance=prov,
                               created_at=datetime(2026, 11, 2, tzinfo=timezone.utc))
    with Store(tmp_path) as store:
        store.upsert([later])  # stored first, so a scan returns it first
        store.upsert([earlier])
    assert state(tmp_path, "c9").customer_id == "C9"
    assert [s.customer_id for s in states(tmp_path)] == ["C9"]


def test_corrections_are_listed_as_they_were_made_whatever_the_scan_order(tmp_path):
    """The state lists an analyst's corrections oldest first (and hashes them so), not in the order the
    store returns them, which after deletes and re-inserts need not be the order they were made in."""
    from extractor.types import ExtractionResult, Provenance, Signal

    t = datetime(2026, 11, 2, tzinfo=timezone.utc)
    prov = Provenance(version="test", created=t)
    intent = Signal(kind="intent", label="cancel_order", confidence=0.9)
    docs = [ExtractionResult(id=d, customer_id="C9", text="hi", provenance=prov, created_at=t, signals=[intent])
            for d in ("d1", "d2")]
    with Store(tmp_path) as store:
        store.upsert(docs)
        for oid, doc, made in (("o-late", "d1", datetime(2026, 11, 9, tzinfo=timezone.utc)),  # inserted first
                               ("o-early", "d2", datetime(2026, 11, 3, tzinfo=timezone.utc))):
            store.db.execute("INSERT INTO overrides VALUES (?, 'c9', ?, 'signal', 'intent', 'cancel_order', "
                             "'refund', 'analyst', ?)", [oid, doc, made])
    assert [o["override_id"] for o in state(tmp_path, "C9").overrides] == ["o-early", "o-late"]
