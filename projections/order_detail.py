"""Order detail: one denormalised document per order, with its status timeline.

The document holds the price breakdown exactly as OrderPlaced charged it (per-line
discount, tax and total; discounts by source; taxes by rate): readers never price.

The shipping and billing addresses are kept as their event sealed them (`personal`, see
kernel.personal_data): the query opens them with the customer's key, so forgetting the
customer erases them here at once, and CustomerForgotten then drops the ciphertext too.

Shipments, returns and refunds are lists in the document, in the order they happened.
A shipment makes the order `partially_shipped` until OrderShipped (recorded after the
shipment with the last units) makes it `shipped`. A return goes `requested`, `received`,
`inspected`; it leaves the order's status alone.

A full refund makes the order `refunded` (a shipped order sent back, or a confirmed one
the saga is about to cancel), unless the order is cancelled already: a cancelled order
stays cancelled, its refund is part of cancelling it. A partial refund (a return's)
leaves the status alone and shows in `refunds` and `refunded_total`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import TextClause, text

from inventory.events import (
    InventoryReleased,
    InventoryReservationFailed,
    InventoryReserved,
    ReservationCommitted,
)
from kernel import jsonb
from kernel.codec import to_data
from kernel.event_store import RecordedEvent
from kernel.money import Money
from kernel.personal_data import ERASED
from kernel.write_batch import WriteBatch
from orders.events import (
    CustomerForgotten,
    OrderCancelled,
    OrderConfirmed,
    OrderPlaced,
    OrderShipped,
    ReturnInspected,
    ReturnReceived,
    ReturnRequested,
    ShipmentDispatched,
)
from payments.events import (
    PaymentAbandoned,
    PaymentCancellationRequested,
    PaymentFailed,
    PaymentPending,
    PaymentRefunded,
    PaymentRequested,
    PaymentSucceeded,
    RefundFailed,
    RefundRequested,
)
from projections.projection import Mode, PostgresHandlers, PostgresProjection

VERSION = 3  # 2: the shipping address is stored sealed; 3: breakdown, shipments, returns
"""Bump it with any change that alters what this read model stores: workers running the new
code rebuild it (docs/DESIGN.md, "Read model versions")."""

handlers: PostgresHandlers = PostgresHandlers()


class Documents:
    """A batch's writes to order_details, each order's row written once per batch.

    An order placed in the batch is folded in memory: its later events of the batch
    change the document before it is inserted, in one INSERT of every such order. An
    order placed in an earlier batch gets one UPDATE, with its changes of the batch
    merged in log order first: `document || patch1 || patch2` equals `document ||
    (patch1 merged with patch2)` (jsonb `||` replaces top-level keys, as dict.update
    does), its timeline gains the moments in order, and the status and time are the
    last ones given. That UPDATE names its row by primary key, not by a join, so a
    generation growing faster than its statistics (a rebuild) cannot lead PostgreSQL
    to scan the whole generation once per batch.

    A status given `unless` the order then has another one (see `change`) is decided
    here when the status is known in the batch (the order was placed in it, or an
    earlier change of the batch set it), else in the UPDATE against the stored status;
    so is its moment's status.

    The lists (shipments, returns, refunds) grow by one entry per event: for an order
    placed in the batch in memory, for any other by a statement of its own after the
    UPDATEs, in log order (no patch names a list, so that order changes nothing else).
    They are few per order, so a statement each costs little even in a rebuild.
    """

    def __init__(self) -> None:
        self.placed: dict[int, dict[str, dict[str, Any]]] = {}
        self.changed: dict[int, dict[str, dict[str, Any]]] = {}
        self.listed: list[tuple[TextClause, dict[str, Any]]] = []

    def place(self, gen: int, order_id: str, customer_id: str, at: str, document: Any) -> None:
        row = {"order_id": order_id, "customer_id": customer_id, "status": "pending"}
        row |= {"placed_at": at, "updated_at": at, "document": document}
        self.placed.setdefault(gen, {}).setdefault(order_id, row)

    def change(
        self,
        gen: int,
        order_id: str,
        patch: dict[str, Any],
        moment: dict[str, Any],
        status: str | None,
        at: str,
        *,
        unless: str | None = None,
    ) -> None:
        """Merge one event's change; `status` is the order's new one, kept from being
        set when the order's status is then `unless` (one such status, `cancelled`)."""
        placed = self.placed.get(gen, {}).get(order_id)
        orders = self.changed.setdefault(gen, {})
        if placed is not None and order_id not in orders:
            _fold(placed, patch, moment, status, at, unless)
            return
        merged = orders.get(order_id)
        if merged is None:
            merged = orders[order_id] = {"order_id": order_id, "patch": {}, "moments": []}
            merged |= {"status": None, "unless": None, "resolve": False}
        merged["patch"].update(patch)
        if status is not None and unless is not None:
            if merged["status"] is not None and merged["unless"] is None:  # known: decide
                if merged["status"] == unless:
                    status = moment["status"] = None
            else:  # after the stored status only: the UPDATE decides, the moment's too
                assert merged["unless"] in (None, unless), "one kind of condition at a time"
                merged["status"], merged["unless"], merged["resolve"] = status, unless, True
                moment["unless"] = unless
                status = None
        if status is not None:
            merged["status"], merged["unless"] = status, None
        merged["moments"].append(moment)
        merged["at"] = at

    def append(self, gen: int, order_id: str, key: str, entry: dict[str, Any]) -> None:
        """Add `entry` at the end of the document's list `key`."""
        document = self._in_batch(gen, order_id)
        if document is not None:
            document[key].append(entry)
            return
        params = {"gen": gen, "order_id": order_id, "key": key, "entry": jsonb.dumps(entry)}
        self.listed.append((_APPEND, params))

    def amend_return(self, gen: int, order_id: str, return_id: str, patch: dict[str, Any]) -> None:
        """Merge `patch` into the return `return_id` of the document's `returns`."""
        document = self._in_batch(gen, order_id)
        if document is not None:
            for entry in document["returns"]:
                if entry["return_id"] == return_id:
                    entry.update(patch)
            return
        params = {"gen": gen, "order_id": order_id, "return_id": return_id}
        self.listed.append((_AMEND_RETURN, params | {"patch": jsonb.dumps(patch)}))

    def _in_batch(self, gen: int, order_id: str) -> dict[str, Any] | None:
        """The document of an order placed in this batch and not written yet, else None."""
        placed = self.placed.get(gen, {}).get(order_id)
        if placed is None or order_id in self.changed.get(gen, {}):
            return None
        document: dict[str, Any] = placed["document"]
        return document

    def statements(self) -> Iterable[tuple[TextClause, Mapping[str, Any]]]:
        for gen, placed in self.placed.items():
            yield _INSERT, {"gen": gen, "rows": jsonb.dumps(list(placed.values()))}
        for gen, orders in self.changed.items():
            for change in orders.values():
                patch, moments = jsonb.dumps(change["patch"]), jsonb.dumps(change["moments"])
                yield _CHANGE, change | {"gen": gen, "patch": patch, "moments": moments}
        yield from self.listed


