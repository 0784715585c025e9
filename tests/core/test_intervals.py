"""
Intervals, interval sets and capacity profiles.

Every operation is checked twice on drawn data: against the minute-grid oracle (`slotengine.testing.oracle`,
plain Python sets of minutes) and against portion, the interval library slotengine converts to and from.
Example tests pin down the half-open rule, the refusals, and the values' reprs, hashes and pickles.
"""

import pickle
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import portion as P  # noqa: N812
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from slotengine import CapacityProfile, Interval, IntervalSet
from slotengine._time import MAX_INSTANT, MIN_INSTANT
from slotengine.errors import InvalidInputError, InvalidIntervalError, NaiveDatetimeError, OutOfRangeError
from slotengine.testing import oracle
from slotengine.testing.strategies import (
    INTERVAL_WINDOW,
    aware_datetimes,
    interval_lists,
    interval_sets,
    intervals,
    weighted_loads,
    zone_names,
)

PARIS = ZoneInfo("Europe/Paris")
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
WINDOW = INTERVAL_WINDOW
WINDOW_MINUTES = WINDOW.duration // MINUTE


def at(hour, minute=0, day=30):
    """An instant on 2026-03-{day} in UTC (inside the strategies' window)."""
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def span(start_hour, end_hour, day=30):
    return Interval(at(start_hour, day=day), at(end_hour, day=day))


def portion_of(items):
    """The portion value of some intervals, built once with ``P.Interval(*atoms)``."""
    return P.Interval(*(P.closedopen(iv.start, iv.end) for iv in items))


def from_portion(value):
    return IntervalSet.from_portion(value)


# Long enough that normalization takes both paths of the merge (more than 16 pieces, and fewer).
raw_interval_lists = interval_lists(max_size=30)


@st.composite
def instants(draw):
    """An instant in a drawn zone, near or inside the window, often on a whole minute and sometimes not."""
    minute = draw(st.integers(-3, WINDOW_MINUTES + 3))
    extra = draw(st.one_of(st.just(0), st.integers(0, 59_999_999)))
    instant = WINDOW.start + minute * MINUTE + timedelta(microseconds=extra)
    return instant.astimezone(ZoneInfo(draw(zone_names())))


class TestInterval:
    def test_is_half_open(self):
        """An interval contains its start and not its end."""
        interval = span(9, 10)

        assert interval.contains(at(9))
        assert at(9, 59) in interval
        assert at(10) not in interval

    def test_back_to_back_bookings_do_not_overlap(self):
        """A booking that ends at 10:00 and one that starts at 10:00 share no instant."""
        assert not span(9, 10).overlaps(span(10, 11))
        assert not span(10, 11).overlaps(span(9, 10))
        assert span(9, 10).overlaps(Interval(at(9, 59), at(11)))

    def test_stores_utc(self):
        """Bounds given in any zone are stored as the same instants in UTC."""
        interval = Interval(datetime(2026, 3, 30, 11, tzinfo=PARIS), datetime(2026, 3, 30, 12, tzinfo=PARIS))

        assert span(9, 10) == interval
        assert UTC is interval.start.tzinfo
        assert hash(span(9, 10)) == hash(interval)

    def test_refuses_naive_datetimes(self):
        """A bound without a time zone raises NaiveDatetimeError."""
        with pytest.raises(NaiveDatetimeError, match="start"):
            Interval(datetime(2026, 3, 30, 9), at(10))
        with pytest.raises(NaiveDatetimeError, match="end"):
            Interval(at(9), datetime(2026, 3, 30, 10))

    @pytest.mark.parametrize("end", [at(9), at(8)], ids=["empty", "reversed"])
    def test_refuses_end_not_after_start(self, end):
        """An interval whose end is not after its start raises InvalidIntervalError."""
        with pytest.raises(InvalidIntervalError, match="must end after it starts"):
            Interval(at(9), end)

    @pytest.mark.parametrize(
        ("start", "end"),
        [
            # Paris springs forward at 02:00 CET (01:00 UTC): 01:30 CET is 00:30 UTC.
            (datetime(2026, 3, 29, 1, 30, tzinfo=PARIS), datetime(2026, 3, 29, 2, 30, tzinfo=UTC)),
            # Paris falls back at 03:00 CEST (01:00 UTC): 01:30 CEST is 23:30 UTC the day before.
            (datetime(2026, 10, 25, 1, 30, tzinfo=PARIS), datetime(2026, 10, 25, 1, 30, tzinfo=UTC)),
        ],
        ids=["spring-forward", "fall-back"],
    )
    def test_starting_adds_elapsed_time_across_a_dst_change(self, start, end):
        """
        `starting` adds elapsed time: a two-hour booking across a DST change lasts two hours.

        Regression: the duration was added to the local start as wall-clock time, so these lasted one hour
        and three hours.
        """
        interval = Interval.starting(start, 2 * HOUR)

        assert end == interval.end
        assert 2 * HOUR == interval.duration

    @given(aware_datetimes(), st.integers(1, 3 * 24 * 60))
    def test_starting_lasts_its_duration(self, start, minutes):
        """An interval built with `starting` in any zone, near any DST change, lasts exactly its duration."""
        interval = Interval.starting(start, minutes * MINUTE)

        assert minutes * MINUTE == interval.duration
        # Not ``start == interval.start``: PEP 495 makes == between zones False for a time in a DST fold.
        assert start.astimezone(UTC) == interval.start

    @pytest.mark.parametrize("days", [3_000_000, -3_000_000, 100_000])
    def test_starting_with_a_duration_past_the_range_is_out_of_range(self, days):
        """A huge duration is `OutOfRangeError`, as a small overflow past 2200 is, not Python's OverflowError."""
        with pytest.raises(OutOfRangeError):
            Interval.starting(datetime(2025, 1, 1, tzinfo=UTC), timedelta(days=days))

    def test_starting_wants_a_timedelta(self):
        """A number of minutes is not a duration."""
        with pytest.raises(InvalidInputError, match="duration must be a timedelta"):
            Interval.starting(datetime(2025, 1, 1, tzinfo=UTC), 30)

    def test_contains_interval(self):
        """An interval contains another that lies within it, bounds included."""
        assert span(9, 12).contains(span(9, 12))
        assert span(9, 12).contains(span(10, 11))
        assert not span(9, 12).contains(span(11, 13))

    def test_repr_is_readable(self):
        """The repr shows the UTC bounds to the minute, and seconds only when there are some."""
        assert "Interval(2026-03-30 09:00Z – 2026-03-30 10:00Z)" == repr(span(9, 10))
        assert "Interval(2026-03-30 09:00:30Z – 2026-03-30 10:00:00.000001Z)" == repr(
            Interval(at(9) + timedelta(seconds=30), at(10) + timedelta(microseconds=1))
        )

    def test_pickles(self):
        """An interval survives a pickle round trip."""
        interval = span(9, 10)

        assert interval == pickle.loads(pickle.dumps(interval))

    def test_is_frozen(self):
        """An interval cannot be changed in place."""
        with pytest.raises(AttributeError):
            span(9, 10).start = at(8)  # type: ignore[misc]


