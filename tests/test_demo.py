"""`slotengine demo` tells the whole story on a fresh SQLite file, and leaves the database consistent."""

import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from slotengine import cli, demo
from slotengine.adapters.sqlite import SQLiteStorage
from slotengine.cli import main
from slotengine.errors import InvalidInputError
from slotengine.lifecycle import BookingStatus
from slotengine.ports import BookingQuery

README = Path(__file__).resolve().parent.parent / "README.md"


class TestDemo:
    def test_prints_the_story(self, tmp_path, capsys):
        """The demo runs every step and prints refusals with reasons, quotes, expiry, no-show and the agenda."""
        db = tmp_path / "demo.db"

        assert 0 == main(["demo", "--db", str(db)])
        out = capsys.readouterr().out
        for expected in (
            "free slots on Tuesday morning",
            "Chloé is refused (conflict)",
            "held: box-2 is held by",
            "quote: 50% back = 12.50 EUR",
            "09:00 bookable again: True",
            "sweep marked 1 hold(s) expired",
            "no_show, no-show fee owed 12.50 EUR",
            "payment before confirmation refused (policy_violation)",
            "Friday (staff training): 0 slots",
            "43 hours elapsed",
            "a fifth is refused (conflict)",
            "Please confirm your visit",
            "agent:front-desk by task: Unconfirmed booking in 3 hours",
            "See you soon at Figaro barbers",
            "We are waiting for you",
            "Agenda for March",
        ):
            assert expected in out

    def test_the_story_is_the_same_every_time(self, tmp_path, capsys):
        """As the README says: the clock is simulated and the ids counted, so two runs print the same story."""
        stories = []
        for name in ("one", "two"):
            db = tmp_path / name / "demo.db"
            db.parent.mkdir()
            main(["demo", "--db", str(db)])
            stories.append(capsys.readouterr().out.replace(str(db), "<db>"))

        assert stories[0] == stories[1]
        assert "wash-0001" in stories[0]  # the ids the story names are the counted ones

    def test_database_afterwards(self, tmp_path, capsys):
        """The file holds each business as its own tenant, with the statuses the story ended in."""
        db = tmp_path / "demo.db"
        main(["demo", "--db", str(db)])
        capsys.readouterr()
        storage = SQLiteStorage(db)
        try:
            with storage.transaction("wash") as tx:
                statuses = sorted(b.status.value for b in tx.find_bookings(BookingQuery()))
            with storage.transaction("congress") as tx:
                seats = tx.find_bookings(BookingQuery(resource_id="room-12", statuses=frozenset({BookingStatus.CONFIRMED})))
        finally:
            storage.close()

        assert ["cancelled", "expired", "no_show"] == statuses
        assert 4 == len(seats)

    def test_refuses_an_existing_file(self, tmp_path, capsys):
        """The demo never writes into an existing file."""
        db = tmp_path / "demo.db"
        db.write_text("keep me")

        assert 2 == main(["demo", "--db", str(db)])
        assert "keep me" == db.read_text()

    def test_console_script(self):
        """The installed `slotengine` command runs the demo from a fresh temporary folder."""
        done = subprocess.run(
            [sys.executable, "-m", "slotengine.cli", "demo"], capture_output=True, text=True, timeout=120, check=False
        )

        assert 0 == done.returncode, done.stderr
        assert "Agenda for March" in done.stdout


class TestBusinessesAndTenants:
    def test_the_count_is_the_number_of_businesses(self, tmp_path, capsys):
        """The first line, `demo --help` and the README count the businesses the demo builds, one per tenant."""
        word = demo._count(len(demo.TENANTS))

        main(["demo", "--db", str(tmp_path / "demo.db")])
        first = capsys.readouterr().out.splitlines()[0]
        main(["demo", "--help"])
        helped = capsys.readouterr().out

        assert f"demo: {word} businesses in" in first
        assert f"({word} businesses," in helped
        assert f"It builds {word} businesses" in README.read_text(encoding="utf-8")

    def test_the_readme_names_every_tenant(self):
        """The README lists the tenant ids that the demo's file holds."""
        readme = README.read_text(encoding="utf-8")

        assert [] == [tenant for tenant in demo.TENANTS if f"`{tenant}`" not in readme]

    def test_a_kept_file_ends_with_its_tenants_and_a_command_that_opens_it(self, tmp_path, capsys):
        """The demo lists its tenant ids and prints a command that works on the kept file (a bare one lacked --tenant)."""
        db = tmp_path / "keep.db"
        main(["demo", "--db", str(db)])
        out = capsys.readouterr().out
        suggested = out.splitlines()[-1].split("slotengine ", 1)[1]

        assert 0 == main(shlex.split(suggested))
        grid = capsys.readouterr().out
        assert "Great hall" in grid
        assert all(f"talk speaker-{n}" in grid for n in range(5))  # the day grid showed one of five overlapping talks
        for tenant in demo.TENANTS:
            assert f"{tenant} (" in out
        assert f"--db {db} --tenant congress" in suggested


class TestTemporaryFile:
    def test_without_db_nothing_is_left_behind(self, tmp_path, monkeypatch, capsys):
        """Without --db the demo's temporary folder is deleted at the end, and the output says so."""
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

        assert 0 == main(["demo"])
        out = capsys.readouterr().out

        assert [] == list(tmp_path.iterdir())
        assert "a temporary SQLite file, deleted at the end" in out.splitlines()[0]
        assert "slotengine demo --db demo.db" in out.splitlines()[-1]

    def test_without_click_nothing_is_left_behind_either(self, tmp_path, monkeypatch, capsys):
        """The argparse fallback (no [cli] extra) deletes the temporary folder too; it used to leave it."""
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

        assert 0 == cli._fallback(["demo"])

        assert "a temporary SQLite file, deleted at the end" in capsys.readouterr().out.splitlines()[0]
        assert [] == list(tmp_path.iterdir())

    def test_a_demo_that_fails_keeps_its_file_and_says_where(self, tmp_path, monkeypatch, capsys):
        """A failure in the middle keeps the temporary file for a look and prints its path, then the error."""
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

        def broken(*args: object) -> None:
            raise InvalidInputError("the congress centre burnt down")

        monkeypatch.setattr(demo, "_congress_story", broken)

        assert 1 == main(["demo"])
        err = capsys.readouterr().err
        [kept] = tmp_path.glob("slotengine-demo-*/demo.db")

        assert f"its file is kept for a look: {kept}" in err
        assert "the congress centre burnt down" in err
