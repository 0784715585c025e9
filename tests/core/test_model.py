"""The domain values: resources, needs, services, customers."""

from datetime import time, timedelta
from decimal import Decimal

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from slotengine.errors import InvalidInputError, InvalidMoneyError, UnknownTimeZoneError
from slotengine.model import (
    UNLIMITED,
    Customer,
    FrozenMap,
    Need,
    Resource,
    ResourceKind,
    ResourceRole,
    Service,
    ServiceUnit,
    check_text,
)
from slotengine.money import Money
from slotengine.testing._model_strategies import customers, needs, resources, services

HOUR = timedelta(hours=1)
DENTISTS = Need(type="dentist")


class TestResource:
    def test_defaults(self):
        """A resource is a primary thing of capacity 1 that inherits the business hours."""
        box = Resource("box-1", "Box 1", type="box")

        assert (ResourceKind.RESOURCE, ResourceRole.PRIMARY, 1, None, None) == (
            box.kind,
            box.role,
            box.capacity,
            box.schedule,
            box.zone,
        )
        assert not box.unlimited

    def test_staff_and_unlimited(self):
        """Staff are resources of kind 'user'; a conference hall may take unlimited load."""
        dentist = Resource("ann", "Dr Ann", kind="user", type="dentist")
        hall = Resource("hall", "Main hall", capacity=UNLIMITED, attributes={"city": "Lyon", "seats": 300})

        assert ResourceKind.USER == dentist.kind
        assert hall.unlimited
        assert "Lyon" == hall.attributes["city"]

    @pytest.mark.parametrize("capacity", [0, -1, True, 1.5, None, "2", 1_000_000_001, 3_000_000_000])
    def test_bad_capacity(self, capacity):
        """Capacity 0, negative, a bool, a float, None or a string raises InvalidInputError."""
        with pytest.raises(InvalidInputError, match="capacity"):
            Resource("r", "R", capacity=capacity)

    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            ("id", "", "must not be empty"),
            ("id", "a\x00b", "NUL"),
            ("id", "x" * 201, "at most 200"),
            ("name", 3, "must be a string"),
            ("kind", "robot", "kind must be one of"),
            ("role", "main", "role must be one of"),
            ("attributes", {"price": 1.5}, "must be a str, int, bool, Decimal or Money"),
            ("attributes", ["city"], "attributes must be a mapping"),
            ("schedule", "9-18", "schedule must be a Schedule"),
        ],
    )
    def test_bad_fields(self, field, value, message):
        """Each bad field raises InvalidInputError with a message that names the problem."""
        kwargs = {"id": "r", "name": "R", field: value}

        with pytest.raises(InvalidInputError, match=message):
            Resource(**kwargs)

    def test_unknown_zone(self):
        """An unknown zone raises UnknownTimeZoneError."""
        with pytest.raises(UnknownTimeZoneError):
            Resource("r", "R", zone="Mars/Olympus")

    def test_frozen(self):
        """A resource cannot be changed in place; evolve makes a changed copy."""
        box = Resource("box", "Box")

        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            box.capacity = 2  # type: ignore[misc]
        assert 2 == attrs.evolve(box, capacity=2).capacity

    def test_repr(self):
        """The repr shows what differs from the defaults."""
        assert "Resource('hall', type='room', capacity=UNLIMITED, zone='Europe/Paris')" == repr(
            Resource("hall", "Hall", type="room", capacity=UNLIMITED, zone="Europe/Paris")
        )

    @given(resources())
    def test_equal_copies_hash_equal(self, resource):
        """A rebuilt copy of any resource is equal and hashes equal."""
        copy = attrs.evolve(resource)

        assert resource == copy
        assert hash(resource) == hash(copy)


class TestFrozenMap:
    def test_mapping(self):
        """Attributes read like a dict, compare with dicts, and are hashable."""
        attributes = FrozenMap({"city": "Lyon", "price": Money("10", "EUR"), "seats": 5, "vip": True})

        assert {"city": "Lyon", "price": Money("10", "EUR"), "seats": 5, "vip": True} == attributes
        assert hash(attributes) == hash(FrozenMap({"vip": True, "seats": 5, "city": "Lyon", "price": Money("10", "EUR")}))
        assert ["city", "price", "seats", "vip"] == list(attributes)

    def test_float_refused(self):
        """Floats are refused in attributes like everywhere else."""
        with pytest.raises(InvalidInputError):
            FrozenMap({"price": 9.99})


