"""Tenant review fixes: an engine's tenant is fixed, and its catalogue cache never serves another tenant or storage."""

from __future__ import annotations

import copy
from datetime import time
from pathlib import Path
from typing import Any

import pytest

from conftest import WASH, H, at, business
from slotengine.adapters.memory import MemoryStorage
from slotengine.adapters.sqlite import SQLiteStorage
from slotengine.authorization import Actor
from slotengine.business import Business
from slotengine.engine import BookingEngine, _Catalogue
from slotengine.errors import ConflictError
from slotengine.events import EventDesk, EventTemplate, Occurrence, TicketType
from slotengine.intervals import Interval
from slotengine.model import Resource
from slotengine.money import Money
from slotengine.schedule import Schedule, TimeRange, WeeklyHours
from slotengine.testing.clock import FrozenClock

ROOT = Actor.system("root")
WEDNESDAY = Interval(at(4, 9), at(4, 18))


def wash(storage: Any, tenant: str, *, open_on_wednesdays: bool) -> BookingEngine:
    """A car wash; the same catalogue writes whichever the hours, so two washes reach the same version."""
    engine = BookingEngine(storage, clock=FrozenClock(at(2, 8)), tenant=tenant, default_actor=ROOT)
    if open_on_wednesdays:
        engine.setup(business())
    else:
        mondays = Schedule("Europe/Paris", WeeklyHours({"mon": TimeRange(time(9), time(18))}))
        engine.setup(Business("Monday wash", "Europe/Paris", mondays))
    engine.add_resource(Resource("box1", "Box 1", type="box"))
    engine.add_service(WASH)
    return engine


class TestTheTenantIsFixed:
    def test_reassigning_the_tenant_is_refused_and_changes_nothing(self) -> None:
        """engine.tenant = ... raises AttributeError saying what to do; the engine still serves its own tenant."""
        engine = wash(MemoryStorage(), "a", open_on_wednesdays=True)
        twin = copy.copy(engine)

        for made in (engine, twin):
            with pytest.raises(AttributeError, match=r"one tenant \('a'\) for life: make a BookingEngine"):
                made.tenant = "b"  # type: ignore[misc]

        assert ("a", "a") == (engine.tenant, twin.tenant)
        assert engine.find_slots("wash", WEDNESDAY)


class TestTheCacheIsKeyedOnTenantAndStorage:
    def test_a_snapshot_is_never_used_for_another_storage_at_the_same_version(self, tmp_path: Path) -> None:
        """
        Two SQLite files whose tenant "a" stands at the same catalogue version, with different hours: a copy of
        an engine pointed at the other file books by that file's catalogue, not the snapshot of the first.
        """
        first, second = SQLiteStorage(tmp_path / "first.db"), SQLiteStorage(tmp_path / "second.db")
        try:
            opened = wash(first, "a", open_on_wednesdays=True)
            closed = wash(second, "a", open_on_wednesdays=False)
            with first.transaction("a") as one, second.transaction("a") as other:
                assert one.catalogue_version() == other.catalogue_version()  # the collision the cache must survive
            assert opened.find_slots("wash", WEDNESDAY)  # warms the cache with the first file's catalogue

            moved = copy.copy(opened)
            moved.storage = second

            assert [] == moved.find_slots("wash", WEDNESDAY)
            with pytest.raises(ConflictError):
                moved.book("wash", at(4, 10))
            assert [] == closed.list()
        finally:
            first.close()
            second.close()

    def test_tenants_at_the_same_version_on_one_file_keep_their_own_catalogues(self, tmp_path: Path) -> None:
        """SQLite counts versions per tenant: a and b at the same version still each see their own hours."""
        storage = SQLiteStorage(tmp_path / "shared.db")
        try:
            a = wash(storage, "a", open_on_wednesdays=True)
            b = wash(storage, "b", open_on_wednesdays=False)
            twin_of_a = copy.copy(a)

            assert a.find_slots("wash", WEDNESDAY)
            assert [] == b.find_slots("wash", WEDNESDAY)
            assert twin_of_a.find_slots("wash", WEDNESDAY)
            with pytest.raises(ConflictError):
                b.book("wash", at(4, 10))
        finally:
            storage.close()


class TestTheDesksJoinedEngine:
    def test_sales_through_the_desk_share_the_engines_catalogue_snapshot(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """
        The desk's engine joins each sale's transaction on a copy: the copy shares the engine's cache, so once a
        ticket type's service exists, further sales read no catalogue (they did, every one, while the original
        engine's snapshot was stale).
        """
        engine = wash(MemoryStorage(), "a", open_on_wednesdays=True)
        desk = EventDesk(engine)
        walk = EventTemplate(
            "walk", "Walk", 2 * H, "Europe/Paris", 9, [TicketType("adult", "Adult", Money("15", "EUR"))]
        )
        desk.upsert_template(walk)
        desk.upsert_occurrence(Occurrence("w1", "walk", at(5, 11)))
        desk.sell("w1", "adult", customer_id="c0")  # adds the ticket service: a new catalogue version
        reads: list[int | None] = []
        read = _Catalogue.read

        def counted(tx: Any, version: int | None) -> _Catalogue:
            reads.append(version)
            return read(tx, version)

        monkeypatch.setattr(_Catalogue, "read", staticmethod(counted))

        sold = [desk.sell("w1", "adult", customer_id=f"c{n}") for n in range(1, 4)]

        assert len(reads) <= 1
        assert 5 == desk.seats_left("w1")
        assert {s.id for s in sold} < {b.id for b in engine.list()}
