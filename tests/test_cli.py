"""The `slotengine` command end to end on a temporary SQLite file, with the real (system) clock."""

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, available_timezones

import click
import pytest
from click.testing import CliRunner
from hypothesis import assume, example, given
from hypothesis import strategies as st

from slotengine import Actor, Assignment, Booking, BookingEngine, BookingStatus, Interval, Resource
from slotengine._command import _day_grid, _days_window, _gap, _instant, _iso_duration, _length, cli
from slotengine._time import days_span, is_nonexistent
from slotengine.adapters.clock import SystemClock
from slotengine.adapters.sqlite import SQLiteStorage
from slotengine.cli import main

EXAMPLES = Path(__file__).parents[1] / "examples"
PARIS = ZoneInfo("Europe/Paris")


def a_weekday_ahead(days=7):
    """A Paris weekday at least *days* ahead, so that the examples' hours are open and refunds are full."""
    day = datetime.now(PARIS).date() + timedelta(days=days)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def invoke(db, *args, answer=None):
    return CliRunner().invoke(cli, ["--db", str(db), *args], input=answer, catch_exceptions=False)


def ok(db, *args, answer=None):
    result = invoke(db, *args, answer=answer)
    assert 0 == result.exit_code, result.output
    return result.output


class TestExamples:
    @pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.stem)
    def test_init_then_slots(self, tmp_path, path):
        """Each shipped example initialises a database, and its first service then offers slots."""
        db = tmp_path / "shop.db"
        first_service = tomllib.loads(path.read_text())["services"][0]["id"]

        out = ok(db, "init", str(path))
        found = json.loads(ok(db, "slots", first_service, "--days", "21", "--limit", "5", "--json"))

        assert "written to" in out
        assert found
        assert {"start", "end", "resource_ids"} == set(found[0])


class TestFlow:
    def test_init_slots_book_confirm_pay_cancel_agenda_report(self, tmp_path):
        """The whole story through the command, and the database holds what the command said."""
        db = tmp_path / "wash.db"
        day = a_weekday_ahead()
        ok(db, "init", str(EXAMPLES / "car-wash.toml"))

        slots = json.loads(ok(db, "slots", "wash", "--date", day.isoformat(), "--json"))
        first = slots[0]["start"]
        held = json.loads(ok(db, "hold", "wash", first, "--customer", "anna", "--json"))
        confirmed = json.loads(ok(db, "confirm", held["id"], "--json"))
        paid = json.loads(ok(db, "pay", held["id"], "25", "--payment-id", "psp-1", "--json"))
        refused = invoke(db, "cancel", held["id"], answer="n\n")
        cancel_out = ok(db, "cancel", held["id"], answer="y\n")
        booked = json.loads(ok(db, "book", "wash", f"{day.isoformat()}T10:00", "--customer", "bob", "--json"))
        grid = ok(db, "agenda", "--date", day.isoformat())
        week = ok(db, "agenda", "--date", day.isoformat(), "--week")
        agenda = json.loads(ok(db, "agenda", "--date", day.isoformat(), "--json"))
        report = json.loads(ok(db, "report", "revenue", "--from", day.isoformat(), "--to", day.isoformat(), "--json"))
        csv = ok(db, "report", "revenue", "--from", day.isoformat(), "--to", day.isoformat(), "--csv")

        assert slots[0]["start"].startswith(f"{day.isoformat()}T08:00")
        assert ("pre_booking", "confirmed", "paid") == (held["status"], confirmed["status"], paid["status"])
        assert 1 == refused.exit_code
        assert "100% refund = 25.00 EUR back" in refused.output
        assert "100% refund = 25.00 EUR back, penalty 0.00 EUR" in cancel_out
        assert "cancelled" in cancel_out
        assert "wash bob (confirmed)" in grid
        assert "10:00 wash bob" in week
        assert [booked["id"]] == [b["id"] for b in agenda]
        total = next(row for row in report if row["dimension"] == "total")
        assert {"EUR": "25.00"} == total["paid"]
        assert {"EUR": "25.00"} == total["refunded"]
        assert csv.startswith("period,grain,dimension,key,bookings")

        storage = SQLiteStorage(db)
        try:
            engine = BookingEngine(storage, clock=SystemClock(), default_actor=Actor.admin("test"))
            anna, bob = engine.get(held["id"]), engine.get(booked["id"])
            history = [t.action.value for t in engine.transitions(held["id"])]
        finally:
            storage.close()
        assert BookingStatus.CANCELLED == anna.status
        assert "25.00 EUR" == str(anna.refunded)
        assert ["hold", "confirm", "pay_full", "cancel", "refund"] == history
        assert BookingStatus.CONFIRMED == bob.status
        assert datetime.combine(day, time(10), PARIS) == bob.start
        assert ("box-1",) == bob.resource_ids

    def test_reschedule_notify_ics_and_board(self, tmp_path, capsys):
        """A booking moves; due messages go to the console; the agenda exports as .ics and draws as a board."""
        db = tmp_path / "barber.db"
        day = a_weekday_ahead()
        ok(db, "init", str(EXAMPLES / "barbershop.toml"))
        booking = json.loads(
            ok(db, "--tz", "Europe/Moscow", "hold", "cut", f"{day}T12:00", "--customer", "mia", "--pin", "ivan", "--json")
        )
        moved = json.loads(ok(db, "--tz", "Europe/Moscow", "reschedule", booking["id"], f"{day}T15:00", "--json"))
        sent = json.loads(invoke(db, "notify", "--json").stdout)
        ics = ok(db, "export-ics", "--from", day.isoformat(), "--days", "1")
        out = tmp_path / "board.html"
        ok(db, "board", "--date", day.isoformat(), "--out", str(out))

        kept = json.loads(ok(db, "prune", "--json"))
        gone = json.loads(ok(db, "prune", "--keep-messages", "0m", "--keep-keys", "0m", "--json"))
        assert {"messages": 0, "keys": 0} == kept  # sent a moment ago: within 90 days
        assert gone["messages"] >= sent["sent"]  # those sent, and those withdrawn when the booking moved
        again = json.loads(ok(db, "prune", "--keep-messages", "0m", "--keep-keys", "0m", "--json"))
        assert {"messages": 0, "keys": 0} == again
        storage = SQLiteStorage(db)
        try:
            left = BookingEngine(storage, clock=SystemClock(), default_actor=Actor.admin("test")).outbox()
        finally:
            storage.close()
        assert all(m.sent_at is None and m.failed_at is None for m in left)  # only pending messages stay
        assert "forgot 0 messages and 0 idempotency keys" in ok(db, "prune")
        capsys.readouterr()
        assert 1 == main(["--db", str(db), "--as", "staff:desk", "prune"])
        assert "staff:desk may not prune" in capsys.readouterr().err

        assert moved["start"] == f"{day}T15:00:00+03:00"
        assert 1 == moved["reschedules"]
        assert sent["sent"] >= 1
        assert "BEGIN:VCALENDAR" in ics
        assert booking["id"] in ics
        assert out.read_text().lstrip().lower().startswith("<!doctype html")
        assert "Ivan" in out.read_text()


