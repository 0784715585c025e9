"""
Money: an exact `Decimal` amount in one ISO 4217 currency.

Amounts are always quantized to the currency's minor unit (2 decimals for EUR, 0 for JPY, 3 for KWD), so two
equal amounts are equal values. Floats are refused outright (``0.1 + 0.2 != 0.3``), and so is any amount more
precise than its currency: slotengine never rounds what a person typed. Only results that need rounding (a
percentage of a price, a split) are rounded, half to even ("banker's rounding"), and the methods that do it
say so.
"""

from __future__ import annotations

from decimal import (
    MAX_EMAX,
    MAX_PREC,
    MIN_EMIN,
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    InvalidOperation,
    Overflow,
    localcontext,
)
from typing import Final

import attrs

from slotengine._checks import shown
from slotengine.errors import CurrencyMismatchError, InvalidMoneyError

__all__ = ["CURRENCY_MINOR_UNITS", "MAX_AMOUNT", "Money"]

_TWO_DECIMALS = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN BZD CAD CDF "
    "CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ "
    "GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK "
    "MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB "
    "SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD "
    "USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG ZWL"
)

CURRENCY_MINOR_UNITS: Final[dict[str, int]] = {
    **dict.fromkeys(_TWO_DECIMALS.split(), 2),
    **dict.fromkeys("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
    **dict.fromkeys("CLF UYW".split(), 4),
}
"""ISO 4217 currency codes and the number of decimals of their minor unit."""


MAX_AMOUNT: Final = Decimal(10) ** 18
"""Every amount is below this in absolute value, so that every adapter stores it exactly."""

_EXACT: Final = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[InvalidOperation, Overflow])
"""Every computation on amounts is exact in this context, whatever the caller's (products are sized first)."""


def _check_currency(value: object) -> str:
    if not isinstance(value, str) or value not in CURRENCY_MINOR_UNITS:
        msg = f"unknown currency {value!r}: use an ISO 4217 code in capitals such as 'EUR', 'USD' or 'JPY'"
        raise InvalidMoneyError(msg, currency=value)
    return value


def _to_decimal(value: object, currency: str) -> Decimal:
    with localcontext(_EXACT):
        return _to_exact_decimal(value, currency)


def _to_exact_decimal(value: object, currency: str) -> Decimal:
    if isinstance(value, bool):
        msg = f"a money amount is a number (a Decimal, an int or a string such as '12.50'), not the bool {value!r}"
        raise InvalidMoneyError(msg, amount=value)
    if isinstance(value, float):
        msg = (
            f"money amounts must be exact: pass Decimal({str(value)!r}) or the string {str(value)!r}, "
            f"not the float {value!r}"
        )
        raise InvalidMoneyError(msg, amount=value)
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int | str):
        try:
            amount = Decimal(value.strip() if isinstance(value, str) else value)
        except InvalidOperation:
            msg = f"{shown(value, short=True)} is not an amount of money"
            raise InvalidMoneyError(msg, amount=value) from None
    else:
        msg = f"money amounts must be Decimal, int or str, not {type(value).__name__}"
        raise InvalidMoneyError(msg, amount=value)
    if not amount.is_finite():
        msg = f"{shown(value, short=True)} is not a finite amount of money"
        raise InvalidMoneyError(msg, amount=value)
    if amount.copy_abs() >= MAX_AMOUNT:
        msg = f"{shown(value, short=True)} {currency} is too large: amounts of money stay below 10^18 in absolute value"
        raise InvalidMoneyError(msg, amount=value, currency=currency)
    places = CURRENCY_MINOR_UNITS[currency]
    quantum = Decimal(1).scaleb(-places)
    quantized = amount.quantize(quantum, rounding=ROUND_HALF_EVEN)
    if not quantized:
        quantized = quantized.copy_abs()  # no "-0.00 EUR"
    if quantized != amount:
        msg = (
            f"{amount} {currency} has more decimals than {currency} allows ({places}); "
            "round it yourself so that nobody's money is rounded silently"
        )
        raise InvalidMoneyError(msg, amount=value, currency=currency)
    return quantized


