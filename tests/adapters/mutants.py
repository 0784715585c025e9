"""Mutants of `MemoryStorage` for the kit's tests: transactions with some methods replaced, or hidden."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from slotengine.adapters.memory import MemoryStorage


class _Wrapped:
    """A transaction with some methods replaced (``None`` hides one)."""

    def __init__(self, inner: Any, overrides: dict[str, Callable[..., object] | None]) -> None:
        self._inner = inner
        self._overrides = overrides

    def __getattr__(self, name: str) -> Any:
        if name in self._overrides:
            override = self._overrides[name]
            if override is None:
                raise AttributeError(name)
            return lambda *args, **kwargs: override(self._inner, *args, **kwargs)
        return getattr(self._inner, name)


def mutant(**overrides: Callable[..., object] | None) -> Callable[[], MemoryStorage]:
    """A factory of MemoryStorages whose transactions have the given methods replaced."""

    class Mutant(MemoryStorage):
        @contextmanager
        def transaction(self, tenant: str) -> Iterator[Any]:  # type: ignore[override]
            with super().transaction(tenant) as tx:
                yield _Wrapped(tx, overrides)

    return Mutant
