"""Minor-unit exponents of ISO 4217 currencies, as Stripe counts them, and exact conversion to major units.

The table lives in `currency_exponents.csv` beside this module (a later dbt
model seeds the same file). Stripe sends amounts as integers in a currency's
minor unit: JPY 1500 is 1500 yen, USD 1500 is 15.00 dollars, KWD 1500 is
1.500 dinars.
"""

from __future__ import annotations

import csv
from decimal import Decimal
from functools import cache
from importlib import resources

TABLE_NAME = "currency_exponents.csv"


@cache
def exponents() -> dict[str, int]:
    """Return the table: upper-case currency code to its minor-unit exponent."""
    text = resources.files("spendlake").joinpath(TABLE_NAME).read_text(encoding="utf-8")
    return {row["currency"].upper(): int(row["exponent"]) for row in csv.DictReader(text.splitlines())}


def exponent(currency: str) -> int:
    """Return the number of decimal places of `currency`'s minor unit (case-insensitive)."""
    code = currency.strip().upper() if isinstance(currency, str) else ""
    table = exponents()
    if code not in table:
        msg = (
            f"Unknown currency {currency!r}: it is not in spendlake/{TABLE_NAME}. "
            "Use a three-letter ISO 4217 code such as 'usd', or add the currency and its exponent to that table."
        )
        raise ValueError(msg)
    return table[code]


def to_major_units(amount: int, currency: str) -> Decimal:
    """Return `amount` (integer minor units) in major units, exactly: 1999 usd -> Decimal('19.99')."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        msg = f"Invalid amount of type {type(amount).__name__}: minor units must be an integer, as Stripe sends them."
        raise TypeError(msg)
    return Decimal(amount).scaleb(-exponent(currency))
