"""Money: exact Decimal amounts in one ISO 4217 currency."""

import pickle
from decimal import MAX_EMAX, MIN_ETINY, Clamped, Context, Decimal, Inexact, Overflow, Rounded, Underflow, localcontext
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slotengine.errors import CurrencyMismatchError, InvalidInputError, InvalidMoneyError
from slotengine.money import CURRENCY_MINOR_UNITS, MAX_AMOUNT, Money

amounts = st.decimals(min_value=-10**9, max_value=10**9, places=2, allow_nan=False, allow_infinity=False)

TINY = Decimal((0, (1,), MIN_ETINY))
"""The smallest positive Decimal there is (``Decimal("1E-1999999999999999999")`` cannot be built at all)."""
HUGE = Decimal("9E+999999999999999999")
"""The largest power of ten a Decimal can carry, times nine."""


@st.composite
def extreme_decimals(draw: st.DrawFn) -> Decimal:
    """Finite Decimals of any size a Decimal can have, with exponents crowding both ends of decimal's range."""
    digits = draw(st.lists(st.integers(0, 9), min_size=1, max_size=40))
    exponent = draw(
        st.one_of(
            st.integers(MIN_ETINY, MIN_ETINY + 40),
            st.integers(-45, 45),
            st.integers(MAX_EMAX - 40, MAX_EMAX),
            st.integers(MIN_ETINY, MAX_EMAX),
        )
    )
    return Decimal((draw(st.integers(0, 1)), tuple(digits), min(exponent, MAX_EMAX - len(digits) + 1)))


any_decimals = st.one_of(st.decimals(allow_nan=True, allow_infinity=True), extreme_decimals())


def money_or_invalid(make):
    """Return what *make* builds (checked to be a bounded EUR amount), or None if it raised InvalidMoneyError."""
    try:
        money = make()
    except InvalidMoneyError:
        return None
    assert "EUR" == money.currency
    assert money.amount.copy_abs() < MAX_AMOUNT
    assert -2 == money.amount.as_tuple().exponent
    return money


