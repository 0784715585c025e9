"""
The ``slotengine`` command.

With the ``[cli]`` extra (click and rich) it is the full command: ``init`` a database from a business file,
``slots``, ``book``, ``hold``, ``confirm``, ``pay``, ``cancel``, ``reschedule``, ``agenda``, ``report``,
``notify``, ``prune``, ``worker``, ``export-ics``, ``board`` and ``demo`` (see ``docs/cli.md``). Without the extra only
``slotengine demo`` works, through argparse, and the other commands say what to install.

Errors are printed as one line on standard error, never as a traceback (unless ``--debug``): exit code 2 for
a bad business file or bad usage, 1 for a refusal by the library (a conflict, a policy, a missing booking).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from slotengine.errors import BusinessFileError, SlotEngineError

__all__ = ["demo_at", "main"]

_HINT = (
    "install slotengine[cli] for the full command (in a clone of slotengine: pip install -e '.[cli]'); "
    "without it only 'demo' works"
)


def demo_at(db: str | None) -> int:
    """Run the demo on a fresh SQLite file at *db* (a new temporary folder when None); return the exit code."""
    from slotengine.demo import run_demo

    if db is None:
        _demo_in_a_temporary_folder()
        return 0
    path = Path(db)
    if path.exists():
        print(f"slotengine: {path} exists; the demo needs a fresh file", file=sys.stderr)
        return 2
    run_demo(str(path))
    return 0


def _demo_in_a_temporary_folder() -> None:
    """
    Run the demo on a file in a new temporary folder, and delete the folder when the demo has finished.

    If the demo fails, the folder is kept and its path printed on standard error, so that the file can be
    examined. A reader that goes away (``slotengine demo | head``) or Ctrl-C is not a failure: the folder goes.
    """
    from slotengine.demo import run_demo

    folder = Path(tempfile.mkdtemp(prefix="slotengine-demo-"))
    path = folder / "demo.db"
    try:
        run_demo(str(path), temporary=True)
    except (BrokenPipeError, KeyboardInterrupt):
        shutil.rmtree(folder, ignore_errors=True)
        raise
    except Exception:
        print(f"slotengine: the demo stopped before its end; its file is kept for a look: {path}", file=sys.stderr)
        raise
    try:
        shutil.rmtree(folder)
    except OSError as error:
        print(f"slotengine: could not delete the demo's temporary folder {folder}: {error}", file=sys.stderr)


def _fallback(argv: Sequence[str] | None) -> int:
    """``slotengine demo`` without click: argparse (with the full command's global options), a hint for the rest."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="slotengine", description="A booking engine that never double-books.")
    parser.add_argument("--db", default=os.environ.get("SLOTENGINE_DB"), help="where to create the SQLite file")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    for unused in ("--tenant", "--tz", "--as", "--schema"):  # the full command's; the demo makes its own
        parser.add_argument(unused, help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="tell the whole story on a fresh SQLite file")
    demo.add_argument("--db", dest="demo_db", help="where to create the SQLite file (default: a new temporary folder)")
    demo.add_argument("--debug", dest="demo_debug", action="store_true", help="show tracebacks")
    if _command_of(args_list) != "demo":
        print(f"slotengine: {_HINT}", file=sys.stderr)
        return 2
    args = parser.parse_args(args_list)
    db, debug = args.demo_db or args.db, args.debug or args.demo_debug
    if db is not None and str(db).startswith(("postgresql://", "postgres://")):
        print("slotengine: the demo runs on a fresh SQLite file; give a file name with --db", file=sys.stderr)
        return 2
    try:
        return demo_at(db)
    except SlotEngineError as error:
        if debug:
            raise
        print(f"slotengine: {error} ({error.code})", file=sys.stderr)
        return 1


def _command_of(args: Sequence[str]) -> str | None:
    """The first word of *args* that is neither a global option nor its value: the command asked for."""
    words = iter(args)
    for word in words:
        if word in {"--db", "--tenant", "--tz", "--as", "--schema"}:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def _debugging(argv: Sequence[str]) -> bool:
    return "--debug" in argv or os.environ.get("SLOTENGINE_DEBUG", "") not in {"", "0", "false"}


def main(argv: Sequence[str] | None = None) -> int:  # noqa: PLR0911 - one exit per kind of failure
    """Run the ``slotengine`` command with *argv* (default: the process's arguments); return the exit code."""
    try:
        import click

        from slotengine._command import run
    except ImportError:
        return _fallback(argv)
    args = list(sys.argv[1:] if argv is None else argv)
    debug = _debugging(args)
    try:
        return run(args)
    except click.exceptions.Abort:
        print("slotengine: aborted; nothing was changed", file=sys.stderr)
        return 1
    except click.ClickException as error:
        if debug:
            raise
        where = ""
        if isinstance(error, click.UsageError) and error.ctx is not None:
            where = f" (see '{error.ctx.command_path} --help')"
        print(f"slotengine: {error.format_message()}{where}", file=sys.stderr)
        return error.exit_code
    except BrokenPipeError:  # the reader went away (``slotengine demo | head``): not an error
        sys.stderr.close()
        return 0
    except BusinessFileError as error:
        if debug:
            raise
        print(f"slotengine: {error}", file=sys.stderr)
        return 2
    except SlotEngineError as error:
        if debug:
            raise
        print(f"slotengine: {error} ({error.code})", file=sys.stderr)
        return 1
    except OSError as error:
        if debug:
            raise
        print(f"slotengine: {error.strerror or error}: {error.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
