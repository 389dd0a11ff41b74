"""Profiles imported from a real PostgreSQL server give the same states as the same profiles from CSV."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from extractor.cli import app
from extractor.index import close_readers
from extractor.profiles import import_profiles, read_profiles
from extractor.state import state

from .conftest import SAMPLE
from .postgres import postgres_server

runner = CliRunner()

DDL = """CREATE TABLE crm_profiles (customer_id TEXT, name TEXT, email TEXT, plan TEXT, segment TEXT, region TEXT,
    signup_date DATE, lifetime_value NUMERIC(10, 2), opted_out BOOLEAN)"""


@pytest.fixture(scope="module")
def pg_url():
    with postgres_server() as url:
        if url is None:
            pytest.skip("PostgreSQL is not installed (apt-get install postgresql; .ci/run does it)")
        import sqlalchemy as sa

        engine = sa.create_engine(url)
        rows = read_profiles(str(SAMPLE / "profiles.csv"))
        with engine.begin() as conn:
            conn.execute(sa.text(DDL))
            conn.execute(sa.text("INSERT INTO crm_profiles VALUES (:customer_id, :name, :email, :plan, :segment, "
                                 ":region, CAST(:signup_date AS DATE), :lifetime_value, :opted_out)"), rows)
        engine.dispose()
        yield url


def _states(ws: Path) -> list[dict]:
    close_readers(ws)
    out = []
    for c in ("C001", "C005", "C040", "C066"):
        st = state(ws, c, as_of=datetime(2026, 12, 1, tzinfo=timezone.utc))
        d = st.model_dump(mode="json")
        d.pop("version")
        d["profile"].pop("source"), d["profile"].pop("imported_at")
        out.append(d)
    return out


def test_postgres_and_csv_profiles_give_identical_states(pg_url, built, tmp_path):
    from_pg = Path(shutil.copytree(built, tmp_path / "pg"))
    from_csv = Path(shutil.copytree(built, tmp_path / "csv"))
    report = import_profiles(from_pg, pg_url, table="crm_profiles")
    assert report.n_read == 66 and report.n_opted_out == 3
    import_profiles(from_csv, str(SAMPLE / "profiles.csv"))
    assert _states(from_pg) == _states(from_csv)


def test_postgres_query_and_cli(pg_url, built, tmp_path):
    ws = Path(shutil.copytree(built, tmp_path / "ws"))
    result = runner.invoke(app, ["profiles", "import", pg_url, "--query",
                                 "SELECT * FROM crm_profiles WHERE plan = 'Nimbus Plus'", "--workspace", str(ws)])
    assert result.exit_code == 0, result.output
    assert "documents have no profile" in result.output  # the other plans' customers are counted, not dropped
    close_readers(ws)
    assert state(ws, "C001").profile["attributes"]["plan"] == "Nimbus Plus"


def test_a_database_error_hides_the_password(pg_url, built, tmp_path):
    ws = Path(shutil.copytree(built, tmp_path / "ws"))
    url = pg_url.replace("signals@", "signals:s3cret@")
    result = runner.invoke(app, ["profiles", "import", url, "--table", "no_such_table", "--workspace", str(ws)])
    assert result.exit_code == 2 and "Cannot read profiles" in result.output and "s3cret" not in result.output
