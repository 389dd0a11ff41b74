"""Customer profiles: read them from a file or a database and join them to the stored documents.

A source is a CSV, Parquet or JSONL file, a DuckDB file (``--table``), or any SQLAlchemy URL
(``postgresql://user@host/db``, with ``--table`` or ``--query``). Every source gives the same
records: values are made JSON-plain the same way (dates as ISO strings, decimals as floats), so a
profile read from PostgreSQL and the same profile read from CSV or Parquet give identical states.

Profiles are matched to documents by key, normalised (NFC, trimmed, lower case) on both sides. The
profile field that holds the key is ``--key`` (``customer_id`` by default; ``email`` when documents
carry e-mail addresses as their customer id). Re-importing updates profiles in place. Documents
without a profile are counted and listed, never dropped.

Consent: a profile whose ``--opt-out-field`` (default ``opted_out``) is true, or whose
``--consent-field`` is false, is opted out. Importing it erases what the workspace holds of that
customer, and later runs skip their documents.
"""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, time, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from .errors import ConfigError, InputError
from .store import Store, norm_key, optout_marker

log = logging.getLogger(__name__)

TRUE = {"true", "t", "yes", "y", "1", "on"}
DEFAULT_OPT_OUT = "opted_out"
FALSE = {"false", "f", "no", "n", "0", "off", ""}


class ProfileImport(BaseModel):
    """What ``signals profiles import`` did."""

    source: str
    key: str
    n_read: int = 0
    n_new: int = 0
    n_updated: int = 0
    n_rejected: int = Field(default=0, description="Rows without a usable key (listed in `rejected`).")
    n_duplicates: int = Field(default=0, description="Rows whose key came again later in the source (last wins).")
    n_unchanged: int = Field(default=0, description="Known profiles that the source gives again as they were.")
    n_opted_out: int = 0
    n_kept_opt_outs: int = Field(default=0, description="Later rows of an opted-out key, ignored: the opt-out stands.")
    opted_back_in: int = Field(default=0, description="Customers who had opted out and whose row now consents.")
    erased: list[str] = Field(default_factory=list, description="Audit ids of the erasures of opted-out customers.")
    rejected: list[dict[str, Any]] = Field(default_factory=list)
    documents_without_profile: int = 0
    customers_without_profile: list[str] = Field(default_factory=list)


