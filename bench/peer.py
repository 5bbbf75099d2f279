# The `eventsourcing` library is a bench-only dependency: where it is not installed
# (e.g. under `make test`), mypy sees its classes as Any.
# mypy: disable-error-code="misc,no-any-return,untyped-decorator,unused-ignore,call-arg"
"""The peer: the `eventsourcing` library (PyPI) on the same PostgreSQL server.

- `AppendPeer`: an application whose aggregate records one event per save, for the
  append benchmark (same payload as ours).
- `PeerShop` + `PeerOrderDetail`: the same generated log stored the library's way,
  and its projection runner maintaining an order-detail view comparable to ours
  (one JSON document per order with its timeline, the same SQL), tracked in the
  same transaction as each write, which is how the library's projections work.
"""

from __future__ import annotations

import json
import urllib.parse
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psycopg
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, DomainEvent, event
from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.projection import Projection, ProjectionRunner
from psycopg.sql import SQL, Identifier

from bench.eventgen import Generated

NAMESPACE = uuid.UUID("5b0f6f64-2a43-4a8a-9d7e-9a3f3f2b8c11")


def environment(database_url: str) -> dict[str, str]:
    url = urllib.parse.urlsplit(database_url.replace("postgresql+psycopg://", "postgresql://"))
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": url.path.lstrip("/"),
        "POSTGRES_HOST": url.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": url.username or "postgres",
        "POSTGRES_PASSWORD": url.password or "",
        "POSTGRES_POOL_SIZE": "2",
        "CREATE_TABLE": "y",
    }


# --- appends -------------------------------------------------------------------------


class BenchOrder(Aggregate):
    """One order-like aggregate; each change records one event carrying a payload."""

    def __init__(self, payload: dict[str, Any]) -> None:
        self.payload = payload

    @event("Changed")
    def change(self, payload: dict[str, Any]) -> None:
        self.payload = payload


class AppendPeer(Application[uuid.UUID]):
    name = "AppendPeer"


class PeerWriter:
    """Appends one event per transaction, five events per aggregate, like our writers."""

    def __init__(self, database_url: str, payload: dict[str, Any]) -> None:
        env = environment(database_url)
        env["CREATE_TABLE"] = "n"
        self.app = AppendPeer(env=env)
        self.payload = payload
        self.current: Any = None
        self.saved = 0

    def append_one(self) -> None:
        if self.current is None or self.saved % 5 == 0:
            self.current = BenchOrder(self.payload)
        else:
            self.current.change(self.payload)
        self.app.save(self.current)
        self.saved += 1

    def close(self) -> None:
        self.app.close()


def create_append_tables(database_url: str) -> None:
    AppendPeer(env=environment(database_url)).close()


# --- the generated log, stored the library's way --------------------------------------


class PeerEvent(DomainEvent):
    """A stored event of the generated log: our payload and metadata, as-is."""

    data: dict[str, Any]
    metadata: dict[str, Any]


_TYPES: dict[str, type[PeerEvent]] = {}


def peer_class(type_name: str) -> type[PeerEvent]:
    found = _TYPES.get(type_name)
    if found is None:
        found = type(type_name, (PeerEvent,), {"__module__": __name__, "__qualname__": type_name})
        globals()[type_name] = found
        _TYPES[type_name] = found
    return found


ORDER_DETAIL_TYPES = (
    "OrderPlaced", "OrderConfirmed", "OrderCancelled", "OrderShipped", "InventoryReserved",
    "InventoryReservationFailed", "InventoryReleased", "ReservationCommitted",
    "PaymentPending", "PaymentSucceeded", "PaymentFailed", "PaymentRefunded",
)  # fmt: skip
for _name in ORDER_DETAIL_TYPES:
    peer_class(_name)


class PeerShop(Application[uuid.UUID]):
    name = "PeerShop"


def copy_into_peer(database_url: str, events: Iterator[Generated], chunk: int = 20_000) -> int:
    """Store the generated events in PeerShop's table via the library's own mapper, by COPY."""
    app = PeerShop(env=environment(database_url))
    table = app.recorder.events_table_name  # type: ignore[attr-defined]
    conninfo = database_url.replace("postgresql+psycopg://", "postgresql://")
    written = 0
    try:
        with psycopg.connect(conninfo) as conn:
            pending = True
            while pending:
                pending = False
                statement = SQL(
                    "COPY {} (originator_id, originator_version, topic, state) FROM STDIN"
                ).format(Identifier(table))
                with conn.cursor() as cursor, cursor.copy(statement) as copy:
                    for n, generated in enumerate(events, start=1):
                        domain_event = peer_class(generated.type)(
                            originator_id=uuid.uuid5(NAMESPACE, generated.stream_id),
                            originator_version=generated.version,
                            timestamp=datetime.fromisoformat(generated.metadata["occurred_at"]),
                            data=generated.data,
                            metadata=generated.metadata,
                        )
                        stored = app.mapper.to_stored_event(domain_event)
                        copy.write_row(
                            (stored.originator_id, stored.originator_version, stored.topic,
                             stored.state)
                        )  # fmt: skip
                        written += 1
                        if n == chunk:
                            pending = True
                            break
                conn.commit()
    finally:
        app.close()
    return written


