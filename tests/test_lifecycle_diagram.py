"""The lifecycle diagram in the docs is drawn from `TRANSITIONS`, and a drift is caught (STYLE habit 3)."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from slotengine.lifecycle import TRANSITIONS, Action, BookingStatus

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "docs" / "_tools" / "lifecycle_diagram.py"
PAGE = ROOT / "docs" / "explanation" / "lifecycle.md"
ARROW = re.compile(r"^    (\S+) --> (\S+): (.+)$")


def _load_tool():
    spec = importlib.util.spec_from_file_location("lifecycle_diagram", TOOL)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = _load_tool()


def _edges(diagram: str) -> set[tuple[str, str, str]]:
    """Every (from, action, to) the diagram draws."""
    edges = set()
    for line in diagram.splitlines():
        found = ARROW.match(line)
        if found:
            before, after, actions = found.groups()
            edges |= {(before, action, after) for action in actions.split(", ")}
    return edges


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True, check=False, cwd=ROOT)


class TestDiagram:
    def test_the_page_shows_the_tables_diagram(self):
        """The diagram on docs/explanation/lifecycle.md is exactly what the tool draws from TRANSITIONS now."""
        shown = tool.extract(PAGE.read_text(encoding="utf-8"))

        assert tool.render() == shown, "run: python docs/_tools/lifecycle_diagram.py --write docs/explanation/lifecycle.md"

    def test_every_edge_of_the_table_is_drawn_and_nothing_else(self):
        """Each (status, action, status) of the table is one labelled arrow; the diagram adds none."""
        table = {
            ("[*]" if before is None else before.value, action.value, after.value)
            for before, edges in TRANSITIONS.items()
            for action, after in edges.items()
        }

        assert table == _edges(tool.render())

    def test_the_drawing_is_stable(self):
        """Two drawings of one table are the same text."""
        assert tool.render() == tool.render()

    def test_a_changed_table_changes_the_drawing(self):
        """An edge added to a table shows up as an arrow (the drawing follows the table it is given)."""
        changed = {status: dict(edges) for status, edges in TRANSITIONS.items()}
        changed[BookingStatus.COMPLETED][Action.BOOK] = BookingStatus.CONFIRMED

        assert ("completed", "book", "confirmed") in _edges(tool.render(changed))
        assert tool.render(changed) != tool.render()


class TestCommand:
    def test_it_prints_the_diagram(self):
        """Without options the script prints the diagram and exits 0."""
        result = _run()

        assert 0 == result.returncode
        assert tool.render() == result.stdout

    def test_check_passes_on_the_page(self):
        """--check exits 0 on the page as committed."""
        result = _run("--check", str(PAGE))

        assert 0 == result.returncode, result.stderr

    @pytest.mark.parametrize(
        "drift",
        [
            lambda d: d.replace("pre_booking --> expired: expire\n", ""),
            lambda d: d.replace("paid --> completed: complete", "paid --> completed: complete, teleport"),
            lambda d: d + "    completed --> confirmed: reopen\n",
        ],
        ids=["an edge missing", "an action added", "an arrow added"],
    )
    def test_check_fails_when_the_page_drifts(self, tmp_path, drift):
        """--check exits non-zero and shows a diff when the page's diagram differs from the table."""
        page = tmp_path / "lifecycle.md"
        page.write_text(tool.replace(PAGE.read_text(encoding="utf-8"), drift(tool.render())), encoding="utf-8")

        result = _run("--check", str(page))

        assert 1 == result.returncode
        assert "differs from TRANSITIONS" in result.stderr

    def test_check_fails_without_a_diagram(self, tmp_path):
        """--check exits non-zero on a page with no diagram at all."""
        page = tmp_path / "empty.md"
        page.write_text("# Lifecycle\n\nNo picture here.\n", encoding="utf-8")

        result = _run("--check", str(page))

        assert 1 == result.returncode
        assert "no ```mermaid" in result.stderr

    def test_write_redraws_a_drifted_page(self, tmp_path):
        """--write puts the table's diagram back, and --check then passes."""
        page = tmp_path / "lifecycle.md"
        page.write_text(tool.replace(PAGE.read_text(encoding="utf-8"), "stateDiagram-v2\n    old\n"), encoding="utf-8")

        assert 0 == _run("--write", str(page)).returncode
        assert 0 == _run("--check", str(page)).returncode
        assert tool.render() == tool.extract(page.read_text(encoding="utf-8"))