class TestIntervalSetConstruction:
    def test_touching_pieces_merge(self):
        """Two intervals that touch become one piece: [9, 10) and [10, 11) are [9, 11)."""
        merged = IntervalSet([span(9, 10), span(10, 11)])

        assert IntervalSet.of(at(9), at(11)) == merged
        assert [span(9, 11)] == list(merged)

    def test_apart_pieces_stay_apart(self):
        """Pieces a minute apart stay two pieces, in time order."""
        pieces = IntervalSet([Interval(at(11, 1), at(12)), span(9, 11)])

        assert [span(9, 11), Interval(at(11, 1), at(12))] == list(pieces)
        assert 2 == len(pieces)

    def test_accepts_pairs_of_aware_datetimes(self):
        """``(start, end)`` pairs in any zone build the same set as `Interval` values."""
        pairs = IntervalSet([(datetime(2026, 3, 30, 11, tzinfo=PARIS), at(10))])

        assert IntervalSet([span(9, 10)]) == pairs

    @pytest.mark.parametrize(
        "pair",
        [
            (MAX_INSTANT, MAX_INSTANT + MINUTE),
            (MIN_INSTANT - MINUTE, MIN_INSTANT),
            (datetime(2199, 12, 31, 23, tzinfo=UTC), datetime(2200, 1, 1, 0, 0, 0, 1, tzinfo=UTC)),
        ],
        ids=["after-2200", "before-1970", "one-microsecond-past"],
    )
    def test_refuses_instants_out_of_range(self, pair):
        """Bounds outside 1970–2200 UTC raise OutOfRangeError, even by one microsecond."""
        with pytest.raises(OutOfRangeError):
            IntervalSet([pair])

    @given(aware_datetimes(), aware_datetimes(minute_resolution=False))
    def test_reads_bounds_in_any_zone_as_instants(self, one, other):
        """Bounds in any zone, also in DST gaps and folds, mean the instants that ``astimezone(UTC)`` gives."""
        first, last = sorted([one, other], key=lambda t: t.astimezone(UTC))
        assume(first.astimezone(UTC) != last.astimezone(UTC))
        built = IntervalSet([(first, last)])

        assert (first.astimezone(UTC), last.astimezone(UTC)) == (built.start, built.end)
        assert first in built
        assert last not in built

    def test_refuses_naive_pairs(self):
        """A naive bound in a pair raises NaiveDatetimeError."""
        with pytest.raises(NaiveDatetimeError):
            IntervalSet([(datetime(2026, 3, 30, 9), at(10))])

    @pytest.mark.parametrize("end", [at(9), at(8)], ids=["empty", "reversed"])
    def test_refuses_pairs_that_do_not_end_after_they_start(self, end):
        """A pair whose end is not after its start raises InvalidIntervalError."""
        with pytest.raises(InvalidIntervalError, match="must end after it starts"):
            IntervalSet([span(1, 2), (at(9), end)])

    @pytest.mark.parametrize("item", [3, (at(9),), (at(9), at(10), at(11)), "ab"])
    def test_refuses_other_items(self, item):
        """Anything but an Interval or a pair of aware datetimes raises an input error."""
        with pytest.raises(InvalidInputError):
            IntervalSet([item])

    def test_copies_another_set(self):
        """A set built from another set equals it."""
        pieces = IntervalSet([span(9, 10), span(13, 14)])

        assert pieces == IntervalSet(pieces)
        assert [span(9, 10), span(13, 14)] == list(IntervalSet(pieces))

    def test_empty(self):
        """The empty set is falsy, has no start or end, lasts nothing, and equals IntervalSet()."""
        empty = IntervalSet.empty()

        assert IntervalSet() == empty
        assert not empty
        assert (None, None) == (empty.start, empty.end)
        assert timedelta(0) == empty.total_duration
        assert "IntervalSet([])" == repr(empty)

    def test_start_and_end(self):
        """`start` is the first instant in the set and `end` the end of its last piece."""
        pieces = IntervalSet([span(13, 14), span(9, 10)])

        assert (at(9), at(14)) == (pieces.start, pieces.end)

    def test_equal_sets_hash_equal(self):
        """Sets built from different pieces that cover the same time are equal and hash equal."""
        one = IntervalSet([span(9, 12)])
        other = IntervalSet([span(10, 12), span(9, 10), span(9, 11)])

        assert one == other
        assert hash(one) == hash(other)
        assert 1 == len({one, other})

    def test_repr_is_readable(self):
        """The repr lists the pieces with their UTC bounds."""
        pieces = IntervalSet([span(9, 10), span(13, 14)])

        assert "IntervalSet([2026-03-30 09:00Z – 2026-03-30 10:00Z, 2026-03-30 13:00Z – 2026-03-30 14:00Z])" == repr(
            pieces
        )

    def test_pickles(self):
        """A set survives a pickle round trip."""
        pieces = IntervalSet([span(9, 10), span(13, 14)])

        assert pieces == pickle.loads(pickle.dumps(pieces))

    def test_indexing(self):
        """Indexing returns pieces in time order; negative indexes count from the end; others raise."""
        pieces = IntervalSet([span(13, 14), span(9, 10), span(11, 12)])

        assert [span(9, 10), span(11, 12), span(13, 14)] == [pieces[0], pieces[1], pieces[2]]
        assert span(13, 14) == pieces[-1]
        assert span(9, 10) == pieces[-3]
        with pytest.raises(IndexError):
            pieces[3]
        with pytest.raises(IndexError):
            pieces[-4]

    def test_micros(self):
        """`to_micros` gives the pieces as integer microseconds since the epoch."""
        pieces = IntervalSet([Interval(MIN_INSTANT, MIN_INSTANT + timedelta(seconds=1))])

        assert ((0, 1_000_000),) == pieces.to_micros()

    def test_many_pieces(self):
        """Sets of hundreds of pieces, some touching, build and combine exactly as the oracle says."""
        start = WINDOW.start
        raw = [Interval(start + i * 5 * MINUTE, start + (i * 5 + 2 + 3 * (i % 3 == 0)) * MINUTE) for i in range(400)]
        other_raw = [Interval(start + i * 7 * MINUTE, start + (i * 7 + 3) * MINUTE) for i in range(300)]
        one, other = IntervalSet(reversed(raw)), IntervalSet(other_raw)

        assert oracle.intervals_from_minutes(oracle.minute_set(raw)) == list(one)
        assert oracle.interval_set_from_minutes(oracle.union(one, other)) == one | other
        assert oracle.interval_set_from_minutes(oracle.difference(one, other)) == one - other
        assert oracle.interval_set_from_minutes(oracle.intersection(one, other)) == one & other
        assert 267 == len(one)

    @given(raw_interval_lists, st.randoms(use_true_random=False))
    def test_normalizes(self, raw, random):
        """
        A set built from any intervals, in any order, equals the oracle's runs of minutes and portion's union.

        Its pieces come out in time order, none touching the next, and input given as pairs in another zone
        builds an equal set with an equal hash.
        """
        built = IntervalSet(raw)
        runs = oracle.intervals_from_minutes(oracle.minute_set(raw))
        shuffled = list(raw)
        random.shuffle(shuffled)
        as_pairs = [(iv.start.astimezone(PARIS), iv.end.astimezone(PARIS)) for iv in shuffled]

        assert oracle.interval_set_from_minutes(oracle.minute_set(raw)) == built
        assert runs == list(built)
        assert len(runs) == len(built)
        assert [(atom.lower, atom.upper) for atom in portion_of(raw)] == [(iv.start, iv.end) for iv in built]
        assert from_portion(portion_of(raw)) == built
        assert all(a.end < b.start for a, b in zip(built, list(built)[1:], strict=False))
        assert built == IntervalSet(shuffled) == IntervalSet(as_pairs)
        assert hash(built) == hash(IntervalSet(as_pairs))

    @given(interval_sets(), interval_sets())
    def test_equal_exactly_when_the_same_minutes(self, one, other):
        """Two sets are equal exactly when they cover the same minutes."""
        assert (oracle.minute_set(one) == oracle.minute_set(other)) == (one == other)


