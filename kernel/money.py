"""Money: integer minor units plus an ISO 4217 currency code, never floats.

The one rounding rule: every computed amount (a percentage off, a tax) is the exact
fraction of minor units rounded half up to the currency's rounding step (`round_minor`).
The step is one minor unit for most currencies (cents for EUR, USD, GBP; a yen for JPY,
which has no minor unit: its "minor unit" here is the yen itself), and five for CHF,
which cash-rounds to 0.05. Half up: amounts priced are never negative, so ties go to
the larger amount, as shops and tax offices in these currencies expect.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CURRENCY = re.compile(r"^[A-Z]{3}$")

# Digits after the decimal point, where not two (ISO 4217 exponents).
MINOR_DIGITS = {"JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "BHD": 3, "KWD": 3, "JOD": 3}
# Minor units an amount is rounded to, where not one.
ROUNDING_STEP = {"CHF": 5}


def rounding_step(currency: str) -> int:
    """The minor units a computed amount in `currency` is rounded to."""
    return ROUNDING_STEP.get(currency, 1)


def round_minor(currency: str, numerator: int, denominator: int = 1) -> int:
    """numerator / denominator minor units, rounded half up to the currency's step.

    Exact integer arithmetic: 1999 x 19 % is round_minor("EUR", 1999 * 1900, 10000)."""
    if denominator <= 0:
        raise ValueError("the denominator must be positive")
    step = rounding_step(currency)
    scaled = denominator * step
    # floor((2n + d) / 2d) is n/d rounded half up (towards +inf on a tie).
    return (2 * numerator + scaled) // (2 * scaled) * step


def fraction_of(amount: Money, basis_points: int) -> Money:
    """`basis_points` / 10 000 of `amount` (1900 bp = 19 %), by the rounding rule."""
    return Money(
        round_minor(amount.currency, amount.amount * basis_points, 10_000), amount.currency
    )


@dataclass(frozen=True, slots=True)
class Money:
    amount: int
    currency: str

    def __post_init__(self) -> None:
        if not _CURRENCY.match(self.currency):
            raise ValueError(f"{self.currency!r} is not an ISO 4217 currency code")
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise TypeError("money amounts are integer minor units")

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, factor: int) -> Money:
        return Money(self.amount * factor, self.currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency} with {other.currency}")

    def __str__(self) -> str:
        digits = MINOR_DIGITS.get(self.currency, 2)
        return f"{self.amount / 10**digits:.{digits}f} {self.currency}"


def allocate(total: int, weights: list[int]) -> list[int]:
    """Split `total` minor units over `weights` pro rata, by largest remainder: the parts
    add up to `total` exactly (ties go to the earlier weight). All weights zero: split
    as if they were equal."""
    if total == 0 or not weights:
        return [0] * len(weights)
    if sum(weights) == 0:
        weights = [1] * len(weights)
    whole = sum(weights)
    parts = [total * weight // whole for weight in weights]
    remainders = [total * weight % whole for weight in weights]
    left = total - sum(parts)
    for index in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:left]:
        parts[index] += 1
    return parts
