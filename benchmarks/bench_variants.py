"""
Schema variants of the PostgreSQL booking write, replayed in turns against the bare INSERT (server only).

Run it with ``python benchmarks/bench_variants.py benchmarks/variants.json`` (about 2 minutes for the file's
eight variants at 1 round; ``--rounds 4`` as in benchmarks/README's fifteenth round). PostgreSQL comes from
``SLOTENGINE_BENCH_POSTGRES_DSN`` as for bench_throughput.py, and pgbench must be on PATH.

The engine's requests for bench_throughput's uniform load are recorded once (nothing written). Every variant
gets its own schema, made by `PostgresStorage` and then changed by the variant's SQL: a statement runs before
the recorded requests are loaded into the schema's ``bench_requests``, or after it when it starts with
``POST `` (to change the requests themselves). Then, round after round, every variant's requests are replayed
by pgbench (``--clients`` clients, ``--seconds`` per cell, from empty tables), in turn order reversed every
other round, and a bare INSERT of the same slots after each round. Printed: per cell rows/s and the server's
CPU per call, and at the end each variant's median rows/s, its ratio to the bare INSERT's median, and the
double bookings the independent check found (must be 0 for any variant that keeps the guarantees).

A variant file is a JSON object: variant name to a list of SQL statements; ``"base": []`` is the untouched
schema. On this shared machine two runs of one schema a quarter of an hour apart differ by up to ten points
of ratio: compare variants within one run, and distrust any difference smaller than that.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

import bench_throughput as bt


def record(requests: int) -> list[str]:
    """The engine's `slotengine_reserve` requests for *requests* uniform-load bookings (nothing is written)."""
    schema = f"slotengine_variants_rec_{uuid.uuid4().hex[:8]}"
    storage = bt.PostgresStorage(bt.DSN, schema=schema, max_size=1)
    try:
        return bt.record_requests(storage, requests)
    finally:
        storage.close()
        with psycopg.connect(bt.DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def make(name: str, statements: list[str], recorded: list[str]) -> str:
    """A schema for variant *name*: slotengine's, changed by *statements*, with the requests loaded; its name."""
    schema = f"slotengine_variants_{uuid.uuid4().hex[:8]}"
    storage = bt.PostgresStorage(bt.DSN, schema=schema, max_size=1)
    try:
        bt.setup_tenant(storage, "replay", "uniform")
    finally:
        storage.close()
    with psycopg.connect(bt.DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        for statement in statements:
            if not statement.startswith("POST "):
                conn.execute(statement.encode())
        bt.load_requests(conn, recorded)
        for statement in statements:
            if statement.startswith("POST "):
                conn.execute(statement.removeprefix("POST ").encode())
                conn.execute("ANALYZE bench_requests")
    print(f"variant {name}: schema {schema}", flush=True)
    return schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("variants", type=Path, help="a JSON file: variant name -> list of SQL statements")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of every variant in turn (default 1)")
    parser.add_argument("--clients", type=int, default=16, help="pgbench clients (default 16)")
    parser.add_argument("--seconds", type=float, default=4, help="seconds per cell (default 4)")
    parser.add_argument("--requests", type=int, default=40_000, help="requests recorded (default 40,000)")
    args = parser.parse_args()
    variants: dict[str, list[str]] = json.loads(args.variants.read_text())
    if not bt.pg_available() or shutil.which("pgbench") is None:
        sys.exit(f"needs PostgreSQL at {bt.DSN} and pgbench on PATH")
    recorded = record(args.requests)
    schemas: dict[str, str] = {}
    results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in variants}
    bare: list[tuple[float, float]] = []
    try:
        for name, statements in variants.items():
            schemas[name] = make(name, statements, recorded)
        with tempfile.TemporaryDirectory(prefix="slotengine-bench-") as tmp:
            for turn in range(args.rounds):
                order = list(variants) if turn % 2 == 0 else list(reversed(variants))
                for name in order:
                    rows, _calls, srv, double = bt._replay(
                        "pgbench", schemas[name], Path(tmp), "slotengine", args.clients, args.seconds
                    )
                    results[name].append((rows, srv, double))
                    print(f"round {turn + 1} {name:16s} {rows:7,.0f} rows/s  srv {srv:.2f} ms  double {double}")
                rows, _calls, srv, _double = bt._replay(
                    "pgbench", schemas[order[0]], Path(tmp), "bare INSERT", args.clients, args.seconds
                )
                bare.append((rows, srv))
                print(f"round {turn + 1} {'bare INSERT':16s} {rows:7,.0f} rows/s  srv {srv:.2f} ms", flush=True)
    finally:
        with psycopg.connect(bt.DSN, autocommit=True) as conn:
            for schema in schemas.values():
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    raw = statistics.median(r for r, _ in bare)
    print(f"\n{args.clients} clients, {args.rounds} rounds of {args.seconds:g} s, medians:")
    for name, cells in results.items():
        rows = statistics.median(r for r, _, _ in cells)
        srv = statistics.median(s for _, s, _ in cells)
        double = sum(d for _, _, d in cells)
        print(f"{name:16s} {rows:7,.0f} rows/s  srv {srv:.2f} ms  {100 * rows / raw:3.0f} % of bare  double {double}")
    print(f"{'bare INSERT':16s} {raw:7,.0f} rows/s  srv {statistics.median(s for _, s in bare):.2f} ms")


if __name__ == "__main__":
    main()
