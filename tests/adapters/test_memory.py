"""MemoryStorage specifics: commit is final at once, like a SQL COMMIT."""

import pytest

from slotengine.adapters.memory import MemoryStorage
from slotengine.errors import NotFoundError
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