class PeerOrderDetails(PostgresTrackingRecorder):
    """The peer's materialised view: one document per order, the same SQL as ours."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {}.peer_order_details (order_id text PRIMARY KEY,"
                " customer_id text NOT NULL, status text NOT NULL, placed_at timestamptz,"
                " updated_at timestamptz, document jsonb NOT NULL)"
            ).format(Identifier(self.datastore.schema))
        )

    def placed(self, data: dict[str, Any], metadata: dict[str, Any], tracking: Tracking) -> None:
        at = metadata["occurred_at"]
        document = {
            "order_id": data["order_id"],
            "customer_id": data["customer_id"],
            "status": "pending",
            "lines": data["lines"],
            "subtotal": data["subtotal"],
            "shipping": data["shipping"],
            "total": data["total"],
            "shipping_address": data["shipping_address"],
            "item_count": sum(line["quantity"] for line in data["lines"]),
            "placed_at": at,
            "payment": {"status": "not_started"},
            "reservation": {"status": "not_started"},
            "tracking_number": None,
            "cancellation": None,
            "timeline": [{"what": "placed", "status": "pending", "event": "OrderPlaced", "at": at}],
        }
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                "INSERT INTO peer_order_details (order_id, customer_id, status, placed_at,"
                " updated_at, document) VALUES (%s, %s, 'pending', %s, %s, %s::jsonb)"
                " ON CONFLICT (order_id) DO NOTHING",
                (data["order_id"], data["customer_id"], at, at, json.dumps(document)),
            )
            self._insert_tracking(curs, tracking)

    def change(
        self,
        order_id: str,
        patch: dict[str, Any],
        moment: dict[str, Any],
        status: str | None,
        at: str,
        tracking: Tracking,
    ) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                "UPDATE peer_order_details SET document = (document || %s::jsonb)"
                " || jsonb_build_object('timeline', document -> 'timeline' || %s::jsonb),"
                " status = coalesce(%s, status), updated_at = %s WHERE order_id = %s",
                (json.dumps(patch), json.dumps([moment]), status, at, order_id),
            )
            self._insert_tracking(curs, tracking)


# (moment, status) and the document fields each event type changes.
CHANGES: dict[str, tuple[str, str | None]] = {
    "OrderConfirmed": ("confirmed", "confirmed"),
    "OrderCancelled": ("cancelled", "cancelled"),
    "OrderShipped": ("shipped", "shipped"),
    "InventoryReserved": ("inventory reserved", None),
    "InventoryReservationFailed": ("inventory short", None),
    "InventoryReleased": ("inventory released", None),
    "ReservationCommitted": ("inventory committed", None),
    "PaymentPending": ("payment pending", None),
    "PaymentSucceeded": ("payment succeeded", None),
    "PaymentFailed": ("payment failed", None),
    "PaymentRefunded": ("payment refunded", None),
}


def _patch(type_name: str, data: dict[str, Any]) -> dict[str, Any]:
    if type_name == "OrderCancelled":
        return {"cancellation": {"reason": data["reason"], "cancelled_by": data["cancelled_by"]}}
    if type_name == "OrderShipped":
        return {"tracking_number": data["tracking_number"]}
    if type_name.startswith("Inventory") or type_name == "ReservationCommitted":
        status = {"InventoryReserved": "reserved", "InventoryReleased": "released",
                  "ReservationCommitted": "committed"}.get(type_name, "failed")  # fmt: skip
        return {"reservation": {"status": status}}
    if type_name.startswith("Payment"):
        status = type_name.removeprefix("Payment").lower()
        return {"payment": {"status": status, "amount": data.get("amount")}}
    return {}


class PeerOrderDetail(Projection[PeerOrderDetails]):
    name = "peer_order_detail"
    topics = tuple(f"{__name__}:{name}" for name in ORDER_DETAIL_TYPES)

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:  # type: ignore[override]
        type_name = type(domain_event).__name__
        data, metadata = domain_event.data, domain_event.metadata
        if type_name == "OrderPlaced":
            self.view.placed(data, metadata, tracking)
            return
        what, status = CHANGES[type_name]
        patch = _patch(type_name, data)
        if status is not None:
            patch["status"] = status
        at = metadata["occurred_at"]
        moment = {"what": what, "status": status, "event": type_name, "at": at}
        self.view.change(data["order_id"], patch, moment, status, at, tracking)


def run_peer_projection(database_url: str, timeout: float) -> tuple[int, float]:
    """Run the library's projection runner over PeerShop's log until it has caught up.

    Returns (events in the log, seconds). Call in a fresh process: the runner uses
    threads and the library's connection pool.
    """
    import time

    env = environment(database_url)
    probe = PeerShop(env=env)
    table = probe.recorder.events_table_name  # type: ignore[attr-defined]
    probe.close()
    conninfo = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(
            SQL(
                "SELECT count(*), max(notification_id) FILTER (WHERE topic = ANY(%s)) FROM {}"
            ).format(Identifier(table)),
            (list(PeerOrderDetail.topics),),
        ).fetchone()
    total, last = (int(row[0]), row[1]) if row else (0, None)
    if last is None:
        raise RuntimeError("the peer's log holds no event its projection handles")
    started = time.monotonic()
    with ProjectionRunner(
        application_class=PeerShop,
        projection_class=PeerOrderDetail,
        view_class=PeerOrderDetails,
        env=env,
    ) as runner:
        runner.wait(last, timeout=timeout)
        seconds = time.monotonic() - started
    return total, seconds