def _fold(
    row: dict[str, Any],
    patch: dict[str, Any],
    moment: dict[str, Any],
    status: str | None,
    at: str,
    unless: str | None,
) -> None:
    """Apply one change to a row not written yet, as the UPDATE would to a stored one."""
    document = row["document"]
    document.update(patch)
    if status is not None and unless is not None and row["status"] == unless:
        status = moment["status"] = None
    if status is not None:
        row["status"] = document["status"] = status
    document["timeline"].append(moment)
    row["updated_at"] = at


_INSERT = text(
    """
    INSERT INTO order_details (generation, order_id, customer_id, status, placed_at,
                               updated_at, document)
    SELECT :gen, r.order_id, r.customer_id, r.status, r.placed_at, r.updated_at, r.document
    FROM jsonb_to_recordset(CAST(:rows AS jsonb))
         AS r(order_id text, customer_id text, status text, placed_at timestamptz,
              updated_at timestamptz, document jsonb)
    ON CONFLICT (generation, order_id) DO NOTHING
    """
)
# The batch's status: none, one set outright, or one set unless the stored status is
# :unless. Moments marked `unless` lose their status when that held.
_STATUS = """CASE WHEN CAST(:status AS text) IS NULL OR d.status = CAST(:unless AS text)
                  THEN d.status ELSE CAST(:status AS text) END"""
