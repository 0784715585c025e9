"""
The engine's catalogue cache: decoded once per catalogue version, never stale.

`BookingEngine` keeps the business, resources and services it decoded, labelled with the storage's catalogue
version (`slotengine.ports.CatalogueVersions`), and reuses them while a transaction reads the same version. A
change made anywhere else (another engine, another process, an operator's SQL) must be seen by the very next
call: a stale cache must never offer or book with stale hours or capacity.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import POSTGRES_DSN, POSTGRES_SKIP, WASH, at, business, storage_factories
from slotengine.adapters.sqlite import SCHEMA_VERSION, SQLiteStorage
from slotengine.authorization import Actor
from slotengine.business import Business
from slotengine.engine import BookingEngine, _Catalogue
from slotengine.errors import ConflictError, NotFoundError
from slotengine.intervals import Interval
from slotengine.model import Need, Resource, Service
from slotengine.ports import CatalogueVersions
from slotengine.schedule import Schedule, TimeRange, WeeklyHours, effective_hours, time_off_within
from slotengine.testing._schedule_strategies import schedules
from slotengine.testing.clock import FrozenClock

MORNINGS = Schedule("Europe/Paris", WeeklyHours.weekdays(TimeRange(time(9), time(12))))
CATALOGUE_READS = ("get_business", "list_resources", "list_services", "get_resource", "get_service")


def other_engine(storage: object, clock: FrozenClock) -> BookingEngine:
    return BookingEngine(storage, clock=clock, tenant="wash", default_actor=Actor.system("other"))  # type: ignore[arg-type]


def starts(engine: BookingEngine, day: int) -> list[int]:
    """The hours at which a wash can start on *day* (Paris time)."""
    slots = engine.find_slots("wash", Interval(at(day, 0), at(day + 1, 0)))
    return sorted({s.start.astimezone(at(day, 0).tzinfo).hour for s in slots})


class Counting:
    """A storage whose transactions count the catalogue reads they answer."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.reads: Counter[str] = Counter()
        self.transactions = 0

    @contextmanager
    def transaction(self, tenant: str) -> Iterator[Any]:
        with self.inner.transaction(tenant) as tx:
            self.transactions += 1
            yield _CountingTransaction(tx, self.reads)

    def close(self) -> None:
        self.inner.close()


class _CountingTransaction:
    def __init__(self, inner: Any, reads: Counter[str]) -> None:
        self._inner = inner
        self._reads = reads

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._inner, name)
        if name in CATALOGUE_READS:
            self._reads[name] += 1
        return found


class TestStaleness:
    def test_new_hours_set_by_another_engine_are_offered_and_enforced(
        self, engine: BookingEngine, storage: object, clock: FrozenClock
    ) -> None:
        """After another engine shortens the hours, the next call offers and books only the new hours."""
        engine.book("wash", at(2, 14))  # the first engine has read (and may cache) the catalogue
        before = starts(engine, 3)
        other_engine(storage, clock).setup(Business("Car wash", "Europe/Paris", MORNINGS, business().policies))

        after = starts(engine, 3)
        with pytest.raises(ConflictError):
            engine.book("wash", at(3, 14))

        assert list(range(9, 18)) == before
        assert [9, 10, 11] == after

    def test_capacity_added_by_another_engine_is_used(
        self, engine: BookingEngine, storage: object, clock: FrozenClock
    ) -> None:
        """A resource added elsewhere takes a third booking at a time the cached catalogue had full."""
        engine.book("wash", at(2, 10))
        engine.book("wash", at(2, 10))
        with pytest.raises(ConflictError):
            engine.book("wash", at(2, 10))
        other_engine(storage, clock).add_resource(Resource("box3", "Box 3", type="box"))

        third = engine.book("wash", at(2, 10))

        assert ("box3",) == third.resource_ids

    def test_a_resource_taken_away_from_the_pool_elsewhere_is_not_booked(
        self, engine: BookingEngine, storage: object, clock: FrozenClock
    ) -> None:
        """A resource retyped elsewhere (out of the service's pool) is no longer offered or booked."""
        engine.book("wash", at(2, 9))
        other_engine(storage, clock).add_resource(Resource("box2", "Box 2", type="storeroom"))

        first = engine.book("wash", at(2, 10))
        with pytest.raises(ConflictError):
            engine.book("wash", at(2, 10))

        assert ("box1",) == first.resource_ids