class TestErrors:
    def test_a_malformed_business_file_lists_every_problem(self, tmp_path, capsys):
        """A broken file exits 2 and prints every problem with its location; nothing is written."""
        bad = tmp_path / "bad.toml"
        bad.write_text(
            'name = "Broken"\nzone = "Europe/Paris"\n[hours]\nmonday = "18:00-09:00"\n'
            '[[resources]]\nid = "box"\ncapacity = 0\n[[services]]\nid = "wash"\nduration = 30\nneeds = [{ resources = ["box"] }]\n'
        )
        db = tmp_path / "shop.db"

        code = main(["--db", str(db), "init", str(bad)])
        err = capsys.readouterr().err

        assert 2 == code
        assert "3 problems" in err
        assert "hours.monday: 18:00-09:00 ends before it starts" in err
        assert "resources[0].capacity:" in err
        assert "services[0].duration:" in err
        assert "Traceback" not in err
        assert not db.exists()

    @pytest.mark.parametrize("step", ["0m", "1s", "90s", "25h", "1441m"])
    def test_a_grid_row_of_no_whole_minutes_is_refused(self, tmp_path, step):
        """``--step`` takes whole minutes from 1m to 24h: 0m was silently 30m, and 1s printed 86,400 rows."""
        db = tmp_path / "shop.db"
        ok(db, "init", str(EXAMPLES / "car-wash.toml"))

        refused = invoke(db, "agenda", "--step", step)
        quarter = ok(db, "agenda", "--date", a_weekday_ahead().isoformat(), "--step", "15m")

        assert 2 == refused.exit_code
        assert "whole minutes, from 1m to 24h" in refused.output
        assert "08:15" in quarter

    def test_a_refusal_is_one_line_without_traceback(self, tmp_path, capsys):
        """A library error prints one line with its code and exits 1; --debug shows the traceback instead."""
        db = tmp_path / "shop.db"
        ok(db, "init", str(EXAMPLES / "car-wash.toml"))

        code = main(["--db", str(db), "confirm", "no-such-booking"])
        err = capsys.readouterr().err

        assert 1 == code
        assert 1 == len(err.strip().splitlines())
        assert "(not_found)" in err
        with pytest.raises(LookupError):
            main(["--db", str(db), "--debug", "confirm", "no-such-booking"])

    def test_an_unknown_resource_in_the_calendar_export_is_not_found(self, tmp_path, capsys):
        """`export-ics --resource` with an unknown id says so and exits 1 (it wrote an empty calendar)."""
        db = tmp_path / "shop.db"
        ok(db, "init", str(EXAMPLES / "car-wash.toml"))

        code = main(["--db", str(db), "export-ics", "--resource", "nosuch"])

        assert (1, True) == (code, "no resource 'nosuch'" in capsys.readouterr().err)

    def test_an_unknown_resource_on_the_agenda_is_not_found(self, tmp_path, capsys):
        """`agenda --resource` with an unknown id says so and exits 1 (it printed an empty grid)."""
        db = tmp_path / "shop.db"
        ok(db, "init", str(EXAMPLES / "car-wash.toml"))

        code = main(["--db", str(db), "agenda", "--resource", "nosuch"])

        assert (1, True) == (code, "no resource 'nosuch'" in capsys.readouterr().err)

    @pytest.mark.parametrize(
        "args",
        [
            ["frobnicate"],
            ["slots"],
            ["--tz", "Mars/Olympus", "slots", "wash"],
            ["slots", "wash", "--date", "tuesday"],
            ["slots", "wash", "--date", "9999-12-31"],
            ["agenda", "--date", "9999-12-31", "--week"],
            ["export-ics", "--from", "9999-12-30"],
            ["board", "--date", "9999-12-31"],
            ["report", "revenue", "--from", "9999-12-30", "--to", "9999-12-31"],
            ["report", "utilization", "--by", "source"],
        ],
    )
    def test_usage_errors_exit_2(self, tmp_path, capsys, args):
        """Bad commands and arguments print one line and exit 2."""
        db = tmp_path / "shop.db"
        ok(db, "init", str(EXAMPLES / "car-wash.toml"))

        code = main(["--db", str(db), *args])
        err = capsys.readouterr().err

        assert 2 == code
        assert 1 == len(err.strip().splitlines()), err

    def test_a_missing_database_is_not_created(self, tmp_path, capsys):
        """Read commands never create an empty database file by accident."""
        db = tmp_path / "nothing.db"

        assert 2 == main(["--db", str(db), "slots", "wash"])
        assert "init" in capsys.readouterr().err
        assert not db.exists()

    def test_conflict_in_the_real_script(self, tmp_path):
        """The installed `slotengine` script prints a conflict as one line on stderr and exits 1."""
        script = shutil.which("slotengine") or pytest.fail("the slotengine script is not installed")
        db = tmp_path / "flat.db"
        day = a_weekday_ahead()
        env = {**os.environ, "SLOTENGINE_DB": str(db)}

        def run(*args):
            return subprocess.run([script, *args], capture_output=True, text=True, env=env, timeout=60, check=False)

        init = run("init", str(EXAMPLES / "apartment.toml"))
        first = run("book", "stay", day.isoformat(), "--customer", "greta", "--pin", "apt-3")
        second = run("book", "stay", day.isoformat(), "--customer", "hans", "--pin", "apt-3")

        assert 0 == init.returncode, init.stderr
        assert 0 == first.returncode, first.stderr
        assert f"stay {day} 15:00-{day + timedelta(days=1)} 11:00" in first.stdout  # the next day's date shown
        assert 1 == second.returncode
        assert 1 == len(second.stderr.strip().splitlines())
        assert "(conflict)" in second.stderr