_CHANGE = text(
    f"""
    UPDATE order_details AS d
    SET document = (d.document || CAST(:patch AS jsonb)) || jsonb_build_object(
            'status', {_STATUS},
            'timeline', d.document -> 'timeline' || CASE WHEN NOT CAST(:resolve AS boolean)
                THEN CAST(:moments AS jsonb)
                ELSE (SELECT jsonb_agg(CASE WHEN NOT m ? 'unless' THEN m
                                            WHEN d.status = m ->> 'unless'
                                            THEN (m - 'unless') || '{{"status": null}}'
                                            ELSE (m - 'unless') END ORDER BY i)
                      FROM jsonb_array_elements(CAST(:moments AS jsonb))
                           WITH ORDINALITY AS e(m, i))
                END),
        status = {_STATUS},
        updated_at = CAST(:at AS timestamptz)
    WHERE d.generation = :gen AND d.order_id = :order_id
    """
)
# A document of before version 3 may lack the list: it starts empty.
_APPEND = text(
    """
    UPDATE order_details
    SET document = jsonb_set(document, ARRAY[CAST(:key AS text)],
        coalesce(document -> CAST(:key AS text), CAST('[]' AS jsonb))
        || jsonb_build_array(CAST(:entry AS jsonb)))
    WHERE generation = :gen AND order_id = :order_id
    """
)
_AMEND_RETURN = text(
    """
    UPDATE order_details AS d
    SET document = jsonb_set(d.document, '{returns}', (
        SELECT coalesce(jsonb_agg(CASE WHEN e.entry ->> 'return_id' = CAST(:return_id AS text)
                                       THEN e.entry || CAST(:patch AS jsonb)
                                       ELSE e.entry END ORDER BY e.i), CAST('[]' AS jsonb))
        FROM jsonb_array_elements(coalesce(d.document -> 'returns', CAST('[]' AS jsonb)))
             WITH ORDINALITY AS e(entry, i)))
    WHERE d.generation = :gen AND d.order_id = :order_id
    """
)


@handlers.on(OrderPlaced)
def placed(event: OrderPlaced, writes: WriteBatch, gen: int, recorded: RecordedEvent) -> None:
    at = recorded.metadata.occurred_at
    # The event's own values: orjson writes dataclasses field by field and tuples as
    # arrays, as the codec would, without building the dicts first.
    document = {
        "order_id": event.order_id,
        "customer_id": event.customer_id,
        "status": "pending",
        "lines": event.lines,
        "subtotal": event.subtotal,
        "discounts": event.discounts,
        "discount_total": event.discount_total,
        "taxes": event.taxes,
        "tax_total": event.tax_total,
        "shipping": event.shipping,
        "total": event.total,
        "prices_include_tax": event.prices_include_tax,
        "coupon_code": event.coupon_code,
        "cart_id": event.cart_id,
        # None when read after the customer was forgotten (a rebuild): nothing to keep.
        "personal": None if event.shipping_address.line1 == ERASED else recorded.sealed,
        "item_count": sum(line.quantity for line in event.lines),
        "placed_at": at.isoformat(),
        "payment": {"status": "not_started"},
        "reservation": {"status": "not_started"},
        "tracking_number": None,
        "cancellation": None,
        "shipments": [],
        "returns": [],
        "refunds": [],
        "refunded_total": Money(0, event.total.currency),
        "timeline": [_moment("placed", "pending", recorded)],
    }
    writes.collector(Documents).place(
        gen, event.order_id, event.customer_id, at.isoformat(), document
    )


_FORGET = text(
    "UPDATE order_details SET document = document - 'personal'"
    " WHERE generation = :gen AND customer_id = :customer_id AND document ? 'personal'"
)


@handlers.on(CustomerForgotten)
def forgotten(
    event: CustomerForgotten, writes: WriteBatch, gen: int, recorded: RecordedEvent
) -> None:
    # Queued after the batch's documents (see WriteBatch), so an order placed in the same
    # batch loses its ciphertext too.
    writes.execute(_FORGET, {"gen": gen, "customer_id": event.customer_id})


@handlers.on(OrderConfirmed)
def confirmed(event: OrderConfirmed, writes: WriteBatch, gen: int, recorded: RecordedEvent) -> None:
    _change(writes, gen, event.order_id, recorded, status="confirmed", moment="confirmed")


@handlers.on(OrderCancelled)
def cancelled(event: OrderCancelled, writes: WriteBatch, gen: int, recorded: RecordedEvent) -> None:
    cancellation = {"reason": event.reason, "cancelled_by": event.cancelled_by}
    _change(
        writes,
        gen,
        event.order_id,
        recorded,
        status="cancelled",
        moment="cancelled",
        cancellation=cancellation,
    )


@handlers.on(OrderShipped)
def shipped(event: OrderShipped, writes: WriteBatch, gen: int, recorded: RecordedEvent) -> None:
    _change(
        writes,
        gen,
        event.order_id,
        recorded,
        status="shipped",
        moment="shipped",
        tracking_number=event.tracking_number,
    )


