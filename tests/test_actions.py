"""Policies, suggested actions with their evidence, overrides that win, training export, segments."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from extractor.cli import app
from extractor.errors import ConfigError
from extractor.index import close_readers
from extractor.overrides import correct_signal, suppress_action
from extractor.policy import actions, load_policy, parse_condition
from extractor.profiles import import_profiles
from extractor.segments import segments
from extractor.state import state

from .conftest import SAMPLE

runner = CliRunner()
AS_OF = datetime(2026, 11, 29, tzinfo=timezone.utc)


@pytest.fixture
def ws(built, tmp_path):
    path = Path(shutil.copytree(built, tmp_path / "ws"))
    import_profiles(path, str(SAMPLE / "profiles.csv"))
    return path


def _policy(tmp_path: Path, body: str) -> list:
    p = tmp_path / "policy.yaml"
    p.write_text(body, "utf-8")
    return load_policy(p)


def test_every_fired_condition_holds_and_carries_its_evidence(ws, tmp_path):
    rules = _policy(tmp_path, """
rules:
  - name: unhappy_premium
    action: Call them
    priority: 70
    when:
      - sentiment = negative
      - profile.plan in (Nimbus Plus, Nimbus Premium)
  - name: billing
    action: Fix billing
    priority: 80
    when:
      - intent in (billing_double_charge, billing_refund_request, billing_unexpected_charge)