def made(kind: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    factories = storage_factories(tmp_path_factory)
    if kind not in factories:
        pytest.skip(POSTGRES_SKIP)
    return factories[kind]()  # type: ignore[operator]


@pytest.fixture(params=["sqlite", "postgres"])
def shared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A storage that other processes can open too."""
    storage = made(request.param, tmp_path_factory)
    yield storage
    storage.close()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def versioned(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A storage whose transactions keep a catalogue version."""
    storage = made(request.param, tmp_path_factory)
    yield storage
    storage.close()


class TestAcrossProcesses:
    def test_a_change_made_by_another_process_is_seen(self, shared: Any, clock: FrozenClock) -> None:
        """Another process (its own storage object) shortens the hours: this engine's next call sees it."""
        storage = shared
        engine = other_engine(storage, clock)
        engine.setup(business())
        engine.add_resource(Resource("box1", "Box 1", type="box"))
        engine.add_service(WASH)
        engine.book("wash", at(2, 14))
        if hasattr(storage, "schema"):
            opener = f"PostgresStorage({POSTGRES_DSN!r}, schema={storage.schema!r}, max_size=1)"
            module = "adapters.postgres import PostgresStorage"
        else:
            opener = f"SQLiteStorage({storage.path!r})"
            module = "adapters.sqlite import SQLiteStorage"
        script = f"""
from datetime import time
from slotengine.{module}
from slotengine.business import Business
from slotengine.schedule import Schedule, TimeRange, WeeklyHours
storage = {opener}
with storage.transaction("wash") as tx:
    old = tx.get_business()
    hours = Schedule("Europe/Paris", WeeklyHours.weekdays(TimeRange(time(9), time(12))))
    tx.put_business(Business(old.name, old.zone, hours, old.policies))
    tx.commit()
storage.close()
"""
        subprocess.run([sys.executable, "-c", script], check=True, timeout=60)

        after = starts(engine, 3)
        with pytest.raises(ConflictError):
            engine.book("wash", at(3, 14))

        assert [9, 10, 11] == after


class TestReadsOncePerVersion:
    def test_an_unchanged_catalogue_is_decoded_once(self, storage: object, clock: FrozenClock) -> None:
        """Three bookings read the catalogue once where the storage has versions, once per call where not."""
        counting = Counting(storage)
        engine = BookingEngine(counting, clock=clock, tenant="wash", default_actor=Actor.system("tests"))  # type: ignore[arg-type]
        engine.setup(business())
        engine.add_resource(Resource("box1", "Box 1", type="box"))
        engine.add_service(WASH)
        with storage.transaction("wash") as tx:  # type: ignore[attr-defined]
            versioned = isinstance(tx, CatalogueVersions)
        counting.reads.clear()

        for hour in (9, 10, 11):
            engine.book("wash", at(2, hour))

        once = 1 if versioned else 3
        assert {"get_business": once, "list_resources": once, "list_services": once} == dict(counting.reads)

    def test_a_change_between_calls_is_read_again(self, storage: object, clock: FrozenClock) -> None:
        """After a catalogue write the next booking reads the catalogue again (and only then)."""
        counting = Counting(storage)
        engine = BookingEngine(counting, clock=clock, tenant="wash", default_actor=Actor.system("tests"))  # type: ignore[arg-type]
        engine.setup(business())
        engine.add_resource(Resource("box1", "Box 1", type="box"))
        engine.add_service(WASH)
        engine.book("wash", at(2, 9))
        engine.add_resource(Resource("box2", "Box 2", type="box"))
        counting.reads.clear()

        engine.book("wash", at(2, 9))

        assert 1 == counting.reads["list_resources"]


class TestVersions:
    def test_the_storages_keep_versions(self, versioned: Any) -> None:
        """Memory, SQLite and PostgreSQL transactions offer `CatalogueVersions` (so the engine caches on them)."""
        with versioned.transaction("wash") as tx:
            assert isinstance(tx, CatalogueVersions)

    @pytest.mark.parametrize(
        "write",
        [
            lambda tx: tx.put_business(business()),
            lambda tx: tx.put_resource(Resource("ghost", "Ghost")),
            lambda tx: tx.put_service(WASH),
        ],
        ids=["business", "resource", "service"],
    )
    def test_a_version_drawn_by_a_rolled_back_write_never_comes_back(self, versioned: Any, write: Any) -> None:
        """A version seen inside a write that rolled back is never the version of a later catalogue."""
        storage = versioned
        seen = []
        with storage.transaction("wash") as tx:
            seen.append(tx.catalogue_version())
            write(tx)
            seen.append(tx.catalogue_version())  # rolled back: never committed
        with storage.transaction("wash") as tx:
            tx.put_resource(Resource("real", "Real"))
            tx.commit()
        with storage.transaction("wash") as tx:
            final = tx.catalogue_version()

        assert seen[0] != seen[1]
        assert final not in seen

    def test_a_booking_leaves_the_version_alone(self, versioned: Any, clock: FrozenClock) -> None:
        """Bookings (which widen bookkeeping columns of the resources on SQLite) are not catalogue changes."""
        engine = other_engine(versioned, clock)
        engine.setup(business())
        engine.add_resource(Resource("box1", "Box 1", type="box"))
        engine.add_service(WASH)
        with versioned.transaction("wash") as tx:
            before = tx.catalogue_version()

        engine.book("wash", at(2, 9))
        engine.book("wash", at(2, 10))
        with versioned.transaction("wash") as tx:
            after = tx.catalogue_version()

        assert before == after

    def test_every_kind_of_catalogue_write_changes_the_version(self, versioned: Any) -> None:
        """put_business, put_resource and put_service each change the version that later readers see."""
        storage = versioned
        versions = []
        for write in (
            lambda tx: tx.put_business(business()),
            lambda tx: tx.put_resource(Resource("r1", "One")),
            lambda tx: tx.put_service(WASH),
            lambda tx: tx.put_resource(Resource("r1", "One again")),
        ):
            with storage.transaction("wash") as tx:
                write(tx)
                tx.commit()
            with storage.transaction("wash") as tx:
                versions.append(tx.catalogue_version())

        assert len(set(versions)) == len(versions)

    def test_other_tenants_writes_leave_the_version_alone(self, versioned: Any) -> None:
        """A write in another tenant's catalogue does not change this tenant's version."""
        storage = versioned
        with storage.transaction("wash") as tx:
            tx.put_resource(Resource("r1", "One"))
            tx.commit()
        with storage.transaction("wash") as tx:
            before = tx.catalogue_version()
        with storage.transaction("other") as tx:
            tx.put_resource(Resource("r1", "One"))
            tx.commit()
        with storage.transaction("wash") as tx:
            after = tx.catalogue_version()

        assert before == after


@pytest.mark.skipif(not POSTGRES_DSN, reason="set SLOTENGINE_TEST_POSTGRES_DSN=postgresql://... to run")
class TestPostgresTriggers:
    @pytest.fixture
    def pg(self) -> Iterator[Any]:
        from conftest import postgres_factory

        factory = postgres_factory()
        assert factory is not None
        made = factory()  # type: ignore[operator]
        yield made
        made.close()

    @staticmethod
    def _sql(storage: Any, statement: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(storage.schema)))
            conn.execute(statement)  # type: ignore[arg-type]

    @staticmethod
    def _engine(storage: Any) -> BookingEngine:
        engine = BookingEngine(storage, clock=FrozenClock(at(2, 8)), tenant="wash", default_actor=Actor.system("t"))
        engine.setup(business())
        engine.add_resource(Resource("box1", "Box 1", type="box"))
        engine.add_service(WASH)
        return engine

    def test_an_operators_sql_delete_is_seen(self, pg: Any) -> None:
        """A service deleted with plain SQL (no slotengine involved) is gone for the next booking."""
        engine = self._engine(pg)
        engine.book("wash", at(2, 9))
        self._sql(pg, "DELETE FROM services WHERE tenant_id = 'wash' AND id = 'wash'")

        with pytest.raises(NotFoundError):
            engine.book("wash", at(2, 10))

    def test_an_operators_sql_capacity_change_is_seen(self, pg: Any) -> None:
        """A resource document rewritten with plain SQL (capacity 2) takes a second booking at once."""
        engine = self._engine(pg)
        engine.book("wash", at(2, 9))
        self._sql(
            pg,
            "UPDATE resources SET capacity = 2, doc = jsonb_set(doc, '{capacity}', '2') "
            "WHERE tenant_id = 'wash' AND id = 'box1'",
        )

        second = engine.book("wash", at(2, 9))

        assert ("box1",) == second.resource_ids

    def test_a_truncate_is_seen(self, pg: Any) -> None:
        """TRUNCATE of the services (statement-level, no rows) changes every tenant's version."""
        engine = self._engine(pg)
        engine.book("wash", at(2, 9))
        self._sql(pg, "TRUNCATE services")

        with pytest.raises(NotFoundError):
            engine.book("wash", at(2, 10))