class TestIntervalSetAlgebra:
    def test_operators_and_names_are_twins(self):
        """``|``, ``&``, ``-`` and ``~`` give what `union`, `intersection`, `difference`, `complement` give."""
        one = IntervalSet([span(9, 12)])
        other = IntervalSet([span(11, 14)])

        assert IntervalSet([span(9, 14)]) == one | other == one.union(other)
        assert IntervalSet([span(11, 12)]) == one & other == one.intersection(other)
        assert IntervalSet([span(9, 11)]) == one - other == one.difference(other)
        assert ~one == one.complement()
        assert IntervalSet([Interval(MIN_INSTANT, at(9)), Interval(at(12), MAX_INSTANT)]) == ~one

    def test_operators_refuse_other_types(self):
        """An operator with a non-set operand raises TypeError; a named method raises an input error."""
        one = IntervalSet([span(9, 12)])

        with pytest.raises(TypeError):
            one | span(9, 10)  # type: ignore[operator]
        with pytest.raises(InvalidInputError, match="expected an IntervalSet"):
            one.union([span(9, 10)])  # type: ignore[list-item]

    def test_complement_refuses_a_window_that_is_not_an_interval(self):
        """`complement` takes an Interval window; a pair or a set raises an input error, not a guess."""
        one = IntervalSet([span(9, 12)])

        with pytest.raises(InvalidInputError, match="complement"):
            one.complement((at(8), at(13)))  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match="complement"):
            one.complement(IntervalSet([span(8, 13)]))  # type: ignore[arg-type]

    @given(interval_sets(), interval_sets(), interval_sets(max_size=3))
    def test_union(self, one, two, three):
        """Union covers the minutes of either set, as the oracle and portion say; it takes many sets."""
        assert oracle.interval_set_from_minutes(oracle.union(one, two)) == one | two
        assert from_portion(one.to_portion() | two.to_portion()) == one | two
        assert oracle.interval_set_from_minutes(oracle.union(one, two, three)) == one.union(two, three)

    @given(interval_sets(), interval_sets(), interval_sets(max_size=3))
    def test_intersection(self, one, two, three):
        """Intersection covers the minutes of both sets, as the oracle and portion say; it takes many sets."""
        assert oracle.interval_set_from_minutes(oracle.intersection(one, two)) == one & two
        assert from_portion(one.to_portion() & two.to_portion()) == one & two
        assert oracle.interval_set_from_minutes(oracle.intersection(one, two, three)) == one.intersection(
            two, three
        )

    @given(interval_sets(), interval_sets(), interval_sets(max_size=3))
    def test_difference(self, one, two, three):
        """Difference covers the minutes of the first set only, as the oracle and portion say."""
        assert oracle.interval_set_from_minutes(oracle.difference(one, two)) == one - two
        assert from_portion(one.to_portion() - two.to_portion()) == one - two
        assert oracle.interval_set_from_minutes(oracle.difference(one, two, three)) == one.difference(
            two, three
        )

    @given(interval_sets(), intervals())
    def test_complement(self, pieces, window):
        """
        The complement within a window covers the window's minutes not in the set (oracle and portion).

        ``~`` covers all accepted instants (1970–2200) not in the set, and undoes itself.
        """
        expected = oracle.interval_set_from_minutes(oracle.complement(pieces, window))
        everything = P.closedopen(MIN_INSTANT, MAX_INSTANT)

        assert expected == pieces.complement(window)
        assert from_portion(P.closedopen(window.start, window.end) - pieces.to_portion()) == pieces.complement(
            window
        )
        assert from_portion(everything - pieces.to_portion()) == ~pieces
        assert expected == ~pieces & IntervalSet([window])
        assert pieces == ~~pieces


