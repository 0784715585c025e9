"""The solver against the brute-force oracle: same starts, valid assignments, and explain agrees."""

import os
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings

from slotengine.availability import Availability
from slotengine.errors import InvalidInputError
from slotengine.testing._solver_oracle import oracle_slot_starts, oracle_valid_assignment
from slotengine.testing._solver_strategies import scenarios

FIVE = timedelta(minutes=5)
# 300 examples per CI run; SLOTENGINE_NIGHTLY=1 runs ten times as many (the `nightly` marker names these tests).
EXAMPLES = 300 * (10 if os.environ.get("SLOTENGINE_NIGHTLY") == "1" else 1)


def solve(sc):
    availability = Availability(sc.resources, sc.hours, sc.loads, now=sc.now, zone=sc.zone)
    try:
        slots = availability.slots(sc.service, sc.window, pin=sc.pin)
    except InvalidInputError:
        return availability, None
    return availability, slots


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
        """Every offered slot's resources serve it: right counts, distinct, within hours and capacity, pins kept."""
        _, slots = solve(sc)

        for slot in slots or ():
            assert oracle_valid_assignment(
                sc.resources,
                sc.hours,
                sc.loads,
                now=sc.now,
                service=sc.service,
                slot=slot,
                pin=sc.pin,
                zone=sc.zone,
            ), slot


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
