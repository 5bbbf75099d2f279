"""The caps on what a customer may hold in orders awaiting payment."""

from __future__ import annotations

import pytest

from kernel.errors import DomainError
from orders.domain import HoldLimits, Holds

LIMITS = HoldLimits(pending_orders=2, reserved_units=10)


@pytest.mark.parametrize(
    ("held", "units"),
    [(Holds(0, 0), 10), (Holds(1, 9), 1), (Holds(1, 0), 10)],
)
def test_an_order_within_both_caps_is_allowed(held: Holds, units: int) -> None:
    LIMITS.check(held, units)


@pytest.mark.parametrize(
    ("held", "units", "code"),
    [
        (Holds(2, 2), 1, "too_many_pending_orders"),
        (Holds(0, 0), 11, "order_too_large"),
        (Holds(1, 1), 11, "order_too_large"),
        (Holds(1, 9), 2, "too_many_reserved_units"),
    ],
)
def test_an_order_past_either_cap_is_refused_with_its_code(
    held: Holds, units: int, code: str
) -> None:
    with pytest.raises(DomainError) as refused:
        LIMITS.check(held, units)
    assert refused.value.code == code
