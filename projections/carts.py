"""Carts in Redis: one JSON document per cart, as its shopper left it.

Keys of generation G live under `rm:carts:G:`: `cart:<cart_id>` holds the cart's lines
(sku, name, quantity and the unit price seen when added), its coupon, whose it is, and
the version of the cart's stream it reflects. A batch's documents and the checkpoint are
written in one MULTI/EXEC (kernel.redis_subscriber); an event at or below a document's
version changes nothing, so a replayed or parked batch is harmless.

A key expires CART_TTL after the cart's last event (that event's own time, so a rebuild
expires old carts at once, as they did the first time): a cart left alone takes no room
in Redis. The cart itself empties on its next command (CartExpired), which writes a fresh
document.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from redis import Redis
from redis.client import Pipeline
from sqlalchemy import Connection

from kernel.driver import autocommit
from kernel.event_store import Checkpoint, RecordedEvent
from kernel.handlers import EventHandlers
from kernel.redis_subscriber import RedisSubscriber
from orders.events import (
    CartCheckedOut,
    CartExpired,
    CartItemAdded,
    CartItemQuantityChanged,
    CartItemRemoved,
    CartMergedInto,
    CartsMerged,
    CartStarted,
    CouponApplied,
    CouponRemoved,
)
from projections import generations
from projections.projection import Mode, delete_keys, forget_subscription

VERSION = 1
"""Bump it with any change that alters what this read model stores: workers running the new
code rebuild it (docs/DESIGN.md, "Read model versions")."""

GRACE = timedelta(minutes=1)
"""A key outlives the cart's time to live by this much: the query says a cart expired
(projections.queries.CartView), so the key never vanishes before the cart would expire."""


def prefix(generation: int) -> str:
    return f"rm:carts:{generation}:"


def cart_key(generation: int, cart_id: str) -> str:
    return f"{prefix(generation)}cart:{cart_id}"


Document = dict[str, Any]
"""A cart as stored: cart_id, customer_id, lines (each sku, name, quantity, unit_price
{amount, currency}), coupon_code, merged_into, last_order_id, version, updated_at."""


def empty(cart_id: str, customer_id: str | None = None) -> Document:
    return {
        "cart_id": cart_id,
        "customer_id": customer_id,
        "lines": [],
        "coupon_code": None,
        "merged_into": None,
        "last_order_id": None,
        "version": 0,
        "updated_at": None,
    }


handlers: EventHandlers[[Document], None] = EventHandlers()


@handlers.on(CartStarted)
def started(event: CartStarted, cart: Document) -> None:
    cart["customer_id"] = event.customer_id


@handlers.on(CartItemAdded)
def item_added(event: CartItemAdded, cart: Document) -> None:
    price = {"amount": event.unit_price.amount, "currency": event.unit_price.currency}
    for line in cart["lines"]:
        if line["sku"] == event.sku:  # the quantity adds up; the price is the one seen now
            line.update(quantity=line["quantity"] + event.quantity, unit_price=price)
            line["name"] = event.name
            return
    cart["lines"].append(
        {"sku": event.sku, "name": event.name, "quantity": event.quantity, "unit_price": price}
    )


@handlers.on(CartItemQuantityChanged)
def quantity_changed(event: CartItemQuantityChanged, cart: Document) -> None:
    for line in cart["lines"]:
        if line["sku"] == event.sku:
            line["quantity"] = event.quantity


@handlers.on(CartItemRemoved)
def item_removed(event: CartItemRemoved, cart: Document) -> None:
    cart["lines"] = [line for line in cart["lines"] if line["sku"] != event.sku]


@handlers.on(CouponApplied)
def coupon_applied(event: CouponApplied, cart: Document) -> None:
    cart["coupon_code"] = event.code


@handlers.on(CouponRemoved)
def coupon_removed(event: CouponRemoved, cart: Document) -> None:
    cart["coupon_code"] = None


@handlers.on(CartsMerged)
def merged(event: CartsMerged, cart: Document) -> None:
    for line in event.lines:
        price = {"amount": line.unit_price.amount, "currency": line.unit_price.currency}
        held = next((mine for mine in cart["lines"] if mine["sku"] == line.sku), None)
        if held is None:  # a line the cart had keeps its own name and price
            cart["lines"].append(
                {"sku": line.sku, "name": line.name, "quantity": line.quantity,
                 "unit_price": price}
            )  # fmt: skip
        else:
            held["quantity"] += line.quantity
    cart["coupon_code"] = cart["coupon_code"] or event.coupon_code


@handlers.on(CartMergedInto)
def merged_into(event: CartMergedInto, cart: Document) -> None:
    cart.update(lines=[], coupon_code=None, merged_into=event.into_cart_id)


@handlers.on(CartCheckedOut)
def checked_out(event: CartCheckedOut, cart: Document) -> None:
    cart.update(lines=[], coupon_code=None, last_order_id=event.order_id)


@handlers.on(CartExpired)
def expired(event: CartExpired, cart: Document) -> None:
    cart.update(lines=[], coupon_code=None)
    if event.customer_id is not None:  # the document may have expired with its owner
        cart["customer_id"] = event.customer_id


def fold(cart: Document, recorded: RecordedEvent) -> bool:
    """Apply one event of the cart's stream to its document; False (unchanged) for an
    event the document reflects already."""
    if recorded.version <= cart["version"]:
        return False
    handlers.handle(recorded.event, cart)
    cart["version"] = recorded.version
    cart["updated_at"] = recorded.event.at  # type: ignore[attr-defined]  # every cart event's
    return True


class CartsGeneration(RedisSubscriber):
    def __init__(self, redis: Redis, generation: int, ttl: timedelta) -> None:
        super().__init__(redis, f"{prefix(generation)}checkpoint")
        self.generation = generation
        self.ttl = ttl
        self.name = f"carts@{generation}"
        self.event_types = handlers.types

    def checkpoint(self, conn: Connection | None = None, partition: int = 0) -> Checkpoint:
        if conn is not None:
            with autocommit(conn):
                generations.ensure_live(conn, "carts", self.generation)
        return super().checkpoint(conn, partition)

    def load(self, redis: Pipeline, events: Sequence[RecordedEvent]) -> dict[str, Document]:
        """The documents the events change, folded: read in one round trip (on a pipeline
        of its own, as the order list's; the watched checkpoint still guards the write)."""
        events = [recorded for recorded in events if handlers.handles(recorded.type)]
        cart_ids = sorted({_cart_id(recorded) for recorded in events})
        if not cart_ids:
            return {}
        reads = self.redis.pipeline(transaction=False)
        for cart_id in cart_ids:
            reads.get(cart_key(self.generation, cart_id))
        stored = dict(zip(cart_ids, reads.execute(), strict=True))
        documents = {
            cart_id: json.loads(raw) if raw else empty(cart_id) for cart_id, raw in stored.items()
        }
        changed: dict[str, Document] = {}
        for recorded in events:
            cart_id = _cart_id(recorded)
            if fold(documents[cart_id], recorded):
                changed[cart_id] = documents[cart_id]
        return changed

    def write(
        self, pipe: Pipeline, events: Sequence[RecordedEvent], loaded: dict[str, Document]
    ) -> None:
        for cart_id, document in loaded.items():
            expires = datetime.fromisoformat(document["updated_at"]) + self.ttl + GRACE
            pipe.set(
                cart_key(self.generation, cart_id),
                json.dumps(document),
                pxat=int(expires.timestamp() * 1000),
            )


def _cart_id(recorded: RecordedEvent) -> str:
    cart_id: str = recorded.event.cart_id  # type: ignore[attr-defined]  # every cart event's
    return cart_id


class Carts:
    """The carts read model (Redis)."""

    name = "carts"
    store: Literal["redis"] = "redis"

    def __init__(self, redis: Redis, ttl: timedelta, mode: Mode = "async") -> None:
        if mode == "sync":
            raise ValueError("carts cannot be synchronous: it lives in Redis")
        self.redis = redis
        self.ttl = ttl
        self.mode: Mode = mode
        self.version = VERSION

    def subscriber(self, generation: int) -> CartsGeneration:
        return CartsGeneration(self.redis, generation, self.ttl)

    def purge(self, conn: Connection, generation: int) -> None:
        forget_subscription(conn, self.subscriber(generation).name)
        delete_keys(self.redis, prefix(generation) + "*")
