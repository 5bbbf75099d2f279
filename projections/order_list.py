"""Order list in Redis: per customer, per status and global, newest first.

Keys of generation G live under `rm:order_list:G:`: a hash per order with its
summary, and sorted sets (`all`, `customer:<id>`, `status:<status>`) scored by
the log position of the order's OrderPlaced, which orders them newest first
and makes a unique, stable pagination cursor.

A shipment makes the order `partially_shipped` until OrderShipped (after the shipment
with its last units) makes it `shipped`. Returns leave the status alone: the list does
not read them (the order's detail shows them).

A full refund makes the order `refunded` (a shipped order sent back, or a confirmed one
the saga is about to cancel), unless the order is cancelled already: a cancelled order
stays cancelled, its refund is part of cancelling it. A partial refund (a return's)
leaves the status alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from redis import Redis
from redis.client import Pipeline
from sqlalchemy import Connection

from kernel.driver import autocommit
from kernel.event_store import Checkpoint, RecordedEvent
from kernel.handlers import EventHandlers
from kernel.redis_subscriber import RedisSubscriber
from orders.events import (
    OrderCancelled,
    OrderConfirmed,
    OrderPlaced,
    OrderShipped,
    ShipmentDispatched,
)
from payments.events import PaymentRefunded
from projections import generations
from projections.projection import Mode, delete_keys, forget_subscription

VERSION = 2  # 2: partially_shipped, and partial refunds leave the status alone
"""Bump it with any change that alters what this read model stores: workers running the new
code rebuild it (docs/DESIGN.md, "Read model versions")."""


def prefix(generation: int) -> str:
    return f"rm:order_list:{generation}:"


@dataclass
class Keys:
    prefix: str

    def order(self, order_id: str) -> str:
        return f"{self.prefix}order:{order_id}"

    def everyone(self) -> str:
        return f"{self.prefix}all"

    def customer(self, customer_id: str) -> str:
        return f"{self.prefix}customer:{customer_id}"

    def status(self, status: str) -> str:
        return f"{self.prefix}status:{status}"

    def checkpoint(self) -> str:
        return f"{self.prefix}checkpoint"


Summary = dict[Any, str | int]
"""An order's hash in the list (SUMMARY_FIELDS of projections.queries); the keys are str,
typed Any because redis-py's `hset` wants a mapping keyed by any of its key types."""


@dataclass(frozen=True, slots=True)
class Move:
    """A status change: to `status`, unless the order's status is then `unless`."""

    status: str
    unless: str | None = None


@dataclass
class Listed:
    """Where an order stands in the list: its status, customer and score."""

    status: str
    customer_id: str
    seq: int


class OrderListWrites:
    """A batch's changes to one generation of the list, in log order.

    Handlers only note changes. `read` then fetches, in one round trip, where the orders
    whose status changes stand, and `queue` turns the changes into writes on the batch's
    MULTI: a status change moves the order from its current status's set to the new one.
    """

    def __init__(self, keys: Keys) -> None:
        self.keys = keys
        self._changes: list[tuple[str, Summary | Move]] = []  # order id, summary or move
        self._listed: dict[str, Listed] = {}

    def place(self, summary: Summary) -> None:
        self._changes.append((str(summary["order_id"]), summary))

    def change_status(self, order_id: str, status: str, *, unless: str | None = None) -> None:
        self._changes.append((order_id, Move(status, unless)))

    def read(self, redis: Redis) -> None:
        changing = sorted(
            {order_id for order_id, change in self._changes if isinstance(change, Move)}
        )
        if not changing:
            return
        # On a pipeline of its own: the watching one would send each read alone. Still
        # safe: every write here moves the watched checkpoint, so a change since the
        # WATCH fails the EXEC all the same.
        reads = redis.pipeline(transaction=False)
        for order_id in changing:
            reads.hmget(self.keys.order(order_id), "status", "customer_id", "seq")
        for order_id, reply in zip(changing, reads.execute(), strict=True):
            status, customer_id, seq = _text(reply)
            if status is not None and customer_id is not None and seq is not None:
                self._listed[order_id] = Listed(status, customer_id, int(seq))

    def queue(self, pipe: Pipeline) -> None:
        for order_id, change in self._changes:
            if isinstance(change, Move):
                self._move(pipe, order_id, change)
            else:
                self._add(pipe, change)

    def _add(self, pipe: Pipeline, summary: Summary) -> None:
        order_id, customer_id, seq = (
            str(summary["order_id"]), str(summary["customer_id"]), int(summary["seq"])
        )  # fmt: skip
        pipe.hset(self.keys.order(order_id), mapping=summary)
        for key in (
            self.keys.everyone(),
            self.keys.customer(customer_id),
            self.keys.status("pending"),
        ):
            pipe.zadd(key, {order_id: seq})
        self._listed[order_id] = Listed("pending", customer_id, seq)

    def _move(self, pipe: Pipeline, order_id: str, move: Move) -> None:
        listed = self._listed.get(order_id)
        if listed is None:
            return  # an order this list never saw placed
        if listed.status == move.unless:
            return
        status = move.status
        pipe.zrem(self.keys.status(listed.status), order_id)
        pipe.zadd(self.keys.status(status), {order_id: listed.seq})
        pipe.hset(self.keys.order(order_id), "status", status)
        listed.status = status


