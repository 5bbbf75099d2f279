"""Forgetting a customer: after ForgetCustomer no dump of the database or of Redis holds
their name, email or address, nor a key that opens what is sealed of it, while the other
customers' data and the sales figures stay whole, and a rebuild stays erased."""

from __future__ import annotations

import contextlib
import logging
import subprocess
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import text

from config.bootstrap import Application
from config.jobs import Jobs
from kernel.messages import Metadata, new_id
from kernel.money import Money
from kernel.personal_data import ERASED, unseal
from kernel.results import Failure, Success
from orders.commands import ForgetCustomer, OrderLineRequest, PlaceOrder
from orders.events import Address, CustomerRegistered, OrderPlaced
from projections.queries import CustomerDirectory
from tests.support.api_client import Customer
from tests.support.read_models import ALL_MODELS, drain
from tests.support.shop import CATALOG, Shop


class Person:
    """A customer whose every personal value is unique to this test, so a dump can be
    searched for them."""

    def __init__(self, first: str) -> None:
        tag = uuid.uuid4().hex[:10]
        self.name = f"{first} Quillfeather{tag}"
        self.email = f"{first.lower()}.{tag}@erasure.example"
        self.address = Address(self.name, f"{tag} Forgetting Lane", f"Townof{tag}", "N1 9GU", "GB")

    @property
    def values(self) -> list[str]:
        return [self.name, self.email, self.address.line1, self.address.city]

    def found_in(self, dump: str) -> list[str]:
        return [value for value in self.values if value.lower() in dump.lower()]


