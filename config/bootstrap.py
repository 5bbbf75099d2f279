"""The composition root: builds every long-lived object from settings, once per process.

Each entry point calls `bootstrap` and hands the `Application` on explicitly: wsgi.py
to the Flask app factory (config.flask_app), which hands each blueprint what it uses;
config.worker to the jobs RQ runs; the `shop` command to what it does. Nothing here
connects: the engine and the Redis clients connect when first used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from opentelemetry.sdk.trace import SpanProcessor
from redis import Redis
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

import inventory.events
import inventory.handlers
import orders.events
import orders.handlers
import payments.events
import payments.handlers
import pricing.events
import pricing.handlers
from config.adapters import (
    CartQuotes,
    InventoryCatalog,
    PaymentsLedger,
    PricingContext,
    lock_stock,
)
from config.database import make_engine, sqlalchemy_url
from config.metrics import Metrics
from config.queues import EVERY_SUBSCRIPTION, SAGAS, JobQueues
from config.settings import Settings
from config.tracing import ShopTracing, start_tracing
from kernel.admins import AdminAccounts
from kernel.auth import Authenticator
from kernel.command_bus import AfterCommit, CommandBus, Middleware
from kernel.event_store import EventStore, RecordedEvent
from kernel.registry import EventRegistry
from kernel.subscriptions import Subscriber, SubscriptionRunner
from kernel.tracing import NO_TRACING
from orders.accounts import Accounts
from orders.domain import HoldLimits
from orders.passwords import Passwords
from orders.session_cache import SessionCache
from payments.domain import cancel_key, charge_key, refund_key
from payments.events import (
    PaymentAbandoned,
    PaymentCancellationRequested,
    PaymentRequested,
    RefundRequested,
)
from payments.inbox import PaymentInbox
from payments.provider_calls import ProviderCalls
from payments.stripe_gateway import StripeGateway
from pricing.checkout import Checkout
from pricing.engine import ShippingPolicy
from projections import (
    carts,
    catalog,
    customer_directory,
    order_detail,
    order_list,
    sales_analytics,
)
from projections.projection import Mode, Projection
from projections.read_side import ReadSide
from projections.replicas import Replica, Replicas
from sagas.order_fulfillment import OrderFulfillmentSaga


@dataclass(frozen=True)
class Application:
    """Every service of the shop, built by `bootstrap`."""

    settings: Settings
    engine: Engine
    redis: Redis
    registry: EventRegistry
    store: EventStore
    bus: CommandBus
    runner: SubscriptionRunner
    authenticator: Authenticator
    accounts: Accounts
    read_side: ReadSide
    saga: OrderFulfillmentSaga
    queues: JobQueues
    payment_inbox: PaymentInbox
    provider_calls: ProviderCalls
    metrics: Metrics
    admins: AdminAccounts
    cart_quotes: CartQuotes
    tracing: ShopTracing | None = None  # None: tracing off

    def subscribers(self, name: str) -> list[Subscriber]:
        """The subscribers a catch-up job for `name` drains: the saga's, a read model's
        live generations, or (EVERY_SUBSCRIPTION) every asynchronous read model's and then
        the saga's: read models first, so a query waiting for its write is not kept
        waiting while the saga takes the order further (KeyError if unknown)."""
        if name == self.saga.name:
            return [self.saga]
        if name == EVERY_SUBSCRIPTION:
            models = [
                subscriber
                for model, projection in self.read_side.projections.items()
                if projection.mode == "async"
                for subscriber in self._read_model(model)
            ]
            return [*models, self.saga]
        return self._read_model(name)

    def _read_model(self, name: str) -> list[Subscriber]:
        found = self.read_side.subscribers(name)
        if self.tracing is None or self.read_side.projection(name).mode == "sync":
            return found  # a synchronous model's writes are traced in the command
        # Only the active generation's writes are spans: a rebuild replays old events.
        active, *rebuilding = found
        return [self.tracing.read_model(name, active), *rebuilding]

    def subscriber(self, name: str) -> Subscriber:
        """The subscriber of the subscription `name`: the saga's, or a read model's
        generation (`order_detail@2`); KeyError if there is no such subscription."""
        if name == self.saga.name:
            return self.saga
        model, at, generation = name.rpartition("@")
        if not at or not generation.isdigit():
            raise KeyError(name)
        return self.read_side.projection(model).subscriber(int(generation))

    def close(self) -> None:
        self.engine.dispose()
        if self.read_side.replicas is not None:
            self.read_side.replicas.dispose()
        self.redis.close()
        self.queues.redis.close()
        if self.tracing is not None:
            self.tracing.shutdown()


def bootstrap(settings: Settings, *, span_processor: SpanProcessor | None = None) -> Application:
    """Wire the system from complete settings (see config.environment); connects nothing.

    Tracing is on when the settings say so (OTEL_* variables), or when `span_processor`
    is given: spans go there instead (tests and the bench read them in-process)."""
    database_url, redis_url = settings.require()
    stripe_api_key, _ = settings.require_stripe()
    if not settings.admin_token or not settings.secret_key:
        raise ValueError("bootstrap needs ADMIN_TOKEN and SECRET_KEY")
    engine = make_engine(
        database_url,
        statement_timeout=settings.statement_timeout,
        idle_in_transaction_timeout=settings.idle_in_transaction_timeout,
    )
    redis = Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=2)
    tracing = start_tracing(settings, span_processor)
    if tracing is not None:
        tracing.instrument_engine(engine)  # before anything connects
        tracing.instrument_redis(redis)
    registry = EventRegistry()
    registry.register(
        *inventory.events.EVENTS,
        *orders.events.EVENTS,
        *payments.events.EVENTS,
        *pricing.events.EVENTS,
    )
    for type_name, from_version, upcaster in orders.events.UPCASTERS:
        registry.add_upcaster(type_name, from_version, upcaster)
    # Everything about an order (its own, its reservation's and its payment's events)
    # shares the order's partition; stock and customer events go by their stream.
    store = EventStore(
        registry, key_field="order_id", keyed_stream_types=("order", "reservation", "payment")
    )
    metrics = Metrics(settings.prometheus_dir)
    middleware: list[Middleware] = [metrics.observe_command]
    if tracing is not None:
        middleware.append(tracing.command)  # innermost: its span's context reaches the events
    catalog = InventoryCatalog()
    prices = PricingContext(
        Checkout(
            ShippingPolicy(
                settings.shipping_fee, settings.free_shipping_from, settings.shipping_rates
            )
        )
    )
    bus = CommandBus(
        engine,
        store,
        snapshot_interval=settings.snapshot_interval,
        max_attempts=settings.command_attempts,
        middleware=middleware,
    )
    inventory.handlers.register(bus)
    orders.handlers.register(
        bus,
        catalog=catalog,
        payments=PaymentsLedger(),
        limits=HoldLimits(settings.max_pending_orders, settings.max_reserved_units),
        cart_ttl=timedelta(seconds=settings.cart_ttl),
        pricing=prices,
    )
    payments.handlers.register(bus)
    pricing.handlers.register(bus)
    gateway = StripeGateway(
        stripe_api_key,
        settings.stripe_api_base,
        connect_timeout=settings.provider_connect_timeout,
        read_timeout=settings.provider_read_timeout,
    )
    runner = SubscriptionRunner(
        engine,
        store,
        batch_size=settings.subscription_batch_size,
        partitions=settings.subscription_partitions,
        lease_seconds=settings.lease_seconds,
        park_after=settings.park_after,
    )
    replicas = read_replicas(settings, store)
    if tracing is not None and replicas is not None:
        for replica in replicas.replicas:
            tracing.instrument_engine(replica.engine)
    read_side = ReadSide(
        engine,
        store,
        runner,
        read_models(settings, redis),
        wait_timeout=settings.read_wait_timeout,
        replicas=replicas,
    )
    bus.before_commit.append(
        read_side.apply_sync if tracing is None else tracing.sync_read_models(read_side)
    )
    # Putting jobs on the queues must never hold up a command: fail fast when Redis is away.
    wake_redis = Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.25)
    if tracing is not None:
        tracing.instrument_redis(wake_redis)
    saga_name = OrderFulfillmentSaga.name
    # One catch-up job per partition a commit touches drains that partition of every
    # subscription in turn: a job costs more than a partition's usual handful of events.
    read_models_async = [p.name for p in read_side.projections.values() if p.mode == "async"]
    drained_by = dict.fromkeys([saga_name, *read_models_async], EVERY_SUBSCRIPTION)
    queues = JobQueues(
        wake_redis,
        {EVERY_SUBSCRIPTION: SAGAS},
        drained_by,
        settings.subscription_partitions,
    )
    saga = OrderFulfillmentSaga(
        engine,
        bus,
        store,
        timedelta(seconds=settings.payment_timeout),
        schedule_deadline=queues.payment_deadline,
        lock_stock=lock_stock,
        batch_size=settings.saga_batch_size,
        tracing=tracing or NO_TRACING,
    )
    bus.after_commit.extend((queues, metrics.events_appended, _provider_calls(queues)))
    admins = AdminAccounts(engine)
    sessions = SessionCache(redis)
    bus.after_commit.append(sessions.after_commit)
    accounts = Accounts(
        engine,
        Passwords(),
        access_ttl=settings.access_token_ttl,
        refresh_ttl=settings.refresh_token_ttl,
        cache=sessions,
    )
    authenticator = Authenticator(settings.admin_token, customer_tokens=accounts, admins=admins)
    measured = metrics.measured(gateway)
    provider_calls = ProviderCalls(
        engine,
        bus,
        measured if tracing is None else tracing.gateway(measured),
        tracing=tracing or NO_TRACING,
    )
    return Application(
        settings, engine, redis, registry, store, bus, runner, authenticator, accounts,
        read_side, saga, queues, PaymentInbox(bus, tracing=tracing or NO_TRACING),
        provider_calls, metrics, admins, CartQuotes(store, catalog, prices), tracing,
    )  # fmt: skip


def read_replicas(settings: Settings, store: EventStore) -> Replicas | None:
    """The streaming replicas READ_DATABASE_URL names, bounded as the primary's sessions
    are; None without any (queries read from the primary)."""
    if not settings.read_database_urls:
        return None
    replicas = []
    for number, url in enumerate(settings.read_database_urls, start=1):
        engine = make_engine(
            url,
            statement_timeout=settings.statement_timeout,
            idle_in_transaction_timeout=settings.idle_in_transaction_timeout,
        )
        where = make_url(sqlalchemy_url(url))
        name = f"replica {number} ({where.host or 'local'}:{where.port or 5432})"
        replicas.append(Replica(name, engine, store, poll_interval=0.01))
    return Replicas(replicas)


def read_models(settings: Settings, redis: Redis) -> list[Projection]:
    """The read models, each synchronous or not as SYNC_PROJECTIONS says."""

    def mode(name: str) -> Mode:
        return "sync" if name in settings.sync_projections else "async"

    return [
        catalog.projection(mode("catalog")),
        order_detail.projection(mode("order_detail")),
        sales_analytics.projection(mode("sales_analytics")),
        order_list.OrderList(redis, mode("order_list")),
        customer_directory.projection(mode("customer_directory")),
        carts.Carts(redis, timedelta(seconds=settings.cart_ttl), mode("carts")),
    ]


def _provider_calls(queues: JobQueues) -> AfterCommit:
    """Once a charge, refund or cancellation is asked for (committed), a payments worker
    makes the call."""

    def call(recorded: Sequence[RecordedEvent]) -> None:
        for event in recorded:
            asked = event.event if event.type in _ASKING else None
            if isinstance(asked, PaymentRequested):
                queues.settle_payment(asked.order_id, charge_key(asked.order_id, asked.attempt))
            elif isinstance(asked, RefundRequested):
                queues.settle_payment(asked.order_id, refund_key(asked.order_id, asked.attempt))
            elif isinstance(asked, PaymentCancellationRequested):
                queues.settle_payment(asked.order_id, cancel_key(asked.order_id, asked.attempt))
            elif isinstance(asked, PaymentAbandoned):  # its key is to be fenced
                queues.settle_payment(asked.order_id, charge_key(asked.order_id, asked.attempt))

    return call


_ASKING = frozenset(
    event.__name__
    for event in (PaymentRequested, RefundRequested, PaymentCancellationRequested, PaymentAbandoned)
)
