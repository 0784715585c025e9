"""Money: exact Decimal amounts in one ISO 4217 currency."""

import pickle
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slotengine.errors import CurrencyMismatchError, InvalidInputError, InvalidMoneyError
from slotengine.money import CURRENCY_MINOR_UNITS, Money

amounts = st.decimals(min_value=-10**9, max_value=10**9, places=2, allow_nan=False, allow_infinity=False)


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

    def test_no_negative_zero(self):
        """Minus nothing is nothing: it prints without a sign."""
        assert "0.00 EUR" == str(Money("-0", "EUR")) == str(-Money.zero("EUR"))

    def test_float_message_shows_the_fix(self):
        """The float error tells a person what to pass instead."""
        with pytest.raises(InvalidMoneyError, match=r"Decimal\('0.1'\)"):
            Money(0.1, "EUR")

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