class TestIntervalSetQueries:
    def test_half_open_membership(self):
        """A set contains the start of each piece and not its end."""
        pieces = IntervalSet([span(9, 10), span(13, 14)])

        assert at(9) in pieces
        assert at(10) not in pieces
        assert at(13, 59) in pieces
        assert at(14) not in pieces

    def test_back_to_back_bookings_do_not_overlap(self):
        """A set of bookings ending at 10:00 does not overlap one starting at 10:00."""
        booked = IntervalSet([span(9, 10)])

        assert not booked.overlaps(span(10, 11))
        assert not booked.overlaps(IntervalSet([span(10, 11)]))
        assert booked.overlaps(Interval(at(9, 59), at(11)))

    def test_sets_that_only_touch_do_not_overlap(self):
        """Sets whose pieces only touch share no instant, whichever set comes first."""
        one = IntervalSet([span(10, 11), span(20, 21)])
        other = IntervalSet([span(9, 10), span(11, 12), span(22, 23)])

        assert not one.overlaps(other)
        assert not other.overlaps(one)
        assert one.overlaps(other | IntervalSet([Interval(at(20, 59), at(22))]))

    def test_containment_is_exact_to_the_microsecond(self):
        """A set does not contain a set or an interval that reaches one microsecond past one of its pieces."""
        pieces = IntervalSet([span(9, 10), span(13, 14)])
        past = Interval(at(13), at(14) + timedelta(microseconds=1))

        assert not pieces.contains(past)
        assert not pieces.contains(IntervalSet([span(9, 10), past]))
        assert pieces.contains(IntervalSet([span(9, 10), span(13, 14)]))
        assert at(14) - timedelta(microseconds=1) in pieces

    def test_contains_refuses_naive_instants(self):
        """Asking about a naive datetime raises NaiveDatetimeError rather than guessing a zone."""
        with pytest.raises(NaiveDatetimeError):
            datetime(2026, 3, 30, 9) in IntervalSet([span(9, 10)])  # noqa: B015

    @given(interval_sets(), instants(), intervals(), interval_sets(max_size=3))
    def test_contains(self, pieces, instant, interval, other):
        """
        An instant, an interval or a set is in the set exactly when all its minutes are (oracle, portion).

        The oracle takes an instant's minute: on the grid, an instant is in the set when its minute is.
        """
        container = pieces.to_portion()

        assert oracle.contains(pieces, instant) == (instant in pieces)
        assert (instant in container) == pieces.contains(instant)
        assert oracle.contains(pieces, interval) == (interval in pieces)
        assert (P.closedopen(interval.start, interval.end) in container) == pieces.contains(interval)
        assert oracle.contains(pieces, other) == (other in pieces)
        assert (other.to_portion() in container) == pieces.contains(other)
        assert pieces.contains(pieces & other)

    @given(interval_sets(), intervals(), interval_sets())
    def test_overlaps(self, pieces, interval, other):
        """
        A set overlaps an interval or a set exactly when they share a minute (oracle, portion).

        A set never overlaps its complement or what was cut out of it, though they touch at every cut.
        `overlapping` returns the whole pieces that share a minute with the interval.
        """
        runs = oracle.intervals_from_minutes(oracle.minute_set(pieces))
        window = oracle.minute_set(interval)
        touched = [run for run in runs if window.intersection(oracle.minutes_of(run))]

        assert oracle.overlaps(pieces, interval) == pieces.overlaps(interval)
        assert oracle.overlaps(pieces, other) == pieces.overlaps(other)
        assert pieces.to_portion().overlaps(other.to_portion()) == pieces.overlaps(other)
        assert pieces.to_portion().overlaps(P.closedopen(interval.start, interval.end)) == pieces.overlaps(
            interval
        )
        assert IntervalSet(touched) == pieces.overlapping(interval)
        assert not pieces.overlaps(~pieces)
        assert not (~pieces).overlaps(pieces)
        assert not (pieces - other).overlaps(other)
        assert not other.overlaps(pieces - other)

    @given(interval_sets(), intervals())
    def test_clip_is_the_part_inside_the_interval(self, pieces, interval):
        """`clip` keeps exactly the minutes of the set inside the interval (oracle), as ``&`` with it does."""
        inside = oracle.minute_set(pieces) & oracle.minute_set(interval)

        assert inside == oracle.minute_set(pieces.clip(interval))
        assert pieces & IntervalSet([interval]) == pieces.clip(interval)
        assert pieces.clip(interval).to_micros() == (pieces & IntervalSet([interval])).to_micros()

    @given(interval_sets())
    def test_iteration_and_total_duration(self, pieces):
        """
        Iteration yields the oracle's runs of minutes and portion's atoms, in time order, as indexing does.

        The total duration is one minute per covered minute, and what portion's atoms add up to.
        """
        listed = list(pieces)
        atoms = list(pieces.to_portion())

        assert oracle.intervals_from_minutes(oracle.minute_set(pieces)) == listed
        assert [(atom.lower, atom.upper) for atom in atoms] == [(iv.start, iv.end) for iv in listed]
        assert listed == [pieces[i] for i in range(len(pieces))]
        assert oracle.total_duration(pieces) == pieces.total_duration
        assert sum((atom.upper - atom.lower for atom in atoms), timedelta(0)) == pieces.total_duration


