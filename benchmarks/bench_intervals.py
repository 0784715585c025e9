"""
IntervalSet against portion on the same data: union and difference of 10k and 100k intervals.

Run it with ``python benchmarks/bench_intervals.py`` (about a minute and a half). It prints, for each operation
and size, the median wall time of several interleaved repeats, the ratio portion / slotengine, and the peak
memory that tracemalloc sees during one extra run of each (not timed: tracemalloc slows Python down).

The workload (seed 20260301, so every run draws the same data):

* N intervals of aware UTC datetimes (one shared tzinfo, as a database driver returns them), whole minutes,
  15 minutes to 2 hours long, spread so that about half of them overlap a neighbour. Not local times in a DST
  zone: Python compares two datetimes that share a tzinfo by their wall times, so portion would order the
  instants of a fall-back fold wrongly and the two libraries would compute different sets;
* **build**: the N raw ``(start, end)`` pairs become one normalized set. slotengine: ``IntervalSet(pairs)``;
  portion: ``P.Interval(*atoms)`` (never ``|=`` in a loop), building the atoms included; once in random
  order and once sorted by start (what a database returns for ``ORDER BY start``);
* **union**: ``A | B`` of two sets built from N pairs each;
* **difference**: ``A - B`` of the same two sets.

The "practical limit" row is a minimal hand-written sweep on ``(start, end)`` int pairs that were converted to
microseconds beforehand (so it pays for no datetime at all): sort + merge for build, a two-pointer merge for
union and a sweep for difference. It shows how far from the floor of pure Python each library is. Its
inputs for union and difference are allocated in time order, as slotengine's are (see ``_fresh`` in
``intervals.py``), so that the comparison is between algorithms and not between memory layouts.

Times on a shared machine drift by up to ±50 % between runs; compare the ratios of one run, not the absolute
times of two runs.
"""

from __future__ import annotations

import gc
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import portion as P  # noqa: N812

from slotengine import IntervalSet

SEED = 20260301
SIZES = (10_000, 100_000)
REPEATS = {10_000: 7, 100_000: 3}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)

Pairs = list[tuple[datetime, datetime]]
IntPairs = list[tuple[int, int]]


def draw_pairs(rng: random.Random, n: int) -> Pairs:
    """N random intervals: 15 min to 2 h long, a mean spacing of 97 min, so about half overlap a neighbour."""
    first = datetime(2020, 1, 1, tzinfo=UTC)
    span = n * 97
    out: Pairs = []
    for _ in range(n):
        start = first + timedelta(minutes=rng.randrange(span))
        out.append((start, start + timedelta(minutes=rng.randrange(15, 121))))
    return out


