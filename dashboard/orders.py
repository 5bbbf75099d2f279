"""Orders: the list (filters, search, newest first, cursor pages both ways) and one
order's story, with the admin's actions on it.

The actions (ship, cancel, refund) dispatch the same commands as the admin API
(ShipOrder, CancelOrder by the admin, RefundPayment) through the command bus. Each
takes two posts: the first checks the form and shows what will happen, the second
(`confirmed=yes`) dispatches. The order's page offers only what its status allows;
the domain still decides, and a refusal is shown on the page with its reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import marshmallow as ma
from flask import Blueprint, Response, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from marshmallow import validate
from sqlalchemy import Connection

from dashboard import fulfilment
from dashboard.actors import named
from dashboard.auth import acting_admin
from dashboard.causality import link
from dashboard.common import confirmation, confirmed, field_errors, freshness, page, problem
from dashboard.filters import money, short_id
from dashboard.services import Services
from kernel.http import command_metadata
from kernel.messages import Command
from kernel.personal_data import ERASED
from kernel.results import Failure
from orders.commands import CancelOrder, ForgetCustomer, ShipOrder
from orders.events import CancelledBy
from payments.commands import RefundPayment
from projections.queries import (
    MAX_PAGE,
    CustomerDirectory,
    OrderDetail,
    OrderHistory,
    OrderListing,
    Walked,
)
from projections.read_side import ReadSide
from projections.schemas import ORDER_STATUSES

PAGE_SIZE = 25
SCAN_LIMIT = 2000  # orders looked at per page when a date range filters them
STATUS_BY_CODE = {"not_found": 404, "invalid": 422}
PAYMENT_GOING_BACK = ("refunding", "refunded")
SEARCH_HELP = "Enter a whole order id or a customer's email address."


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ma.ValidationError("Must not be blank.")


class FiltersSchema(ma.Schema):
    status = ma.fields.String(validate=validate.OneOf(ORDER_STATUSES))
    customer = ma.fields.String(validate=validate.Length(min=1, max=64))
    q = ma.fields.String(validate=validate.Length(min=1, max=254))
    from_ = ma.fields.Date(data_key="from")
    to = ma.fields.Date()
    cursor = ma.fields.Integer(validate=validate.Range(min=0))
    after = ma.fields.Integer(validate=validate.Range(min=0))

    @ma.validates_schema
    def ordered(self, data: dict[str, Any], **_: object) -> None:
        start, end = data.get("from_"), data.get("to")
        if start and end and start > end:
            raise ma.ValidationError("must not be before `from`", "to")
        if "cursor" in data and "after" in data:
            raise ma.ValidationError("page one way at a time: `cursor` or `after`", "after")


class ShipForm(ma.Schema):
    tracking_number = ma.fields.String(
        required=True, validate=[validate.Length(min=1, max=64), _not_blank]
    )


class ReasonForm(ma.Schema):
    reason = ma.fields.String(required=True, validate=[validate.Length(min=1, max=500), _not_blank])


@dataclass(frozen=True, slots=True)
class Found:
    items: list[dict[str, Any]]
    next_cursor: int | None  # to the older orders
    newer_cursor: int | None = None  # back to the newer ones


@dataclass(frozen=True, slots=True)
class Action:
    """One of the admin's actions on an order: its form, command and what it means."""

    name: str
    field: str  # the form's one field
    schema: Callable[[], ma.Schema]
    command: Callable[[str, str], Command]
    title: str  # the confirmation's heading, e.g. "Ship order"
    button: str  # the confirming button
    done: str  # the flash message, formatted with `order` (short id) and `value`


ACTIONS = {
    "ship": Action(
        "ship", "tracking_number", ShipForm, ShipOrder, "Ship order", "Yes, ship it",
        "Order {order} shipped with tracking number {value}.",
    ),
    "cancel": Action(
        "cancel", "reason", ReasonForm,
        lambda order_id, reason: CancelOrder(order_id, reason, CancelledBy.ADMIN),
        "Cancel order", "Yes, cancel it",
        "Order {order} cancelled: its stock goes back on sale, and a payment taken is"
        " refunded.",
    ),
    "refund": Action(
        "refund", "reason", ReasonForm, RefundPayment, "Refund order", "Yes, refund it",
        "Refund of order {order} asked for: a payments worker gives the money back.",
    ),
}  # fmt: skip


