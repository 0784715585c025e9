"""A small business for engine tests, on every storage adapter available."""

from __future__ import annotations

import hashlib
import os
import uuid
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from slotengine.adapters.memory import MemoryStorage
from slotengine.adapters.sqlite import SQLiteStorage
from slotengine.authorization import Actor
from slotengine.business import Business
from slotengine.codec import booking_to_dict, dumps, outbox_to_dict, transition_to_dict
from slotengine.engine import BookingEngine
from slotengine.model import Need, Resource, Service
from slotengine.money import Money
from slotengine.policies import CancellationPolicy, Policies, RefundTier
from slotengine.schedule import Schedule, TimeRange, WeeklyHours
from slotengine.testing.clock import FrozenClock

PARIS = ZoneInfo("Europe/Paris")
MONDAY = datetime(2026, 3, 2, tzinfo=PARIS)  # a Monday
H = timedelta(hours=1)
M = timedelta(minutes=1)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """An instant on day *day* of March 2026, Paris time."""
    return datetime(2026, 3, day, hour, minute, tzinfo=PARIS)


def business(**policies: object) -> Business:
    hours = Schedule("Europe/Paris", WeeklyHours.weekdays(TimeRange(time(9), time(18))))
    defaults = {
        "cancellation": CancellationPolicy(
            tiers=[RefundTier(48 * H, 100), RefundTier(24 * H, 50)], otherwise_percent=0, no_show_fee_percent=50
        )
    }
    return Business("Car wash", "Europe/Paris", hours, Policies(**{**defaults, **policies}))


WASH = Service("wash", "Wash", needs=[Need(type="box")], duration=30 * M, buffer_after=10 * M, price=Money("20", "EUR"))


POSTGRES_DSN = os.environ.get("SLOTENGINE_TEST_POSTGRES_DSN", "")
POSTGRES_SKIP = "set SLOTENGINE_TEST_POSTGRES_DSN=postgresql://... to run the PostgreSQL tests"


def drop_postgres_schema(dsn: str, schema: str) -> None:
    """Drop a throwaway test schema and everything in it."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


_FREE_SCHEMAS: list[str] = []  # emptied throwaway schemas, reused: creating one costs far more than emptying it
_MADE_SCHEMAS: list[str] = []


def _empty_postgres_schema(dsn: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn) as conn:  # one transaction, committed at the end of the block
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
        conn.execute(
            "DELETE FROM booking_resources; DELETE FROM bookings; DELETE FROM transitions; DELETE FROM outbox; "
            "DELETE FROM idempotency; DELETE FROM services; DELETE FROM resources; DELETE FROM businesses; "
            "DELETE FROM documents"
        )


def postgres_factory() -> object | None:
    """
    A factory of PostgresStorage, each in a schema of its own; None without a DSN or psycopg.

    Schemas are named ``slotengine_test_<random>``; a closed storage's schema is emptied and handed to the next
    storage, and every schema made is dropped when the test session ends (`_drop_postgres_schemas`).
    """
    if not POSTGRES_DSN:
        return None
    try:
        from slotengine.adapters.postgres import PostgresStorage
    except ImportError:
        return None

    class ThrowawayPostgres(PostgresStorage):
        """A PostgresStorage in a test schema nobody else uses while it is open."""

        def __init__(self) -> None:
            if _FREE_SCHEMAS:
                schema = _FREE_SCHEMAS.pop()
            else:
                schema = f"slotengine_test_{uuid.uuid4().hex[:12]}"
                _MADE_SCHEMAS.append(schema)
            self._returned = False
            super().__init__(POSTGRES_DSN, schema=schema, max_size=2)

        def close(self) -> None:
            super().close()
            if not self._returned:
                self._returned = True
                _empty_postgres_schema(POSTGRES_DSN, self.schema)
                _FREE_SCHEMAS.append(self.schema)

    return ThrowawayPostgres


@pytest.fixture(scope="session", autouse=True)
def _drop_postgres_schemas():
    yield
    while _MADE_SCHEMAS:
        drop_postgres_schema(POSTGRES_DSN, _MADE_SCHEMAS.pop())
    _FREE_SCHEMAS.clear()


def storage_factories(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    factories: dict[str, object] = {"memory": MemoryStorage}
    factories["sqlite"] = lambda: SQLiteStorage(tmp_path_factory.mktemp("db") / "slotengine.db")
    postgres = postgres_factory()
    if postgres is not None:
        factories["postgres"] = postgres
    return factories


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def storage(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    factories = storage_factories(tmp_path_factory)
    if request.param == "postgres" and request.param not in factories:
        pytest.skip(POSTGRES_SKIP if not POSTGRES_DSN else "install slotengine[postgres] to run the PostgreSQL tests")
    made = factories[request.param]()  # type: ignore[operator]
    yield made
    made.close()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(at(2, 8))


@pytest.fixture
def engine(storage, clock) -> BookingEngine:
    counter = iter(range(1, 1_000_000))
    made = BookingEngine(
        storage, clock=clock, tenant="wash", new_id=lambda: f"id{next(counter)}", default_actor=Actor.system("tests")
    )
    made.setup(business())
    made.add_resource(Resource("box1", "Box 1", type="box"))
    made.add_resource(Resource("box2", "Box 2", type="box"))
    made.add_service(WASH)
    return made


def state_hash(engine: BookingEngine) -> str:
    """A hash of everything the engine stores for its tenant: bookings, log, outbox, catalogue."""
    parts = [
        [dumps(booking_to_dict(b)) for b in engine.list()],
        [dumps(transition_to_dict(t)) for t in engine.transitions()],
        [dumps(outbox_to_dict(m)) for m in engine.outbox()],
        [repr(r) for r in engine.resources()],
        [repr(s) for s in engine.services()],
        repr(engine.business()),
    ]
    return hashlib.sha256(repr(parts).encode()).hexdigest()