class TestWithoutClick:
    def test_demo_still_runs_and_other_commands_say_what_to_install(self, tmp_path):
        """With click missing, `demo` runs through argparse and other commands print a one-line install hint."""
        block = "import sys; sys.modules['click'] = None; from slotengine.cli import main; raise SystemExit(main(sys.argv[1:]))"

        other = subprocess.run([sys.executable, "-c", block, "slots", "wash"], capture_output=True, text=True, timeout=60, check=False)
        demo = subprocess.run(
            [sys.executable, "-c", block, "demo", "--db", str(tmp_path / "demo.db")], capture_output=True, text=True, timeout=120, check=False
        )

        assert 2 == other.returncode
        assert "slotengine[cli]" in other.stderr
        assert 0 == demo.returncode, demo.stderr
        assert "Agenda for March" in demo.stdout

    def test_global_options_before_demo_work_as_with_click(self, tmp_path):
        """``slotengine --db FILE demo`` keeps its file as the full command does (it printed the install hint)."""
        block = "import sys; sys.modules['click'] = None; from slotengine.cli import main; raise SystemExit(main(sys.argv[1:]))"

        def run(*args):
            return subprocess.run([sys.executable, "-c", block, *args], capture_output=True, text=True, timeout=120, check=False)

        kept = run("--db", str(tmp_path / "kept.db"), "--tenant", "x", "demo")
        postgres = run("--db", "postgresql://nobody@127.0.0.1/none", "demo")
        a_tenant_named_demo = run("--tenant", "demo", "slots", "wash")

        assert 0 == kept.returncode, kept.stderr
        assert (tmp_path / "kept.db").exists()
        assert 2 == postgres.returncode
        assert "fresh SQLite file" in postgres.stderr
        assert 2 == a_tenant_named_demo.returncode
        assert "slotengine[cli]" in a_tenant_named_demo.stderr



class TestWithoutIcal:
    def test_export_ics_says_what_to_install(self, tmp_path):
        """Without icalendar, export-ics prints one line saying to install slotengine[ical] (it printed a traceback)."""
        db = tmp_path / "shop.db"
        ok(db, "init", str(EXAMPLES / "car-wash.toml"))
        block = "import sys; sys.modules['icalendar'] = None; from slotengine.cli import main; raise SystemExit(main(sys.argv[1:]))"

        done = subprocess.run(
            [sys.executable, "-c", block, "--db", str(db), "export-ics"], capture_output=True, text=True, timeout=60, check=False
        )

        assert 2 == done.returncode
        assert ["slotengine[cli,ical]" in line for line in done.stderr.strip().splitlines()] == [True]


class TestDemoFile:
    def test_the_global_db_is_where_the_demo_writes(self, tmp_path, capsys):
        """`slotengine --db FILE demo` writes FILE (it went to a temporary folder); a PostgreSQL URL is refused."""
        db = tmp_path / "story.db"

        assert 0 == main(["--db", str(db), "demo"])
        assert db.exists()
        assert 2 == main(["--db", "postgresql://nowhere/test", "demo"])
        assert "fresh SQLite file" in capsys.readouterr().err


class TestInfo:
    def test_durations_read_as_a_business_file_writes_them(self, tmp_path):
        """`info` prints a nightly stay as 1d and a wash as 30m, not as `1 day, 0:00:00` and `0:30:00`."""
        flat, wash = tmp_path / "flat.db", tmp_path / "wash.db"
        ok(flat, "init", str(EXAMPLES / "apartment.toml"))
        ok(wash, "init", str(EXAMPLES / "car-wash.toml"))

        flat_info, wash_info = ok(flat, "info"), ok(wash, "info")

        assert " 1d " in flat_info
        assert " 30m " in wash_info
        assert "day," not in flat_info
        assert "0:30:00" not in wash_info

    def test_json_shows_a_free_service_free_and_durations_in_iso_8601(self, tmp_path):
        """`info --json` gives a price of 0 as "0.00 EUR" (not null, which means no price) and durations as P1D, PT45S."""
        business = tmp_path / "free.toml"
        business.write_text(
            'name = "Free clinic"\nzone = "Europe/Paris"\ncurrency = "EUR"\n[hours]\nevery_day = "00:00-24:00"\n'
            '[[resources]]\nid = "room"\ntype = "room"\n'
            '[[services]]\nid = "checkup"\nduration = "1d"\nunit = "days"\nprice = "0"\nneeds = ["room"]\n'
            '[[services]]\nid = "paid"\nduration = "45s"\nprice = "10 EUR"\nneeds = ["room"]\n'
            '[[services]]\nid = "talk"\nduration = "1h30m"\nneeds = ["room"]\n'
        )
        db = tmp_path / "free.db"
        ok(db, "init", str(business))

        services = {s["id"]: s for s in json.loads(ok(db, "info", "--json"))["services"]}

        assert {"checkup": ("P1D", "0.00 EUR"), "paid": ("PT45S", "10.00 EUR"), "talk": ("PT1H30M", None)} == {
            k: (v["duration"], v["price"]) for k, v in services.items()
        }

    @given(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3000)))
    def test_iso_durations_read_back_exactly(self, duration):
        """Every duration written as ISO 8601 (days of 24 hours) reads back as the same timedelta."""
        text = _iso_duration(duration)
        match = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?", text)

        assert match is not None
        assert text not in {"P", "PT"}
        days, hours, minutes, seconds = (match.group(i) or "0" for i in range(1, 5))
        whole, _, fraction = seconds.partition(".")
        read = timedelta(
            days=int(days), hours=int(hours), minutes=int(minutes), seconds=int(whole),
            microseconds=int(fraction.ljust(6, "0")) if fraction else 0,
        )
        assert duration == read

    @pytest.mark.parametrize(
        ("minutes", "expected"), [(0, "0m"), (30, "30m"), (90, "1h30m"), (24 * 60, "1d"), (26 * 60 + 5, "1d2h5m")]
    )
    def test_length(self, minutes, expected):
        """A duration is written in the business file's units: d, h, m (and s)."""
        assert expected == _length(timedelta(minutes=minutes))


