"""What an order shipped and what came back: the bookkeeping of partial shipments and
returns that the Order aggregate keeps, and the rule of what a return refunds."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from kernel.errors import DomainError, Invalid
from kernel.money import Money
from orders.commands import OrderLineRequest
from orders.events import ItemLine, PricedLine

Units = dict[str, int]
"""Units per SKU."""


@dataclass(frozen=True, slots=True)
class Charged:
    """One SKU of an order: the units ordered and what they were charged in all
    (PricedLine.total: discounts off, tax on)."""

    quantity: int
    total: Money


@dataclass(frozen=True, slots=True)
class Refunded:
    """What inspected returns accepted of one SKU so far, and what they refunded."""

    units: int = 0
    amount: int = 0  # minor units, in the order's currency


@dataclass(frozen=True, slots=True)
class Shipment:
    lines: tuple[ItemLine, ...]
    tracking_number: str


class ReturnStatus(StrEnum):
    REQUESTED = "requested"
    RECEIVED = "received"
    INSPECTED = "inspected"


@dataclass(frozen=True, slots=True)
class Return:
    lines: tuple[ItemLine, ...]
    reason: str
    status: ReturnStatus = ReturnStatus.REQUESTED
    accepted: tuple[ItemLine, ...] = ()
    rejected: tuple[ItemLine, ...] = ()
    refund: Money | None = None  # set once inspected
    note: str = ""

    def holds(self) -> Units:
        """The units this return keeps from being returned again: all it announced while
        open, what was accepted once inspected (rejected units went back to the customer,
        who may send them again)."""
        return units(self.accepted if self.status is ReturnStatus.INSPECTED else self.lines)


def charged_by_sku(lines: Iterable[PricedLine]) -> dict[str, Charged]:
    charged: dict[str, Charged] = {}
    for line in lines:
        # Orders price each SKU once; should two lines share one, they count as one line.
        before = charged.get(line.sku)
        if before is None:
            charged[line.sku] = Charged(line.quantity, line.total)
        else:
            charged[line.sku] = Charged(before.quantity + line.quantity, before.total + line.total)
    return charged


def item_lines(
    requested: Sequence[OrderLineRequest], *, allow_none: bool = False
) -> tuple[ItemLine, ...]:
    """The lines of a shipment, a return or an inspection, checked: at least one (unless
    `allow_none`), each SKU once, at least one unit each."""
    if not requested and not allow_none:
        raise Invalid("at least one line is needed")
    if any(line.quantity < 1 for line in requested):
        raise Invalid("quantities must be at least 1")
    skus = [line.sku for line in requested]
    duplicates = sorted({sku for sku in skus if skus.count(sku) > 1})
    if duplicates:
        raise DomainError(
            f"each SKU may appear once, repeated: {', '.join(duplicates)}", code="duplicate_sku"
        )
    return tuple(ItemLine(line.sku, line.quantity) for line in requested)


def units(lines: Iterable[ItemLine]) -> Units:
    counted: Units = {}
    for line in lines:
        counted[line.sku] = counted.get(line.sku, 0) + line.quantity
    return counted


def exceeding(wanted: Iterable[ItemLine], limits: Mapping[str, int]) -> list[str]:
    """`sku: wanted > limit` for every line over its limit (a SKU not in `limits`: 0)."""
    return [
        f"{line.sku}: {line.quantity} > {limits.get(line.sku, 0)}"
        for line in wanted
        if line.quantity > limits.get(line.sku, 0)
    ]


def refunds(
    accepted: Iterable[ItemLine],
    charged: Mapping[str, Charged],
    refunded: Mapping[str, Refunded],
) -> dict[str, int]:
    """What accepted units refund, per SKU (minor units): what they were charged, units x
    line total / quantity rounded down, except that the units completing a line refund
    exactly what is left of its total. So a line refunds, over all its returns, never
    more nor less than it was charged: the roundings cannot add up to a cent too many."""
    amounts = {}
    for line in accepted:
        price, before = charged[line.sku], refunded.get(line.sku, Refunded())
        if before.units + line.quantity >= price.quantity:
            amounts[line.sku] = price.total.amount - before.amount
        else:
            amounts[line.sku] = line.quantity * price.total.amount // price.quantity
    return amounts


def with_refunds(
    refunded: Mapping[str, Refunded], accepted: Iterable[ItemLine], amounts: Mapping[str, int]
) -> dict[str, Refunded]:
    """`refunded` after accepting `accepted`, which refunded `amounts`."""
    after = dict(refunded)
    for line in accepted:
        before = after.get(line.sku, Refunded())
        after[line.sku] = Refunded(before.units + line.quantity, before.amount + amounts[line.sku])
    return after


def rejected(returned: Iterable[ItemLine], accepted: Iterable[ItemLine]) -> tuple[ItemLine, ...]:
    """What came back and was not accepted."""
    taken = units(accepted)
    return tuple(
        ItemLine(line.sku, line.quantity - taken.get(line.sku, 0))
        for line in returned
        if line.quantity > taken.get(line.sku, 0)
    )


# --- snapshots: the same state as JSON ------------------------------------------------


def _lines_state(lines: tuple[ItemLine, ...]) -> list[list[Any]]:
    return [[line.sku, line.quantity] for line in lines]


def _lines_from(state: list[list[Any]]) -> tuple[ItemLine, ...]:
    return tuple(ItemLine(sku, quantity) for sku, quantity in state)


def _money_state(money: Money) -> dict[str, Any]:
    return {"amount": money.amount, "currency": money.currency}


def _money_from(state: dict[str, Any]) -> Money:
    return Money(state["amount"], state["currency"])


def charged_state(charged: Mapping[str, Charged]) -> dict[str, Any]:
    return {sku: [c.quantity, _money_state(c.total)] for sku, c in charged.items()}


def charged_from(state: dict[str, Any]) -> dict[str, Charged]:
    return {sku: Charged(quantity, _money_from(total)) for sku, (quantity, total) in state.items()}


def refunded_state(refunded: Mapping[str, Refunded]) -> dict[str, Any]:
    return {sku: [r.units, r.amount] for sku, r in refunded.items()}


def refunded_from(state: dict[str, Any]) -> dict[str, Refunded]:
    return {sku: Refunded(u, amount) for sku, (u, amount) in state.items()}


def shipments_state(shipments: Mapping[str, Shipment]) -> dict[str, Any]:
    return {
        shipment_id: {"lines": _lines_state(s.lines), "tracking_number": s.tracking_number}
        for shipment_id, s in shipments.items()
    }


def shipments_from(state: dict[str, Any]) -> dict[str, Shipment]:
    return {
        shipment_id: Shipment(_lines_from(s["lines"]), s["tracking_number"])
        for shipment_id, s in state.items()
    }


def returns_state(returns: Mapping[str, Return]) -> dict[str, Any]:
    return {
        return_id: {
            "lines": _lines_state(r.lines),
            "reason": r.reason,
            "status": r.status.value,
            "accepted": _lines_state(r.accepted),
            "rejected": _lines_state(r.rejected),
            "refund": None if r.refund is None else _money_state(r.refund),
            "note": r.note,
        }
        for return_id, r in returns.items()
    }


def returns_from(state: dict[str, Any]) -> dict[str, Return]:
    return {
        return_id: Return(
            lines=_lines_from(r["lines"]),
            reason=r["reason"],
            status=ReturnStatus(r["status"]),
            accepted=_lines_from(r["accepted"]),
            rejected=_lines_from(r["rejected"]),
            refund=None if r["refund"] is None else _money_from(r["refund"]),
            note=r["note"],
        )
        for return_id, r in state.items()
    }