""")
    found = actions(ws, rules, as_of=AS_OF)
    assert found and [a.priority for a in found] == sorted((a.priority for a in found), reverse=True)
    for a in found:
        st = state(ws, a.customer_id, as_of=AS_OF)
        for rule in a.rules:
            for c in rule.conditions:
                if c.condition.startswith("sentiment"):
                    assert st.sentiment.label == "negative" == c.value and c.evidence
                    # the quotes are the latest contact's, the one whose label the condition saw
                    assert {e.doc_id for e in c.evidence} == {st.sentiment.history[-1].doc_id} == set(c.documents)
                    assert all(e.signal == "sentiment:negative" for e in c.evidence)
                elif c.condition.startswith("profile"):
                    assert c.profile_field == "plan" and st.profile["attributes"]["plan"] == c.value
                else:
                    active = {i.label for i in st.intents if i.active}
                    assert set(c.value) <= active and c.evidence
                    assert all(e.signal.split(":")[1] in c.value for e in c.evidence)
    # and nobody who qualifies is missing
    expected = {s for s in ("C001",) if state(ws, s, as_of=AS_OF).sentiment.label == "negative"}
    assert expected <= {a.customer_id for a in found if a.action == "Call them"}


def test_the_shipped_policy_loads_and_runs_from_the_cli(ws):
    result = runner.invoke(app, ["actions", "--workspace", str(ws), "--as-of", "2026-11-29", "--top", "3", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert 1 <= len(rows) <= 3 and all(r["rules"] and r["rules"][0]["conditions"] for r in rows)
    text = runner.invoke(app, ["actions", "--workspace", str(ws), "--as-of", "2026-11-29", "--top", "2"])
    assert text.exit_code == 0 and "rule " in text.output and "✓" in text.output


@pytest.mark.parametrize("cond, message", [
    ("urgency >= very", "urgency levels are"),
    ("mood = sad", "unknown field 'mood'"),
    ("interactions > many", "compares with a number"),
    ("intent in cancel", "takes a list in parentheses"),
    ("just words", "cannot read condition"),
])
def test_bad_conditions_say_how_to_fix_them(cond, message):
    with pytest.raises(ConfigError, match=message):
        parse_condition(cond, "policy.yaml: rule 1")


def test_a_correction_wins_over_the_model_and_survives_re_extraction(ws, results_file, tmp_path):
    before = state(ws, "C001", as_of=AS_OF)
    assert before.sentiment.history[0].label != "positive"
    correct_signal(ws, "T001", "sentiment", "positive", "the customer was joking")
    correct_signal(ws, "T001", "intent", "billing_refund_request", "they want their money back")
    close_readers(ws)
    after = state(ws, "C001", as_of=AS_OF)
    t001 = next(p for p in after.sentiment.history if p.doc_id == "T001")
    assert t001.label == "positive" and t001.score == 0.6
    assert {o["kind"] for o in after.overrides} == {"sentiment", "intent"}
    t001_intents = {i.label for i in after.intents if "T001" in i.documents}
    assert t001_intents == {"billing_refund_request"}
    assert after.version == (before.version or 0) + 2  # one new version per correction
    # re-extracting the document does not undo the analyst's correction
    assert runner.invoke(app, ["index", "add", str(results_file), "--workspace", str(ws)]).exit_code == 0
    close_readers(ws)
    again = state(ws, "C001", as_of=AS_OF)
    assert next(p for p in again.sentiment.history if p.doc_id == "T001").label == "positive"


def test_suppressed_actions_are_hidden_unless_asked_for(ws, tmp_path):
    rules = _policy(tmp_path, "rules:\n  - name: any_contact\n    action: Say thanks\n    when:\n"
                              "      - interactions >= 1\n")
    everyone = {a.customer_id for a in actions(ws, rules, as_of=AS_OF)}
    assert "C005" in everyone
    suppress_action(ws, "C005", "any_contact", "already called them")
    close_readers(ws)
    shown = actions(ws, rules, as_of=AS_OF)
    assert "C005" not in {a.customer_id for a in shown} and len(shown) == len(everyone) - 1
    hidden = [a for a in actions(ws, rules, as_of=AS_OF, include_suppressed=True) if a.customer_id == "C005"]
    assert hidden and hidden[0].suppressed == "already called them"


def test_corrections_export_as_training_rows_that_train_reads(ws, tmp_path):
    correct_signal(ws, "T001", "intent", "billing_refund_request", "money back")
    correct_signal(ws, "T005", "intent", "tech_outage", "line down")
    out = tmp_path / "corrections.jsonl"
    result = runner.invoke(app, ["export-overrides", "--out", str(out), "--kind", "intent", "--workspace", str(ws)])
    assert result.exit_code == 0 and json.loads(result.output)["examples"] == 2
    rows = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert {r["label"] for r in rows} == {"billing_refund_request", "tech_outage"}
    assert all(r["text"] and r["task"] == "intent" for r in rows)
    assert "charged $54.99 twice" in next(r["text"] for r in rows if r["id"] == "T001")
    from extractor.train import _rows

    texts, labels = _rows(out, "label", None, 0)  # the reader `signals train` uses
    assert len(texts) == 2 and sorted(labels) == ["billing_refund_request", "tech_outage"]
    # the export is a managed output: forgetting the customer removes their row
    assert runner.invoke(app, ["forget", "C001", "--workspace", str(ws)]).exit_code == 0
    assert [json.loads(line)["id"] for line in out.read_text("utf-8").splitlines()] == ["T005"]


def test_segments_partition_the_customers(ws):
    rows = segments(ws, ["urgency.peak", "sentiment"], as_of=AS_OF)
    customers = [c for r in rows for c in r["customers"]]
    assert len(customers) == len(set(customers)) and sum(r["count"] for r in rows) == len(customers)
    for r in rows[:3]:
        for c in r["customers"]:
            st = state(ws, c, as_of=AS_OF)
            assert (st.urgency.peak_level if st.urgency else "none") == r["segment"]["urgency.peak"]
            assert (st.sentiment.label if st.sentiment else "none") == r["segment"]["sentiment"]
    result = runner.invoke(app, ["segments", "--by", "profile.plan", "--workspace", str(ws), "--json"])
    assert result.exit_code == 0
    assert {r["segment"]["profile.plan"] for r in json.loads(result.output)} >= {"Nimbus Plus", "Nimbus Basic"}
    with pytest.raises(ConfigError, match="no profile has that attribute"):
        segments(ws, ["profile.plann"], as_of=AS_OF)  # a typo would have put everyone in "none"


def test_profile_numbers_compare_as_numbers_and_every_condition_names_its_documents(ws, tmp_path):
    rules = _policy(tmp_path, """
rules:
  - name: vip
    action: VIP check-in
    priority: 70
    when: ["profile.lifetime_value >= 2000", "interactions >= 1", "days_since_contact >= 0"]
  - name: peaked
    action: Look back
    when: ["urgency.peak >= high", "urgency.peak != critical"]
