"""The public door: `slotengine.__all__` is sorted, complete and documented, and importing is cheap."""

import subprocess
import sys

import slotengine

OPTIONAL = {"psycopg", "psycopg_pool", "click", "rich", "icalendar", "apprise", "typer", "jinja2", "babel"}


class TestAll:
    def test_sorted(self):
        """__all__ is sorted (constants, then classes, then functions, as ruff's RUF022 keeps it)."""

        def kind(name):
            return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

        assert sorted(slotengine.__all__, key=kind) == slotengine.__all__

    def test_every_name_resolves_and_is_documented(self):
        """Every public class, function and module exists and has a docstring (constants are documented in place)."""
        for name in slotengine.__all__:
            obj = getattr(slotengine, name)
            if name.isupper():
                continue

            assert obj.__doc__, name

    def test_version(self):
        """The package knows its version."""
        assert slotengine.__version__


class TestImport:
    def test_no_optional_extras_are_imported(self):
        """`import slotengine` pulls in no optional extra, no adapter, and no hypothesis."""
        code = "import slotengine, sys; print(sorted(m for m in sys.modules))"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        modules = {m.split(".")[0] for m in eval(out)}  # noqa: S307

        assert set() == modules & (OPTIONAL | {"hypothesis", "sqlite3"})
        assert not [m for m in eval(out) if m.startswith(("slotengine.adapters", "slotengine.testing"))]  # noqa: S307
