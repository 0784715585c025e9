"""The documentation site builds with Sphinx, warnings as errors, and its API reference names every public name."""

import re
import subprocess
import sys
from pathlib import Path

import slotengine

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


class TestDocsBuild:
    def test_sphinx_builds_without_warnings(self, tmp_path):
        """`sphinx -W --keep-going -b html docs` succeeds: no broken reference, no duplicate, no stray page."""
        command = [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            str(DOCS),
            str(tmp_path / "html"),
        ]

        result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False, cwd=ROOT)

        warnings = "\n".join(line for line in result.stderr.splitlines() if line.strip())
        assert 0 == result.returncode, f"the docs build failed ({' '.join(command[2:])}):\n{warnings}"
        assert (tmp_path / "html" / "index.html").is_file()
        assert (tmp_path / "html" / "_images" / "board.png").is_file()

    def test_the_api_reference_lists_every_public_name(self):
        """Each name in `slotengine.__all__` appears in the reference's table of the package's names."""
        page = (DOCS / "api" / "index.md").read_text(encoding="utf-8")
        listed = set(re.findall(r"\{py:(?:obj|mod)\}`(?:slotengine\.)?(\w+) <", page))

        assert set(slotengine.__all__) == listed

    def test_every_api_page_is_in_the_reference_toctree(self):
        """Every page under docs/api is reachable from the reference's table of contents."""
        index = (DOCS / "api" / "index.md").read_text(encoding="utf-8")
        toctree = index.split("```{toctree}", 1)[1].split("```", 1)[0].split()

        pages = {p.stem for p in (DOCS / "api").glob("*.md")} - {"index"}
        assert pages == set(toctree) - {":maxdepth:", "1"}
