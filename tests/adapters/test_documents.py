"""The document store of the storage port: schema version 2 of the SQL adapters, upgraded from version 1."""

from __future__ import annotations

import os
import secrets
import sqlite3
from pathlib import Path

import pytest

from slotengine.adapters import sqlite as sqlite_adapter
from slotengine.adapters.memory import MemoryStorage
from slotengine.adapters.sqlite import SQLiteStorage
from slotengine.errors import InvalidInputError
from slotengine.testing.conformance import check_documents

DSN = os.environ.get("SLOTENGINE_TEST_POSTGRES_DSN")


class TestSQLiteUpgrade:
    def test_a_version_1_file_gains_documents_and_keeps_its_data(self, tmp_path: Path) -> None:
        """A file written at schema version 1 is upgraded in place: its rows stay, documents work."""
        path = tmp_path / "v1.db"
        conn = sqlite3.connect(path)
        for statement in sqlite_adapter._MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
        conn.execute(f"PRAGMA application_id = {sqlite_adapter.APPLICATION_ID}")
        conn.execute("INSERT INTO businesses (tenant, doc) VALUES ('t', '{}')")
        conn.commit()
        conn.close()

        storage = SQLiteStorage(path)
        with storage.transaction("t") as tx:
            tx.put_document("event", "k", "body")
            tx.commit()
        with storage.transaction("t") as tx:
            found = tx.list_documents("event")
        storage.close()
        conn = sqlite3.connect(path)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        kept = conn.execute("SELECT count(*) FROM businesses").fetchone()[0]
        conn.close()

        assert (sqlite_adapter.SCHEMA_VERSION, 1, [("k", "body")]) == (version, kept, found)

    def test_reopening_an_upgraded_file_changes_nothing(self, tmp_path: Path) -> None:
        """Opening a version 2 file again keeps its documents (the migration is idempotent)."""
        path = tmp_path / "v2.db"
        storage = SQLiteStorage(path)
        with storage.transaction("t") as tx:
            tx.put_document("event", "k", "body")
            tx.commit()
        storage.close()

        again = SQLiteStorage(path)
        with again.transaction("t") as tx:
            found = tx.get_document("event", "k")
        again.close()

        assert "body" == found


class TestMemoryDocuments:
    def test_the_reference_keeps_the_contract(self) -> None:
        """MemoryStorage passes the documents clause of the conformance kit."""
        check_documents(MemoryStorage)

    def test_a_bad_kind_is_refused_on_read_too(self) -> None:
        """Reading with an empty kind raises InvalidInputError rather than finding nothing."""
        storage = MemoryStorage()
        with storage.transaction("t") as tx, pytest.raises(InvalidInputError):
            tx.get_document("", "k")


@pytest.mark.skipif(DSN is None, reason="set SLOTENGINE_TEST_POSTGRES_DSN to run the PostgreSQL tests")
class TestPostgresUpgrade:
    def test_a_version_1_schema_gains_documents_and_keeps_its_data(self) -> None:
        """A schema at version 1 is upgraded on open: one schema_version row per step, rows kept, documents work."""
        psycopg = pytest.importorskip("psycopg")
        from psycopg import sql

        from slotengine.adapters import postgres as pg

        assert DSN is not None
        schema = f"slotengine_test_{secrets.token_hex(6)}"
        try:
            with psycopg.connect(DSN) as conn:
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
                conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
                for statement in pg._MIGRATIONS[0]:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version (version) VALUES (1)")
                conn.execute("INSERT INTO businesses (tenant_id, doc) VALUES ('t', '{}')")

            storage = pg.PostgresStorage(DSN, schema=schema)
            with storage.transaction("t") as tx:
                tx.put_document("event", "k", "body")
                tx.commit()
            with storage.transaction("t") as tx:
                found = tx.list_documents("event")
            storage.close()
            with psycopg.connect(DSN) as conn:
                conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
                versions = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
                kept = conn.execute("SELECT count(*) FROM businesses").fetchone()
        finally:
            with psycopg.connect(DSN, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))

        every = [(v,) for v in range(1, pg.SCHEMA_VERSION + 1)]
        assert (every, (1,), [("k", "body")]) == (versions, kept, found)