""")
    found = actions(ws, rules, as_of=AS_OF)
    vip = {a.customer_id for a in found if a.action == "VIP check-in"}
    from extractor.profiles import read_profiles

    rich = {r["customer_id"] for r in read_profiles(str(SAMPLE / "profiles.csv"))
            if float(r["lifetime_value"]) >= 2000 and not r["opted_out"]}
    assert vip and vip <= rich  # before, 912.4 >= 2000 held as text
    assert all(float(state(ws, c, as_of=AS_OF).profile["attributes"]["lifetime_value"]) >= 2000 for c in vip)
    for a in found:
        st = state(ws, a.customer_id, as_of=AS_OF)
        for c in (c for r in a.rules for c in r.conditions):
            if c.condition.startswith("interactions"):
                assert c.documents == st.documents
            elif c.condition.startswith("days_since"):
                assert c.documents == st.documents[-1:] and st.documents[-1] in set(st.channels[0].documents) | {
                    d for ch in st.channels for d in ch.documents}
            elif c.condition.startswith("urgency.peak"):
                assert c.evidence and {e.doc_id for e in c.evidence} == {st.urgency.peak_doc}


@pytest.mark.parametrize("body, message", [
    ("- {name: a, action: b, when: [urgency >= high]}", "must be a mapping with `rules:`"),
    ("rules:\n  - {name: a, action: b, priority: high, when: [urgency >= high]}", "priority must be a whole number"),
    ("rules:\n  - {name: a, action: b, prority: 9, when: [urgency >= high]}", "unknown key 'prority'"),
    ("rule:\n  - {name: a, action: b, when: [urgency >= high]}", "unknown key 'rule'"),
    ("rules:\n  - {name: a, action: b, when: [sentiment = negatve]}", "sentiment is one of"),
    ("rules:\n  - {name: a, action: b, when: [sentiment.trend = worse]}", "sentiment.trend is one of"),
])
def test_policy_mistakes_are_errors_that_say_what_to_write(tmp_path, body, message):
    with pytest.raises(ConfigError, match=message):
        _policy(tmp_path, body)


def test_overrides_check_what_they_name_and_removing_one_is_a_new_version(ws, tmp_path):
    from extractor.overrides import remove

    with pytest.raises(ConfigError, match="did you mean billing_refund_request"):
        correct_signal(ws, "T001", "intent", "billing_refnd_request", "typo")  # would become a label
    first = correct_signal(ws, "T001", "intent", "billing_refund_request", "a")
    second = correct_signal(ws, "T001", "intent", "vip_concierge", "new on purpose", new_label=True)
    assert second["replaced"] == first["override_id"] and first["replaced"] is None
    close_readers(ws)
    v = state(ws, "C001").version
    assert remove(ws, second["override_id"]) == 1
    close_readers(ws)
    back = state(ws, "C001")
    assert back.version == v + 1 and not back.overrides  # the model's labels are back, as a new version
    with pytest.raises(ConfigError, match="No customer 'C999'"):
        suppress_action(ws, "C999", "chrun_risk", "x")
    with pytest.raises(ConfigError, match="No store"):
        suppress_action(tmp_path / "nows", "C001", "x", "y")
    assert not (tmp_path / "nows").exists()
    rules = _policy(tmp_path, "rules:\n  - name: any_contact\n    action: Say Thanks\n    when: [interactions >= 1]\n")
    suppress_action(ws, "C005", "  say thanks ", "case and spaces do not matter")
    close_readers(ws)
    assert "C005" not in {a.customer_id for a in actions(ws, rules, as_of=AS_OF)}


def test_forgetting_nobody_says_so_and_a_missing_workspace_is_an_error(ws, tmp_path):
    res = runner.invoke(app, ["forget", "NOBODY", "--workspace", str(ws)])
    assert res.exit_code == 0 and json.loads(res.stdout)["found"] is False and "held nothing" in res.stderr
    from extractor.audit import read

    assert list(read(ws))[-1]["found"] is False
    res = runner.invoke(app, ["forget", "C001", "--workspace", str(tmp_path / "nows")])
    assert res.exit_code != 0 and "No workspace" in res.output and not (tmp_path / "nows").exists()
    assert json.loads(runner.invoke(app, ["forget", "c001 ", "--workspace", str(ws)]).stdout)["found"] is True


def test_filter_typos_are_errors_not_empty_answers(ws, tmp_path):
    res = runner.invoke(app, ["audit", "--event", "forgett", "--workspace", str(ws)])
    assert res.exit_code != 0 and "events are" in res.output
    res = runner.invoke(app, ["export-overrides", "--kind", "intnt", "--out", str(tmp_path / "c.jsonl"),
                              "--workspace", str(ws)])
    assert res.exit_code != 0 and "corrections are of intent" in res.output


def test_a_search_filter_on_an_intent_nobody_has_says_so(ws):
    res = runner.invoke(app, ["search", "refund", "--where", "intent = billing_refund_requst", "--workspace", str(ws)])
    assert res.exit_code == 0 and "no hits" in res.stdout
    assert "did you mean billing_refund_request" in res.stderr