def allowed_actions(order: dict[str, Any] | None) -> list[str]:
    """What the admin may do to the order as the order detail read model has it: ship
    what is left of a confirmed order whose payment is not going back (a refund is
    turning it into a cancellation), all of it or some lines, and cancel it while
    nothing has shipped; cancel a pending one; refund a payment that succeeded; record a
    return of shipped units (see `fulfilment.shipment_actions`)."""
    if order is None:
        return []
    status, payment = order["status"], order.get("payment", {}).get("status")
    actions = []
    untouched = not fulfilment.shipped(order)  # nothing has left with a carrier yet
    shippable = status in fulfilment.SHIPPABLE and payment not in PAYMENT_GOING_BACK
    if shippable and fulfilment.unshipped(order):
        actions.append("ship")
    if status == "pending" or (
        status == "confirmed" and payment not in PAYMENT_GOING_BACK and untouched
    ):
        actions.append("cancel")
    refundable = payment in ("succeeded", "partially_refunded")  # what a return left
    if refundable and status in ("confirmed", "shipped", "cancelled"):
        actions.append("refund")
    return actions + fulfilment.shipment_actions(order)


def blueprint(services: Services) -> Blueprint:
    """The order list and each order's page, read from the read side of `services`, and
    the actions on an order, dispatched through `services.bus`."""
    pages = Blueprint("orders", __name__)
    side = services.read_side

    def directory(conn: Connection) -> tuple[CustomerDirectory, int]:
        return CustomerDirectory(conn), side.generations("customer_directory", conn).active

    @pages.get("/orders")
    def index() -> Response:
        """Every order, newest first, by status, customer and day placed (UTC), or the
        one an order id names, or the orders of the customer an email names."""
        raw = {key: value.strip() for key, value in request.args.items() if value.strip()}
        errors: dict[str, list[str]] = {}
        try:
            filters = FiltersSchema().load(raw)
        except ma.ValidationError as error:
            errors = field_errors(error)
            filters = {}
        with side.query() as conn:
            return listed(conn, raw, filters, errors)

    def listed(
        conn: Connection, raw: dict[str, str], filters: dict[str, Any], errors: dict[str, list[str]]
    ) -> Response:
        fresh = freshness(side, "order_list", conn=conn)
        generation = fresh.generation
        listing = OrderListing(services.redis)
        names, names_generation = directory(conn)
        customer_id, order_id, searched = filters.get("customer"), None, filters.get("q")
        if searched:
            order_id, email = _search(searched)
            if order_id is None and email is None:
                errors["q"] = [SEARCH_HELP]
            elif email is not None:
                found_id = names.with_email(names_generation, email)
                if customer_id and found_id != customer_id:
                    found_id = None
                customer_id = found_id or ""
        if "q" in errors or customer_id == "":
            found = Found([], None)
        elif order_id is not None:
            summary = listing.one(generation, order_id)
            matching = summary is not None and _matches(summary, filters, customer_id)
            found = Found([summary] if summary and matching else [], None)
        else:
            found = page_of(
                listing,
                generation,
                status=filters.get("status"),
                customer_id=customer_id,
                start=filters.get("from_"),
                end=filters.get("to"),
                cursor=filters.get("cursor"),
                after=filters.get("after"),
                limit=PAGE_SIZE,
            )
        customers = names.named(names_generation, {item["customer_id"] for item in found.items})
        kept = {
            key: value
            for key, value in raw.items()
            if key not in ("cursor", "after") and key not in errors
        }
        return page(
            "dashboard/orders.html",
            status=422 if errors else 200,
            fresh=fresh,
            orders=found.items,
            customers=customers,
            next_cursor=found.next_cursor,
            newer_cursor=found.newer_cursor,
            paged="cursor" in filters or "after" in filters,
            filters=kept,
            errors=errors,
            statuses=ORDER_STATUSES,
            searched=searched if "q" not in errors else None,
        )

    def show(
        order_id: str,
        attempt: dict[str, Any] | None = None,
        *,
        status: int = 200,
        token: str | None = None,
    ) -> Response:
        with side.query() as conn:
            fresh = freshness(side, "order_detail", token, conn)
            document = OrderDetail(conn)(fresh.generation, order_id)
            history = OrderHistory(side.store, conn)(order_id)
            if document is None and not history:
                return problem(404, "There is no such order.")
            names, names_generation = directory(conn)
            customer = None
            if document is not None:
                customer = names.named(names_generation, [document["customer_id"]]).get(
                    document["customer_id"]
                )
        return page(
            "dashboard/order.html",
            status=status,
            refresh=status == 200,
            fresh=fresh,
            order_id=order_id,
            order=document,
            customer=customer,
            actions=allowed_actions(document),
            steps=fulfilment.return_actions(document),
            unshipped={} if document is None else fulfilment.unshipped(document),
            returnable={} if document is None else fulfilment.returnable(document),
            new_id=fulfilment.new_id(),
            erased=customer is not None and customer["name"] == ERASED,
            attempt=attempt or {"action": None, "values": {}, "errors": {}},
            history=link(history, order_id),
            actors=named(services.admins, (event["actor"] for event in history)),
            types={event["position"]: event["type"] for event in history},
        )

    @pages.get("/orders/<uuid:order_id>")
    def detail(order_id: uuid.UUID) -> Response:
        """One order: its document, status timeline, every event with its causes, and
        the actions its status allows. With `consistency_token` (an action's, after its
        redirect) it first waits, bounded, for the read model to show that action."""
        return show(str(order_id), token=request.args.get("consistency_token"))

    def act(action: Action, order_id: str) -> ResponseReturnValue:
        value = request.form.get(action.field, "").strip()
        try:
            loaded = action.schema().load({action.field: value} if value else {})
        except ma.ValidationError as error:
            attempt = {"action": action.name, "values": {action.field: value}}
            return show(order_id, attempt | {"errors": field_errors(error)}, status=422)
        value = loaded[action.field]
        if not confirmed():
            return _confirmation(side, action, order_id, value)
        metadata = command_metadata(acting_admin().actor)
        result = services.bus.dispatch(action.command(order_id, value), metadata)
        if isinstance(result, Failure):
            attempt = {"action": action.name, "values": {action.field: value}}
            errors = {"_": [result.message]}
            return show(
                order_id, attempt | {"errors": errors}, status=STATUS_BY_CODE.get(result.code, 409)
            )
        flash(action.done.format(order=short_id(order_id), value=value), "ok")
        target = url_for(
            "dashboard.orders.detail",
            order_id=order_id,
            consistency_token=result.consistency_token,
        )
        return redirect(target, code=303)

    @pages.post("/orders/<uuid:order_id>/ship")
    def ship(order_id: uuid.UUID) -> ResponseReturnValue:
        """Hand a confirmed order to the carrier (ShipOrder), once confirmed."""
        return act(ACTIONS["ship"], str(order_id))

    @pages.post("/orders/<uuid:order_id>/cancel")
    def cancel(order_id: uuid.UUID) -> ResponseReturnValue:
        """Cancel the order as the admin (CancelOrder), once confirmed."""
        return act(ACTIONS["cancel"], str(order_id))

    @pages.post("/orders/<uuid:order_id>/refund")
    def refund(order_id: uuid.UUID) -> ResponseReturnValue:
        """Give the order's payment back (RefundPayment), once confirmed."""
        return act(ACTIONS["refund"], str(order_id))

    def step(name: str, order_id: str, return_id: str | None = None) -> ResponseReturnValue:
        """Check a shipment or return form against the order as its document has it, ask
        for confirmation when the step has one, then dispatch its command as the admin."""
        action = fulfilment.STEPS[name]
        with side.query() as conn:
            generation = side.generations("order_detail", conn).active
            document = OrderDetail(conn)(generation, order_id)
        if document is None:
            return problem(404, "There is no such order.")
        found = None if return_id is None else fulfilment.find_return(document, return_id)
        if return_id is not None and found is None:
            return problem(404, "The order has no such return.")
        limits = action.limits(document, found)
        schema = action.form(limits)
        typed = {field: request.form.get(field, "").strip() for field in schema.fields}
        attempt = {"action": name, "return_id": return_id, "values": typed}
        allowed = (
            name in allowed_actions(document)
            if return_id is None
            else fulfilment.return_actions(document).get(return_id) == name
        )
        if not allowed:
            refusal = f"Not possible now: the order is {document['status']}"
            if found is not None:
                refusal += f" and the return {found.get('status')}"
            return show(order_id, attempt | {"errors": {"_": [refusal + "."]}}, status=409)
        loaded, errors = fulfilment.load(
            schema, typed, some_of=action.prefix if action.some else None
        )
        if errors:
            return show(order_id, attempt | {"errors": errors}, status=422)
        command = action.command(order_id, return_id, limits, loaded)
        lines = fulfilment.described(fulfilment.lines_of(action.prefix, limits, loaded))
        ids: dict[str, Any] = {"order_id": order_id}
        if return_id is not None:
            ids["return_id"] = return_id
        here = url_for(f"dashboard.orders.{name}", **ids)
        if action.title and not confirmed():
            facts = [("Order", order_id), ("Status", document["status"]), (action.units, lines)]
            facts += [(field.replace("_", " ").capitalize(), typed[field])
                      for field in ("tracking_number", "note") if typed.get(field)]  # fmt: skip
            return confirmation(
                title=f"{action.title} {short_id(order_id)}?",
                facts=facts,
                consequence=action.consequence,
                action_url=here,
                fields={field: value for field, value in typed.items() if value},
                confirm=action.button,
                name=name,
                back=url_for("dashboard.orders.detail", order_id=order_id),
            )
        result = services.bus.dispatch(command, command_metadata(acting_admin().actor))
        if isinstance(result, Failure):
            status = STATUS_BY_CODE.get(result.code, 409)
            return show(order_id, attempt | {"errors": {"_": [result.message]}}, status=status)
        flash(action.done.format(order=short_id(order_id), lines=lines), "ok")
        target = url_for(
            "dashboard.orders.detail",
            order_id=order_id,
            consistency_token=result.consistency_token,
        )
        return redirect(target, code=303)

    @pages.post("/orders/<uuid:order_id>/shipments")
    def ship_lines(order_id: uuid.UUID) -> ResponseReturnValue:
        """Ship some of the units left (ShipOrderLines, a new shipment), once confirmed."""
        return step("ship_lines", str(order_id))

    @pages.post("/orders/<uuid:order_id>/returns")
    def request_return(order_id: uuid.UUID) -> ResponseReturnValue:
        """Record shipped units coming back, for the customer (RequestReturn)."""
        return step("request_return", str(order_id))

    @pages.post("/orders/<uuid:order_id>/returns/<uuid:return_id>/receive")
    def receive(order_id: uuid.UUID, return_id: uuid.UUID) -> ResponseReturnValue:
        """The return has arrived at the warehouse (ReceiveReturn)."""
        return step("receive", str(order_id), str(return_id))

    @pages.post("/orders/<uuid:order_id>/returns/<uuid:return_id>/inspect")
    def inspect(order_id: uuid.UUID, return_id: uuid.UUID) -> ResponseReturnValue:
        """Accept some units of the return and reject the rest (InspectReturn), once
        confirmed: accepted units are restocked and refunded."""
        return step("inspect", str(order_id), str(return_id))

    @pages.post("/customers/<uuid:customer_id>/forget")
    def forget_customer(customer_id: uuid.UUID) -> ResponseReturnValue:
        """Erase the customer's personal data (ForgetCustomer), once confirmed; the form
        names the order page to go back to."""
        order_id = _uuid(request.form.get("order_id", ""))
        if order_id is None:
            return problem(422, "Say which order's page this came from.")
        back = url_for("dashboard.orders.detail", order_id=order_id)
        if not confirmed():
            with side.query() as conn:
                names, names_generation = directory(conn)
                found = names.named(names_generation, [str(customer_id)])
            known = found.get(str(customer_id), {})
            return confirmation(
                title=f"Forget customer {short_id(str(customer_id))}?",
                facts=[("Customer", str(customer_id)), *known.items()],
                consequence=(
                    "Their name, email and addresses are erased everywhere, for good (their"
                    " key is destroyed), and their account is closed. Their orders, totals"
                    " and the sales figures stay."
                ),
                action_url=url_for("dashboard.orders.forget_customer", customer_id=customer_id),
                fields={"order_id": order_id},
                confirm="Yes, forget them",
                name="forget",
                back=back,
            )
        metadata = command_metadata(acting_admin().actor)
        result = services.bus.dispatch(ForgetCustomer(str(customer_id)), metadata)
        if isinstance(result, Failure):
            return problem(STATUS_BY_CODE.get(result.code, 409), result.message)
        flash(f"Customer {short_id(str(customer_id))} forgotten.", "ok")
        return redirect(back, code=303)

    return pages


