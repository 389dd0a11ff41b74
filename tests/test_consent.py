"""Consent on profile import: a mistyped field is an error; only a row that consents undoes an opt-out."""

from __future__ import annotations

import json

import pytest

from extractor.errors import ConfigError
from extractor.profiles import import_profiles, read_profiles
from extractor.store import Store, optout_marker


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    return str(path)


def _opted_out(ws) -> set[str]:
    with Store(ws, read_only=True) as st:
        return st.opted_out()


def _profiles(ws) -> int:
    with Store(ws, read_only=True) as st:
        return st.db.execute("SELECT count(*) FROM profiles WHERE NOT opted_out").fetchone()[0]


def test_a_consent_or_opt_out_field_the_source_lacks_is_an_error_and_changes_nothing(tmp_path):
    ws = tmp_path / "ws"
    src = _jsonl(tmp_path / "p.jsonl", [{"customer_id": "C1", "consent": True}, {"customer_id": "C2", "consent": True}])
    import_profiles(ws, src, consent_field="consent")
    with pytest.raises(ConfigError, match="--consent-field 'consnt' is not a field"):
        import_profiles(ws, src, consent_field="consnt")  # would have opted out (and erased) everyone
    with pytest.raises(ConfigError, match="--opt-out-field 'optedout' is not a field"):
        import_profiles(ws, src, opt_out_field="optedout")
    assert _profiles(ws) == 2 and not _opted_out(ws)


def test_a_source_without_consent_information_keeps_recorded_opt_outs(tmp_path):
    ws = tmp_path / "ws"
    import_profiles(ws, _jsonl(tmp_path / "a.jsonl", [{"customer_id": "C1", "opted_out": True},
                                                      {"customer_id": "C2", "opted_out": False}]))
    assert _opted_out(ws) == {optout_marker("c1")}
    # a later source with no opted_out column, and one with the column left empty for C1
    report = import_profiles(ws, _jsonl(tmp_path / "b.jsonl", [{"customer_id": "C1", "plan": "x"},
                                                               {"customer_id": "C2", "plan": "y"}]))
    assert _opted_out(ws) == {optout_marker("c1")} and report.opted_back_in == 0
    import_profiles(ws, _jsonl(tmp_path / "c.jsonl", [{"customer_id": "C1", "opted_out": None},
                                                      {"customer_id": "C2", "opted_out": False}]))
    assert _opted_out(ws) == {optout_marker("c1")}
    # only a row that says so opts a customer back in, and the import reports it
    report = import_profiles(ws, _jsonl(tmp_path / "d.jsonl", [{"customer_id": "C1", "opted_out": False}]))
    assert not _opted_out(ws) and report.opted_back_in == 1


def test_mixed_types_in_a_jsonl_opt_out_column_are_read_as_values(tmp_path):
    src = _jsonl(tmp_path / "m.jsonl", [{"customer_id": "C1", "opted_out": False},
                                        {"customer_id": "C2", "opted_out": "yes"},
                                        {"customer_id": "C3", "opted_out": True},
                                        {"customer_id": "C4", "opted_out": "TRUE", "tier": "gold"}])
    assert [r["opted_out"] for r in read_profiles(src)] == [False, "yes", True, "TRUE"]  # not '"yes"'
    report = import_profiles(tmp_path / "ws", src)
    assert report.n_opted_out == 3
    assert _opted_out(tmp_path / "ws") == {optout_marker(k) for k in ("c2", "c3", "c4")}


def test_a_duplicate_row_does_not_undo_an_opt_out(tmp_path):
    src = tmp_path / "dup.csv"
    src.write_text("customer_id,plan,opted_out\nC500,Plus,true\nc500 ,Basic,false\n", "utf-8")
    report = import_profiles(tmp_path / "ws", str(src))
    assert report.n_duplicates == 1 and report.n_kept_opt_outs == 1 and report.n_opted_out == 1
    assert _opted_out(tmp_path / "ws") == {optout_marker("c500")} and _profiles(tmp_path / "ws") == 0


def test_reimport_counts_only_changed_profiles_as_updated(tmp_path):
    ws, rows = tmp_path / "ws", [{"customer_id": f"C{i}", "plan": "Basic"} for i in range(5)]
    assert import_profiles(ws, _jsonl(tmp_path / "a.jsonl", rows)).n_new == 5
    rows[2]["plan"] = "Plus"
    report = import_profiles(ws, _jsonl(tmp_path / "b.jsonl", rows))
    assert (report.n_new, report.n_updated, report.n_unchanged) == (0, 1, 4)