class TestConstruction:
    @pytest.mark.parametrize(
        ("amount", "currency", "expected"),
        [
            ("10", "EUR", Decimal("10.00")),
            (Decimal("49.9"), "EUR", Decimal("49.90")),
            (1500, "JPY", Decimal(1500)),
            ("1.005", "KWD", Decimal("1.005")),
            (" 3 ", "USD", Decimal("3.00")),
        ],
    )
    def test_quantized_to_the_minor_unit(self, amount, currency, expected):
        """Amounts are stored with exactly the currency's number of decimals."""
        money = Money(amount, currency)

        assert expected == money.amount
        assert CURRENCY_MINOR_UNITS[currency] == -money.amount.as_tuple().exponent

    @pytest.mark.parametrize(
        "amount", [0.1, 1.0, True, Decimal("NaN"), Decimal("Infinity"), "-inf", "ten", None, [1]]
    )
    def test_refuses_inexact_or_non_numbers(self, amount):
        """Floats, bools, NaN, infinities and non-numbers raise InvalidMoneyError."""
        with pytest.raises(InvalidMoneyError):
            Money(amount, "EUR")

    @pytest.mark.parametrize("amount", ["1E+30", "1000000000000000000000000000", "-1e18", Decimal("1E+999999")])
    def test_refuses_amounts_too_large(self, amount):
        """An amount of 10^18 or more is refused with InvalidMoneyError, not decimal's own exceptions."""
        with pytest.raises(InvalidMoneyError, match="too large"):
            Money(amount, "EUR")

    @pytest.mark.parametrize(
        ("amount", "message"),
        [
            (HUGE, "too large"),
            (HUGE.copy_negate(), "too large"),
            ("1e999999999", "too large"),
            ("-1E+1000000", "too large"),
            (Decimal("1E+1000000"), "too large"),
            (TINY, "more decimals"),
            ("1E-1999999999999999997", "more decimals"),
            ("1E-1999999999999999999", "not an amount"),  # no Decimal has so small an exponent
            ("1E+9999999999999999999", "not an amount"),
        ],
    )
    def test_refuses_extreme_exponents(self, amount, message):
        """Amounts with exponents at the ends of decimal's range raise InvalidMoneyError (decimal raised Overflow)."""
        with pytest.raises(InvalidMoneyError, match=message):
            Money(amount, "EUR")

    @pytest.mark.parametrize("amount", [Decimal((0, (0,), MIN_ETINY)), Decimal((1, (0,), MAX_EMAX)), "-0E+999999"])
    def test_zero_with_any_exponent_is_zero(self, amount):
        """Zero written with an extreme exponent is still zero."""
        assert Money.zero("EUR") == Money(amount, "EUR")

    @given(any_decimals)
    def test_any_decimal_is_money_or_invalid_money(self, amount):
        """Any Decimal, or its text, becomes bounded money or raises InvalidMoneyError, never decimal's own errors."""
        money = money_or_invalid(lambda: Money(amount, "EUR"))

        assert money == money_or_invalid(lambda: Money(str(amount), "EUR"))
        if money is not None:
            assert amount == money.amount

    def test_no_negative_zero(self):
        """Minus nothing is nothing: it prints without a sign."""
        assert "0.00 EUR" == str(Money("-0", "EUR")) == str(-Money.zero("EUR"))

    def test_float_message_shows_the_fix(self):
        """The float error tells a person what to pass instead."""
        with pytest.raises(InvalidMoneyError, match=r"Decimal\('0.1'\)"):
            Money(0.1, "EUR")

    def test_bool_message_suggests_no_nonsense(self):
        """A bool is refused as not a number; the fix offered is not Decimal('True')."""
        with pytest.raises(InvalidMoneyError, match=r"^a money amount is a number .*, not the bool True$"):
            Money(True, "EUR")

    @pytest.mark.parametrize(("amount", "currency"), [("10.5", "JPY"), ("1.001", "EUR"), ("1.0005", "KWD")])
    def test_refuses_more_decimals_than_the_currency(self, amount, currency):
        """An amount more precise than its currency is refused, never rounded silently."""
        with pytest.raises(InvalidMoneyError, match="more decimals"):
            Money(amount, currency)

    @pytest.mark.parametrize("currency", ["eur", "EURO", "XYZ", "", None, 978])
    def test_refuses_unknown_currency(self, currency):
        """Only ISO 4217 codes in capitals are currencies."""
        with pytest.raises(InvalidMoneyError, match="unknown currency"):
            Money("1", currency)

    def test_errors_are_value_errors(self):
        """Money errors are input errors and also ValueErrors."""
        with pytest.raises(ValueError):
            Money(0.5, "EUR")
        assert issubclass(InvalidMoneyError, InvalidInputError)