class TestEmptyReport:
    def test_a_report_with_no_rows_says_so(self, tmp_path):
        """A month without payments prints a sentence, not an empty table with no columns."""
        db = tmp_path / "shop.db"
        ok(db, "init", str(EXAMPLES / "car-wash.toml"))
        day = a_weekday_ahead(40)

        out = ok(db, "report", "revenue", "--from", day.isoformat(), "--to", day.isoformat())

        assert f"nothing to report: no revenue figures from {day} to {day}" in out


@pytest.mark.parametrize(
    ("db", "shown"),
    [
        ("postgresql://ann:s3cr3t@db.example:5432/shop", "postgresql://ann:***@db.example:5432/shop"),
        ("postgres://ann:p%40ss@db/shop?sslmode=require", "postgres://ann:***@db/shop?sslmode=require"),
        ("postgresql://ann@db/shop?password=s3cr3t&sslmode=require", "postgresql://ann@db/shop?password=***&sslmode=require"),
        ("postgresql://ann:pa#ss@db/shop", "postgresql://ann:***@db/shop"),
        ("postgresql://ann:pa?s/s@db/shop", "postgresql://ann:***@db/shop"),
        ("postgresql://ann@db/shop?sslpassword=key&password=x", "postgresql://ann@db/shop?sslpassword=***&password=***"),
        ("postgresql://ann:pw@[::1/shop", "postgresql://ann:***@[::1/shop"),
        ("postgresql://db/shop", "postgresql://db/shop"),
        ("shop.db", "shop.db"),
    ],
)
def test_a_database_url_is_printed_without_its_password(db, shown):
    """What the command prints about the database never shows a password (`init` printed the whole URL)."""
    from slotengine._command import _App

    assert shown == _App(db, "default", None, "admin:cli", "slotengine", debug=False).shown_db


POSTGRES_DSN = os.environ.get("SLOTENGINE_TEST_POSTGRES_DSN")


@pytest.mark.skipif(not POSTGRES_DSN, reason="set SLOTENGINE_TEST_POSTGRES_DSN=postgresql://... to run the PostgreSQL tests")
class TestOnPostgres:
    def test_the_same_commands_on_postgresql(self, tmp_path):
        """`--db postgresql://...` runs init, slots, hold, confirm and agenda on a throwaway schema."""
        import uuid

        import psycopg
        from psycopg import sql

        from slotengine.adapters.postgres import PostgresStorage

        schema = f"cli_{uuid.uuid4().hex[:12]}"
        day = a_weekday_ahead()

        def run(*args):
            result = CliRunner().invoke(cli, ["--db", POSTGRES_DSN, "--schema", schema, *args], catch_exceptions=False)
            assert 0 == result.exit_code, result.output
            return result.output

        try:
            run("init", str(EXAMPLES / "car-wash.toml"))
            first = json.loads(run("slots", "wash", "--date", day.isoformat(), "--limit", "1", "--json"))[0]["start"]
            held = json.loads(run("hold", "wash", first, "--customer", "anna", "--json"))
            run("confirm", held["id"])
            agenda = json.loads(run("agenda", "--date", day.isoformat(), "--json"))

            storage = PostgresStorage(POSTGRES_DSN, schema=schema)
            try:
                stored = BookingEngine(storage, clock=SystemClock(), default_actor=Actor.admin("test")).get(held["id"])
            finally:
                storage.close()
            assert [held["id"]] == [b["id"] for b in agenda]
            assert (BookingStatus.CONFIRMED, datetime.fromisoformat(first)) == (stored.status, stored.start)
        finally:
            with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


# --- DST: typed times and the day grid (docs/time.md) ----------------------------------------------------------

NIGHT_DESK = """
name = "Night desk"
zone = "Europe/Paris"
currency = "EUR"
[hours]
every_day = "00:00-24:00"
[[resources]]
id = "desk"
type = "desk"
[[services]]
id = "slot"
name = "Half hour"
duration = "30m"
needs = [{ type = "desk" }]
"""
# Zones whose clocks change at odd hours or by odd amounts, besides every zone with summer time that year.
ODD_ZONES = [
    "Africa/Casablanca", "America/Havana", "America/Nuuk", "America/Santiago", "America/Sao_Paulo", "America/St_Johns",
    "Antarctica/Troll", "Asia/Beirut", "Asia/Gaza", "Atlantic/Azores", "Australia/Lord_Howe", "Europe/Dublin",
    "Europe/Moscow", "Pacific/Apia", "Pacific/Chatham",
]


@functools.cache
def clock_changes(key, year):
    """Every change of *key*'s UTC offset in *year*: (the instant, the offset before, the offset after)."""
    zone, found = ZoneInfo(key), []
    at = datetime(year, 1, 1, tzinfo=UTC)
    while at.year == year:
        low, high = at, at + timedelta(hours=6)
        before, after = low.astimezone(zone).utcoffset(), high.astimezone(zone).utcoffset()
        if before != after:
            first, last = int(low.timestamp()), int(high.timestamp())  # clocks change on a whole second
            while last - first > 1:
                middle = (first + last) // 2
                first, last = (first, middle) if datetime.fromtimestamp(middle, zone).utcoffset() == after else (middle, last)
            found.append((datetime.fromtimestamp(last, UTC), before, after))
        at += timedelta(hours=6)
    return found


@functools.cache
def zones_that_change(year):
    """The zones with summer time in *year* (their offset differs in January and July), and the odd ones."""
    keys = available_timezones()
    summer = {k for k in keys if datetime(year, 1, 1, tzinfo=ZoneInfo(k)).utcoffset() != datetime(year, 7, 1, tzinfo=ZoneInfo(k)).utcoffset()}
    return sorted(summer | set(ODD_ZONES))


