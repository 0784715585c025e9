"""MemoryStorage specifics: commit is final at once, like a SQL COMMIT; transactions do not nest."""

import threading

import pytest

from slotengine.adapters.memory import MemoryStorage
from slotengine.errors import NotFoundError, StorageError
from slotengine.model import Resource


class TestCommit:
    def test_an_exception_after_commit_keeps_the_commit(self):
        """Raising after commit() does not undo it (as with SQLite and PostgreSQL)."""
        storage = MemoryStorage()

        def commit_then_fail():
            with storage.transaction("t") as tx:
                tx.put_resource(Resource("r", "R"))
                tx.commit()
                raise RuntimeError

        with pytest.raises(RuntimeError):
            commit_then_fail()
        with storage.transaction("t") as tx:
            assert "r" == tx.get_resource("r").id

    def test_no_commit_rolls_back(self):
        """Leaving without commit() writes nothing."""
        storage = MemoryStorage()
        with storage.transaction("t") as tx:
            tx.put_resource(Resource("r", "R"))
        with storage.transaction("t") as tx, pytest.raises(NotFoundError):
            tx.get_resource("r")


class TestNesting:
    def test_a_nested_transaction_is_refused_and_the_outer_one_goes_on(self):
        """
        A transaction opened inside another in the same thread raises StorageError, as in SQLite and PostgreSQL.

        It used to open (the lock is re-entrant), and the outer commit silently replaced the inner one's.
        """
        storage = MemoryStorage()

        def nested():
            with storage.transaction("t") as inner:
                inner.put_resource(Resource("r2", "Inner"))
                inner.commit()

        with storage.transaction("t") as outer:
            outer.put_resource(Resource("r1", "Outer"))
            with pytest.raises(StorageError, match="do not nest"):
                nested()
            outer.commit()
        with storage.transaction("t") as tx:
            kept = [r.id for r in tx.list_resources()]

        assert ["r1"] == kept

    def test_another_threads_transaction_waits_for_the_open_one(self):
        """A transaction of another thread is not nested: it waits for the open one to end, then sees its commit."""
        storage = MemoryStorage()
        started = threading.Event()
        seen = []

        def other():
            started.set()
            with storage.transaction("t") as tx:
                seen.append([r.id for r in tx.list_resources()])
                tx.put_resource(Resource("r2", "Other"))
                tx.commit()

        thread = threading.Thread(target=other)
        with storage.transaction("t") as tx:
            tx.put_resource(Resource("r1", "Main"))
            thread.start()
            started.wait(10)
            thread.join(0.2)  # time to get in, were transactions not serialized
            waited = thread.is_alive()
            tx.commit()
        thread.join(10)
        with storage.transaction("t") as tx:
            final = [r.id for r in tx.list_resources()]

        assert waited
        assert [["r1"]] == seen
        assert ["r1", "r2"] == final


def test_a_storage_is_a_context_manager() -> None:
    """`with MemoryStorage() as s:` closes it at the end of the block, as the other adapters."""
    with MemoryStorage() as storage, storage.transaction("t") as tx:
        tx.put_resource(Resource("r1", "One"))
        tx.commit()
    with pytest.raises(StorageError, match="closed"), storage.transaction("t"):
        pass