class TestWiden:
    def test_buffers_merge_neighbours(self):
        """Widening by buffers merges pieces whose buffers meet."""
        pieces = IntervalSet([span(9, 10), Interval(at(10, 30), at(11))])

        assert IntervalSet([Interval(at(8, 45), at(11, 15))]) == pieces.widen(
            timedelta(minutes=15), timedelta(minutes=15)
        )

    def test_no_buffer_is_the_same_set(self):
        """Widening by nothing returns an equal set."""
        pieces = IntervalSet([span(9, 10)])

        assert pieces == pieces.widen()

    def test_refuses_negative_amounts(self):
        """A negative amount of time raises an input error."""
        with pytest.raises(InvalidInputError, match="non-negative"):
            IntervalSet([span(9, 10)]).widen(after=-MINUTE)

    def test_stops_at_the_accepted_range(self):
        """
        Widening near 1970 or 2200 cuts the result to the accepted range, so every piece is a valid Interval.

        Regression: the widened bounds used to leave the range, and iterating, printing or converting the set
        then raised OutOfRangeError.
        """
        early = IntervalSet([Interval(MIN_INSTANT, MIN_INSTANT + HOUR)]).widen(before=2 * HOUR, after=HOUR)
        late = IntervalSet([Interval(MAX_INSTANT - HOUR, MAX_INSTANT)]).widen(before=HOUR, after=HOUR)

        assert [Interval(MIN_INSTANT, MIN_INSTANT + 2 * HOUR)] == list(early)
        assert [Interval(MAX_INSTANT - 2 * HOUR, MAX_INSTANT)] == list(late)
        assert "IntervalSet([1970-01-01 00:00Z – 1970-01-01 02:00Z])" == repr(early)
        assert early == from_portion(early.to_portion())

    @given(interval_sets(), st.integers(0, 180), st.integers(0, 180))
    def test_widen(self, pieces, before, after):
        """Widening stretches every piece as the oracle and a portion rebuild do."""
        lead, trail = before * MINUTE, after * MINUTE
        widened = pieces.widen(lead, trail)
        rebuilt = P.Interval(*(P.closedopen(atom.lower - lead, atom.upper + trail) for atom in pieces.to_portion()))

        assert oracle.interval_set_from_minutes(oracle.widen(pieces, lead, trail)) == widened
        assert from_portion(rebuilt) == widened