@handlers.on(ShipmentDispatched)
def shipment_dispatched(
    event: ShipmentDispatched, writes: WriteBatch, gen: int, recorded: RecordedEvent
) -> None:
    # `partially_shipped` until OrderShipped follows the shipment with the last units.
    _change(
        writes,
        gen,
        event.order_id,
        recorded,
        status="partially_shipped",
        moment="shipment dispatched",
    )
    shipment = {
        "shipment_id": event.shipment_id,
        "lines": [to_data(line) for line in event.lines],
        "tracking_number": event.tracking_number,
        "at": recorded.metadata.occurred_at.isoformat(),
    }
    writes.collector(Documents).append(gen, event.order_id, "shipments", shipment)


@handlers.on(ReturnRequested)
def return_requested(
    event: ReturnRequested, writes: WriteBatch, gen: int, recorded: RecordedEvent
) -> None:
    _change(writes, gen, event.order_id, recorded, moment="return requested")
    entry = {
        "return_id": event.return_id,
        "lines": [to_data(line) for line in event.lines],
        "reason": event.reason,
        "status": "requested",
        "accepted": [],
        "rejected": [],
        "refund": None,
        "note": "",
        "requested_at": recorded.metadata.occurred_at.isoformat(),
        "received_at": None,
        "inspected_at": None,
    }
    writes.collector(Documents).append(gen, event.order_id, "returns", entry)


@handlers.on(ReturnReceived)
def return_received(
    event: ReturnReceived, writes: WriteBatch, gen: int, recorded: RecordedEvent
) -> None:
    _change(writes, gen, event.order_id, recorded, moment="return received")
    patch = {"status": "received", "received_at": recorded.metadata.occurred_at.isoformat()}
    writes.collector(Documents).amend_return(gen, event.order_id, event.return_id, patch)


@handlers.on(ReturnInspected)
def return_inspected(
    event: ReturnInspected, writes: WriteBatch, gen: int, recorded: RecordedEvent
) -> None:
    _change(writes, gen, event.order_id, recorded, moment="return inspected")
    patch = {
        "status": "inspected",
        "accepted": [to_data(line) for line in event.accepted],
        "rejected": [to_data(line) for line in event.rejected],
        "refund": to_data(event.refund),
        "note": event.note,
        "inspected_at": recorded.metadata.occurred_at.isoformat(),
    }
    writes.collector(Documents).amend_return(gen, event.order_id, event.return_id, patch)


@handlers.on(InventoryReserved)
def reserved(
    event: InventoryReserved, writes: WriteBatch, gen: int, recorded: RecordedEvent
) -> None:
    _change(
        writes,
        gen,
        event.order_id,
        recorded,
        moment="inventory reserved",
        reservation={"status": "reserved"},
    )


@handlers.on(InventoryReservationFailed)
def reservation_failed(
    event: InventoryReservationFailed, writes: WriteBatch, gen: int, recorded: RecordedEvent
) -> None:
    shortages = [to_data(shortage) for shortage in event.shortages]
    _change(
        writes,
        gen,
        event.order_id,
        recorded,
        moment="inventory short",
        reservation={"status": "failed", "shortages": shortages},
    )


@handlers.on(InventoryReleased)
def released(
    event: InventoryReleased, writes: WriteBatch, gen: int, recorded: RecordedEvent
) -> None:
    _change(
        writes,
        gen,
        event.order_id,
        recorded,
        moment="inventory released",
        reservation={"status": "released"},
    )


@handlers.on(ReservationCommitted)
def committed(
    event: ReservationCommitted, writes: WriteBatch, gen: int, recorded: RecordedEvent
) -> None:
    _change(
        writes,
        gen,
        event.order_id,
        recorded,
        moment="inventory committed",
        # A shipment's part: the rest of the order's stock is still set aside for it.
        reservation={"status": "committed" if event.complete else "partially_committed"},
    )


@handlers.on(PaymentRequested)
def payment_requested(
    event: PaymentRequested, writes: WriteBatch, gen: int, recorded: RecordedEvent
) -> None:
    payment = {"status": "requested", "attempt": event.attempt, "amount": to_data(event.amount)}
    _change(writes, gen, event.order_id, recorded, moment="payment requested", payment=payment)


@handlers.on(PaymentPending)
def payment_pending(
    event: PaymentPending, writes: WriteBatch, gen: int, recorded: RecordedEvent
) -> None:
    payment = {
        "status": "pending",
        "reference": event.provider_reference,
        "amount": to_data(event.amount),
    }
    _change(writes, gen, event.order_id, recorded, moment="payment pending", payment=payment)


