# ruff: noqa: INP001 - a script run by path (and loaded by path in tests), not a package
"""
Draw the booking lifecycle as a Mermaid state diagram, from `slotengine.lifecycle.TRANSITIONS` and nothing else.

STYLE habit 3: the picture must not drift from the table. So the diagram in
``docs/explanation/lifecycle.md`` is this script's output, and ``--check`` tells whether it still is.

Usage::

    python docs/_tools/lifecycle_diagram.py                    # print the diagram
    python docs/_tools/lifecycle_diagram.py --check PAGE.md    # exit 1 if PAGE's diagram differs
    python docs/_tools/lifecycle_diagram.py --write PAGE.md    # replace PAGE's diagram with a fresh one

How the table becomes a picture: the start state ``[*]`` stands for "no booking yet" (the table's ``None``);
every status is a state named by its value; every (from, to) pair of the table is one arrow, labelled with
all the actions that take it, in the table's order. Arrows from a status to itself are the actions that keep
the status (a payment that is not yet full, a refund, a reschedule, a check-in, a fee).
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from slotengine.lifecycle import TRANSITIONS, Action, BookingStatus

__all__ = ["BLOCK", "extract", "main", "render", "replace"]

BLOCK = re.compile(r"^```mermaid\n(stateDiagram-v2\n.*?)^```", re.DOTALL | re.MULTILINE)
"""The diagram block of a page: the first ```mermaid fence whose first line is ``stateDiagram-v2``."""

_START = "[*]"


def _state(status: BookingStatus | None) -> str:
    return _START if status is None else status.value


def render(table: Mapping[BookingStatus | None, Mapping[Action, BookingStatus]] = TRANSITIONS) -> str:
    """
    Return the Mermaid ``stateDiagram-v2`` text for *table* (the lifecycle's by default), ending in a newline.

    The output depends only on the table and its order, so it is the same on every run.
    """
    lines = ["stateDiagram-v2", "    direction LR"]
    for before, edges in table.items():
        targets: dict[BookingStatus, list[str]] = {}
        for action, after in edges.items():
            targets.setdefault(after, []).append(action.value)
        lines.extend(
            f"    {_state(before)} --> {_state(after)}: {', '.join(actions)}" for after, actions in targets.items()
        )
    return "\n".join(lines) + "\n"


def extract(page: str) -> str | None:
    """Return the diagram block of *page* (without its fences), or None if it has none."""
    found = BLOCK.search(page)
    return None if found is None else found.group(1)


def replace(page: str, diagram: str) -> str:
    """
    Return *page* with its diagram block replaced by *diagram*.

    Raises:
        ValueError: the page has no diagram block to replace.
    """
    found = BLOCK.search(page)
    if found is None:
        msg = "the page has no ```mermaid block starting with stateDiagram-v2"
        raise ValueError(msg)
    return page[: found.start(1)] + diagram + page[found.end(1) :]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the script; return 0 when all is well, 1 when the page's diagram differs or is missing."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", metavar="PAGE", type=Path, help="exit 1 if PAGE's diagram differs from the table")
    mode.add_argument("--write", metavar="PAGE", type=Path, help="replace PAGE's diagram with the table's")
    args = parser.parse_args(argv)
    diagram = render()
    if args.check is None and args.write is None:
        sys.stdout.write(diagram)
        return 0
    page_path: Path = args.check or args.write
    page = page_path.read_text(encoding="utf-8")
    if args.write is not None:
        page_path.write_text(replace(page, diagram), encoding="utf-8")
        return 0
    shown = extract(page)
    if shown is None:
        sys.stderr.write(f"{page_path}: no ```mermaid stateDiagram-v2 block found\n")
        return 1
    if shown != diagram:
        diff = difflib.unified_diff(
            shown.splitlines(keepends=True),
            diagram.splitlines(keepends=True),
            f"{page_path} (on the page)",
            "TRANSITIONS (the table)",
        )
        sys.stderr.write("".join(diff))
        sys.stderr.write(f"{page_path}: the diagram differs from TRANSITIONS; run with --write to redraw it\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