@st.composite
def changes(draw, kind=None):
    """A zone and one change of its clocks: a gap (they jump forward), a fold (they go back), or either."""
    year = draw(st.integers(1971, 2060))
    key = draw(st.sampled_from(zones_that_change(year)))
    found = [(at, before, after) for at, before, after in clock_changes(key, year) if kind is None or (after > before) == (kind == "gap")]
    assume(found)
    return (ZoneInfo(key), *draw(st.sampled_from(found)))


def next_paris_change(kind):
    """The local date of the next spring-forward ("gap") or fall-back ("fold") night in Paris, a week ahead at least."""
    today = datetime.now(PARIS).date() + timedelta(days=7)
    for year in (today.year, today.year + 1):
        for at, before, after in clock_changes("Europe/Paris", year):
            if (after > before) == (kind == "gap") and at.date() > today:
                return at.astimezone(PARIS).date()
    raise AssertionError("no change of Paris clocks next year")


class TestTypedTimes:
    @pytest.mark.parametrize("command", ["book", "hold", "reschedule"])
    def test_a_time_the_clocks_skip_or_pass_twice_is_refused(self, tmp_path, capsys, command):
        """A typed start in a DST gap or fold is refused, saying what exists and how to pick a pass (it was guessed)."""
        (tmp_path / "night.toml").write_text(NIGHT_DESK)
        db = tmp_path / "night.db"
        ok(db, "init", str(tmp_path / "night.toml"))
        gap, fold = next_paris_change("gap"), next_paris_change("fold")
        booked = json.loads(ok(db, "book", "slot", f"{gap}T09:00", "--customer", "ann", "--json"))

        def attempt(start):
            if command == "reschedule":
                return main(["--db", str(db), "reschedule", booked["id"], start])
            return main(["--db", str(db), command, "slot", start, "--customer", "bob"])

        skipped, skipped_err = attempt(f"{gap} 02:30"), capsys.readouterr().err
        twice, twice_err = attempt(f"{fold} 02:30"), capsys.readouterr().err
        agenda = [json.loads(ok(db, "agenda", "--date", str(day), "--json")) for day in (gap, fold)]

        assert (2, 2) == (skipped, twice)
        assert f"{gap} 02:30 does not exist in Europe/Paris: the clocks jump from 02:00 to 03:00" in skipped_err
        assert f"{fold} 02:30 happens twice in Europe/Paris" in twice_err
        assert f"{fold}T02:30+02:00 for the first time (CEST) or {fold}T02:30+01:00 for the second (CET)" in twice_err
        assert [[(booked["id"], booked["start"])], []] == [[(b["id"], b["start"]) for b in day] for day in agenda]

    def test_an_offset_says_which_pass_through_a_fold(self, tmp_path):
        """The offsets the refusal suggests book the first or the second 02:30 of a fall-back night."""
        (tmp_path / "night.toml").write_text(NIGHT_DESK)
        db = tmp_path / "night.db"
        ok(db, "init", str(tmp_path / "night.toml"))
        fold = next_paris_change("fold")

        first = json.loads(ok(db, "book", "slot", f"{fold}T02:30+02:00", "--customer", "ann", "--json"))
        second = json.loads(ok(db, "book", "slot", f"{fold} 02:30+01:00", "--customer", "bob", "--json"))

        assert (f"{fold}T02:30:00+02:00", f"{fold}T02:30:00+01:00") == (first["start"], second["start"])

    @given(changes("gap"), st.data())
    def test_a_refused_gap_is_named_exactly(self, change, data):
        """In any zone, a typed time in a gap is refused, naming the wall times the clocks jump between."""
        zone, at, before, after = change
        wall = (at + before).replace(tzinfo=None) + timedelta(seconds=data.draw(st.integers(0, (after - before) // timedelta(seconds=1) - 1)))

        with pytest.raises(click.BadParameter) as refused:
            _instant(wall.isoformat(sep=" "), zone)
        start, end = _gap(wall, zone)

        assert (at + before).replace(tzinfo=None) == start
        assert (at + after).replace(tzinfo=None) == end
        assert (True, False, False) == (is_nonexistent(start, zone), is_nonexistent(end, zone), is_nonexistent(start - timedelta(seconds=1), zone))
        assert "does not exist" in refused.value.format_message()

    @given(changes("fold"), st.data())
    def test_a_refused_fold_offers_both_passes(self, change, data):
        """In any zone, a typed time in a fold is refused with its two passes, each typed with an offset, which are accepted."""
        zone, at, before, after = change
        wall = (at + after).replace(tzinfo=None) + timedelta(seconds=data.draw(st.integers(0, (before - after) // timedelta(seconds=1) - 1)))

        with pytest.raises(click.BadParameter) as refused:
            _instant(wall.isoformat(sep=" "), zone)
        offered = re.findall(r"\d{4}-\d\d-\d\dT[\d:.]+[+-][\d:]+", refused.value.format_message())
        passes = [_instant(text, zone) for text in offered]

        assert 2 == len(passes)
        assert passes[0] < passes[1]
        assert [wall, wall] == [p.astimezone(zone).replace(tzinfo=None) for p in passes]


def grid(bookings, day, zone):
    """The day grid's row labels and, per row, what the desk's cell says."""
    table = _day_grid(bookings, [Resource("desk", "Desk")], _days_window(day, 1, zone), zone, timedelta(minutes=30))
    return list(table.columns[0]._cells), list(table.columns[1]._cells)


def a_booking(start, minutes=45):
    return Booking("b1", "slot", start, start + timedelta(minutes=minutes), (Assignment(0, "desk", ("desk",)),), (1,),
                   BookingStatus.CONFIRMED, start - timedelta(days=1), customer_id="ann")


def wall_clock_rows(day, zone):
    """Every instant of *day* whose wall clock shows 08:00, 08:30, ... 19:30, found minute by minute, and its label."""
    start, end = _days_window(day, 1, zone).start, _days_window(day, 1, zone).end
    # From the day's first whole minute on its clock: an offset with seconds (Monrovia's -0:44:30 until 1972)
    # starts a day after a gap at :30, and whole UTC minutes from there never show a whole minute.
    start += timedelta(seconds=(60 - start.astimezone(zone).second) % 60)
    instants = [start + timedelta(minutes=m) for m in range(int((end - start) / timedelta(minutes=1)))]
    rows = [t for t in instants if (w := t.astimezone(zone)).second == 0 and w.minute % 30 == 0 and 8 <= w.hour < 20]
    walls = [f"{t.astimezone(zone):%H:%M}" for t in rows]
    return rows, [w if walls.count(w) == 1 else f"{w} {t.astimezone(zone):%Z}" for w, t in zip(walls, rows, strict=True)]


class TestDayGrid:
    @given(changes(), st.integers(-1, 1))
    @example(  # the day before Samoa's jump over 30 December 2011 is that skipped day: no rows to check
        (ZoneInfo("Pacific/Apia"), datetime(2011, 12, 30, 10, tzinfo=UTC), timedelta(hours=-10), timedelta(hours=14)),
        -1,
    )
    @example(
        (ZoneInfo("Africa/Monrovia"), datetime(1972, 1, 7, 0, 44, 30, tzinfo=UTC), -timedelta(minutes=44, seconds=30), timedelta(0)),
        0,
    )
    def test_rows_follow_the_wall_clock(self, change, shift):
        """On a day the clocks change, and the days either side, the rows are the wall times 08:00-19:30 that exist."""
        zone, at, _, _ = change
        day = at.astimezone(zone).date() + timedelta(days=shift)
        assume(date(1970, 1, 2) <= day)
        start, end = days_span(day, 1, zone)
        assume(start < end)  # not a day the zone skipped (Samoa, 30 December 2011): the agenda refuses those

        labels, _ = grid([], day, zone)

        assert wall_clock_rows(day, zone)[1] == labels

    @given(changes(), st.data())
    def test_a_booking_is_named_in_the_row_of_its_start(self, change, data):
        """A booking that starts on a row of a DST day is named there, and nowhere else (one was hidden on 25 October)."""
        zone, at, _, _ = change
        day = at.astimezone(zone).date()
        rows, expected = wall_clock_rows(day, zone)
        assume(rows)
        index = data.draw(st.integers(0, len(rows) - 1))

        labels, cells = grid([a_booking(rows[index])], day, zone)

        assert expected == labels[: len(expected)]
        assert [index] == [i for i, cell in enumerate(cells) if "ann" in cell]

    def test_a_day_the_zone_skipped_is_refused_in_one_line(self, tmp_path, capsys):
        """`agenda --tz Pacific/Apia --date 2011-12-30`: that day does not exist (it raised an empty interval)."""
        db = tmp_path / "shop.db"
        ok(db, "init", str(EXAMPLES / "car-wash.toml"))

        code = main(["--db", str(db), "--tz", "Pacific/Apia", "agenda", "--date", "2011-12-30"])

        assert 2 == code
        assert "2011-12-30 does not exist in Pacific/Apia" in capsys.readouterr().err

    def test_the_fall_back_day_shows_the_evening(self):
        """On 25 October 2026 in Paris the rows run to 19:30 and show a 19:00 booking (they stopped at 18:30)."""
        day = date(2026, 10, 25)

        labels, cells = grid([a_booking(datetime(2026, 10, 25, 19, tzinfo=PARIS))], day, PARIS)

        assert ("08:00", "19:30", 24) == (labels[0], labels[-1], len(labels))
        assert "slot ann (confirmed)" in cells[labels.index("19:00")]


class TestTextFromOutsideIsText:
    """Names, ids and sources are printed as written: never read as rich markup (a `[/b]` crashed the grids)."""

    SHOP = """
name = "Wash [/] & co"
currency = "EUR"
zone = "Europe/Paris"
[hours]
monday = "00:00-24:00"
tuesday = "00:00-24:00"
wednesday = "00:00-24:00"
thursday = "00:00-24:00"
friday = "00:00-24:00"
saturday = "00:00-24:00"
sunday = "00:00-24:00"
[[resources]]
id = "box"
name = "Box [/b]"
capacity = "unlimited"
[[services]]
id = "s"
name = "Wash [bold]"
duration = "30m"
price = "10"
needs = [{ resources = ["box"] }]
[[services]]
id = "f"
name = "Free look"
duration = "30m"
price = "0"
needs = [{ resources = ["box"] }]
"""

    def test_agenda_info_and_report_print_markup_as_text(self, tmp_path):
        """A customer `[/bold]`, a source `[/b]`, a resource `Box [/b]`: shown as written, no traceback."""
        shop = tmp_path / "shop.toml"
        shop.write_text(self.SHOP)
        db = tmp_path / "shop.db"
        day = a_weekday_ahead()
        ok(db, "init", str(shop))
        ok(db, "hold", "s", f"{day}T11:00", "--customer", "[/bold]")
        booked = ok(db, "book", "s", f"{day}T10:00", "--customer", "[link=https://evil.example]anna[/link]",
                    "--source", "[/b]", "--json")  # fmt: skip
        ok(db, "pay", json.loads(booked)["id"])

        grid = ok(db, "agenda", "--date", day.isoformat())
        week = ok(db, "agenda", "--date", day.isoformat(), "--week")
        info = ok(db, "info")
        report = ok(db, "report", "revenue", "--from", day.isoformat(), "--to", day.isoformat(), "--by", "source")

        assert "[/bold]" in grid
        assert "[link=https://evil.example]anna[/link]" in week
        assert "Box [/b]" in info
        assert "Wash [/] & co" in info
        assert "unlimited" in info  # not _Unlimited.UNLIMITED
        assert "0.00 EUR" in info  # a free service shows its price, as --json does
        assert "[/b]" in report


class TestRefusalsOnTheLine:
    def test_a_wall_time_far_out_of_range_is_refused_in_one_line(self, tmp_path, capsys):
        """Year 1 in a zone is out of range (it raised OverflowError from the DST check)."""
        db = tmp_path / "shop.db"
        ok(db, "init", str(EXAMPLES / "car-wash.toml"))

        code = main(["--db", str(db), "book", "wash", "0001-01-01T00:00"])
        err = capsys.readouterr().err

        assert 1 == code
        assert "(out_of_range)" in err
        assert "Traceback" not in err

    def test_init_refused_to_a_customer_makes_no_file(self, tmp_path, capsys):
        """A refused setup leaves no database behind (an empty one was created before the refusal)."""
        db = tmp_path / "c.db"

        code = main(["--db", str(db), "--as", "customer:anna", "init", str(EXAMPLES / "car-wash.toml")])

        assert 1 == code
        assert "may not setup" in capsys.readouterr().err
        assert not db.exists()

    def test_a_file_with_a_byte_order_mark_loads(self, tmp_path):
        """Windows editors write UTF-8 with a BOM: it is read as the same file."""
        bom = tmp_path / "bom.toml"
        bom.write_bytes(b"\xef\xbb\xbf" + (EXAMPLES / "car-wash.toml").read_bytes())

        assert "ok (" in ok(tmp_path / "x.db", "init", "--check", str(bom))

    def test_a_notification_problem_is_named_at_its_own_key(self, tmp_path, capsys):
        """A bad placeholder in the subject is reported at `subject`; a long `after` at `after`, in days."""
        shop = tmp_path / "shop.toml"
        shop.write_text(
            (EXAMPLES / "car-wash.toml").read_text()
            + '\n[[notifications]]\nid = "a"\non = ["created"]\nsubject = "Hi $servce"\nbody = "ok"\n'
            + '\n[[notifications]]\nid = "b"\nafter = "400d"\nsubject = "Hi"\nbody = "ok"\n'
        )

        code = main(["--db", str(tmp_path / "x.db"), "init", "--check", str(shop)])
        err = capsys.readouterr().err

        assert 2 == code
        assert "notifications[0].subject: unknown placeholder(s) $servce" in err
        assert "notifications[1].after: offset must be" in err
        assert "got 400 days" in err


def next_fall_back(after: date) -> date:
    """The next last Sunday of October (Paris's clocks go back) after *after*."""
    year = after.year
    while True:
        last = date(year, 10, 31)
        sunday = last - timedelta(days=(last.weekday() + 1) % 7)
        if sunday > after:
            return sunday
        year += 1


class TestTheRightDayAndPass:
    def test_a_repeated_wall_time_says_which_pass(self, tmp_path):
        """On the night the clocks go back, 02:00-03:00 is shown twice: each with its zone's abbreviation."""
        shop = tmp_path / "shop.toml"
        shop.write_text(TestTextFromOutsideIsText.SHOP)
        db = tmp_path / "shop.db"
        day = next_fall_back(datetime.now(PARIS).date() + timedelta(days=1))
        ok(db, "init", str(shop))

        slots = ok(db, "slots", "s", "--date", day.isoformat(), "--limit", "8")
        booked = ok(db, "book", "s", f"{day}T02:30+02:00")

        assert f"{day} 02:00 CEST" in slots
        assert f"{day} 02:00 CET" in slots
        assert f"{day} 02:30 CEST-02:00 CET" in booked

    def test_a_date_alone_is_the_check_in_where_the_stay_is_whatever_tz(self, tmp_path):
        """`--tz America/New_York book stay D` is the 15:00 Paris check-in of D (it asked for 15:00 New York)."""
        db = tmp_path / "flat.db"
        day = a_weekday_ahead(30)
        ok(db, "init", str(EXAMPLES / "apartment.toml"))

        stay = json.loads(ok(db, "--tz", "America/New_York", "book", "stay", day.isoformat(), "--json"))

        start = datetime.fromisoformat(stay["start"]).astimezone(PARIS)
        assert (day, time(15)) == (start.date(), start.time())  # the example's check_in = "15:00", in Paris

    def test_a_date_alone_for_a_service_by_the_minute_asks_for_a_time(self, tmp_path, capsys):
        """`book wash D` booked D at 00:00; it asks for the time instead, and books nothing."""
        db = tmp_path / "shop.db"
        day = a_weekday_ahead()
        ok(db, "init", str(EXAMPLES / "car-wash.toml"))

        code = main(["--db", str(db), "book", "wash", day.isoformat()])

        assert 2 == code
        assert f"give one, such as {day}T09:00" in capsys.readouterr().err
        assert [] == json.loads(ok(db, "agenda", "--date", day.isoformat(), "--json"))



def lapsed_holds(db, tenant, count):
    """*count* holds on *tenant*'s wash next week, made by a clock a day behind: every one has lapsed by now."""
    from slotengine.testing.clock import FrozenClock

    storage = SQLiteStorage(db)
    try:
        engine = BookingEngine(
            storage, clock=FrozenClock(datetime.now(UTC) - timedelta(days=1)), tenant=tenant, default_actor=Actor.admin("t")
        )
        day = datetime.combine(a_weekday_ahead(), time(0), PARIS)
        for _ in range(count):
            first = engine.find_slots("wash", Interval(day, day + timedelta(days=1)))[0]
            engine.hold("wash", first.start, customer_id="anna")
    finally:
        storage.close()


def worker_lines(result):
    return [json.loads(line) for line in result.stdout.splitlines()]


class TestWorker:
    def test_one_pass_serves_every_business_named(self, tmp_path):
        """--once sweeps each business's lapsed holds and sends its messages, one JSON line per business."""
        db = tmp_path / "two.db"
        ok(db, "--tenant", "north", "init", str(EXAMPLES / "car-wash.toml"))
        ok(db, "--tenant", "south", "init", str(EXAMPLES / "car-wash.toml"))
        lapsed_holds(db, "north", 3)
        lapsed_holds(db, "south", 2)

        first = invoke(db, "worker", "--once", "--tenant", "north", "--tenant", "south", "--json")
        second = invoke(db, "worker", "--once", "--tenant", "north", "--tenant", "south", "--json")

        assert 0 == first.exit_code == second.exit_code, first.output
        lines = worker_lines(first)
        assert ["north", "south"] == [line["tenant"] for line in lines]
        assert [3, 2] == [line["expired"] for line in lines]
        assert [6, 4] == [line["sent"] for line in lines]  # a hold event and an expiry event each
        printed = first.stderr.splitlines()  # the console notifier's lines, beside the JSON, each naming its business
        assert 6 * ["tenant=north"] + 4 * ["tenant=south"] == [line.split()[0] for line in printed]
        assert [0, 0] == [line["expired"] + line["sent"] for line in worker_lines(second)]
        storage = SQLiteStorage(db)
        try:
            for tenant in ("north", "south"):
                engine = BookingEngine(storage, clock=SystemClock(), tenant=tenant, default_actor=Actor.admin("t"))
                assert {BookingStatus.EXPIRED} == {b.status for b in engine.list()}
                assert [] == [m for m in engine.outbox() if m.sent_at is None and m.failed_at is None]
        finally:
            storage.close()

    def test_passes_repeat_and_prune_once_a_period(self, tmp_path):
        """--passes N runs N passes, a period apart; pruning runs on the first pass only within --prune-every."""
        db = tmp_path / "wash.db"
        ok(db, "init", str(EXAMPLES / "car-wash.toml"))
        lapsed_holds(db, "default", 1)

        out = ok(db, "worker", "--passes", "2", "--every", "1s")

        lines = [line for line in out.splitlines() if line.startswith("pass ")]
        assert ["pass 1 default: expired 1", "pass 2 default: expired 0"] == [line.split(",")[0] for line in lines]
        assert "pruned messages 0, pruned keys 0" in lines[0]
        assert "pruned" not in lines[1]

    @pytest.mark.parametrize("url", ["http://[::1/hook", "http://hooks.example:TOPSECRET/x", "http://u:TOPSECRET@h/x"])
    def test_a_malformed_webhook_url_is_a_usage_error(self, tmp_path, monkeypatch, url):
        """A webhook URL that cannot be posted to is refused at start as --webhook's fault, quoting no secret."""
        db = tmp_path / "wash.db"
        ok(db, "init", str(EXAMPLES / "car-wash.toml"))
        monkeypatch.setenv("SLOTENGINE_WEBHOOK_SECRET", "s3cret")

        result = invoke(db, "worker", "--once", "--webhook", url)

        assert 2 == result.exit_code
        assert "--webhook" in result.output
        assert "TOPSECRET" not in result.output

    def test_a_webhook_secret_that_is_not_utf8_is_its_bytes(self, tmp_path, monkeypatch):
        """$SLOTENGINE_WEBHOOK_SECRET is used as the bytes it holds, UTF-8 or not (it was a traceback)."""
        db = tmp_path / "wash.db"
        ok(db, "init", str(EXAMPLES / "car-wash.toml"))
        monkeypatch.setenv("SLOTENGINE_WEBHOOK_SECRET", os.fsdecode(b"s\xffcret"))

        ok(db, "worker", "--once", "--webhook", "http://127.0.0.1:9/hook")

    def test_refusals(self, tmp_path, capsys):
        """An unknown business or a bad period is refused before any work; a pass a customer may not run fails."""
        db = tmp_path / "wash.db"
        ok(db, "init", str(EXAMPLES / "car-wash.toml"))
        lapsed_holds(db, "default", 1)

        unknown = invoke(db, "worker", "--once", "--tenant", "nope")
        fast = invoke(db, "worker", "--once", "--every", "0s")
        no_secret = invoke(db, "worker", "--once", "--webhook", "https://example.invalid/hook")
        capsys.readouterr()
        denied = main(["--db", str(db), "--as", "customer:anna", "worker", "--once"])
        err = capsys.readouterr().err
        no_pruning = main(["--db", str(db), "--as", "manager:desk", "worker", "--once"])
        manager = capsys.readouterr().err

        assert 2 == unknown.exit_code
        assert "no business 'nope'" in unknown.output
        assert 2 == fast.exit_code
        assert "1s or more" in fast.output
        assert 2 == no_secret.exit_code
        assert "SLOTENGINE_WEBHOOK_SECRET" in no_secret.output
        assert 2 == denied  # refused at start, before a pass does half its work
        assert "customer:anna may not" in err
        assert 2 == no_pruning  # a manager may sweep and send, not prune: said before the jobs ran, not after
        assert "may not prune" in manager
        assert "--no-prune" in manager
        storage = SQLiteStorage(db)
        try:
            engine = BookingEngine(storage, clock=SystemClock(), default_actor=Actor.admin("t"))
            assert {BookingStatus.PRE_BOOKING} == {b.status for b in engine.list()}  # nothing swept
        finally:
            storage.close()

    def test_a_manager_runs_the_jobs_without_pruning(self, tmp_path):
        """--no-prune asks no prune right: a manager's worker sweeps and sends."""
        db = tmp_path / "wash.db"
        ok(db, "init", str(EXAMPLES / "car-wash.toml"))
        lapsed_holds(db, "default", 1)

        out = ok(db, "--as", "manager:desk", "worker", "--once", "--no-prune")

        assert "pass 1 default: expired 1, offers 0, sent 2, retried 0, failed 0, withdrawn 0" in out
        assert "pruned" not in out

    def test_a_running_worker_stops_at_sigterm(self, tmp_path):
        """Until stopped it prints only passes that did something, and SIGTERM ends it cleanly (exit 0)."""
        import signal

        db = tmp_path / "wash.db"
        ok(db, "init", str(EXAMPLES / "car-wash.toml"))
        lapsed_holds(db, "default", 2)
        code = "import sys; from slotengine.cli import main; sys.exit(main(sys.argv[1:]))"
        worker = subprocess.Popen(
            [sys.executable, "-c", code, "--db", str(db), "worker", "--every", "1s", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            first = json.loads(worker.stdout.readline())  # the first pass did something
            worker.send_signal(signal.SIGTERM)
            out, _ = worker.communicate(timeout=30)
        finally:
            worker.kill()

        assert 0 == worker.returncode
        assert (1, 2, 4) == (first["pass"], first["expired"], first["sent"])
        assert "" == out  # later passes found nothing: no line