def _uuid(text: str) -> str | None:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


def _confirmation(side: ReadSide, action: Action, order_id: str, value: str) -> Response:
    """What the action will do to the order, and the button that does it."""
    with side.query() as conn:
        document = OrderDetail(conn)(side.generations("order_detail", conn).active, order_id)
    facts: list[tuple[str, str]] = [("Order", order_id)]
    if document is not None:
        total = document["total"]
        facts += [
            ("Status", document["status"]),
            ("Total", money(total["amount"], total["currency"])),
        ]
    facts.append(("Tracking number" if action.name == "ship" else "Reason", value))
    return confirmation(
        title=f"{action.title} {short_id(order_id)}?",
        facts=facts,
        consequence=_consequence(action.name, document),
        action_url=url_for(f"dashboard.orders.{action.name}", order_id=order_id),
        fields={action.field: value},
        confirm=action.button,
        name=action.name,
        back=url_for("dashboard.orders.detail", order_id=order_id),
    )


def _consequence(action: str, order: dict[str, Any] | None) -> str:
    status = None if order is None else order["status"]
    if action == "ship":
        return "The order goes to the carrier; it cannot be cancelled after that."
    if action == "cancel":
        return (
            "The order is cancelled for good: the fulfillment saga puts its stock back on"
            " sale, refunds a payment taken and stops one under way."
        )
    payment = (order or {}).get("payment", {})
    amount = payment.get("amount")
    what = "The payment" if amount is None else f"The payment of {money(**amount)}"
    refunded = (order or {}).get("refunded_total")
    if order is not None and refunded and refunded["amount"] > 0:
        # After a return's refund `amount` is that refund's (or a refused one's): what a
        # refund gives back now is the rest.
        left = order["total"]["amount"] - refunded["amount"]
        what = f"What is left of the payment, {money(left, refunded['currency'])},"
    if status == "shipped":
        return f"{what} goes back to the customer; the order stays shipped, shown as refunded."
    if status == "cancelled":
        return f"{what} goes back to the customer; the order stays cancelled."
    return (
        f"{what} goes back to the customer. The order has not shipped: the refund cancels"
        " it and its stock goes back on sale."
    )