class TestPortionInterop:
    def test_empty(self):
        """The empty set and portion's empty interval convert to each other."""
        assert P.empty() == IntervalSet().to_portion()
        assert IntervalSet() == from_portion(P.empty())

    @pytest.mark.parametrize(
        "atom",
        [
            P.closed(at(9), at(10)),
            P.open(at(9), at(10)),
            P.openclosed(at(9), at(10)),
            P.singleton(at(9)),
        ],
        ids=["closed", "open", "openclosed", "singleton"],
    )
    def test_refuses_atoms_that_are_not_closed_open(self, atom):
        """Only ``[start, end)`` atoms map exactly onto slotengine's intervals; others raise."""
        with pytest.raises(InvalidIntervalError, match="closed-open"):
            from_portion(P.closedopen(at(1), at(2)) | atom)

    @pytest.mark.parametrize(
        "atom", [P.closedopen(at(9), P.inf), P.closedopen(-P.inf, at(10)), P.open(-P.inf, P.inf)]
    )
    def test_refuses_unbounded_atoms(self, atom):
        """An atom that reaches infinity raises InvalidIntervalError."""
        with pytest.raises(InvalidIntervalError):
            from_portion(atom)

    def test_refuses_naive_bounds(self):
        """Naive datetimes in a portion value raise NaiveDatetimeError."""
        with pytest.raises(NaiveDatetimeError):
            from_portion(P.closedopen(datetime(2026, 3, 30, 9), datetime(2026, 3, 30, 10)))

    def test_converts_other_zones(self):
        """Bounds in another zone convert to the same instants."""
        offset = timezone(timedelta(hours=2))

        assert IntervalSet([span(9, 10)]) == from_portion(
            P.closedopen(at(9).astimezone(offset), at(10).astimezone(offset))
        )

    @given(interval_sets())
    def test_round_trip(self, pieces):
        """Converting any set to portion and back, or pickling it, gives the same set."""
        assert pieces == from_portion(pieces.to_portion())
        assert pieces == pickle.loads(pickle.dumps(pieces))


