"""
The one-call way (`ReserveAndRecord`) agrees with the transactional way of holding and booking.

`BookingEngine` decides a hold or booking from its cached catalogue and writes it in one storage call when the
storage offers `slotengine.ports.ReserveAndRecord`; whatever that call refuses goes the usual way. Two engines
run the same random requests on two empty storages of one kind, one engine free to take the one-call way and
the other on a storage that hides it: every step must give the same booking or the same refusal, and the
stored bookings, log and outbox must end alike (booking ids differ: the one-call way may draw ids it then
drops, so they are mapped by the steps that made them).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import time, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import POSTGRES_DSN, POSTGRES_SKIP, at, business, postgres_factory
from slotengine.adapters.memory import MemoryStorage
from slotengine.adapters.sqlite import SQLiteStorage
from slotengine.authorization import Actor
from slotengine.availability import Strategy
from slotengine.engine import BookingEngine
from slotengine.errors import ConflictError, IdempotencyKeyMismatchError, SlotEngineError
from slotengine.intervals import Interval
from slotengine.model import Need, Resource, ResourceKind, Service
from slotengine.money import Money
from slotengine.ports import Storage
from slotengine.schedule import Schedule, TimeOff, TimeRange, WeeklyHours
from slotengine.testing.clock import FrozenClock

M = timedelta(minutes=1)
BOXES = ("box1", "box2", "box3")


class Transactional:
    """A storage that offers only transactions: the engine must go the usual way."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner

    def transaction(self, tenant: str) -> Any:
        return self.inner.transaction(tenant)

    def close(self) -> None:
        self.inner.close()


@st.composite
def catalogues(draw: st.DrawFn) -> tuple[list[Resource], list[Service]]:
    late = Schedule("Europe/Paris", WeeklyHours.weekdays(TimeRange(time(11), time(19))))
    resources = [
        Resource(
            rid,
            rid.title(),
            type="box",
            capacity=draw(st.sampled_from([1, 1, 2])),
            schedule=draw(st.sampled_from([None, None, late])),
        )
        for rid in BOXES[: draw(st.integers(1, 3))]
    ]
    resources.append(Resource("ann", "Ann", kind=ResourceKind.USER, type="driver"))
    if draw(st.booleans()):
        off = Schedule(
            "Europe/Paris",
            WeeklyHours.weekdays(TimeRange(time(9), time(18))),
            time_off=[TimeOff(at(3, 12), at(3, 14))],
        )
        resources.append(Resource("bob", "Bob", kind=ResourceKind.USER, type="driver", schedule=off))
    buffer = draw(st.sampled_from([0, 0, 10])) * M
    services = [
        Service(
            "wash", "Wash", needs=[Need(type="box")], duration=30 * M, buffer_after=buffer, price=Money("20", "EUR")
        ),
        Service("one", "Box 1 only", needs=[Need(resource_ids=["box1"])], duration=60 * M, buffer_before=buffer),
        Service("big", "Two units", needs=[Need(type="box", units=2)], duration=30 * M),
        Service(
            "ride",
            "Car and driver",
            needs=[Need(type="box"), Need(type="driver")],
            duration=draw(st.sampled_from([30, 60])) * M,
            min_notice=draw(st.sampled_from([0, 120])) * M,
        ),
        Service(
            "long",
            "Flexible",
            needs=[Need(type="box")],
            duration=30 * M,
            min_duration=30 * M,
            max_duration=90 * M,
        ),
    ]
    return resources, services


STARTS = [at(day, hour, minute) for day in (2, 3) for hour in (8, 9, 10, 12, 13, 17) for minute in (0, 15, 30)]


@st.composite
def steps(draw: st.DrawFn) -> tuple[Any, ...]:
    kind = draw(st.sampled_from(["book", "book", "hold", "hold", "cancel", "advance"]))
    if kind == "cancel":
        return ("cancel", draw(st.integers(0, 20)))
    if kind == "advance":
        return ("advance", draw(st.sampled_from([5, 30, 60])))
    service = draw(st.sampled_from(["wash", "wash", "one", "big", "ride", "long"]))
    strategy = draw(st.sampled_from([Strategy.FIRST_AVAILABLE, Strategy.FIRST_AVAILABLE, Strategy.PREFERRED]))
    return (
        kind,
        service,
        draw(st.sampled_from(STARTS)),
        draw(st.sampled_from([None, None, 60 * M])) if service == "long" else None,
        tuple(draw(st.lists(st.sampled_from([*BOXES, "ann"]), max_size=1))),
        strategy,
        tuple(draw(st.permutations(BOXES))) if strategy is Strategy.PREFERRED else (),
        draw(st.sampled_from([None, None, None, "k1", "k2"])),  # a key used again replays or is refused
    )