def _search(text: str) -> tuple[str | None, str | None]:
    """(order id, email): what the search box names, if either."""
    try:
        return str(uuid.UUID(text)), None
    except ValueError:
        pass
    local, at, domain = text.partition("@")
    if at and local and domain and " " not in text:
        return None, text
    return None, None


def _matches(summary: dict[str, Any], filters: dict[str, Any], customer_id: str | None) -> bool:
    """Whether the one order searched for passes the other filters too."""
    day = datetime.fromisoformat(summary["placed_at"]).date()
    return not (
        (filters.get("status") and summary["status"] != filters["status"])
        or (customer_id and summary["customer_id"] != customer_id)
        or (filters.get("from_") and day < filters["from_"])
        or (filters.get("to") and day > filters["to"])
    )


def page_of(
    listing: OrderListing,
    generation: int,
    *,
    status: str | None,
    customer_id: str | None,
    start: date | None,
    end: date | None,
    cursor: int | None,
    after: int | None,
    limit: int,
) -> Found:
    """One page of the order list, newest first: the one older than `cursor`, the one
    newer than `after`, or the newest; with whether older and newer orders lie beyond."""

    def walk(bound: int | None, newer: bool, count: int) -> Walked:
        return walk_in_range(
            listing, generation, status=status, customer_id=customer_id, start=start,
            end=end, bound=bound, newer=newer, limit=count,
        )  # fmt: skip

    if after is None:
        found = walk(cursor, False, limit)
        items, newer_cursor = found.items, None
        if cursor is not None and items and walk(items[0]["seq"], True, 1).items:
            newer_cursor = items[0]["seq"]
        return Found(items, found.more_from, newer_cursor)
    found = walk(after, True, limit)
    items, next_cursor = found.items[::-1], None
    if items and walk(items[-1]["seq"], False, 1).items:
        next_cursor = items[-1]["seq"]
    return Found(items, next_cursor, found.more_from)