@handlers.on(PaymentSucceeded)
def paid(event: PaymentSucceeded, writes: WriteBatch, gen: int, recorded: RecordedEvent) -> None:
    payment = {
        "status": "succeeded",
        "reference": event.provider_reference,
        "amount": to_data(event.amount),
    }
    _change(writes, gen, event.order_id, recorded, moment="payment succeeded", payment=payment)


@handlers.on(PaymentFailed)
def payment_failed(
    event: PaymentFailed, writes: WriteBatch, gen: int, recorded: RecordedEvent
) -> None:
    payment = {"status": "failed", "reason": event.reason, "amount": to_data(event.amount)}
    _change(writes, gen, event.order_id, recorded, moment="payment failed", payment=payment)


@handlers.on(PaymentRefunded)
def refunded(event: PaymentRefunded, writes: WriteBatch, gen: int, recorded: RecordedEvent) -> None:
    payment = {
        "status": "refunded" if event.fully_refunded else "partially_refunded",
        "refund_reference": event.provider_reference,
        "refund_reason": event.reason,
        "amount": to_data(event.amount),
    }
    # An event of before partial refunds has no total: its amount was all of it.
    refunded_total = event.refunded_total or event.amount
    if event.fully_refunded:
        _change(
            writes,
            gen,
            event.order_id,
            recorded,
            moment="payment refunded",
            status="refunded",
            unless="cancelled",
            payment=payment,
            refunded_total=to_data(refunded_total),
        )
    else:
        _change(
            writes,
            gen,
            event.order_id,
            recorded,
            moment="payment partly refunded",
            payment=payment,
            refunded_total=to_data(refunded_total),
        )
    refund = {
        "refund_id": event.refund_id,
        "amount": to_data(event.amount),
        "reason": event.reason,
        "reference": event.provider_reference,
        "at": recorded.metadata.occurred_at.isoformat(),
    }
    writes.collector(Documents).append(gen, event.order_id, "refunds", refund)


@handlers.on(PaymentAbandoned)
def payment_abandoned(
    event: PaymentAbandoned, writes: WriteBatch, gen: int, recorded: RecordedEvent
) -> None:
    payment = {"status": "abandoned", "reason": event.reason, "amount": to_data(event.amount)}
    _change(writes, gen, event.order_id, recorded, moment="payment abandoned", payment=payment)


@handlers.on(PaymentCancellationRequested)
def payment_cancelling(
    event: PaymentCancellationRequested, writes: WriteBatch, gen: int, recorded: RecordedEvent
) -> None:
    payment = {
        "status": "cancelling",
        "reference": event.provider_reference,
        "reason": event.reason,
        "amount": to_data(event.amount),
    }
    _change(writes, gen, event.order_id, recorded, moment="payment cancelling", payment=payment)


@handlers.on(RefundRequested)
def refund_requested(
    event: RefundRequested, writes: WriteBatch, gen: int, recorded: RecordedEvent
) -> None:
    payment = {
        "status": "refunding",
        "refund_id": event.refund_id,
        "refund_reason": event.reason,
        "amount": to_data(event.amount),
    }
    _change(writes, gen, event.order_id, recorded, moment="refund requested", payment=payment)


@handlers.on(RefundFailed)
def refund_failed(
    event: RefundFailed, writes: WriteBatch, gen: int, recorded: RecordedEvent
) -> None:
    # Earlier refunds still stand: a refused one after them leaves the payment part refunded.
    earlier = event.refunded_total is not None and event.refunded_total.amount > 0
    payment = {
        "status": "partially_refunded" if earlier else "succeeded",
        "refund_failure": event.reason,
        "amount": to_data(event.amount),
    }
    _change(writes, gen, event.order_id, recorded, moment="refund refused", payment=payment)


def _moment(what: str, status: str | None, recorded: RecordedEvent) -> dict[str, Any]:
    return {
        "what": what,
        "status": status,
        "event": recorded.type,
        "at": recorded.metadata.occurred_at.isoformat(),
    }


def _change(
    writes: WriteBatch,
    gen: int,
    order_id: str,
    recorded: RecordedEvent,
    *,
    moment: str,
    status: str | None = None,
    unless: str | None = None,
    **fields: Any,
) -> None:
    """Merge `fields` into the order's document, set its status (unless it is `unless`)
    and add a timeline moment."""
    writes.collector(Documents).change(
        gen,
        order_id,
        dict(fields),
        _moment(moment, status, recorded),
        status,
        recorded.metadata.occurred_at.isoformat(),
        unless=unless,
    )


def projection(mode: Mode = "async") -> PostgresProjection:
    return PostgresProjection("order_detail", ["order_details"], handlers, mode, version=VERSION)
