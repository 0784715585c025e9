"""The same booking scripts on MemoryStorage and SQLiteStorage give the same answers and the same state (M4)."""

import itertools

from hypothesis import HealthCheck, given, settings

from conftest import WASH, at, business, state_hash
from slotengine.adapters.memory import MemoryStorage
from slotengine.adapters.sqlite import SQLiteStorage
from slotengine.authorization import Actor
from slotengine.engine import BookingEngine
from slotengine.model import Resource
from slotengine.testing.clock import FrozenClock
from slotengine.testing.scripts import run_script
from slotengine.testing.strategies import booking_scripts

STARTS = [at(day, hour, minute) for day in (2, 3) for hour in (9, 10) for minute in (0, 30)]


def furnished(storage):
    clock = FrozenClock(at(2, 8))
    counter = itertools.count(1)
    engine = BookingEngine(
        storage, clock=clock, tenant="s", new_id=lambda: f"id{next(counter)}", default_actor=Actor.system("script")
    )
    engine.setup(business())
    engine.add_resource(Resource("box1", "Box 1", type="box"))
    engine.add_resource(Resource("box2", "Box 2", type="box"))
    engine.add_service(WASH)
    return engine, clock


class TestAgreement:
    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(script=booking_scripts("wash", STARTS))
    def test_memory_and_sqlite_agree(self, tmp_path_factory, script):
        """Every step returns the same booking or the same refusal, and the stored state ends equal."""
        memory = MemoryStorage()
        sqlite = SQLiteStorage(tmp_path_factory.mktemp("agree") / "s.db")
        try:
            (mem, mem_clock), (sql, sql_clock) = furnished(memory), furnished(sqlite)

            assert run_script(mem, mem_clock, script) == run_script(sql, sql_clock, script)
            assert state_hash(mem) == state_hash(sql)
        finally:
            memory.close()
            sqlite.close()