class TestSQLiteTriggers:
    """SQLite keeps the catalogue version with triggers in the file (schema version 3), so any writer counts."""

    @pytest.fixture
    def path(self, tmp_path: Path) -> Path:
        return tmp_path / "wash.db"

    @staticmethod
    def _sql(path: Path, statement: str) -> None:
        conn = sqlite3.connect(path)
        with conn:
            conn.execute(statement)
        conn.close()

    @staticmethod
    def _engine(storage: Any) -> BookingEngine:
        engine = BookingEngine(storage, clock=FrozenClock(at(2, 8)), tenant="wash", default_actor=Actor.system("t"))
        engine.setup(business())
        engine.add_resource(Resource("box1", "Box 1", type="box"))
        engine.add_service(WASH)
        return engine

    def test_an_operators_sql_delete_is_seen(self, path: Path) -> None:
        """A service deleted with plain SQL (the sqlite3 module, no slotengine) is gone for the next booking."""
        storage = SQLiteStorage(path)
        engine = self._engine(storage)
        engine.book("wash", at(2, 9))
        self._sql(path, "DELETE FROM services WHERE tenant = 'wash' AND id = 'wash'")

        with pytest.raises(NotFoundError):
            engine.book("wash", at(2, 10))
        storage.close()

    def test_an_operators_sql_capacity_change_is_seen(self, path: Path) -> None:
        """A resource document rewritten with plain SQL (capacity 2) takes a second booking at once."""
        storage = SQLiteStorage(path)
        engine = self._engine(storage)
        engine.book("wash", at(2, 9))
        self._sql(path, "UPDATE resources SET doc = json_set(doc, '$.capacity', 2) WHERE tenant = 'wash'")

        second = engine.book("wash", at(2, 9))
        storage.close()

        assert ("box1",) == second.resource_ids

    def test_an_operators_delete_of_a_whole_table_is_seen(self, path: Path) -> None:
        """DELETE without WHERE (SQLite's truncate) still fires the row triggers: the services are gone."""
        storage = SQLiteStorage(path)
        engine = self._engine(storage)
        engine.book("wash", at(2, 9))
        self._sql(path, "DELETE FROM services")

        with pytest.raises(NotFoundError):
            engine.book("wash", at(2, 10))
        storage.close()

    def test_a_version_2_file_is_upgraded_in_place(self, path: Path, clock: FrozenClock) -> None:
        """A file at schema version 2 gains versions for its tenants; its catalogue and bookings stay."""
        storage = SQLiteStorage(path)
        self._engine(storage).book("wash", at(2, 9))
        storage.close()
        conn = sqlite3.connect(path)
        conn.execute("DROP TABLE catalogue_versions")  # drops its index and triggers' target
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            conn.execute(f'DROP TRIGGER "{name}"')
        conn.execute("PRAGMA user_version = 2")
        conn.commit()
        conn.close()

        again = SQLiteStorage(path)
        with again.transaction("wash") as tx:
            first = tx.catalogue_version()
        engine = other_engine(again, clock)
        with pytest.raises(ConflictError):
            engine.book("wash", at(2, 9))
        engine.add_resource(Resource("box2", "Box 2", type="box"))
        second = engine.book("wash", at(2, 9))
        with again.transaction("wash") as tx:
            last = tx.catalogue_version()
        again.close()
        conn = sqlite3.connect(path)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        triggers = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'").fetchone()[0]
        conn.close()

        assert (SCHEMA_VERSION, 9) == (version, triggers)
        assert 1 <= first < last
        assert ("box2",) == second.resource_ids

    def test_reopening_keeps_the_version(self, path: Path) -> None:
        """Opening a version 3 file again changes no version (the migration is idempotent)."""
        storage = SQLiteStorage(path)
        self._engine(storage)
        with storage.transaction("wash") as tx:
            before = tx.catalogue_version()
        storage.close()

        again = SQLiteStorage(path)
        with again.transaction("wash") as tx:
            after = tx.catalogue_version()
        again.close()

        assert before == after


