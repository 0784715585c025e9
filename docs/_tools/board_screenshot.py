# ruff: noqa: INP001 - a script run by path (and loaded by path in tests), not a package
"""
Draw the demo's busiest day as a scheduling board and photograph it with headless Chromium.

The picture in ``docs/board.md`` is this script's output. It runs ``slotengine demo`` on a fresh SQLite file,
opens the tenant that has the most bookings on one local day, renders that day's board at the moment the
demo's simulated clock stops, and asks Chromium (Debian's ``chromium`` package) for a screenshot.

Usage::

    python docs/_tools/board_screenshot.py                     # writes docs/images/board.png
    python docs/_tools/board_screenshot.py --html board.html   # also keeps the page
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from slotengine.adapters.sqlite import SQLiteStorage
from slotengine.authorization import Actor
from slotengine.board import HOUR_HEIGHT, render_board
from slotengine.demo import TENANTS, run_demo
from slotengine.engine import BookingEngine
from slotengine.intervals import Interval
from slotengine.testing.clock import FrozenClock

ROOT = Path(__file__).resolve().parent.parent.parent
OUT = ROOT / "docs" / "images" / "board.png"
PARIS = ZoneInfo("Europe/Paris")
# Where the demo's simulated clock stops (its last step, in the barbershop story).
DEMO_END = datetime(2026, 3, 5, 15, 10, tzinfo=PARIS)
MARCH = Interval(datetime(2026, 3, 1, tzinfo=PARIS), datetime(2026, 4, 1, tzinfo=PARIS))


def busiest_day(storage: SQLiteStorage) -> tuple[str, date, int]:
    """Return the tenant, the local day and the number of bookings of the demo's busiest board."""
    counts: Counter[tuple[str, date]] = Counter()
    for tenant in TENANTS:
        engine = BookingEngine(storage, clock=FrozenClock(DEMO_END), tenant=tenant, default_actor=Actor.system())
        zone = ZoneInfo(engine.business().zone)
        for booking in engine.agenda(MARCH):
            counts[tenant, booking.start.astimezone(zone).date()] += 1
    # Most bookings first; ties go to the earlier day, then the tenant name, so the choice never wavers.
    (tenant, day), count = min(counts.items(), key=lambda item: (-item[1], item[0][1], item[0][0]))
    return tenant, day, count


def demo_board(workdir: Path) -> tuple[str, str, date]:
    """Run the demo in *workdir* and return the busiest day's board, its tenant and its day."""
    database = workdir / "demo.sqlite"
    run_demo(str(database), out=lambda _line: None)
    storage = SQLiteStorage(str(database))
    try:
        tenant, day, _ = busiest_day(storage)
        engine = BookingEngine(storage, clock=FrozenClock(DEMO_END), tenant=tenant, default_actor=Actor.system())
        return render_board(engine, day), tenant, day
    finally:
        storage.close()


def screenshot(page: Path, png: Path, *, width: int = 1280, height: int = 1000) -> None:
    """Photograph *page* with headless Chromium into *png*."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("chromium is not installed (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(  # noqa: S603 - a fixed command line on a file we just wrote
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--screenshot={png}",
                f"--window-size={width},{height}",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )


def main(argv: list[str] | None = None) -> None:
    """Write the screenshot (and the page, if asked)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=OUT, help="where the PNG goes (default: docs/images/board.png)")
    parser.add_argument("--html", type=Path, help="also keep the board's HTML here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        page, tenant, day = demo_board(Path(workdir))
        html = Path(workdir) / "board.html"
        html.write_text(page, encoding="utf-8")
        if args.html is not None:
            args.html.write_text(page, encoding="utf-8")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        # Tall enough for a 12-hour day, its header and the auxiliary list.
        screenshot(html, args.out, height=12 * HOUR_HEIGHT + 180)
    print(f"wrote {args.out} (tenant {tenant!r}, {day})")  # noqa: T201 - a script reports what it did


if __name__ == "__main__":
    main()
