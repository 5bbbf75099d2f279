# flask-smorest ships no type hints, so its decorators are untyped; the views stay annotated.
# mypy: disable-error-code="untyped-decorator"
"""A customer's copy of everything the shop holds about them (GDPR art. 15 and 20).

It reads the log, not the read models: the customer's own events and every event about
each of their orders (reservation and payment included), personal fields opened with
their key, so the export is complete and current the moment a command has answered.
It lives here, in the wiring, because it gathers from every context.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from sqlalchemy import Engine, text

from kernel.auth import Authenticator
from kernel.event_store import EventStore, RecordedEvent
from kernel.http import BearerAuth, Blueprint, guarded
from kernel.messages import utc_now
from orders.domain import Customer

# Found through the partial index of migration 0013 (events_orders_of_customer).
_ORDERS_OF_CUSTOMER = text(
    "SELECT data ->> 'order_id' FROM events"
    " WHERE type = 'OrderPlaced' AND data ->> 'customer_id' = :customer_id ORDER BY position"
)


class ExportedEventSchema(ma.Schema):
    type = ma.fields.String(required=True)
    recorded_at = ma.fields.DateTime(required=True)
    stream_id = ma.fields.String(required=True)
    data = ma.fields.Dict(required=True, metadata={"description": "The event's fields"})


class ExportedOrderSchema(ma.Schema):
    order_id = ma.fields.String(required=True)
    events = ma.fields.List(ma.fields.Nested(ExportedEventSchema), required=True)


class ExportSchema(ma.Schema):
    customer_id = ma.fields.String(required=True)
    exported_at = ma.fields.DateTime(required=True)
    profile = ma.fields.Dict(
        required=True, metadata={"description": "Name, email and when they registered"}
    )
    customer_events = ma.fields.List(ma.fields.Nested(ExportedEventSchema), required=True)
    orders = ma.fields.List(ma.fields.Nested(ExportedOrderSchema), required=True)


def blueprint(engine: Engine, store: EventStore, authenticator: Authenticator) -> Blueprint:
    blp = Blueprint("privacy", __name__, description="A customer's own data")
    auth = BearerAuth(authenticator)
    customer_only = guarded(blp, auth.customer, "The admin token cannot act as a customer")

    @blp.route("/api/me/export", methods=["GET"])
    @customer_only
    @blp.response(200, ExportSchema)
    def export() -> dict[str, Any]:
        """Everything the shop holds about the caller, as JSON: their profile and every
        event of their account and of their orders."""
        customer_id = auth.customer()
        with engine.connect() as conn:
            own = store.read_stream(conn, Customer.stream_for(customer_id))
            order_ids = list(
                conn.execute(_ORDERS_OF_CUSTOMER, {"customer_id": customer_id}).scalars()
            )
            about = store.read_about(conn, order_ids)
        profile: dict[str, Any] = {}
        for recorded in own:
            if recorded.type == "CustomerRegistered":
                profile = {
                    "email": recorded.data["email"],
                    "name": recorded.data["name"],
                    "registered_at": recorded.recorded_at.isoformat(),
                }
        by_order: dict[str, list[dict[str, Any]]] = {order_id: [] for order_id in order_ids}
        for recorded in about:
            by_order[recorded.data["order_id"]].append(_exported(recorded))
        return {
            "customer_id": customer_id,
            "exported_at": utc_now(),
            "profile": profile,
            "customer_events": [_exported(recorded) for recorded in own],
            "orders": [{"order_id": key, "events": events} for key, events in by_order.items()],
        }

    return blp


def _exported(recorded: RecordedEvent) -> dict[str, Any]:
    return {
        "type": recorded.type,
        "recorded_at": recorded.recorded_at,
        "stream_id": recorded.stream_id,
        "data": recorded.data,
    }