class TestOpeningHours:
    """A snapshot works out opening hours in four-week blocks and cuts each question's span from them."""

    @settings(max_examples=150)
    @given(schedules(), st.booleans(), st.data())
    def test_a_span_cut_from_blocks_is_the_span_worked_out_alone(
        self, hours: Schedule, own: bool, data: st.DataObject
    ) -> None:
        """
        Whatever the schedules, the span's days and length (within a block, across one or several), the hours
        and time off a snapshot gives for a span are `effective_hours` and `time_off_within` of that span alone.
        """
        business = Business("Biz", hours.zone, hours)
        zone = hours.zone if not own else data.draw(st.sampled_from(["Europe/Paris", "Asia/Tokyo", "UTC"]))
        schedule = data.draw(schedules(st.just(zone))) if own else None
        resource = Resource("r", "R", schedule=schedule)
        catalogue = _Catalogue(1, business, (resource,), {"r": resource}, {})
        near = [datetime.combine(o.day, time(), UTC) for o in hours.overrides]  # the schedule's rules are near them
        first = data.draw(st.sampled_from([*near, datetime(2026, 3, 2, tzinfo=UTC)]))
        for _ in range(3):  # the second and third spans may reuse the first one's blocks
            start = first + timedelta(days=data.draw(st.integers(-40, 40)))
            span = Interval(start, start + timedelta(days=data.draw(st.integers(1, 70))))
            own_time_off = schedule.time_off if schedule is not None else ()
            expected = (
                effective_hours(schedule, hours, span),
                time_off_within((*own_time_off, *hours.time_off), (schedule or hours).tz, span),
            )

            assert expected == catalogue.opening(resource, business, span)

    def test_a_span_across_a_block_boundary_joins_its_pieces(self) -> None:
        """Open round the clock: the piece that runs through a block's end comes back whole, not cut in two."""
        always = Schedule("UTC", WeeklyHours.every_day(TimeRange(time(0), time(0))))
        resource = Resource("r", "R")
        business = Business("Biz", "UTC", always)
        catalogue = _Catalogue(1, business, (resource,), {"r": resource}, {})
        boundary = datetime(1970, 1, 1, tzinfo=UTC) + 735 * timedelta(days=28)  # the 736th block's start
        span = Interval(boundary - timedelta(days=2), boundary + timedelta(days=3))

        opened, off = catalogue.opening(resource, business, span)

        assert [span] == list(opened)
        assert not off
        assert 2 == len(catalogue.blocks)