def plain(value: Any) -> Any:
    """A JSON-plain copy of a value read from any source (the same for CSV, Parquet and SQL)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and value.as_tuple().exponent >= 0 else float(value)
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc).isoformat()
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def read_profiles(source: str, *, table: str | None = None, query: str | None = None) -> list[dict[str, Any]]:
    """Every record of ``source`` as a dict of JSON-plain values."""
    if "://" in source:
        return _read_sql(source, table, query)
    path = Path(source)
    if not path.exists():
        raise InputError(f"Profiles source {source} does not exist; give a CSV, Parquet, JSONL or DuckDB file, "
                         "or a SQLAlchemy URL such as postgresql://user@host/db")
    import duckdb

    suffix = path.suffix.lower()
    con = duckdb.connect()
    try:
        if suffix in (".duckdb", ".db", ".ddb"):
            if query:
                raise ConfigError("--query works with SQL URLs; for a DuckDB file name its --table")
            con.execute("ATTACH ? AS src (READ_ONLY)", [str(path)])
            rel = con.execute(f"SELECT * FROM src.{_ident(table or 'profiles')}")
        elif suffix in (".csv", ".tsv", ".txt"):
            rel = con.execute("SELECT * FROM read_csv(?, header = true)", [str(path)])
        elif suffix in (".parquet", ".pq"):
            rel = con.execute("SELECT * FROM read_parquet(?)", [str(path)])
        elif suffix in (".jsonl", ".ndjson", ".json"):
            rel = con.execute("SELECT * FROM read_json_auto(?)", [str(path)])
        else:
            raise ConfigError(f"Cannot read profiles from {path.name}: use .csv, .parquet, .jsonl or .duckdb, "
                              "or a SQLAlchemy URL")
        names = [d[0] for d in rel.description]
        # a JSON column is DuckDB's answer to mixed types (true in one row, "yes" in the next): its values
        # come back as JSON text, so decode them, or "yes" would be stored as '"yes"' and not read as a yes
        mixed = {d[0] for d in rel.description if str(d[1]).upper() == "JSON"}
        return [{n: plain(json.loads(v) if n in mixed and isinstance(v, str) else v) for n, v in zip(names, row)}
                for row in rel.fetchall()]
    except duckdb.Error as exc:
        raise InputError(f"Cannot read profiles from {source}: {exc}") from exc
    finally:
        con.close()


def _ident(name: str) -> str:
    if not name.replace("_", "").replace(".", "").isalnum():
        raise ConfigError(f"--table {name!r}: use a plain table name (letters, digits, _ and .)")
    return ".".join(f'"{part}"' for part in name.split("."))


def _read_sql(url: str, table: str | None, query: str | None) -> list[dict[str, Any]]:
    try:
        import sqlalchemy as sa
    except ImportError as exc:
        raise ConfigError("Reading profiles from a database URL needs SQLAlchemy (and the database's driver): "
                          'pip install "signals-extractor[sql]"') from exc
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            stmt = sa.text(query) if query else sa.text(f"SELECT * FROM {_ident(table or 'profiles')}")
            return [{k: plain(v) for k, v in row.items()} for row in conn.execute(stmt).mappings()]
    except sa.exc.SQLAlchemyError as exc:
        safe = engine.url.render_as_string(hide_password=True)
        raise InputError(f"Cannot read profiles from {safe}: {exc.__class__.__name__}: "
                         f"{str(exc).splitlines()[0]}") from exc
    finally:
        engine.dispose()


def truthy(value: Any) -> bool | None:
    """True / False for the usual spellings of a yes/no field; None when it is not one."""
    if isinstance(value, bool):
        return value
    if value is None:
        return None
    text = str(value).strip().lower()
    return True if text in TRUE else False if text in FALSE else None


def opted_out(record: dict[str, Any], opt_out_field: str | None, consent_field: str | None) -> bool:
    """Whether a profile record says the customer has opted out (a consent field wins over an opt-out one)."""
    if consent_field:
        return truthy(record.get(consent_field)) is not True  # no recorded consent: treated as no consent
    return bool(opt_out_field) and truthy(record.get(opt_out_field)) is True


def import_profiles(workspace: str | Path, source: str, *, key: str = "customer_id", table: str | None = None,
                    query: str | None = None, opt_out_field: str | None = DEFAULT_OPT_OUT,
                    consent_field: str | None = None) -> ProfileImport:
    """Read profiles from ``source`` into the workspace store, updating existing ones in place."""
    from .index import close_readers

    records = read_profiles(source, table=table, query=query)
    safe_source = _safe(source)
    report = ProfileImport(source=safe_source, key=key, n_read=len(records))
    _check_fields(records, safe_source, key=key, opt_out_field=opt_out_field, consent_field=consent_field)
    close_readers(workspace)
    with Store(workspace) as store:
        before = {r[0]: r[1:] for r in store.db.execute("SELECT customer_key, attrs, opted_out FROM profiles")
                  .fetchall()}
    rows: dict[str, tuple] = {}
    now = datetime.now(timezone.utc)
    consent = consent_field or opt_out_field
    for i, rec in enumerate(records, 1):
        k = norm_key(rec.get(key))
        if k is None:
            report.rejected.append({"row": i, "reason": f"no value in the key field {key!r}"})
            continue
        if k in rows:
            report.n_duplicates += 1
            if rows[k][3]:  # an opt-out anywhere in the source stands: a later row does not undo it
                report.n_kept_opt_outs += 1
                continue
        # a row that says nothing about consent does not cancel an opt-out recorded earlier
        unknown = consent is None or truthy(rec.get(consent)) is None and not consent_field
        if opted_out(rec, opt_out_field, consent_field) or (unknown and optout_marker(k) in before):
            rows[k] = (optout_marker(k), None, None, True, safe_source, now)  # only a hash of the key is kept
        else:
            rows[k] = (k, str(rec.get(key)).strip(), json.dumps(rec, ensure_ascii=False, sort_keys=True), False,
                       safe_source, now)
            if optout_marker(k) in before:
                report.opted_back_in += 1
                log.warning("a customer who had opted out is opted in again by %s (row %d)", safe_source, i)
    report.n_rejected = len(report.rejected)
    known = {k for k in rows if k in before or optout_marker(k) in before}
    report.n_unchanged = sum(1 for k in known if before.get(rows[k][0], (None, None)) == (rows[k][2], rows[k][3]))
    with Store(workspace) as store:
        store.db.execute("BEGIN")
        try:
            store.db.execute("DELETE FROM profiles WHERE customer_key IN (SELECT unnest(?::VARCHAR[]))",
                             [[x for k in rows for x in (k, optout_marker(k))]])
            if rows:
                store.insert("profiles", list(rows.values()), 6)
            store.db.execute("COMMIT")
        except Exception:
            store.db.execute("ROLLBACK")
            raise
        report.n_new = len(set(rows) - known)
        report.n_updated = len(known) - report.n_unchanged
        out_keys = [k for k, row in rows.items() if row[3]]  # opted out now: erase what is held of them
        report.n_opted_out = len(out_keys)
        holding = {r[0] for r in store.db.execute(
            "SELECT DISTINCT customer_key FROM documents WHERE customer_key IN (SELECT unnest(?::VARCHAR[]))",
            [out_keys]).fetchall()} if out_keys else set()
        from .state import bump_versions

        bump_versions(store, [k for k, row in rows.items() if not row[3]])  # a changed profile is a new version
    from .forget import forget

    for k in sorted(holding):  # opted out after their data arrived: erase it, keep only the opt-out marker
        report.erased.append(forget(workspace, k, reason="opted out", keep_profile=True)["audit_id"])
    with Store(workspace) as store:
        unmatched = store.db.execute(
            "SELECT d.customer_id, COUNT(*) FROM documents d LEFT JOIN profiles p USING (customer_key) "
            "WHERE p.customer_key IS NULL GROUP BY 1 ORDER BY 1 NULLS LAST").fetchall()
    report.documents_without_profile = sum(n for _, n in unmatched)
    report.customers_without_profile = [c if c is not None else "(no customer id)" for c, _ in unmatched]
    from . import audit

    audit.record(workspace, "profiles", source_sha256=audit.file_digest(source), key=key,
                 counts=report.model_dump(include={"n_read", "n_new", "n_updated", "n_unchanged", "n_rejected",
                                                   "n_duplicates", "n_opted_out", "documents_without_profile"}))
    return report


def _check_fields(records: list[dict[str, Any]], source: str, *, key: str, opt_out_field: str | None,
                  consent_field: str | None) -> None:
    """A key, consent or opt-out field the source does not have is a mistake to stop on, not a blank column:
    a misspelt ``--consent-field`` would opt everyone out (and erase them), a misspelt opt-out field
    would opt nobody out."""
    if not records:
        return
    fields = list(dict.fromkeys(f for r in records for f in r))
    named = ", ".join(fields[:20]) + (", ..." if len(fields) > 20 else "")
    for option, field, required in (("--key", key, True), ("--consent-field", consent_field, True),
                                    ("--opt-out-field", None if consent_field else opt_out_field,
                                     opt_out_field != DEFAULT_OPT_OUT)):
        if field and required and field not in fields:
            raise ConfigError(f"{option} {field!r} is not a field of {source}; its fields are {named}")
    if not consent_field and opt_out_field and opt_out_field not in fields:
        log.info("%s has no %r field: recorded opt-outs stay as they are, nobody new opts out", source,
                 opt_out_field)


def _safe(source: str) -> str:
    """The source as it may be written down: a URL without its password."""
    if "://" not in source:
        return source
    try:
        from sqlalchemy.engine import make_url

        return make_url(source).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a SQLAlchemy URL: drop anything that looks like credentials
        scheme, _, rest = source.partition("://")
        return f"{scheme}://{rest.rpartition('@')[2]}"


def opted_out_markers(workspace: str | Path) -> set[str]:
    """Opt-out markers of a workspace's opted-out customers (empty when it has no store yet)."""
    from .store import STORE_FILE

    if not (Path(workspace) / STORE_FILE).exists():
        return set()
    from .index import close_readers

    close_readers(workspace)
    with Store(workspace, read_only=True) as store:
        return store.opted_out()


def profile_of(store: Store, customer_key: str) -> dict[str, Any] | None:
    return profiles_of(store, [customer_key]).get(customer_key)


def profiles_of(store: Store, keys: list[str]) -> dict[str, dict[str, Any]]:
    """The profiles of ``keys`` (those that have one): attributes, source and import time."""
    rows = store.db.execute("SELECT customer_key, attrs, source, imported_at FROM profiles WHERE NOT opted_out AND "
                            "customer_key IN (SELECT unnest(?::VARCHAR[]))", [list(keys)]).fetchall()
    return {k: {"attributes": json.loads(a), "source": src, "imported_at": t.isoformat()} for k, a, src, t in rows}
