"""
The instructions one ``engine.book`` costs in Python on its way to PostgreSQL, counted by callgrind.

Run it with ``python benchmarks/bench_booking_instructions.py`` (about 30 s; it needs valgrind and the
PostgreSQL of ``SLOTENGINE_BENCH_POSTGRES_DSN``, default ``postgresql://postgres@127.0.0.1:5432/test``).

Timings of one process drift by 10-30 % between runs on a shared machine, too much to see a change of a few
per cent; an instruction count repeats to a hundredth of a per cent. The workload is the throughput
benchmark's uniform load (`bench_throughput`) as its writers run it: *engines* fresh engines (each has read
its catalogue with one ``find_slots``, as a writer has) take turns making *bookings* bookings in all, with
the one round trip to the server stubbed out (`PostgresStorage` answers "ok" without sending), so what is
counted is the engine's and the adapter's Python: the solver's check, the booking, its transition and
message, the request, the pool borrow. Setup is not counted: callgrind collects only inside the
``functools.reduce`` call that runs the bookings (``--toggle-collect=functools_reduce``, CPython's C name).

Fewer instructions are not the same as less time in a 16-writer cell, where a booking's Python runs several
times slower than alone because the caches hold other processes' data (benchmarks/README.md, eighteenth
round); confirm a change there with alternated cells.
"""

from __future__ import annotations

import argparse
import functools
import random
import shutil
import subprocess
import sys
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path

import bench_throughput as bench
from slotengine.authorization import Actor
from slotengine.engine import BookingEngine
from slotengine.intervals import Interval
from slotengine.testing.clock import FrozenClock


def workload(bookings: int, engines: int) -> None:
    """Make *bookings* uniform bookings through *engines* fresh engines in turn, inside ``functools.reduce``."""
    import psycopg
    from psycopg import sql

    import slotengine.adapters.postgres as postgres_module
    from slotengine.adapters.postgres import PostgresStorage

    schema = f"slotengine_bench_{uuid.uuid4().hex[:12]}"
    storage = PostgresStorage(bench.DSN, schema=schema, max_size=1)
    try:
        bench.setup_tenant(storage, "count", "uniform")
        postgres_module._reserve_at_once = lambda *_args: "ok"  # type: ignore[assignment]  # nothing is sent
        writers = []
        for w in range(engines):
            clock = FrozenClock(bench.NOW)
            engine = BookingEngine(storage, clock=clock, tenant="count", default_actor=Actor.system(f"w{w}"))
            engine.find_slots("s-r00", Interval(bench.FIRST_DAY, bench.FIRST_DAY + timedelta(days=1)))
            writers.append((engine, random.Random(bench.SEED + w)))

        def book(done: int, n: int) -> int:
            engine, rng = writers[n % engines]
            bench._engine_call(engine, "uniform", rng)
            return done + 1

        functools.reduce(book, range(bookings), 0)
    finally:
        storage.close()
        with psycopg.connect(bench.DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--bookings", type=int, default=300, help="bookings counted (default 300)")
    parser.add_argument("--engines", type=int, default=3, help="fresh engines taking turns (default 3)")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)  # the run under valgrind
    args = parser.parse_args()
    if args.inner:
        workload(args.bookings, args.engines)
        return
    if not bench.pg_available():
        sys.exit(f"PostgreSQL at {bench.DSN} not reachable (or psycopg missing)")
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        sys.exit("valgrind is not on PATH; this benchmark counts instructions with its callgrind tool")
    with tempfile.TemporaryDirectory(prefix="slotengine-bench-") as tmp:
        out = Path(tmp) / "callgrind.out"
        command = [valgrind, "--tool=callgrind", "--collect-atstart=no", "--toggle-collect=functools_reduce"]
        command += [f"--callgrind-out-file={out}", sys.executable, __file__, "--inner"]
        command += ["--bookings", str(args.bookings), "--engines", str(args.engines)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - made here
        summary = [line for line in out.read_text().splitlines() if line.startswith("summary:")] if out.exists() else []
        if done.returncode or not summary:
            sys.exit(f"the run under valgrind failed:\n{done.stdout}{done.stderr[-3000:]}")
        total = int(summary[0].split()[1])
    if total == 0:
        sys.exit("callgrind counted nothing: this Python has no C function named functools_reduce to toggle on")
    print(f"Python {sys.version.split()[0]}, {args.engines} fresh engines, {args.bookings} uniform bookings")
    print(f"{total:,} instructions, {total // args.bookings:,} a booking")


if __name__ == "__main__":
    main()
