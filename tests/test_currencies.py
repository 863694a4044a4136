"""The currency exponent table and exact conversion from minor to major units."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pytest

from sandbox.stripe_data import StripeWorld
from spendlake.currencies import exponent, exponents, to_major_units

TABLE = Path(__file__).resolve().parents[1] / "spendlake" / "currency_exponents.csv"
ZERO_DECIMAL = "BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split()
THREE_DECIMAL = "BHD JOD KWD OMR TND".split()


def test_csv_has_header_and_unique_codes() -> None:
    rows = list(csv.reader(TABLE.read_text(encoding="utf-8").splitlines()))

    assert rows[0] == ["currency", "exponent"]
    codes = [code for code, _ in rows[1:]]
    assert len(codes) == len(set(codes)) > 130
    assert all(len(code) == 3 and code.isupper() for code in codes)


@pytest.mark.parametrize("code", ZERO_DECIMAL)
def test_zero_decimal_currencies(code: str) -> None:
    assert exponent(code) == 0


@pytest.mark.parametrize("code", THREE_DECIMAL)
def test_three_decimal_currencies(code: str) -> None:
    assert exponent(code) == 3


def test_other_currencies_two_decimals() -> None:
    others = {code: value for code, value in exponents().items() if code not in ZERO_DECIMAL + THREE_DECIMAL}

    assert set(others.values()) == {2}
    # Stripe's special cases: ISK, HUF and TWD are sent with two decimals.
    assert {"ISK", "HUF", "TWD", "USD", "EUR", "GBP"} <= set(others)


def test_lookup_ignores_case() -> None:
    assert exponent("jpy") == exponent("JPY") == 0
    assert exponent(" Kwd ") == 3


def test_unknown_currency_names_fix() -> None:
    with pytest.raises(ValueError, match=r"Unknown currency 'xyz'.*add the currency and its exponent"):
        exponent("xyz")


@pytest.mark.parametrize(
    ("amount", "currency", "major"),
    [
        (1999, "usd", Decimal("19.99")),
        (1500, "jpy", Decimal("1500")),
        (1500, "kwd", Decimal("1.500")),
        (-250, "eur", Decimal("-2.50")),
        (10**18 + 1, "usd", Decimal("10000000000000000.01")),
    ],
)
def test_to_major_units_exact(amount: int, currency: str, major: Decimal) -> None:
    result = to_major_units(amount, currency)

    assert result == major
    assert str(result) == str(major)


def test_to_major_units_rejects_float() -> None:
    with pytest.raises(TypeError, match="minor units must be an integer"):
        to_major_units(19.99, "usd")  # type: ignore[arg-type]


def test_sandbox_currencies_in_table() -> None:
    world = StripeWorld(seed=3, anchor=1_790_000_000, ticks=(1_790_003_600,))
    currencies = {item["currency"] for kind in ("charges", "refunds", "prices", "balance_transactions") for item in world.listing(kind).objects}

    assert currencies
    for currency in currencies:
        exponent(currency)