class TestNeed:
    def test_matches_by_type_ids_and_attributes(self):
        """A need's pool is the resources matching every criterion given."""
        lyon = Resource("ann", "Ann", kind="user", type="dentist", attributes={"city": "Lyon"})
        paris = Resource("bob", "Bob", kind="user", type="dentist", attributes={"city": "Paris"})
        room = Resource("room", "Room", type="room")

        assert [True, True, False] == [DENTISTS.matches(r) for r in (lyon, paris, room)]
        assert [True, False] == [Need(type="dentist", attributes={"city": "Lyon"}).matches(r) for r in (lyon, paris)]
        assert [False, True] == [Need(resource_ids=["bob", "room"]).matches(r) for r in (lyon, paris)]

    @pytest.mark.parametrize(
        ("resource", "wanted", "expected"),
        [
            (1, True, False),
            (True, 1, False),
            (0, False, False),
            (Decimal(1), True, False),
            ("1", 1, False),
            (Decimal(4), Money("4", "EUR"), False),
            (4, Decimal("4.00"), True),
            (Decimal("4.0"), 4, True),
            (True, True, True),
            (Money("4.00", "EUR"), Money("4", "EUR"), True),
        ],
    )
    def test_attributes_match_by_kind_and_value(self, resource, wanted, expected):
        """
        A wanted attribute matches a value of its own kind that equals it: a flag is not the number 1.

        Whole numbers and decimals are both numbers (a NaN is no attribute at all: `FrozenMap` refuses it).
        """
        box = Resource("box", "Box", attributes={"covered": resource})

        assert expected == Need(attributes={"covered": wanted}).matches(box)

    @given(st.dictionaries(st.sampled_from(["city", "seats", "vip"]), st.text("ab1", max_size=3) | st.integers(-2, 2) | st.booleans()
                           | st.decimals(-2, 2, allow_nan=False, places=1), min_size=1))
    def test_a_resource_matches_a_need_for_its_own_attributes_and_no_flag_for_a_number(self, attributes):
        """A need for a resource's own attributes matches it; with a flag turned into 1 or 0 (or back) it does not."""
        resource = Resource("r", "R", attributes=attributes)
        flags = {k: v for k, v in attributes.items() if isinstance(v, bool) or (isinstance(v, int) and v in (0, 1))}
        swapped = attributes | {k: int(v) if isinstance(v, bool) else bool(v) for k, v in flags.items()}

        assert Need(attributes=attributes).matches(resource)
        assert Need(attributes=swapped).matches(resource) == (not flags)

    def test_needs_a_pool(self):
        """A need that names no pool at all is refused."""
        with pytest.raises(InvalidInputError, match="must name its pool"):
            Need()

    @pytest.mark.parametrize(
        ("field", "value"), [("count", 0), ("count", True), ("units", -1), ("units", 1.0), ("units", 2**31)]
    )
    def test_bad_numbers(self, field, value):
        """Count and units must be whole numbers of at least 1."""
        with pytest.raises(InvalidInputError, match=field):
            Need(type="seat", **{field: value})

    def test_count_larger_than_the_pool(self):
        """Asking for 3 of 2 named resources is refused at construction."""
        with pytest.raises(InvalidInputError, match="names only 2"):
            Need(resource_ids=["a", "b"], count=3)

    def test_ids_must_be_a_collection(self):
        """A single id string is not mistaken for a collection of one-letter ids."""
        with pytest.raises(InvalidInputError, match="collection of ids"):
            Need(resource_ids="abc")

    @given(needs())
    def test_repr_round_trips_through_eval(self, need):
        """The repr of a need is code that builds an equal need."""
        assert need == eval(repr(need), {"Need": Need})  # noqa: S307


