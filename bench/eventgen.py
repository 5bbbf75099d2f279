"""Realistic event logs, written fast with COPY instead of through the command bus.

The events are the project's own dataclasses, encoded by its registry, with the
metadata its unit of work writes: customers register, orders are placed (1-3
priced lines), stock is reserved per SKU, paid, confirmed; a quarter ship
(stock committed), a tenth are cancelled after payment (refund, stock released).
Stream versions are consistent, so every read model applies them as it would
the real thing. About 7.5 events per order.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from inventory.events import (
    InventoryReleased,
    InventoryReserved,
    ProductAdded,
    ReservationCommitted,
    StockCommitted,
    StockLine,
    StockReleased,
    StockReserved,
)
from kernel.horizon import DECLARE_SQL
from kernel.messages import Event, Metadata
from kernel.money import Money
from kernel.partitions import slot_of
from kernel.registry import EventRegistry
from orders.events import (
    Address,
    CancelledBy,
    CustomerRegistered,
    OrderCancelled,
    OrderConfirmed,
    OrderPlaced,
    OrderShipped,
    PricedLine,
)
from payments.events import PaymentRefunded, PaymentSucceeded
from pricing.engine import ShippingPolicy

SHIPPING = ShippingPolicy()  # the pricing context's default fee and threshold


def catalog(products: int) -> tuple[tuple[str, str, int], ...]:
    """`products` generated products: (sku, name, unit price in cents)."""
    return tuple(
        (f"GEN-{n:03d}", f"Generated product {n}", 500 + 150 * n) for n in range(1, products + 1)
    )


CATALOG = catalog(40)
ADDRESS = Address("Ada Lovelace", "1 Main St", "London", "N1 1AA", "GB")
NONE = Money(0, "EUR")  # generated orders are untaxed and undiscounted
COLUMNS = (
    "stream_id, stream_type, version, type, schema_version, data, metadata, partition_key, slot"
)

Row = tuple[str, str, int, str, int, str, str, str, int]
"""(stream_id, stream_type, version, type, schema_version, data json, metadata json,
partition key, slot)."""


@dataclass
class Generated:
    """One event as both the project and the peer library store it."""

    stream_id: str
    stream_type: str
    version: int
    type: str
    schema_version: int
    data: dict[str, Any]
    metadata: dict[str, Any]

    def partition_key(self) -> str:
        """As the shop's event store keys it (config.bootstrap)."""
        if self.stream_type in ("order", "reservation", "payment"):
            return str(self.data.get("order_id") or self.stream_id)
        return self.stream_id

    def row(self) -> Row:
        return (
            self.stream_id,
            self.stream_type,
            self.version,
            self.type,
            self.schema_version,
            json.dumps(self.data),
            json.dumps(self.metadata),
            key := self.partition_key(),
            slot_of(key),
        )