def _engine(storage: Any, clock: FrozenClock, catalogue: tuple[list[Resource], list[Service]]) -> BookingEngine:
    counter = itertools.count(1)
    engine = BookingEngine(
        storage, clock=clock, tenant="fast", new_id=lambda: f"id{next(counter)}", default_actor=Actor.system("test")
    )
    engine.setup(business())
    for resource in catalogue[0]:
        engine.add_resource(resource)
    for service in catalogue[1]:
        engine.add_service(service)
    return engine


def _seen(booking: Any, ids: dict[str, str]) -> tuple[object, ...]:
    return (
        ids.get(booking.id, booking.id),
        booking.service_id,
        booking.start,
        booking.end,
        booking.assignments,
        booking.units,
        booking.status,
        booking.hold_until,
        booking.price,
        booking.buffer_before,
        booking.buffer_after,
        booking.version,
    )


def _run(engine: BookingEngine, clock: FrozenClock, script: list[tuple[Any, ...]]) -> tuple[list[object], Any]:
    """Run *script*; return each step's answer (ids numbered by first appearance) and the final state."""
    names: dict[str, str] = {}
    made: list[str] = []
    answers: list[object] = []

    def name(booking_id: str) -> str:
        return names.setdefault(booking_id, f"booking{len(names)}")

    for step in script:
        try:
            if step[0] == "advance":
                clock.advance(step[1] * M)
                answers.append("advanced")
                continue
            if step[0] == "cancel":
                if not made:
                    answers.append("nothing to cancel")
                    continue
                booking = engine.cancel(made[step[1] % len(made)], by_business=True)
            else:
                kind, service, start, duration, pin, strategy, preferred, key = step
                call = engine.book if kind == "book" else engine.hold
                booking = call(
                    service,
                    start,
                    duration=duration,
                    pin=pin,
                    strategy=strategy,
                    preferred=preferred,
                    customer_id="c1",
                    idempotency_key=key,
                )
                made.append(booking.id)
            name(booking.id)
            answers.append(_seen(booking, names))
        except SlotEngineError as exc:
            reasons = tuple(r.code for r in exc.details.get("reasons", ()))
            answers.append((type(exc).__name__, reasons))
    bookings = sorted((_seen(b, names) for b in engine.list()), key=repr)
    log = [(name(r.booking_id), r.from_status, r.to_status, r.action) for r in engine.transitions()]
    outbox = [(m.topic, name(m.booking_id) if m.booking_id else None) for m in engine.outbox()]
    return answers, (bookings, log, outbox)


def _agree(make: Any, catalogue: tuple[list[Resource], list[Service]], script: list[tuple[Any, ...]]) -> None:
    results = []
    for wrap in (lambda s: s, Transactional):
        with make() as storage:
            clock = FrozenClock(at(2, 8))
            results.append(_run(_engine(wrap(storage), clock, catalogue), clock, script))

    assert results[0][0] == results[1][0]
    assert results[0][1] == results[1][1]


@contextmanager
def _memory() -> Iterator[Storage]:
    storage = MemoryStorage()
    yield storage
    storage.close()


class TestOneCallAgreesWithTransactions:
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(catalogue=catalogues(), script=st.lists(steps(), min_size=3, max_size=14))
    def test_memory(self, catalogue: tuple[list[Resource], list[Service]], script: list[tuple[Any, ...]]) -> None:
        _agree(_memory, catalogue, script)

    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(catalogue=catalogues(), script=st.lists(steps(), min_size=3, max_size=10))
    def test_sqlite(
        self,
        tmp_path_factory: pytest.TempPathFactory,
        catalogue: tuple[list[Resource], list[Service]],
        script: list[tuple[Any, ...]],
    ) -> None:
        folder = tmp_path_factory.mktemp("fast")
        counter = itertools.count()

        @contextmanager
        def make() -> Iterator[Storage]:
            storage = SQLiteStorage(folder / f"{next(counter)}.db", synchronous="NORMAL")
            yield storage
            storage.close()

        _agree(make, catalogue, script)

    @pytest.mark.skipif(not POSTGRES_DSN, reason=POSTGRES_SKIP)
    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(catalogue=catalogues(), script=st.lists(steps(), min_size=3, max_size=10))
    def test_postgres(self, catalogue: tuple[list[Resource], list[Service]], script: list[tuple[Any, ...]]) -> None:
        factory = postgres_factory()
        assert factory is not None

        @contextmanager
        def make() -> Iterator[Storage]:
            storage = factory()  # type: ignore[operator]
            yield storage
            storage.close()

        _agree(make, catalogue, script)