def pg_dump(application: Application) -> str:
    url = application.settings.require()[0].replace("postgresql+psycopg://", "postgresql://")
    return subprocess.run(
        [_pg_dump(), "--data-only", "--no-owner", url],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout


def _pg_dump() -> str:
    """The server's own pg_dump when it is the embedded one (pgserver), else the machine's."""
    import pgserver  # the embedded server ships its binaries

    embedded = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_dump"
    return str(embedded) if embedded.exists() else "pg_dump"


def redis_dump(redis: Redis) -> str:
    """Every value of every key of the test's Redis database, RQ's compressed job
    payloads unpacked."""
    client: Any = redis
    parts: list[str] = []
    for key in client.scan_iter(count=1000):
        parts.append(key.decode(errors="replace"))
        kind = client.type(key).decode()
        if kind == "string":
            values = [client.get(key)]
        elif kind == "hash":
            values = [v for pair in client.hgetall(key).items() for v in pair]
        elif kind == "zset":
            values = client.zrange(key, 0, -1)
        elif kind == "set":
            values = list(client.smembers(key))
        elif kind == "list":
            values = client.lrange(key, 0, -1)
        elif kind == "stream":
            values = [v for _, entry in client.xrange(key) for pair in entry.items() for v in pair]
        else:
            values = [client.dump(key)]
        for value in values:
            if isinstance(value, bytes):
                with contextlib.suppress(zlib.error):
                    value = zlib.decompress(value)
                parts.append(value.decode(errors="replace"))
            else:
                parts.append(str(value))
    return "\n".join(parts)


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """Every log record emitted while the test runs, as formatted, at every level."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(f"{record.getMessage()} {record.__dict__}")

    handler, root = Keep(level=logging.DEBUG), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield lines
    root.removeHandler(handler)
    root.setLevel(level)


def sealed_envelopes(application: Application, subject: str) -> list[dict[str, Any]]:
    """Every sealed envelope of `subject` the database holds: in events and read models."""
    with application.engine.connect() as conn:
        found = conn.execute(
            text(
                """
                SELECT data -> 'personal' FROM events WHERE data -> 'personal' ->> 'subject' = :s
                UNION ALL
                SELECT personal FROM customer_directory WHERE personal ->> 'subject' = :s
                UNION ALL
                SELECT document -> 'personal' FROM order_details
                WHERE document -> 'personal' ->> 'subject' = :s
                """
            ),
            {"s": subject},
        ).scalars()
        return list(found)


def keys_held(application: Application) -> list[bytes]:
    with application.engine.connect() as conn:
        rows = conn.execute(text("SELECT key FROM personal_data_keys WHERE key IS NOT NULL"))
        return [bytes(key) for key in rows.scalars()]


def opens(envelope: dict[str, Any], keys: list[bytes]) -> bool:
    for key in keys:
        try:
            unseal(key, envelope)
        except ValueError:
            continue
        return True
    return False


def sales(client: FlaskClient, admin_headers: dict[str, str]) -> Any:
    today = date.today()
    window = {
        "from": (today - timedelta(days=1)).isoformat(),
        "to": (today + timedelta(days=1)).isoformat(),
    }
    response = client.get("/admin/api/analytics/sales", query_string=window, headers=admin_headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["days"]


def order_detail(client: FlaskClient, admin_headers: dict[str, str], order_id: str) -> Any:
    response = client.get(f"/admin/api/orders/{order_id}", headers=admin_headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["order"]


def test_a_forgotten_customer_is_in_no_dump_and_stays_forgotten_through_a_rebuild(
    application: Application,
    client: FlaskClient,
    admin_headers: dict[str, str],
    register_customer: Callable[..., Customer],
    log_lines: list[str],
) -> None:
    ada_person, bob_person = Person("Ada"), Person("Bob")
    shop = Shop(application.bus, application.provider_calls)
    shop.prices = {product.sku: product.price for product in CATALOG}  # added by `catalog`
    ada = register_customer(ada_person.email, ada_person.name)
    bob = register_customer(bob_person.email, bob_person.name)
    orders = {}
    for person, customer in ((ada_person, ada), (bob_person, bob)):
        order = shop.place(customer.customer_id, {"MUG-1": 2}, address=person.address)
        shop.reserve(order)
        shop.pay(order)
        shop.confirm(order)
        orders[customer.customer_id] = order
    drain(application)
    ada_order, bob_order = orders[ada.customer_id], orders[bob.customer_id]

    # Sealed at rest: no dump holds a personal value in the clear, yet the shop can read it.
    assert ada_person.found_in(pg_dump(application)) == []
    assert ada_person.found_in(redis_dump(application.redis)) == []
    export = client.get("/api/me/export", headers=ada.headers)
    assert export.status_code == 200, export.get_json()
    assert export.get_json()["profile"]["email"] == ada_person.email
    assert order_detail(client, admin_headers, ada_order.order_id)["shipping_address"]["line1"] == (
        ada_person.address.line1
    )
    ada_sealed = sealed_envelopes(application, ada.customer_id)
    assert len(ada_sealed) == 4  # two events, the directory row, the order's document
    assert all(opens(envelope, keys_held(application)) for envelope in ada_sealed)
    bob_before = order_detail(client, admin_headers, bob_order.order_id)
    ada_before = order_detail(client, admin_headers, ada_order.order_id)
    sales_before = sales(client, admin_headers)

    forgotten = client.post(f"/admin/api/customers/{ada.customer_id}/forget", headers=admin_headers)
    assert forgotten.status_code == 202, forgotten.get_json()
    drain(application)

    def check_erased() -> None:
        assert ada_person.found_in(pg_dump(application)) == []
        assert ada_person.found_in(redis_dump(application.redis)) == []
        # What is left sealed of Ada (in the log) opens with no key the database holds.
        left = sealed_envelopes(application, ada.customer_id)
        assert left and not any(opens(envelope, keys_held(application)) for envelope in left)
        erased = order_detail(client, admin_headers, ada_order.order_id)
        addresses = ("shipping_address", "billing_address")
        for address in addresses:
            assert erased[address] == {
                "name": ERASED, "line1": ERASED, "line2": ERASED, "city": ERASED,
                "region": ERASED, "postal_code": ERASED, "country": ERASED,
            }  # fmt: skip
        assert {k: v for k, v in erased.items() if k not in addresses} == {
            k: v for k, v in ada_before.items() if k not in addresses
        }
        assert order_detail(client, admin_headers, bob_order.order_id) == bob_before
        assert sales(client, admin_headers) == sales_before
        directory = application.read_side.generations("customer_directory").active
        names = CustomerDirectory(application.engine).named(
            directory, [ada.customer_id, bob.customer_id]
        )
        assert names == {
            ada.customer_id: {"name": ERASED, "email": ERASED},
            bob.customer_id: {"name": bob_person.name, "email": bob_person.email},
        }

    check_erased()
    # The read models left only the log's ciphertext: none in the directory or documents.
    assert len(sealed_envelopes(application, ada.customer_id)) == 2

    jobs = Jobs(application)
    for name in ALL_MODELS:
        assert jobs.rebuild(name).startswith("switched to generation")
    drain(application)
    check_erased()

    assert [
        line for line in log_lines if ada_person.found_in(line) or bob_person.found_in(line)
    ] == []


def test_a_customer_forgets_themselves_and_can_place_no_order_after(
    application: Application,
    client: FlaskClient,
    admin_headers: dict[str, str],
    register_customer: Callable[..., Customer],
) -> None:
    person = Person("Eve")
    eve = register_customer(person.email, person.name)

    gone = client.delete("/api/me", headers=eve.headers)
    assert gone.status_code == 202, gone.get_json()
    assert gone.get_json()["customer_id"] == eve.customer_id
    assert client.get("/api/me/export", headers=eve.headers).status_code == 401  # signed out
    with application.engine.connect() as conn:
        accounts = conn.execute(
            text("SELECT count(*) FROM customer_accounts WHERE customer_id = :c"),
            {"c": eve.customer_id},
        ).scalar()
    assert accounts == 0, "the account (email digest, password hash) outlived the customer"

    refused = application.bus.dispatch(
        PlaceOrder(new_id(), eve.customer_id, (OrderLineRequest("MUG-1", 1),), person.address, "pm")
    )
    assert isinstance(refused, Failure) and refused.code == "forgotten"
    with application.engine.connect() as conn:
        events = application.store.read_stream(conn, f"customer-{eve.customer_id}")
    assert [recorded.type for recorded in events] == ["CustomerRegistered", "CustomerForgotten"]
    assert events[0].event == CustomerRegistered(eve.customer_id, ERASED, ERASED)
    assert events[1].metadata.actor == f"customer:{eve.customer_id}"

    # Forgetting again changes nothing; forgetting nobody is a 404.
    again = client.post(f"/admin/api/customers/{eve.customer_id}/forget", headers=admin_headers)
    assert again.status_code == 202
    with application.engine.connect() as conn:
        assert len(application.store.read_stream(conn, f"customer-{eve.customer_id}")) == 2
    nobody = client.post(f"/admin/api/customers/{uuid.uuid4()}/forget", headers=admin_headers)
    assert nobody.status_code == 404
    assert nobody.content_type == "application/problem+json"
    with application.engine.connect() as conn:
        tombstones = conn.execute(text("SELECT count(*) FROM personal_data_keys")).scalar()
    assert tombstones == 1, "a failed forget left a key row behind"


def test_a_key_kept_for_sealing_past_an_erasure_seals_what_nobody_can_open(
    application: Application, register_customer: Callable[..., Customer]
) -> None:
    person = Person("Mallory")
    customer = register_customer(person.email, person.name)
    store = application.store
    with application.engine.begin() as conn:  # read once: kept in memory for a while
        kept = store.personal_keys.key_for_sealing(conn, customer.customer_id)
    forgotten = application.bus.dispatch(ForgetCustomer(customer.customer_id))
    assert isinstance(forgotten, Success), forgotten

    # An append already under way when the erasure committed seals with the kept key...
    with application.engine.begin() as conn:
        assert store.personal_keys.key_for_sealing(conn, customer.customer_id) == kept
        placed = OrderPlaced(
            new_id(), customer.customer_id, (), Money(0, "EUR"), Money(0, "EUR"),
            Money(0, "EUR"), person.address, "pm", (), Money(0, "EUR"), (), Money(0, "EUR"),
            person.address,
        )  # fmt: skip
        store.append(
            conn, stream_id=f"order-{placed.order_id}", stream_type="order",
            expected_version=0, events=[(placed, Metadata())],
        )  # fmt: skip
    # ...and what it sealed reads erased: no key the database holds opens it.
    with application.engine.connect() as conn:
        (read,) = store.read_stream(conn, f"order-{placed.order_id}")
    erased = Address(*[ERASED] * 7)
    assert read.event == replace(placed, shipping_address=erased, billing_address=erased)
    assert person.found_in(pg_dump(application)) == []