class TestArithmetic:
    @given(amounts, amounts)
    def test_add_and_subtract_are_exact(self, a, b):
        """Sums and differences are exact and round-trip."""
        x, y = Money(a, "EUR"), Money(b, "EUR")

        assert Money(a + b, "EUR") == x + y
        assert x == (x + y) - y
        assert -x == Money(-a, "EUR")

    def test_currency_mismatch(self):
        """Adding, subtracting or comparing two currencies raises CurrencyMismatchError."""
        eur, usd = Money("1", "EUR"), Money("1", "USD")

        with pytest.raises(CurrencyMismatchError, match="never converts"):
            eur + usd
        with pytest.raises(CurrencyMismatchError):
            eur - usd
        with pytest.raises(CurrencyMismatchError):
            eur < usd  # noqa: B015

    def test_only_money_adds_to_money(self):
        """Adding a bare number to money is an input error."""
        with pytest.raises(InvalidMoneyError):
            Money("1", "EUR") + 1  # type: ignore[operator]

    @pytest.mark.parametrize(
        ("amount", "currency", "percent", "expected"),
        [
            ("2.675", "KWD", 100, "2.675"),
            ("10.00", "EUR", 50, "5.00"),
            ("0.05", "EUR", 50, "0.02"),  # 0.025 rounds half to even
            ("0.07", "EUR", 50, "0.04"),  # 0.035 rounds half to even
            ("15", "JPY", 10, "2"),  # 1.5 → 2
            ("25", "JPY", 10, "2"),  # 2.5 → 2
        ],
    )
    def test_percent_rounds_half_to_even(self, amount, currency, percent, expected):
        """A percentage of an amount is rounded half to even to the minor unit."""
        assert Money(expected, currency) == Money(amount, currency).percent(percent)

    @pytest.mark.parametrize("factor", [1.5, True, "2"])
    def test_multiply_refuses_inexact_factors(self, factor):
        """Money multiplies by ints and Decimals only."""
        with pytest.raises(InvalidMoneyError):
            Money("1", "EUR") * factor
        with pytest.raises(InvalidMoneyError):
            Money("1", "EUR").percent(factor)

    @pytest.mark.parametrize("factor", [Decimal("Infinity"), Decimal("-Infinity"), Decimal("NaN"), Decimal("sNaN")])
    def test_multiply_refuses_non_finite_factors(self, factor):
        """An infinite or NaN factor is refused with InvalidMoneyError."""
        with pytest.raises(InvalidMoneyError):
            Money("1", "EUR") * factor
        with pytest.raises(InvalidMoneyError):
            Money("1", "EUR").percent(factor)

    @pytest.mark.parametrize("factor", [Decimal("1E+1000000"), Decimal(10) ** 18, 10**30])
    def test_multiply_past_the_limit_is_refused(self, factor):
        """A product of 10^18 or more is refused with InvalidMoneyError (decimal raised Overflow)."""
        with pytest.raises(InvalidMoneyError, match="too large"):
            Money("1", "EUR") * factor

    @pytest.mark.parametrize("amount", ["10", "-0.01", "999999999999999999.99"])
    @pytest.mark.parametrize("factor", [HUGE, HUGE.copy_negate(), Decimal("1E+999999999"), Decimal("1E+1000000")])
    def test_extreme_factors_are_too_large(self, amount, factor):
        """A product or percentage past decimal's range is refused with InvalidMoneyError (decimal raised Overflow)."""
        money = Money(amount, "EUR")

        with pytest.raises(InvalidMoneyError, match="too large"):
            money * factor
        with pytest.raises(InvalidMoneyError, match="too large"):
            factor * money
        with pytest.raises(InvalidMoneyError, match="too large"):
            money.percent(factor)

    @pytest.mark.parametrize("factor", [TINY, TINY.copy_negate(), Decimal("1E-999999999999999999"), Decimal("4.99E-3")])
    def test_tiny_factors_round_to_zero(self, factor):
        """A product or percentage below half a cent is zero."""
        one = Money("1", "EUR")

        assert Money.zero("EUR") == one * factor == factor * one == one.percent(factor)
        assert Money.zero("EUR") == one.percent(Decimal("0.499"))

    @pytest.mark.parametrize("factor", [HUGE, HUGE.copy_negate(), TINY, Decimal("1E+1000000")])
    def test_nothing_times_any_factor_is_nothing(self, factor):
        """Zero times any factor, or any percentage of zero, is zero."""
        zero = Money.zero("EUR")

        assert zero == zero * factor == zero.percent(factor)

    @pytest.mark.parametrize("factor", [Decimal((0, (0,), MIN_ETINY)), Decimal((1, (0,), MAX_EMAX))])
    def test_any_amount_times_zero_is_nothing(self, factor):
        """Any amount times zero written with an extreme exponent is zero."""
        money = Money("999999999999999999.99", "EUR")

        assert Money.zero("EUR") == money * factor == money.percent(factor)

    def test_percent_rounds_once(self):
        """A percentage with more than 28 digits is not first rounded to decimal's default precision."""
        assert Money("0.01", "EUR") == Money("1", "EUR").percent(Decimal("0.5000000000000000000000000000001"))

    @given(st.sampled_from(["0", "1", "-12.34", "999999999999999999.99"]), any_decimals)
    def test_any_factor_is_money_or_invalid_money(self, amount, factor):
        """Times any Decimal, or any percentage, money is bounded money or InvalidMoneyError, never decimal's errors."""
        money = Money(amount, "EUR")

        product = money_or_invalid(lambda: money * factor)
        assert product == money_or_invalid(lambda: factor * money)
        money_or_invalid(lambda: money.percent(factor))

    @given(
        st.decimals(min_value=-(10**14), max_value=10**14, places=2),  # products stay below MAX_AMOUNT
        st.decimals(min_value=-1000, max_value=1000, allow_nan=False, allow_infinity=False),
    )
    def test_products_round_once(self, amount, factor):
        """A product is the exact product rounded once, half to even (not first to decimal's 28 digits)."""
        exact = Fraction(amount) * Fraction(factor)
        expected = Fraction(round(exact * 100), 100)

        product = Money(amount, "EUR") * factor

        assert expected == Fraction(product.amount)
    @given(amounts, st.integers(-1000, 1000))
    def test_integer_multiples_are_repeated_addition(self, a, n):
        """n × money equals adding it n times (no rounding for integer factors)."""
        money = Money(a, "EUR")

        assert Money(a * n, "EUR") == money * n == n * money

    def test_ordering_within_a_currency(self):
        """Amounts of one currency compare by value."""
        assert Money("1", "EUR") < Money("2", "EUR") <= Money("2", "EUR")
        assert Money("3", "EUR") > Money("2", "EUR") >= Money("2.00", "EUR")