class Counted:
    """A storage that counts its transactions and its one-call writes (and what the last one was given)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.transactions = 0
        self.one_calls: list[dict[str, Any]] = []

    def transaction(self, tenant: str) -> Any:
        self.transactions += 1
        return self.inner.transaction(tenant)

    def reserve_and_record(self, *args: Any, **kwargs: Any) -> None:
        self.one_calls.append(kwargs)
        self.inner.reserve_and_record(*args, **kwargs)

    def close(self) -> None:
        self.inner.close()


def _one_box(storage: Any) -> BookingEngine:
    """An engine with one box and a 30-minute wash on *storage*, that has read its catalogue."""
    resources = [Resource("box1", "Box 1", type="box")]
    services = [Service("wash", "Wash", needs=[Need(type="box")], duration=30 * M)]
    engine = _engine(storage, FrozenClock(at(2, 8)), (resources, services))
    engine.find_slots("wash", Interval(at(2, 9), at(2, 12)))
    return engine


class TestKeyedCallsTakeTheOneCallWay:
    def _engine(self) -> tuple[BookingEngine, Counted]:
        storage = Counted(MemoryStorage())
        return _one_box(storage), storage

    def test_a_new_key_books_and_saves_its_record_in_one_call(self) -> None:
        """A keyed booking is one storage call, which is given the idempotency record with the booking."""
        engine, storage = self._engine()
        before = storage.transactions

        booking = engine.book("wash", at(2, 9), customer_id="c1", idempotency_key="k1")

        assert before == storage.transactions
        assert 1 == len(storage.one_calls)
        saved = storage.one_calls[0]["idempotency"]
        assert ("k1", booking.id) == (saved.key, saved.booking_id)
        with storage.inner.transaction("fast") as tx:
            assert saved == tx.get_idempotency("k1")

    def test_a_used_key_replays_the_first_booking_or_refuses_another_request(self) -> None:
        """The same request again gets the first booking back; another request under the key is refused."""
        engine, storage = self._engine()
        first = engine.book("wash", at(2, 9), customer_id="c1", idempotency_key="k1")

        again = engine.book("wash", at(2, 9), customer_id="c1", idempotency_key="k1")
        with pytest.raises(IdempotencyKeyMismatchError):
            engine.book("wash", at(2, 10), customer_id="c1", idempotency_key="k1")

        assert first == again
        assert [first] == engine.list()
        assert 1 == len(engine.outbox())
        with storage.inner.transaction("fast") as tx:
            saved = tx.get_idempotency("k1")
        assert saved is not None
        assert first.id == saved.booking_id


class Locking:
    """A storage whose transactions count the resource locks they take."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.locks = 0
        self.reserve_and_record = inner.reserve_and_record

    @contextmanager
    def transaction(self, tenant: str) -> Iterator[Any]:
        with self.inner.transaction(tenant) as tx:
            original = tx.lock_resources

            def lock_resources(resource_ids: Any) -> None:
                self.locks += 1
                original(resource_ids)

            tx.lock_resources = lock_resources
            yield tx

    def close(self) -> None:
        self.inner.close()


class TestAStartFoundFullIsRefusedWithoutLocks:
    def test_the_refusals_of_a_full_start_take_no_lock(self) -> None:
        """Once the one-call write found a start full, refusing it reads the load without the resources' locks."""
        storage = Locking(MemoryStorage())
        engine = _one_box(storage)
        engine.book("wash", at(2, 9), customer_id="c1")
        locks = storage.locks

        refusals = []
        for _ in range(3):
            with pytest.raises(ConflictError) as refused:
                engine.book("wash", at(2, 9), customer_id="c2")
            refusals.append(tuple(r.code for r in refused.value.details["reasons"]))
        other = engine.book("wash", at(2, 10), customer_id="c2")

        assert locks == storage.locks
        assert 1 == len(set(refusals))
        assert at(2, 10) == other.start

    def test_a_full_start_that_frees_up_is_booked_under_the_locks(self) -> None:
        """The hint only shortens refusals: a start freed meanwhile is checked again under the locks, and booked."""
        storage = Locking(MemoryStorage())
        engine = _one_box(storage)
        first = engine.book("wash", at(2, 9), customer_id="c1")
        with pytest.raises(ConflictError):
            engine.book("wash", at(2, 9), customer_id="c2")  # found full: remembered for a minute
        engine.cancel(first.id, by_business=True)
        locks = storage.locks

        second = engine.book("wash", at(2, 9), customer_id="c2")

        assert locks + 1 == storage.locks
        assert ("c2", at(2, 9)) == (second.customer_id, second.start)


COUNTED = {"catalogue_version": "version", "loads": "loads", "lock_resources": "locks"}
"""The transaction methods `Reads` counts, and under which name."""