class TestCapacityProfile:
    def test_back_to_back_loads_do_not_add_up(self):
        """Two seats booked 9–10 and 10–11 never take two seats at once."""
        profile = CapacityProfile([(span(9, 10), 1), (span(10, 11), 1)])

        assert 1 == profile.max_load(span(8, 12))
        assert [(span(9, 11), 1)] == list(profile.steps())

    def test_loads_add_up_where_they_overlap(self):
        """Overlapping loads add up; load is 0 outside every interval."""
        profile = CapacityProfile([(span(9, 11), 2), (span(10, 12), 3)])

        assert [0, 2, 5, 3, 0] == [profile.load_at(at(h)) for h in (8, 9, 10, 11, 12)]
        assert 5 == profile.peak
        assert IntervalSet([span(0, 10), Interval(at(11), at(0, day=31))]) == profile.where_fits(
            1, 4, Interval(at(0), at(0, day=31))
        )
        assert IntervalSet([span(12, 13)]) == profile.where_at_most(0, span(11, 13))

    @pytest.mark.parametrize("units", [0, -1, True, 1.0, 1.5, "1", None], ids=repr)
    def test_refuses_weights_that_are_not_positive_whole_numbers(self, units):
        """A weight of 0, a negative one, a bool, a float or anything else raises InvalidInputError."""
        with pytest.raises(InvalidInputError, match="positive whole number"):
            CapacityProfile([(span(9, 10), units)])

    @pytest.mark.parametrize("units", [-1, True, 1.0, None], ids=repr)
    def test_where_fits_refuses_units_that_are_not_whole_numbers(self, units):
        """
        `where_fits` refuses negative, bool and float units instead of computing with them.

        Regression: ``where_fits(True, ...)`` counted as one unit, ``-1`` made room, and ``1.5`` was used as is.
        """
        profile = CapacityProfile([(span(9, 10), 1)])

        with pytest.raises(InvalidInputError, match="units"):
            profile.where_fits(units, 2, span(8, 11))

    @pytest.mark.parametrize("capacity", [True, 2.0, None], ids=repr)
    def test_where_fits_refuses_capacities_that_are_not_whole_numbers(self, capacity):
        """`where_fits` and `where_at_most` refuse bool and float capacities and limits."""
        profile = CapacityProfile([(span(9, 10), 1)])

        with pytest.raises(InvalidInputError, match="capacity"):
            profile.where_fits(1, capacity, span(8, 11))
        with pytest.raises(InvalidInputError, match="capacity"):
            profile.where_at_most(capacity, span(8, 11))

    def test_accepts_pairs_of_aware_datetimes(self):
        """
        A load's interval may be a ``(start, end)`` pair, as in `IntervalSet`.

        Regression: a pair raised AttributeError instead of building the profile.
        """
        paris = (datetime(2026, 3, 30, 11, tzinfo=PARIS), datetime(2026, 3, 30, 12, tzinfo=PARIS))

        assert CapacityProfile([(span(9, 10), 2)]) == CapacityProfile([(paris, 2)])

    @pytest.mark.parametrize("load", [(3, 1), ((at(10), at(9)), 1), ((datetime(2026, 3, 30, 9), at(10)), 1)])
    def test_refuses_bad_intervals(self, load):
        """A load whose interval is not an interval, is reversed or is naive raises an input error."""
        with pytest.raises(InvalidInputError):
            CapacityProfile([load])

    @pytest.mark.parametrize("load", [span(9, 10), (span(9, 10),), (span(9, 10), 1, 2)], ids=["bare", "one", "three"])
    def test_refuses_loads_that_are_not_pairs(self, load):
        """Each load is an ``(interval, units)`` pair; anything else raises InvalidInputError."""
        with pytest.raises(InvalidInputError, match="interval, units"):
            CapacityProfile([load])

    def test_empty(self):
        """An empty profile has no load anywhere."""
        profile = CapacityProfile()

        assert (0, 0, 0) == (profile.peak, profile.load_at(at(9)), profile.max_load(span(9, 10)))
        assert [] == list(profile.steps())
        assert IntervalSet([span(9, 10)]) == profile.where_fits(3, 3, span(9, 10))

    def test_equal_profiles_hash_equal(self):
        """Profiles built from different loads with the same step function are equal and hash equal."""
        one = CapacityProfile([(span(9, 11), 2)])
        other = CapacityProfile([(span(9, 10), 1), (span(9, 11), 1), (span(10, 11), 1)])

        assert one == other
        assert hash(one) == hash(other)

    def test_repr_is_readable(self):
        """The repr lists every step with its load."""
        profile = CapacityProfile([(span(9, 11), 2), (span(10, 12), 1)])

        assert (
            "CapacityProfile([2026-03-30 09:00Z – 2026-03-30 10:00Z: 2, 2026-03-30 10:00Z – 2026-03-30 11:00Z: 3, "
            "2026-03-30 11:00Z – 2026-03-30 12:00Z: 1])"
        ) == repr(profile)

    def test_pickles(self):
        """A profile survives a pickle round trip."""
        profile = CapacityProfile([(span(9, 11), 2), (span(10, 12), 1)])

        assert profile == pickle.loads(pickle.dumps(profile))

    @given(weighted_loads(), st.lists(instants(), min_size=1, max_size=8), intervals())
    def test_load_at_max_load_and_peak(self, loads, probes, interval):
        """The load at any instant, the highest load over an interval, and the peak are the oracle's."""
        profile = CapacityProfile(loads)
        load = oracle.load_by_minute(loads)

        assert [load.get(oracle.minute_of(t), 0) for t in probes] == [profile.load_at(t) for t in probes]
        assert oracle.max_load(load, interval) == profile.max_load(interval)
        assert max(load.values(), default=0) == profile.peak

    @given(weighted_loads(), st.integers(0, 6), st.integers(-1, 10), intervals())
    def test_where_fits(self, loads, units, capacity, within):
        """The instants where ``load + units <= capacity`` are the oracle's minutes, for any units and capacity."""
        profile = CapacityProfile(loads)
        load = oracle.load_by_minute(loads)

        expected = oracle.where_fits(load, units, capacity, within)
        assert oracle.interval_set_from_minutes(expected) == profile.where_fits(units, capacity, within)
        assert oracle.interval_set_from_minutes(
            oracle.where_fits(load, 0, capacity, within)
        ) == profile.where_at_most(capacity, within)

    @given(weighted_loads(), st.randoms(use_true_random=False))
    def test_steps(self, loads, random):
        """
        The steps are the oracle's runs of equal non-zero load, in time order.

        Shuffled loads build an equal profile with an equal hash.
        """
        profile = CapacityProfile(loads)
        shuffled = list(loads)
        random.shuffle(shuffled)

        assert oracle.steps_by_minute(oracle.load_by_minute(loads)) == list(profile.steps())
        assert CapacityProfile(shuffled) == profile
        assert hash(CapacityProfile(shuffled)) == hash(profile)


