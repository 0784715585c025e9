"""`slotengine demo` tells the whole story on a fresh SQLite file, and leaves the database consistent."""

import subprocess
import sys

from slotengine.adapters.sqlite import SQLiteStorage
from slotengine.cli import main
from slotengine.lifecycle import BookingStatus
from slotengine.ports import BookingQuery


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