def walk_in_range(
    listing: OrderListing,
    generation: int,
    *,
    status: str | None,
    customer_id: str | None,
    start: date | None,
    end: date | None,
    bound: int | None,
    newer: bool,
    limit: int,
) -> Walked:
    """Up to `limit` orders past `bound`, older ones or (`newer`) newer ones, nearest
    first, placed within the date range: orders are scored by log position, so placement
    days only go back in time going older, and forward going newer. A page looks at
    SCAN_LIMIT orders at most, then offers to go on from there."""
    items: list[dict[str, Any]] = []
    scanned = 0
    while True:
        batch = listing.walk(
            generation, bound, customer_id=customer_id, status=status, limit=MAX_PAGE, newer=newer
        )
        for index, item in enumerate(batch.items):
            scanned += 1
            bound = item["seq"]
            day = datetime.fromisoformat(item["placed_at"]).date()
            beyond, before = (end, start) if newer else (start, end)
            if beyond is not None and (day > beyond if newer else day < beyond):
                return Walked(items, None)  # past the range: nothing more this way
            if before is not None and (day < before if newer else day > before):
                continue  # not yet in the range
            items.append(item)
            if len(items) == limit:
                more = index < len(batch.items) - 1 or batch.more_from is not None
                return Walked(items, bound if more else None)
        if batch.more_from is None:
            return Walked(items, None)
        bound = batch.more_from
        if scanned >= SCAN_LIMIT:
            return Walked(items, bound)