def to_int_pairs(pairs: Pairs) -> IntPairs:
    return [((s - EPOCH) // ONE_US, (e - EPOCH) // ONE_US) for s, e in pairs]


# --- the practical limit: minimal sweeps on int pairs ----------------------------------------------------


def compact(pairs: IntPairs) -> IntPairs:
    return [(s + 0, e + 0) for s, e in pairs]


def limit_build(pairs: IntPairs) -> IntPairs:
    ordered = sorted(pairs)
    out: IntPairs = []
    cur_s, cur_e = ordered[0]
    for s, e in ordered:
        if s <= cur_e:
            if e > cur_e:
                cur_e = e
        else:
            out.append((cur_s, cur_e))
            cur_s, cur_e = s, e
    out.append((cur_s, cur_e))
    return out


def limit_union(a: IntPairs, b: IntPairs) -> IntPairs:
    out: IntPairs = []
    i = j = 0
    na, nb = len(a), len(b)
    cur_s, cur_e = min(a[0], b[0])
    while i < na or j < nb:
        if j >= nb or (i < na and a[i][0] <= b[j][0]):
            s, e = a[i]
            i += 1
        else:
            s, e = b[j]
            j += 1
        if s <= cur_e:
            if e > cur_e:
                cur_e = e
        else:
            out.append((cur_s, cur_e))
            cur_s, cur_e = s, e
    out.append((cur_s, cur_e))
    return out


def limit_difference(a: IntPairs, b: IntPairs) -> IntPairs:
    out: IntPairs = []
    j, nb = 0, len(b)
    for start, e in a:
        s = start
        while j < nb and b[j][1] <= s:
            j += 1
        k = j
        while k < nb and b[k][0] < e:
            if b[k][0] > s:
                out.append((s, b[k][0]))
            s = b[k][1]
            if s >= e:
                break
            k += 1
        if s < e:
            out.append((s, e))
    return out


# --- measurement -----------------------------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def peak_memory(fn: Callable[[], Any]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def run_size(n: int, rng: random.Random) -> list[tuple[str, int, str, float, int]]:
    pairs_a, pairs_b = draw_pairs(rng, n), draw_pairs(rng, n)
    ints_a, ints_b = to_int_pairs(pairs_a), to_int_pairs(pairs_b)
    # The same pairs in start order, as a database returns them for ``ORDER BY start``.
    sorted_a, sorted_ints_a = sorted(pairs_a), sorted(ints_a)
    set_a, set_b = IntervalSet(pairs_a), IntervalSet(pairs_b)
    por_a = P.Interval(*(P.closedopen(s, e) for s, e in pairs_a))
    por_b = P.Interval(*(P.closedopen(s, e) for s, e in pairs_b))
    # Fresh tuples and ints, allocated in time order, as slotengine's own sets are: otherwise the limit's
    # merges would chase pointers all over the heap, and lose to slotengine on memory locality alone.
    lim_a, lim_b = compact(limit_build(ints_a)), compact(limit_build(ints_b))
    # The three implementations must compute the same sets, or the timings compare different work.
    agree = (
        set_a.to_micros() == tuple(lim_a) == IntervalSet.from_portion(por_a).to_micros()
        and (set_a | set_b).to_micros() == tuple(limit_union(lim_a, lim_b))
        and (set_a - set_b).to_micros() == tuple(limit_difference(lim_a, lim_b))
        and IntervalSet.from_portion(por_a - por_b) == set_a - set_b
    )

    workloads: dict[str, dict[str, Callable[[], Any]]] = {
        "build": {
            "slotengine": lambda: IntervalSet(pairs_a),
            "portion": lambda: P.Interval(*(P.closedopen(s, e) for s, e in pairs_a)),
            "practical limit": lambda: limit_build(ints_a),
        },
        "build, input sorted by start": {
            "slotengine": lambda: IntervalSet(sorted_a),
            "portion": lambda: P.Interval(*(P.closedopen(s, e) for s, e in sorted_a)),
            "practical limit": lambda: limit_build(sorted_ints_a),
        },
        "union A ∪ B": {
            "slotengine": lambda: set_a | set_b,
            "portion": lambda: por_a | por_b,
            "practical limit": lambda: limit_union(lim_a, lim_b),
        },
        "difference A − B": {
            "slotengine": lambda: set_a - set_b,
            "portion": lambda: por_a - por_b,
            "practical limit": lambda: limit_difference(lim_a, lim_b),
        },
    }
    rows = []
    for op, impls in workloads.items():
        names = list(impls)
        times: dict[str, list[float]] = {name: [] for name in names}
        for repeat in range(REPEATS[n]):
            # Interleave, and rotate who goes first, so that drift of the machine hits everyone alike.
            shift = repeat % len(names)
            for name in names[shift:] + names[:shift]:
                times[name].append(timed(impls[name]))
        rows.extend((op, n, name, statistics.median(times[name]), peak_memory(impls[name])) for name in names)
    print(f"N={n:,}: A has {len(set_a):,} pieces, B has {len(set_b):,}; the three results agree: {agree}")
    return rows


def main() -> None:
    rng = random.Random(SEED)
    print(f"Python {sys.version.split()[0]}, portion {P.__version__ if hasattr(P, '__version__') else '?'}")
    results = []
    for n in SIZES:
        results.extend(run_size(n, rng))
    print()
    print("| operation | N | implementation | median ms | portion / this | this / limit | peak memory MiB |")
    print("|---|---|---|---|---|---|---|")
    by_key = {(op, n, name): t for op, n, name, t, _ in results}
    for op, n, name, t, mem in results:
        vs_portion = by_key[op, n, "portion"] / t
        vs_limit = t / by_key[op, n, "practical limit"]
        print(f"| {op} | {n:,} | {name} | {t * 1000:,.1f} | {vs_portion:.1f}× | {vs_limit:.1f}× | {mem / 2**20:.1f} |")


if __name__ == "__main__":
    main()
