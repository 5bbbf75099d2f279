"""Order list in Redis: per customer, per status and global, newest first.

Keys of generation G live under `rm:order_list:G:`: a hash per order with its
summary, and sorted sets (`all`, `customer:<id>`, `status:<status>`) scored by
the log position of the order's OrderPlaced, which orders them newest first
and makes a unique, stable pagination cursor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from redis import Redis
from redis.client import Pipeline
from sqlalchemy import Connection

from kernel.event_store import Checkpoint, RecordedEvent
from kernel.redis_subscriber import RedisSubscriber
from orders.events import OrderCancelled, OrderConfirmed, OrderPlaced, OrderShipped
from projections import generations
from projections.projection import Mode

PLACED = OrderPlaced.__name__
NEW_STATUS = {
    OrderConfirmed.__name__: "confirmed",
    OrderCancelled.__name__: "cancelled",
    OrderShipped.__name__: "shipped",
}


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


class OrderListGeneration(RedisSubscriber):
    def __init__(self, redis: Redis, generation: int) -> None:
        self.keys = Keys(prefix(generation))
        super().__init__(redis, self.keys.checkpoint())
        self.generation = generation
        self.name = f"order_list@{generation}"
        self.event_types = frozenset({PLACED, *NEW_STATUS})

    def checkpoint(self, conn: Connection | None = None) -> Checkpoint:
        if conn is not None:
            with conn.begin():
                generations.ensure_live(conn, "order_list", self.generation)
        return super().checkpoint(conn)

    def load(self, redis: Pipeline, events: Sequence[RecordedEvent]) -> dict[str, dict[str, str]]:
        """Current status, customer and score of the orders whose status changes."""
        changing = sorted({e.data["order_id"] for e in events if e.type in NEW_STATUS})
        # One round trip for all of them, on a pipeline of its own: the watching one
        # would send each read alone. Still safe: every write here moves the watched
        # checkpoint, so a change since the WATCH fails the EXEC all the same.
        reads = self.redis.pipeline(transaction=False)
        for order_id in changing:
            reads.hmget(self.keys.order(order_id), "status", "customer_id", "seq")
        found = {}
        for order_id, reply in zip(changing, reads.execute() if changing else [], strict=True):
            status, customer_id, seq = _text(reply)
            if status is not None and customer_id is not None and seq is not None:
                found[order_id] = {"status": status, "customer_id": customer_id, "seq": seq}
        return found

    def write(
        self, pipe: Pipeline, events: Sequence[RecordedEvent], loaded: dict[str, dict[str, str]]
    ) -> None:
        for recorded in events:
            if recorded.type == PLACED:
                event = recorded.event
                assert isinstance(event, OrderPlaced)
                summary: dict[Any, str | int] = {
                    "order_id": event.order_id,
                    "customer_id": event.customer_id,
                    "status": "pending",
                    "total": event.total.amount,
                    "currency": event.total.currency,
                    "item_count": sum(line.quantity for line in event.lines),
                    "placed_at": recorded.metadata.occurred_at.isoformat(),
                    "seq": recorded.position,
                }
                pipe.hset(self.keys.order(event.order_id), mapping=summary)
                lists = (
                    self.keys.everyone(),
                    self.keys.customer(event.customer_id),
                    self.keys.status("pending"),
                )
                for key in lists:
                    pipe.zadd(key, {event.order_id: recorded.position})
                loaded[event.order_id] = {
                    "status": "pending",
                    "customer_id": event.customer_id,
                    "seq": str(recorded.position),
                }
            elif recorded.type in NEW_STATUS:
                order_id = recorded.data["order_id"]
                current = loaded.get(order_id)
                if current is None:
                    continue  # an order this list never saw placed
                status = NEW_STATUS[recorded.type]
                pipe.zrem(self.keys.status(current["status"]), order_id)
                pipe.zadd(self.keys.status(status), {order_id: int(current["seq"])})
                pipe.hset(self.keys.order(order_id), "status", status)
                current["status"] = status


class OrderList:
    """The order list read model (Redis)."""

    name = "order_list"
    store: Literal["redis"] = "redis"

    def __init__(self, redis: Redis, mode: Mode = "async") -> None:
        if mode == "sync":
            raise ValueError("order_list cannot be synchronous: it lives in Redis")
        self.redis = redis
        self.mode: Mode = mode

    def subscriber(self, generation: int) -> OrderListGeneration:
        return OrderListGeneration(self.redis, generation)

    def purge(self, conn: Connection, generation: int) -> None:
        batch = []
        for key in self.redis.scan_iter(match=prefix(generation) + "*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                self.redis.delete(*batch)
                batch.clear()
        if batch:
            self.redis.delete(*batch)


def _text(values: Any) -> list[str | None]:
    return [v.decode() if isinstance(v, bytes) else v for v in values]