class TestOracle:
    """The oracle is only useful if it is right: these pin it on examples worked out by hand."""

    def test_minute_set(self):
        """An hour covers 60 minutes; touching intervals share none."""
        minutes = oracle.minute_set([span(9, 10), span(10, 11)])

        assert 120 == len(minutes)
        assert oracle.minute_of(at(9)) == min(minutes)
        assert oracle.minute_of(at(11)) - 1 == max(minutes)

    def test_runs(self):
        """Consecutive minutes form one run; a gap of one minute splits them."""
        first = oracle.minute_of(at(9))

        assert [Interval(at(9), at(9, 2)), Interval(at(9, 3), at(9, 4))] == oracle.intervals_from_minutes(
            [first + 1, first, first + 3]
        )

    def test_refuses_bounds_off_the_grid(self):
        """A bound that is not on a whole minute raises ValueError rather than being rounded."""
        with pytest.raises(ValueError, match="whole minutes"):
            oracle.minute_set(Interval(at(9), at(10) + timedelta(seconds=1)))

    def test_steps(self):
        """Runs of equal load become steps; a change of load starts a new one."""
        profile_load = oracle.load_by_minute([(Interval(at(9), at(9, 2)), 1), (Interval(at(9, 1), at(9, 3)), 2)])

        assert [
            (Interval(at(9), at(9, 1)), 1),
            (Interval(at(9, 1), at(9, 2)), 3),
            (Interval(at(9, 2), at(9, 3)), 2),
        ] == oracle.steps_by_minute(profile_load)


class TestStrategies:
    @given(st.lists(intervals(), min_size=1, max_size=3), interval_lists(max_size=3))
    def test_intervals_are_on_whole_minutes_in_the_window(self, drawn, listed):
        """Drawn intervals lie in the window on whole minutes, so the minute oracle is exact for them."""
        every = drawn + listed

        assert all(WINDOW.contains(iv) for iv in every)
        assert all((iv.start - WINDOW.start) % MINUTE == timedelta(0) == iv.duration % MINUTE for iv in every)