handlers: EventHandlers[[OrderListWrites, RecordedEvent], None] = EventHandlers()


@handlers.on(OrderPlaced)
def placed(event: OrderPlaced, writes: OrderListWrites, recorded: RecordedEvent) -> None:
    writes.place(
        {
            "order_id": event.order_id,
            "customer_id": event.customer_id,
            "status": "pending",
            "total": event.total.amount,
            "currency": event.total.currency,
            "item_count": sum(line.quantity for line in event.lines),
            "placed_at": recorded.metadata.occurred_at.isoformat(),
            "seq": recorded.position,
        }
    )


@handlers.on(OrderConfirmed)
def confirmed(event: OrderConfirmed, writes: OrderListWrites, recorded: RecordedEvent) -> None:
    writes.change_status(event.order_id, "confirmed")


@handlers.on(OrderCancelled)
def cancelled(event: OrderCancelled, writes: OrderListWrites, recorded: RecordedEvent) -> None:
    writes.change_status(event.order_id, "cancelled")


@handlers.on(ShipmentDispatched)
def shipment_dispatched(
    event: ShipmentDispatched, writes: OrderListWrites, recorded: RecordedEvent
) -> None:
    writes.change_status(event.order_id, "partially_shipped")


@handlers.on(OrderShipped)
def shipped(event: OrderShipped, writes: OrderListWrites, recorded: RecordedEvent) -> None:
    writes.change_status(event.order_id, "shipped")


@handlers.on(PaymentRefunded)
def refunded(event: PaymentRefunded, writes: OrderListWrites, recorded: RecordedEvent) -> None:
    if event.fully_refunded:
        writes.change_status(event.order_id, "refunded", unless="cancelled")


class OrderListGeneration(RedisSubscriber):
    def __init__(self, redis: Redis, generation: int) -> None:
        self.keys = Keys(prefix(generation))
        super().__init__(redis, self.keys.checkpoint())
        self.generation = generation
        self.name = f"order_list@{generation}"
        self.event_types = handlers.types

    def checkpoint(self, conn: Connection | None = None, partition: int = 0) -> Checkpoint:
        if conn is not None:
            with autocommit(conn):
                generations.ensure_live(conn, "order_list", self.generation)
        return super().checkpoint(conn, partition)

    def load(self, redis: Pipeline, events: Sequence[RecordedEvent]) -> OrderListWrites:
        writes = OrderListWrites(self.keys)
        for recorded in events:
            handler = handlers.of(recorded.type)
            if handler is not None:
                handler(recorded.event, writes, recorded)
        writes.read(self.redis)
        return writes

    def write(
        self, pipe: Pipeline, events: Sequence[RecordedEvent], loaded: OrderListWrites
    ) -> None:
        loaded.queue(pipe)


class OrderList:
    """The order list read model (Redis)."""

    name = "order_list"
    store: Literal["redis"] = "redis"

    def __init__(self, redis: Redis, mode: Mode = "async") -> None:
        if mode == "sync":
            raise ValueError("order_list cannot be synchronous: it lives in Redis")
        self.redis = redis
        self.mode: Mode = mode
        self.version = VERSION

    def subscriber(self, generation: int) -> OrderListGeneration:
        return OrderListGeneration(self.redis, generation)

    def purge(self, conn: Connection, generation: int) -> None:
        forget_subscription(conn, self.subscriber(generation).name)
        delete_keys(self.redis, prefix(generation) + "*")


def _text(values: Any) -> list[str | None]:
    return [v.decode() if isinstance(v, bytes) else v for v in values]