class TestDecimalContext:
    STRICT = Context(prec=5, Emax=99, Emin=-99, traps=[Inexact, Rounded, Overflow, Underflow, Clamped])
    """A caller's context that rounds to 5 digits and traps every signal."""

    def test_the_callers_context_is_not_used(self):
        """Money computes exactly whatever the caller's decimal context: nothing is rounded and no signal escapes."""
        with localcontext(self.STRICT):
            big = Money("123456.78", "EUR")
            assert Decimal("123456.78") == big.amount
            assert Decimal("123457.78") == (big + Money("1", "EUR")).amount
            assert Decimal("123455.78") == (big - Money("1", "EUR")).amount
            assert Decimal("-123456.78") == (-big).amount
            assert Decimal("370370.34") == (big * 3).amount
            assert Decimal("15241.58") == big.percent(Decimal("12.345678")).amount
            assert big > Money("1", "EUR")
            with pytest.raises(InvalidMoneyError, match="too large"):
                Money("1E+1000", "EUR")
            with pytest.raises(InvalidMoneyError, match="too large"):
                big.percent(Decimal("1E+1000"))
            with pytest.raises(InvalidMoneyError, match="more decimals"):
                Money("1E-1000", "EUR")
            assert Money.zero("EUR") == big * Decimal("1E-1000")


class TestValue:
    def test_repr_and_str(self):
        """Money reads like the code that builds it, and prints like a price."""
        money = Money("49.9", "EUR")

        assert "Money('49.90', 'EUR')" == repr(money)
        assert "49.90 EUR" == str(money)

    def test_equal_and_hashable(self):
        """Equal amounts are equal values with equal hashes; a zero is falsy."""
        assert Money("10", "EUR") == Money(Decimal("10.00"), "EUR")
        assert hash(Money("10", "EUR")) == hash(Money("10.0", "EUR"))
        assert Money("10", "EUR") != Money("10", "USD")
        assert not Money.zero("EUR")
        assert Money("-1", "EUR").is_negative

    def test_frozen(self):
        """Money cannot be changed after it is built."""
        money = Money("1", "EUR")
        with pytest.raises(AttributeError):
            money.amount = Decimal(2)  # type: ignore[misc]

    def test_pickles(self):
        """Money survives pickling."""
        money = Money("1.5", "EUR")

        assert money == pickle.loads(pickle.dumps(money))
