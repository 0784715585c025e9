"""Every ```python example in README.md and docs/ runs, in order, one namespace per file."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_examples_run(page, tmp_path, monkeypatch):
    """The page's examples run as written (their asserts are the expected output)."""
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs:{page.name}"}
    blocks = BLOCK.findall(page.read_text(encoding="utf-8"))

    for number, code in enumerate(blocks, 1):
        exec(compile(code, f"{page.name}[{number}]", "exec"), namespace)  # noqa: S102
