"""The solver against the brute-force oracle: same starts, valid assignments, and explain agrees."""

import os
from datetime import timedelta

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slotengine.availability import Availability
from slotengine.errors import InvalidInputError
from slotengine.model import ResourceRole
from slotengine.testing._solver_strategies import scenarios
from slotengine.testing.oracle import oracle_slot_starts, oracle_valid_assignment

FIVE = timedelta(minutes=5)
# 300 examples per CI run; SLOTENGINE_NIGHTLY=1 runs ten times as many (the `nightly` marker names these tests).
EXAMPLES = 300 * (10 if os.environ.get("SLOTENGINE_NIGHTLY") == "1" else 1)
# The pin and auxiliary properties below: fewer, the suite has a time budget.
FEW = 100 * (10 if os.environ.get("SLOTENGINE_NIGHTLY") == "1" else 1)


def valid_assignment(sc, slot, pin):
    """The shared oracle's checks: counts, distinct, serving, pins kept, a primary resource among them."""
    return oracle_valid_assignment(
        sc.resources, sc.hours, sc.loads, now=sc.now, service=sc.service, slot=slot, pin=pin, zone=sc.zone
    )


def solve(sc):
    availability = Availability(sc.resources, sc.hours, sc.loads, now=sc.now, zone=sc.zone)
    try:
        slots = availability.slots(sc.service, sc.window, pin=sc.pin)
    except InvalidInputError:
        return availability, None
    return availability, slots


@st.composite
def shared_scenarios(draw):
    """
    Scenarios where pins and auxiliary resources matter: up to three pinned resources of the service's pools
    (often one that two needs' pools hold), and about half the resources auxiliary.
    """
    sc = draw(scenarios())
    flipped = tuple(
        attrs.evolve(r, role=ResourceRole.AUXILIARY) if draw(st.booleans()) else r for r in sc.resources
    )
    pool_ids = sorted({r.id for r in sc.resources for need in sc.service.needs if need.matches(r)})
    pin = frozenset(draw(st.lists(st.sampled_from(pool_ids), max_size=3, unique=True))) if pool_ids else frozenset()
    return attrs.evolve(sc, resources=flipped, pin=pin)


class TestSolverEqualsOracle:
    @pytest.mark.nightly
    @settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.too_slow])
    @given(scenarios())
    def test_same_starts(self, sc):
        """On any drawn scenario the solver offers exactly the starts the minute-by-minute oracle offers."""
        _, slots = solve(sc)
        expected = oracle_slot_starts(
            sc.resources,
            sc.hours,
            sc.loads,
            now=sc.now,
            service=sc.service,
            window=sc.window,
            pin=sc.pin,
            zone=sc.zone,
        )

        if slots is None:
            assert [] == expected
            return
        assert expected == [s.start for s in slots]

    @pytest.mark.nightly
    @settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.too_slow])
    @given(scenarios())
    def test_assignments_are_valid(self, sc):
        """Every offered slot's resources serve it: right counts, distinct, within hours and capacity, pins kept,
        and one of them primary."""
        _, slots = solve(sc)

        for slot in slots or ():
            assert valid_assignment(sc, slot, sc.pin), slot


class TestExplainAgrees:
    @pytest.mark.nightly
    @settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.too_slow])
    @given(scenarios())
    def test_offered_starts_have_no_reason_and_others_have_one(self, sc):
        """explain() finds no reason for an offered start, and at least one for every other start in hours."""
        availability, slots = solve(sc)
        if slots is None:
            return
        offered = {s.start: s for s in slots}
        every_hour = set()
        for resource in sc.resources:
            for interval in sc.hours[resource.id] & type(sc.hours[resource.id]).of(
                sc.window.start, sc.window.end
            ):
                t = interval.start
                while t < interval.end:
                    every_hour.add(t)
                    t += FIVE

        for start in sorted(every_hour | set(offered)):
            explanation = availability.explain(sc.service, start, pin=sc.pin)
            if start in offered:
                assert explanation.bookable, (start, explanation.reasons)
                assert () == explanation.reasons
                assert offered[start] == explanation.slot
            else:
                assert not explanation.bookable, start
                assert explanation.reasons, start


class TestPinsAndAuxiliaries:
    @settings(max_examples=FEW, suppress_health_check=[HealthCheck.too_slow])
    @given(shared_scenarios())
    def test_same_starts_with_shared_pins_and_auxiliaries(self, sc):
        """With several pins, pins two needs could take, and many auxiliary resources, the oracle still agrees."""
        _, slots = solve(sc)
        expected = oracle_slot_starts(
            sc.resources, sc.hours, sc.loads, now=sc.now, service=sc.service, window=sc.window, pin=sc.pin, zone=sc.zone
        )

        if slots is None:
            assert [] == expected
            return
        assert expected == [s.start for s in slots]
        for slot in slots:
            assert valid_assignment(sc, slot, sc.pin), slot

    @settings(max_examples=FEW, suppress_health_check=[HealthCheck.too_slow])
    @given(shared_scenarios())
    def test_an_auxiliary_resource_is_never_offered_without_a_primary_one(self, sc):
        """Every offered slot, pinned or not, takes a primary resource (the rule is on the booking as a whole)."""
        availability = Availability(sc.resources, sc.hours, sc.loads, now=sc.now, zone=sc.zone)
        roles = {r.id: r.role for r in sc.resources}
        try:
            slots = availability.slots(sc.service, sc.window)
        except InvalidInputError:
            return

        for slot in slots:
            assert ResourceRole.PRIMARY in {roles[rid] for rid in slot.resource_ids}, slot

    @settings(max_examples=FEW, suppress_health_check=[HealthCheck.too_slow])
    @given(shared_scenarios(), st.data())
    def test_pinning_exactly_an_offered_slots_resources_books_them(self, sc, data):
        """check(start, pin=slot.resource_ids) of an offered slot succeeds, on exactly those resources."""
        availability = Availability(sc.resources, sc.hours, sc.loads, now=sc.now, zone=sc.zone)
        try:
            slots = availability.slots(sc.service, sc.window, pin=sc.pin)
        except InvalidInputError:
            return
        if not slots:
            return
        offered = data.draw(st.sampled_from(slots))

        slot = availability.check(sc.service, offered.start, pin=offered.resource_ids)

        assert (offered.start, offered.end) == (slot.start, slot.end)
        assert sorted(offered.resource_ids) == sorted(slot.resource_ids)
        assert valid_assignment(sc, slot, offered.resource_ids), slot

    @settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
    @given(shared_scenarios())
    def test_explain_agrees_with_shared_pins_and_auxiliaries(self, sc):
        """explain() and is_bookable() accept exactly the offered starts, and give a reason for the others."""
        availability, slots = solve(sc)
        if slots is None:
            return
        offered = {s.start: s for s in slots}
        hours = {t for r in sc.resources for i in sc.hours[r.id] for t in (i.start, i.start + FIVE)}
        candidates = sorted({t for t in hours if sc.window.start <= t < sc.window.end} | set(offered))

        for start in candidates[:: max(1, len(candidates) // 40)]:
            explanation = availability.explain(sc.service, start, pin=sc.pin)
            assert (start in offered) == explanation.bookable == availability.is_bookable(sc.service, start, pin=sc.pin)
            assert bool(explanation.reasons) != explanation.bookable, start
            if start in offered:
                assert offered[start] == explanation.slot
