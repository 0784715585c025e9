"""Hypothesis strategies for resources, needs, services and customers."""

from __future__ import annotations

from datetime import time, timedelta
from decimal import Decimal

from hypothesis import strategies as st

from slotengine.model import (
    UNLIMITED,
    Customer,
    Need,
    Resource,
    ResourceKind,
    ResourceRole,
    Service,
    ServiceUnit,
)
from slotengine.money import Money

__all__ = ["customers", "money", "needs", "resources", "services"]

_IDS = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=12).filter(str.strip)
_TYPES = st.sampled_from(["room", "box", "dentist", "driver", "car", "seat"])


def money(currencies: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[Money]:
    """Draw valid amounts of money (whole minor units of a real currency)."""
    currency = currencies if currencies is not None else st.sampled_from(["EUR", "USD", "JPY", "KWD", "RUB"])

    @st.composite
    def build(draw: st.DrawFn) -> Money:
        code = draw(currency)
        places = {"JPY": 0, "KWD": 3}.get(code, 2)
        minor = draw(st.integers(0, 10**7))
        return Money(Decimal(minor).scaleb(-places), code)

    return build()


def resources(
    ids: st.SearchStrategy[str] = _IDS, *, schedules: st.SearchStrategy[object] | None = None
) -> st.SearchStrategy[Resource]:
    """Draw resources of every kind, role and capacity (including UNLIMITED)."""
    return st.builds(
        Resource,
        id=ids,
        name=_IDS,
        kind=st.sampled_from(ResourceKind),
        type=_TYPES,
        role=st.sampled_from(ResourceRole),
        capacity=st.one_of(st.integers(1, 20), st.just(UNLIMITED)),
        attributes=st.dictionaries(st.sampled_from(["city", "seats", "vip"]), st.integers(0, 5), max_size=2),
        schedule=schedules if schedules is not None else st.none(),
    )


def needs(resource_ids: st.SearchStrategy[frozenset[str]] | None = None) -> st.SearchStrategy[Need]:
    """Draw needs that name their pool by ids or by type."""
    by_type = st.builds(Need, type=_TYPES, count=st.integers(1, 2), units=st.integers(1, 3))
    ids = resource_ids if resource_ids is not None else st.frozensets(_IDS, min_size=1, max_size=5)

    @st.composite
    def by_ids(draw: st.DrawFn) -> Need:
        pool = draw(ids)
        return Need(resource_ids=pool, count=draw(st.integers(1, len(pool))), units=draw(st.integers(1, 3)))

    return st.one_of(by_type, by_ids())


@st.composite
def services(draw: st.DrawFn, need_strategy: st.SearchStrategy[Need] | None = None) -> Service:
    """Draw valid services measured in minutes, days or nights."""
    unit = draw(st.sampled_from(ServiceUnit))
    pool = need_strategy if need_strategy is not None else needs()
    drawn_needs = tuple(draw(st.lists(pool, min_size=1, max_size=3)))
    if unit is ServiceUnit.MINUTES:
        duration = timedelta(minutes=draw(st.integers(5, 240)))
        step = draw(st.none() | st.integers(5, 120).map(lambda m: timedelta(minutes=m)))
        extra: dict[str, object] = {}
    else:
        duration = timedelta(days=draw(st.integers(1, 7)))
        step = None
        extra = {"check_in": time(15), "check_out": time(11)} if unit is ServiceUnit.NIGHTS else {}
    return Service(
        id=draw(_IDS),
        name=draw(_IDS),
        needs=drawn_needs,
        duration=duration,
        unit=unit,
        slot_step=step,
        buffer_before=timedelta(minutes=draw(st.integers(0, 30))),
        buffer_after=timedelta(minutes=draw(st.integers(0, 30))),
        price=draw(st.none() | money()),
        **extra,
    )


def customers() -> st.SearchStrategy[Customer]:
    """Draw customers with contacts and an optional zone."""
    return st.builds(
        Customer,
        id=_IDS,
        name=_IDS,
        contacts=st.lists(st.emails(), max_size=2),
        zone=st.none() | st.sampled_from(["Europe/Paris", "Asia/Kathmandu", "America/New_York"]),
    )