@dataclass
class Generator:
    registry: EventRegistry
    seed: int = 7
    customers: int = 2000
    start: datetime = field(default_factory=lambda: datetime(2026, 10, 1, tzinfo=UTC))
    _stock: dict[str, list[int]] = field(default_factory=dict)  # sku -> [version, on_hand, avail]
    _customers: list[str] = field(default_factory=list)
    _rng: random.Random = field(default_factory=random.Random)
    _moment: datetime | None = None

    def events(self, count: int) -> Iterator[Generated]:
        """At least `count` events (whole orders), catalog and customers first."""
        rng = self._rng = random.Random(self.seed)
        produced = 0
        for sku, name, price in CATALOG:
            self._stock[sku] = [1, 10**9, 10**9]
            yield self._make(
                f"stock_item-{sku}",
                "stock_item",
                1,
                ProductAdded(sku, name, Money(price, "EUR"), 10**9),
                self._meta("seed", self.start),
            )
            produced += 1
        customer_ids = []
        for n in range(self.customers):
            customer_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            customer_ids.append(customer_id)
            self._customers.append(customer_id)
            event = CustomerRegistered(customer_id, f"customer{n}@example.com", f"Customer {n}")
            yield self._make(
                f"customer-{customer_id}", "customer", 1, event, self._meta("seed", self.start)
            )
            produced += 1
        self._moment = self.start
        yield from self.more_orders(count - produced)

    def more_orders(self, count: int) -> Iterator[Generated]:
        """At least `count` more events (whole orders), continuing the same log."""
        rng = self._rng
        produced = 0
        while produced < count:
            self._moment = (self._moment or self.start) + timedelta(seconds=rng.uniform(0.5, 20))
            for event in self._order(rng, rng.choice(self._customers), self._moment):
                produced += 1
                yield event

    def _order(self, rng: random.Random, customer_id: str, at: datetime) -> Iterator[Generated]:
        order_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        correlation = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        actor = f"customer:{customer_id}"
        picked = rng.sample(CATALOG, rng.randint(1, 3))
        lines = tuple(
            PricedLine(
                sku,
                name,
                qty,
                Money(price, "EUR"),
                Money(price * qty, "EUR"),
                NONE,
                NONE,
                Money(price * qty, "EUR"),
            )
            for (sku, name, price), qty in ((p, rng.randint(1, 3)) for p in picked)
        )
        subtotal = sum(line.line_total.amount for line in lines)
        placed = OrderPlaced(
            order_id, customer_id, lines, Money(subtotal, "EUR"), Money(499, "EUR"),
            Money(subtotal + 499, "EUR"), ADDRESS, "pm_card_visa", (), NONE, (), NONE, ADDRESS,
        )  # fmt: skip
        meta = self._meta(actor, at, correlation)
        yield self._make(f"order-{order_id}", "order", 1, placed, meta)
        saga = "saga:order_fulfillment"
        stock_lines = tuple(StockLine(line.sku, line.quantity) for line in lines)
        at += timedelta(milliseconds=40)
        for line in lines:
            yield self._stock_event(
                StockReserved, line.sku, order_id, line.quantity, -1, 0, saga, at, correlation
            )
        yield self._make(
            f"reservation-{order_id}", "reservation", 1, InventoryReserved(order_id, stock_lines),
            self._meta(saga, at, correlation),
        )  # fmt: skip
        at += timedelta(milliseconds=40)
        total = Money(subtotal + 499, "EUR")
        paid = PaymentSucceeded(order_id, total, f"ch_{order_id[:12]}")
        yield self._make(
            f"payment-{order_id}", "payment", 1, paid, self._meta(saga, at, correlation)
        )
        at += timedelta(milliseconds=40)
        yield self._make(
            f"order-{order_id}",
            "order",
            2,
            OrderConfirmed(order_id),
            self._meta(saga, at, correlation),
        )
        fate = rng.random()
        if fate < 0.25:
            at += timedelta(hours=rng.uniform(1, 48))
            shipped = OrderShipped(order_id, f"TRK{rng.randint(10**8, 10**9)}")
            yield self._make(
                f"order-{order_id}", "order", 3, shipped, self._meta("admin", at, correlation)
            )
            for line in lines:
                yield self._stock_event(
                    StockCommitted, line.sku, order_id, line.quantity, 0, -1, saga, at, correlation
                )
            done = ReservationCommitted(order_id, stock_lines)
            meta = self._meta(saga, at, correlation)
            yield self._make(f"reservation-{order_id}", "reservation", 2, done, meta)
        elif fate < 0.35:
            at += timedelta(hours=rng.uniform(1, 24))
            cancel = OrderCancelled(order_id, "changed my mind", CancelledBy.CUSTOMER, "confirmed")
            yield self._make(
                f"order-{order_id}", "order", 3, cancel, self._meta(actor, at, correlation)
            )
            refund = PaymentRefunded(order_id, total, "order cancelled", f"re_{order_id[:12]}")
            yield self._make(
                f"payment-{order_id}", "payment", 2, refund, self._meta(saga, at, correlation)
            )
            for line in lines:
                yield self._stock_event(
                    StockReleased, line.sku, order_id, line.quantity, 1, 0, saga, at, correlation
                )
            released = InventoryReleased(order_id, stock_lines)
            meta = self._meta(saga, at, correlation)
            yield self._make(f"reservation-{order_id}", "reservation", 2, released, meta)

    def _stock_event(
        self, cls: Any, sku: str, order_id: str, quantity: int, avail_sign: int, hand_sign: int,
        actor: str, at: datetime, correlation: str,
    ) -> Generated:  # fmt: skip
        state = self._stock[sku]
        state[0] += 1
        state[1] += hand_sign * quantity
        state[2] += avail_sign * quantity
        event = cls(sku, order_id, quantity, state[1], state[2])
        return self._make(
            f"stock_item-{sku}", "stock_item", state[0], event, self._meta(actor, at, correlation)
        )

    def _meta(self, actor: str, at: datetime, correlation: str = "") -> Metadata:
        return Metadata(
            message_id=str(uuid.uuid4()), correlation_id=correlation, actor=actor, occurred_at=at
        )

    def _make(
        self, stream_id: str, stream_type: str, version: int, event: Event, metadata: Metadata
    ) -> Generated:
        type_name, schema_version, data = self.registry.encode(event)
        return Generated(
            stream_id, stream_type, version, type_name, schema_version, data, metadata.to_json()
        )