class TestPools:
    """A snapshot's pool of a service: the resources that can serve one of its needs, in catalogue order."""

    @given(st.data())
    def test_a_pool_looked_up_by_named_ids_is_the_pool_every_resource_is_tested_for(self, data: st.DataObject) -> None:
        """
        Needs that name their resources are answered by looking those up (unknown ids, types and attributes
        included); the pool is exactly the resources, in catalogue order, that some need matches.
        """
        ids = data.draw(st.lists(st.sampled_from([f"r{i}" for i in range(8)]), unique=True, min_size=1))
        kinds = st.sampled_from(["box", "bay"])
        types = st.none() | kinds
        resources = tuple(
            Resource(rid, rid.upper(), type=data.draw(kinds), attributes={"big": data.draw(st.booleans())})
            for rid in ids
        )
        needs = [
            Need(
                resource_ids=data.draw(st.sets(st.sampled_from([f"r{i}" for i in range(10)]), min_size=1)),
                type=data.draw(types),
                attributes=data.draw(st.sampled_from([{}, {"big": True}])),
            )
            for _ in range(data.draw(st.integers(1, 3)))
        ]
        if data.draw(st.booleans()):  # a need by type alone: every resource is tested
            needs.append(Need(type="box"))
        service = Service("s", "S", needs=needs, duration=timedelta(minutes=30))
        catalogue = _Catalogue(1, None, resources, {r.id: r for r in resources}, {"s": service})

        expected = tuple(r for r in resources if any(n.matches(r) for n in needs))

        assert expected == catalogue.pool(service)
        assert expected == catalogue.pool(service)  # memoized