@attrs.frozen(repr=False, init=False)
class Money:
    """
    An exact amount in one currency, such as ``Money("49.90", "EUR")``.

    Money adds and subtracts only with money of the same currency, multiplies by whole or decimal factors
    (rounding half to even), and compares only within a currency.

    Raises:
        InvalidMoneyError: the amount is a float, NaN, infinite, not a number, 10^18 or more in absolute
            value (`MAX_AMOUNT`), or more precise than the currency's minor unit; or the currency is not an
            ISO 4217 code.
    """

    amount: Decimal
    currency: str

    def __init__(self, amount: Decimal | int | str, currency: str) -> None:
        code = _check_currency(currency)
        self.__attrs_init__(_to_decimal(amount, code), code)

    @classmethod
    def zero(cls, currency: str) -> Money:
        """Return nothing, in *currency*."""
        return cls(0, currency)

    def __repr__(self) -> str:
        return f"Money('{self.amount}', '{self.currency}')"

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"

    def _same(self, other: object, verb: str) -> Money:
        if not isinstance(other, Money):
            msg = f"cannot {verb} Money and {type(other).__name__}"
            raise InvalidMoneyError(msg)
        if other.currency != self.currency:
            msg = f"cannot {verb} {self} and {other}: currencies differ and slotengine never converts them"
            raise CurrencyMismatchError(msg, currencies=(self.currency, other.currency))
        return other

    def __add__(self, other: Money) -> Money:
        with localcontext(_EXACT):
            return Money(self.amount + self._same(other, "add").amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        with localcontext(_EXACT):
            return Money(self.amount - self._same(other, "subtract").amount, self.currency)

    def __neg__(self) -> Money:
        return Money(self.amount.copy_negate(), self.currency)

    def __mul__(self, factor: Decimal | int) -> Money:
        if isinstance(factor, bool) or not isinstance(factor, Decimal | int):
            given = f"{type(factor).__name__} {shown(factor, short=True)}"
            msg = f"money can be multiplied by an int or a Decimal, not {given}"
            raise InvalidMoneyError(msg)
        if isinstance(factor, Decimal) and not factor.is_finite():
            msg = f"money can be multiplied by a finite factor only, not {shown(factor, short=True)}"
            raise InvalidMoneyError(msg)
        return self._times(Decimal(factor), 0, f"{self} × {shown(factor, short=True)}")

    __rmul__ = __mul__

    def percent(self, percent: Decimal | int) -> Money:
        """Return *percent* % of this amount, rounded half to even to the currency's minor unit."""
        if isinstance(percent, bool) or not isinstance(percent, Decimal | int):
            msg = f"a percentage must be an int or a Decimal, not {type(percent).__name__} {shown(percent, short=True)}"
            raise InvalidMoneyError(msg)
        if isinstance(percent, Decimal) and not percent.is_finite():
            msg = f"a percentage must be finite, not {shown(percent, short=True)}"
            raise InvalidMoneyError(msg)
        return self._times(Decimal(percent), -2, f"{shown(percent, short=True)} % of {self}")

    def scaled(self, numerator: int, denominator: int) -> Money:
        """
        Return this amount × *numerator* / *denominator*, exactly, rounded once half to even.

        A price for 75 of 180 minutes: 13.50 EUR → 5.625 → 5.62 EUR (a decimal share, 0.41666…7, rounds twice
        and gives 5.63).
        """
        for name, value in (("numerator", numerator), ("denominator", denominator)):
            if isinstance(value, bool) or not isinstance(value, int):
                msg = f"money is scaled by whole numbers, not {name} {type(value).__name__} {shown(value, short=True)}"
                raise InvalidMoneyError(msg)
        if denominator <= 0:
            msg = f"money is scaled by a positive denominator, not {shown(denominator, short=True)}"
            raise InvalidMoneyError(msg)
        places = CURRENCY_MINOR_UNITS[self.currency]
        with localcontext(_EXACT):  # not the caller's context: a precision of 6 would round 123456.78
            minor = int(self.amount.scaleb(places))  # exact: amounts are quantized to the minor unit
            quotient, rest = divmod(minor * numerator, denominator)  # floor division, rest >= 0
            if 2 * rest > denominator or (2 * rest == denominator and quotient % 2):
                quotient += 1
            return self._rounded(Decimal(quotient).scaleb(-places))

    def _times(self, factor: Decimal, shift: int, product: str) -> Money:
        """
        Return this amount × *factor* × 10^*shift* (described as *product*), rounded once, half to even.

        The product is sized from the exponents first: 10^18 or more is refused before decimal computes (and
        overflows on) it, and below a tenth of the minor unit it is zero.
        """
        if not self.amount or not factor:
            return Money.zero(self.currency)
        # |product| is in [10^magnitude, 10^(magnitude + 2))
        magnitude = self.amount.adjusted() + factor.adjusted() + shift
        if magnitude >= MAX_AMOUNT.adjusted():
            msg = f"{product} is too large: amounts of money stay below 10^18 in absolute value"
            raise InvalidMoneyError(msg, amount=self.amount, factor=factor, currency=self.currency)
        if magnitude + 2 <= -CURRENCY_MINOR_UNITS[self.currency] - 1:  # below a tenth of the minor unit
            return Money.zero(self.currency)
        with localcontext(_EXACT):
            return self._rounded((self.amount * factor).scaleb(shift))

    def _rounded(self, amount: Decimal) -> Money:
        if amount.copy_abs() >= MAX_AMOUNT:
            msg = f"{amount} {self.currency} is too large: amounts of money stay below 10^18 in absolute value"
            raise InvalidMoneyError(msg, amount=amount, currency=self.currency)
        quantum = Decimal(1).scaleb(-CURRENCY_MINOR_UNITS[self.currency])
        with localcontext(_EXACT):
            return Money(amount.quantize(quantum, rounding=ROUND_HALF_EVEN), self.currency)

    def __lt__(self, other: Money) -> bool:
        return self.amount < self._same(other, "compare").amount

    def __le__(self, other: Money) -> bool:
        return self.amount <= self._same(other, "compare").amount

    def __gt__(self, other: Money) -> bool:
        return self.amount > self._same(other, "compare").amount

    def __ge__(self, other: Money) -> bool:
        return self.amount >= self._same(other, "compare").amount

    def __bool__(self) -> bool:
        return bool(self.amount)

    @property
    def is_negative(self) -> bool:
        """Whether this amount is below zero (a refund or a debt)."""
        return self.amount < 0


def minor_units(money: Money) -> int:
    """*money* as a whole number of its currency's minor unit (25.50 EUR → 2550), whatever the decimal context."""
    with localcontext(_EXACT):
        return int(money.amount.scaleb(CURRENCY_MINOR_UNITS[money.currency]))


def from_minor_units(minor: int, currency: str) -> Money:
    """The `Money` of *minor* units of *currency*'s minor unit (2550, "EUR" → 25.50 EUR), exactly."""
    with localcontext(_EXACT):
        return Money(Decimal(minor).scaleb(-CURRENCY_MINOR_UNITS[_check_currency(currency)]), currency)
