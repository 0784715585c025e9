"""
The ``slotengine`` command.

Today it runs ``slotengine demo``; the full command (business files, slots, book, agenda, report, ...) comes
with the `[cli]` extra. It reads its arguments, picks adapters, calls the library, and prints; nothing else.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from slotengine.errors import SlotEngineError

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from slotengine.demo import run_demo

    if args.db is None:
        folder = Path(tempfile.mkdtemp(prefix="slotengine-demo-"))
        path = folder / "demo.db"
    else:
        path = Path(args.db)
        if path.exists():
            print(f"slotengine: {path} exists; the demo needs a fresh file", file=sys.stderr)
            return 2
    run_demo(str(path))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``slotengine`` command with *argv* (default: the process's arguments); return the exit code."""
    parser = argparse.ArgumentParser(prog="slotengine", description="A booking engine that never double-books.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="tell the whole story on a fresh SQLite file")
    demo.add_argument("--db", help="where to create the SQLite file (default: a new temporary folder)")
    demo.add_argument("--debug", action="store_true", help="show tracebacks")
    demo.set_defaults(run=_demo)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except BrokenPipeError:  # the reader went away (``slotengine demo | head``): not an error
        sys.stderr.close()
        return 0
    except SlotEngineError as error:
        if getattr(args, "debug", False):
            raise
        print(f"slotengine: {error} ({error.code})", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