class TestService:
    def test_defaults(self):
        """By default a service offers starts one duration apart, with no buffers and no notice."""
        cut = Service("cut", "Haircut", needs=[Need(type="barber")], duration=timedelta(minutes=30))

        assert timedelta(minutes=30) == cut.step
        assert (timedelta(0), timedelta(0), timedelta(0)) == (cut.buffer_before, cut.buffer_after, cut.min_notice)
        assert cut.allows_duration(timedelta(minutes=30))
        assert not cut.allows_duration(timedelta(minutes=45))

    def test_adjustable_duration(self):
        """A client may pick any duration between min and max."""
        rent = Service(
            "rent", "Car", needs=[Need(type="car")], duration=2 * HOUR, min_duration=HOUR, max_duration=8 * HOUR
        )

        assert [False, True, True, False] == [rent.allows_duration(d * HOUR) for d in (0.5, 1, 8, 9)]

    def test_nights(self):
        """A nightly stay needs check-in and check-out times and whole days."""
        stay = Service(
            "stay",
            "Apartment",
            needs=[Need(resource_ids=["apt"])],
            duration=timedelta(days=1),
            max_duration=timedelta(days=14),
            unit=ServiceUnit.NIGHTS,
            check_in=time(15),
            check_out=time(11),
        )

        assert stay.allows_duration(timedelta(days=3))
        assert not stay.allows_duration(timedelta(days=3, hours=2))

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"duration": timedelta(0)}, "longer than zero"),
            ({"duration": 30}, "must be a timedelta"),
            ({"buffer_after": timedelta(minutes=-5)}, "must not be negative"),
            ({"slot_step": timedelta(0)}, "slot_step"),
            ({"min_duration": 2 * HOUR}, "must lie between"),
            ({"max_duration": timedelta(minutes=10)}, "must lie between"),
            ({"unit": "days"}, "whole days"),
            ({"unit": "weeks"}, "unit must be one of"),
            ({"unit": "nights", "duration": timedelta(days=1)}, "check_in and check_out times are required"),
            ({"check_in": time(15), "check_out": time(11)}, "only apply to unit 'nights'"),
            ({"check_out": time(11)}, "only apply to unit 'nights'"),
            ({"check_in": time(15)}, "only apply to unit 'nights'"),
            ({"unit": "days", "duration": timedelta(days=1), "check_out": time(11)}, "only apply to unit 'nights'"),
            (
                {"unit": "nights", "duration": timedelta(days=1), "check_in": time(10), "check_out": time(14)},
                "check_out 14:00 is after check_in 10:00",
            ),
            ({"needs": []}, "at least one Need"),
            ({"needs": ["dentist"]}, "needs must hold Need values, not str .dentist."),
            ({"price": Decimal(10)}, "price must be Money"),
            ({"horizon": timedelta(hours=1), "min_notice": timedelta(hours=2)}, "leaves nothing"),
            ({"buffers_outside_hours": "yes"}, "buffers_outside_hours"),
            ({"price": Money("-40", "EUR")}, "must not be negative"),
            ({"duration": timedelta(days=999_999_999)}, "longer than the 1970-2200 range"),
            ({"buffer_after": timedelta(days=100_000)}, "longer than the 1970-2200 range"),
            ({"min_notice": timedelta.max}, "longer than the 1970-2200 range"),
        ],
    )
    def test_bad_services(self, kwargs, message):
        """Every invalid service raises InvalidInputError (a ValueError) and nothing is built."""
        base = {"id": "s", "name": "S", "needs": [DENTISTS], "duration": HOUR}

        with pytest.raises(InvalidInputError, match=message):
            Service(**{**base, **kwargs})

    @pytest.mark.parametrize(
        ("unit", "times", "field"),
        [
            ("minutes", {"check_out": time(11)}, "check_out"),
            ("minutes", {"check_in": time(15)}, "check_in"),
            ("days", {"check_out": time(11)}, "check_out"),
            ("nights", {"check_in": time(15)}, "check_out"),
            ("nights", {"check_out": time(11)}, "check_in"),
        ],
    )
    def test_check_times_come_together_and_only_for_nights(self, unit, times, field):
        """One check time alone, or any on a service not in nights, is refused naming that field (it was kept, unused)."""
        duration = HOUR if unit == "minutes" else timedelta(days=1)

        with pytest.raises(InvalidInputError) as caught:
            Service("s", "S", needs=[DENTISTS], duration=duration, unit=unit, **times)

        assert field == caught.value.details["field"]

    def test_price_must_be_money(self):
        """A float price never gets as far as a service: Money refuses it first."""
        with pytest.raises(InvalidMoneyError):
            Service("s", "S", needs=[DENTISTS], duration=HOUR, price=Money(9.5, "EUR"))

    @given(services())
    def test_drawn_services_are_consistent(self, service):
        """Every drawn service allows its own default duration and steps forward."""
        assert service.allows_duration(service.duration)
        assert service.step > timedelta(0)


class TestCustomer:
    def test_repr_hides_personal_data(self):
        """A customer's repr shows only the id: no name, e-mail or phone reaches logs or reports."""
        canary = Customer("c1", "Pii Canary", contacts=["pii-canary-7f3a@example.invalid", "+33 6 00 00 00 00"])

        assert "Customer('c1')" == repr(canary)
        assert "canary" not in repr(canary).lower()

    def test_contacts_must_be_a_sequence(self):
        """A bare string is not a list of contacts."""
        with pytest.raises(InvalidInputError, match="contacts"):
            Customer("c1", contacts="ann@example.com")

    @given(customers())
    def test_drawn_customers_are_valid(self, customer):
        """Drawn customers keep their contacts as a tuple."""
        assert isinstance(customer.contacts, tuple)


class TestText:
    def test_lone_surrogates_are_refused(self):
        """Text with a lone surrogate is refused like NUL: no storage can keep it."""
        with pytest.raises(InvalidInputError, match="lone surrogate"):
            Customer("c1", "Ann\ud800")


class TestTextRule:
    @given(st.text(max_size=30) | st.text(" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u2000\u3000a\x00\ud800", max_size=8))
    def test_the_rule_as_written_in_its_docstring(self, text):
        """check_text refuses exactly blank text, NUL and lone surrogates (its shortcuts change nothing)."""
        blank = not text.strip()
        try:
            text.encode("utf-8")
            surrogate = False
        except UnicodeEncodeError:
            surrogate = True
        try:
            check_text(text, "name")
            refused = False
        except InvalidInputError:
            refused = True

        assert refused == (blank or "\x00" in text or surrogate)
        if not ("\x00" in text or surrogate):
            assert text == check_text(text, "note", allow_empty=True)