class Reads:
    """A storage whose transactions count the engine's reads of the catalogue version and the load, and its locks."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.counts = dict.fromkeys(COUNTED.values(), 0)
        self.reserve_and_record = inner.reserve_and_record

    @contextmanager
    def transaction(self, tenant: str) -> Iterator[Any]:
        with self.inner.transaction(tenant) as tx:
            yield _Counting(tx, self)

    def close(self) -> None:
        self.inner.close()


class _Counting:
    """A transaction seen through `Reads`: the engine's calls are counted, the adapter's calls to itself are not."""

    def __init__(self, tx: Any, reads: Reads) -> None:
        self._tx, self._reads = tx, reads

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._tx, name)
        counted = COUNTED.get(name)
        if counted is None:
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self._reads.counts[counted] += 1
            return attribute(*args, **kwargs)

        return call


class TestAOneCallRefusalIsExplainedAtOnce:
    def _engines(self, boxes: int, inner: Any = None) -> tuple[BookingEngine, BookingEngine, Reads]:
        """An engine that set the catalogue up on a storage (memory), and a second one reading it through `Reads`."""
        resources = [Resource(f"box{n}", f"Box {n}", type="box") for n in range(1, boxes + 1)]
        services = [Service("wash", "Wash", needs=[Need(type="box")], duration=30 * M, buffer_after=10 * M)]
        inner = MemoryStorage() if inner is None else inner
        first = _engine(inner, FrozenClock(at(2, 8)), (resources, services))
        counted = Reads(inner)
        second = BookingEngine(counted, clock=FrozenClock(at(2, 8)), tenant="fast", default_actor=Actor.system("t"))
        second.find_slots("wash", Interval(at(2, 9), at(2, 12)))  # its catalogue, cached
        return first, second, counted

    def test_the_refusal_reads_the_load_once_and_neither_the_version_nor_a_lock(self) -> None:
        """The one-call write said the start is full: the load is read once, and the refusal is the usual way's."""
        first, second, counted = self._engines(1)
        first.book("wash", at(2, 9), customer_id="c1")
        counted.counts.update(version=0, loads=0, locks=0)

        with pytest.raises(ConflictError) as at_once:
            second.book("wash", at(2, 9), customer_id="c2")
        reads = dict(counted.counts)
        usual = BookingEngine(Transactional(counted.inner), clock=FrozenClock(at(2, 8)), tenant="fast")
        with pytest.raises(ConflictError) as the_usual_way:
            usual.book("wash", at(2, 9), customer_id="c2", actor=Actor.system("t"))

        assert {"version": 0, "loads": 1, "locks": 0} == reads
        assert str(the_usual_way.value) == str(at_once.value)
        assert the_usual_way.value.details == at_once.value.details

    @pytest.mark.skipif(not POSTGRES_DSN, reason=POSTGRES_SKIP)
    @pytest.mark.parametrize(
        ("taken_by", "minute", "said"),
        [("book", 0, "is booked (id1)"), ("hold", 0, "is held by id1 until"), ("book", 30, "too close to id1")],
    )
    def test_with_postgresql_the_refusal_reads_nothing(self, taken_by: str, minute: int, said: str) -> None:
        """
        PostgreSQL's refusal brings what is in the way (a booking, or a hold and its expiry): with one resource to
        choose from, the refusal is explained from it, without a transaction, in the usual way's words.
        """
        factory = postgres_factory()
        assert factory is not None
        inner = factory()  # type: ignore[operator]
        try:
            first, second, counted = self._engines(1, inner)
            getattr(first, taken_by)("wash", at(2, 9, minute), customer_id="c1")  # 9:00 and its buffer reach 9:40
            counted.counts.update(version=0, loads=0, locks=0)
            with pytest.raises(ConflictError) as at_once:
                second.book("wash", at(2, 9), customer_id="c2")
            reads = dict(counted.counts)
            usual = BookingEngine(Transactional(inner), clock=FrozenClock(at(2, 8)), tenant="fast")
            with pytest.raises(ConflictError) as the_usual_way:
                usual.book("wash", at(2, 9), customer_id="c2", actor=Actor.system("t"))
        finally:
            inner.close()

        assert {"version": 0, "loads": 0, "locks": 0} == reads
        assert str(the_usual_way.value) == str(at_once.value)
        assert the_usual_way.value.details == at_once.value.details
        assert said in str(at_once.value)

    def test_a_start_full_on_the_first_resource_is_booked_on_another(self) -> None:
        """Found full on the resource the one call chose, the start still fits another: booked, under the locks."""
        first, second, counted = self._engines(2)
        first.book("wash", at(2, 9), customer_id="c1", pin=["box1"])
        counted.counts.update(version=0, loads=0, locks=0)

        booked = second.book("wash", at(2, 9), customer_id="c2")

        assert ("box2",) == booked.resource_ids
        # The load read once without the locks, then once under them: no second check without them.
        assert {"version": 1, "loads": 2, "locks": 1} == counted.counts