def placed_orders(
    registry: EventRegistry,
    count: int,
    catalog: tuple[tuple[str, str, int], ...] = CATALOG,
    customers: int = 50,
    seed: int = 11,
) -> Iterator[Generated]:
    """`count` orders just placed and nothing after: an `OrderPlaced` each, version 1 of
    its own stream `order-<id>`, as `PlaceOrder` records it: 1-3 lines of `catalog`
    products `(sku, name, unit price)` (which must exist, with the stock), 1-3 of each,
    priced in EUR, the domain's shipping fee, `pm_card_visa`, each event with its own
    message id. What the saga starts from: the backlog the API leaves when no worker runs."""
    rng = random.Random(seed)
    people = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(customers)]
    for _ in range(count):
        order_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        customer_id = rng.choice(people)
        picked = rng.sample(catalog, rng.randint(1, min(3, len(catalog))))
        lines = tuple(
            PricedLine(
                sku,
                name,
                qty,
                Money(price, "EUR"),
                Money(price * qty, "EUR"),
                NONE,
                NONE,
                Money(price * qty, "EUR"),
            )
            for (sku, name, price), qty in ((p, rng.randint(1, 3)) for p in picked)
        )
        subtotal = sum(line.line_total.amount for line in lines)
        shipping = SHIPPING.charge(Money(subtotal, "EUR")).amount
        placed = OrderPlaced(
            order_id, customer_id, lines, Money(subtotal, "EUR"), Money(shipping, "EUR"),
            Money(subtotal + shipping, "EUR"), ADDRESS, "pm_card_visa", (), NONE, (), NONE,
            ADDRESS,
        )  # fmt: skip
        type_name, schema_version, data = registry.encode(placed)
        metadata = Metadata(actor=f"customer:{customer_id}")
        yield Generated(
            f"order-{order_id}", "order", 1, type_name, schema_version, data, metadata.to_json()
        )


def preamble(generator: Generator) -> int:
    """How many events come before the first order (products, then customers)."""
    return len(CATALOG) + generator.customers


def copy_events(conninfo: str, events: Iterator[Generated], chunk: int = 20_000) -> int:
    """COPY the events into `events`, one transaction per chunk; returns how many."""
    written = 0
    with psycopg.connect(conninfo) as conn:
        pending = True
        while pending:
            pending = False
            conn.execute(DECLARE_SQL)  # readers must wait for these rows (kernel.horizon)
            with (
                conn.cursor() as cursor,
                cursor.copy(f"COPY events ({COLUMNS}) FROM STDIN") as copy,
            ):
                for n, event in enumerate(events, start=1):
                    copy.write_row(event.row())
                    written += 1
                    if n == chunk:
                        pending = True
                        break
            conn.commit()
    return written
