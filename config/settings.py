"""Settings: one frozen object read from the environment, documented in the README.

Reading them never starts or generates anything. Which variables an entry point
needs, and what development mode fills in, is `config.environment`'s business.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from limits import parse_many

from kernel.partitions import check_count

DEVELOPMENT = "development"
"""SHOP_ENV's value that lets an entry point fill in what is missing with private
servers and generated secrets (see config.environment)."""


@dataclass(frozen=True, slots=True)
class Settings:
    environment: str = "production"  # SHOP_ENV
    database_url: str | None = None
    read_database_urls: tuple[str, ...] = ()  # READ_DATABASE_URL: () = queries on the primary
    redis_url: str | None = None
    admin_token: str | None = None
    secret_key: str | None = None
    var_dir: Path = Path("var")
    port: int = 8000
    log_level: str = "INFO"
    snapshot_interval: int = 100
    command_attempts: int = 8
    subscription_batch_size: int = 1000
    subscription_partitions: int = 4
    lease_seconds: float = 5.0
    park_after: int = 3
    saga_batch_size: int = 20
    statement_timeout: float = 10.0
    idle_in_transaction_timeout: float = 2.0
    max_request_bytes: int = 64 * 1024
    access_token_ttl: int = 15 * 60  # seconds a customer's access token works
    refresh_token_ttl: int = 30 * 24 * 3600  # seconds a session lasts unrenewed
    read_wait_timeout: float = 2.0
    sync_projections: frozenset[str] = frozenset({"catalog"})
    sweep_interval: int = 5
    payment_timeout: float = 60.0
    stripe_api_key: str | None = None
    stripe_api_base: str | None = None  # None: Stripe's own API
    stripe_webhook_secret: str | None = None
    webhook_tolerance: int = 300
    provider_connect_timeout: float = 2.0
    provider_read_timeout: float = 10.0
    reconcile_after: float = 30.0  # seconds a payment may wait on the provider unasked
    public_url: str | None = None
    metrics_dir: Path | None = None  # PROMETHEUS_MULTIPROC_DIR; None: VAR_DIR/metrics
    max_pending_orders: int = 5  # per customer, awaiting payment at once
    max_reserved_units: int = 100  # per customer, in orders awaiting payment
    shipping_fee: int = 499  # minor units of the order's currency, below free_shipping_from
    free_shipping_from: int = 5000  # goods after discounts (minor units) that ship free
    shipping_rates: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # by currency
    registration_rate_limit: str = "10/hour"  # per client address
    sign_in_rate_limit: str = "5/minute"  # per client address (customers' and dashboard sign-in)
    order_rate_limit: str = "30/minute"  # per customer
    cart_ttl: int = 7 * 24 * 3600  # seconds a cart may lie untouched before it is emptied
    trusted_proxies: int = 0  # reverse proxies in front that set X-Forwarded-For/-Proto
    saga_step_limits: Mapping[str, float] = field(default_factory=dict)  # SAGA_STEP_BOUNDS
    traces_exporters: tuple[str, ...] = ()  # OTEL_TRACES_EXPORTER & co.; () = tracing off

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read settings; raises ValueError naming the variable that is malformed."""
        env = os.environ if environ is None else environ
        return cls(
            environment=_choice(env, "SHOP_ENV", ("production", DEVELOPMENT)),
            database_url=env.get("DATABASE_URL") or None,
            read_database_urls=_database_urls(env, "READ_DATABASE_URL"),
            redis_url=env.get("REDIS_URL") or None,
            admin_token=env.get("ADMIN_TOKEN") or None,
            secret_key=env.get("SECRET_KEY") or None,
            var_dir=Path(env.get("VAR_DIR") or "var"),
            port=_int(env, "PORT", 8000),
            log_level=(env.get("LOG_LEVEL") or "INFO").upper(),
            snapshot_interval=_int(env, "SNAPSHOT_INTERVAL", 100),
            command_attempts=_int(env, "COMMAND_ATTEMPTS", 8),
            subscription_batch_size=_int(env, "SUBSCRIPTION_BATCH_SIZE", 1000),
            subscription_partitions=_partition_count(env, "SUBSCRIPTION_PARTITIONS", 4),
            lease_seconds=_float(env, "LEASE_SECONDS", 5.0),
            park_after=_int(env, "PARK_AFTER", 3),
            saga_batch_size=_int(env, "SAGA_BATCH_SIZE", 20),
            statement_timeout=_float(env, "STATEMENT_TIMEOUT", 10.0),
            idle_in_transaction_timeout=_float(env, "IDLE_IN_TRANSACTION_TIMEOUT", 2.0),
            max_request_bytes=_int(env, "MAX_REQUEST_BYTES", 64 * 1024),
            access_token_ttl=_int(env, "ACCESS_TOKEN_TTL", 15 * 60),
            refresh_token_ttl=_int(env, "REFRESH_TOKEN_TTL", 30 * 24 * 3600),
            read_wait_timeout=_float(env, "READ_WAIT_TIMEOUT", 2.0),
            sync_projections=_names(env, "SYNC_PROJECTIONS", "catalog"),
            sweep_interval=_int(env, "SWEEP_INTERVAL", 5),
            payment_timeout=_float(env, "PAYMENT_TIMEOUT", 60.0),
            stripe_api_key=env.get("STRIPE_API_KEY") or None,
            stripe_api_base=env.get("STRIPE_API_BASE") or None,
            stripe_webhook_secret=env.get("STRIPE_WEBHOOK_SECRET") or None,
            webhook_tolerance=_int(env, "WEBHOOK_TOLERANCE", 300),
            provider_connect_timeout=_float(env, "PAYMENT_PROVIDER_CONNECT_TIMEOUT", 2.0),
            provider_read_timeout=_float(env, "PAYMENT_PROVIDER_READ_TIMEOUT", 10.0),
            reconcile_after=_float(env, "PAYMENT_RECONCILE_AFTER", 30.0),
            public_url=env.get("PUBLIC_URL") or None,
            metrics_dir=Path(env["PROMETHEUS_MULTIPROC_DIR"])
            if env.get("PROMETHEUS_MULTIPROC_DIR")
            else None,
            max_pending_orders=_int(env, "MAX_PENDING_ORDERS", 5),
            max_reserved_units=_int(env, "MAX_RESERVED_UNITS", 100),
            shipping_fee=_count(env, "SHIPPING_FEE", 499),
            free_shipping_from=_count(env, "FREE_SHIPPING_FROM", 5000),
            shipping_rates=_shipping_rates(env, "SHIPPING_RATES"),
            registration_rate_limit=_rate(env, "REGISTRATION_RATE_LIMIT", "10/hour"),
            sign_in_rate_limit=_rate(env, "SIGN_IN_RATE_LIMIT", "5/minute"),
            order_rate_limit=_rate(env, "ORDER_RATE_LIMIT", "30/minute"),
            cart_ttl=_int(env, "CART_TTL", 7 * 24 * 3600),
            trusted_proxies=_count(env, "TRUSTED_PROXIES", 0),
            saga_step_limits=_step_bounds(env, "SAGA_STEP_BOUNDS"),
            traces_exporters=_traces_exporters(env),
        )

    @property
    def saga_step_bounds(self) -> dict[str, float]:
        """How long a saga may stay at each step before it counts as stuck, in seconds:
        SAGA_STEP_BOUNDS (`step=seconds,...`) over these defaults. Paying is bounded by
        the payment deadline, whose job compensates: a minute past it, that job is late."""
        return {
            "reserving": 60.0,
            "paying": self.payment_timeout + 60.0,
            "confirming": 60.0,
            "awaiting_shipment": 2 * 24 * 3600.0,  # confirmed, not yet handed to a carrier
            "partially_shipped": 2 * 24 * 3600.0,  # some units shipped, the rest not yet
            "cancelling": 600.0,
        } | dict(self.saga_step_limits)

    @property
    def development(self) -> bool:
        return self.environment == DEVELOPMENT

    def missing(self, names: Iterable[str]) -> list[str]:
        """Those of the variables `names` (DATABASE_URL, REDIS_URL, SECRET_KEY, ADMIN_TOKEN,
        STRIPE_API_KEY, STRIPE_WEBHOOK_SECRET) that are not set."""
        values = {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "SECRET_KEY": self.secret_key,
            "ADMIN_TOKEN": self.admin_token,
            "STRIPE_API_KEY": self.stripe_api_key,
            "STRIPE_WEBHOOK_SECRET": self.stripe_webhook_secret,
        }
        return [name for name in names if not values[name]]

    @property
    def prometheus_dir(self) -> Path:
        """Where every process of this deployment writes its metric samples."""
        return self.metrics_dir or self.var_dir / "metrics"

    @property
    def api_url(self) -> str:
        return self.public_url or f"http://127.0.0.1:{self.port}"

    def without_abuse_limits(self) -> Settings:
        """A copy whose caps and rate limits never bind: for load generators and test
        suites, where a few customers place hundreds of orders a second."""
        unlimited = "1000000/second"
        return replace(
            self,
            max_pending_orders=1_000_000,
            max_reserved_units=1_000_000_000,
            registration_rate_limit=unlimited,
            sign_in_rate_limit=unlimited,
            order_rate_limit=unlimited,
        )

    def abuse_limits(self) -> dict[str, str]:
        """The caps and rate limits as the environment variables that set them, for
        starting processes with this object's (a test's or a benchmark's) limits."""
        return {
            "MAX_PENDING_ORDERS": str(self.max_pending_orders),
            "MAX_RESERVED_UNITS": str(self.max_reserved_units),
            "REGISTRATION_RATE_LIMIT": self.registration_rate_limit,
            "SIGN_IN_RATE_LIMIT": self.sign_in_rate_limit,
            "ORDER_RATE_LIMIT": self.order_rate_limit,
        }

    def require_stripe(self) -> tuple[str, str]:
        """The Stripe API key and webhook signing secret; raises if either is unset."""
        if not self.stripe_api_key or not self.stripe_webhook_secret:
            raise RuntimeError("STRIPE_API_KEY and STRIPE_WEBHOOK_SECRET must be set")
        return self.stripe_api_key, self.stripe_webhook_secret

    def require(self) -> tuple[str, str]:
        """The database and Redis URLs; raises if either is still unresolved."""
        if not self.database_url or not self.redis_url:
            raise RuntimeError("DATABASE_URL and REDIS_URL must be set (or resolved locally)")
        return self.database_url, self.redis_url


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


_URL_SEPARATOR = re.compile(r"\s+|,(?=\s*postgres(?:ql)?(?:\+psycopg)?://)")
"""Between replica URLs: whitespace, or a comma before the next URL's scheme (a comma
inside one URL is libpq's list of hosts, `postgresql://a:5432,b:5432/shop`)."""


def _database_urls(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """One or more PostgreSQL URLs, separated by spaces or commas; () when unset."""
    urls = tuple(part for part in _URL_SEPARATOR.split(env.get(name) or "") if part)
    for url in urls:
        if not re.match(r"postgres(?:ql)?(?:\+psycopg)?://", url):
            raise ValueError(f"{name} must be postgresql:// URLs, got {url!r}")
    return tuple(dict.fromkeys(urls))


def _partition_count(env: Mapping[str, str], name: str, default: int) -> int:
    try:
        return check_count(_int(env, name, default))
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")
    return value


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    if not raw.isdigit():
        raise ValueError(f"{name} must be a whole number, got {raw!r}")
    return int(raw)


def _rate(env: Mapping[str, str], name: str, default: str) -> str:
    """A rate limit in the `limits` notation, e.g. "10/hour" or "5 per minute"."""
    raw = (env.get(name) or default).strip()
    try:
        parse_many(raw)
    except ValueError:
        raise ValueError(f"{name} must be a rate such as 10/hour, got {raw!r}") from None
    return raw


SAGA_STEPS = (
    "reserving", "paying", "confirming", "awaiting_shipment", "partially_shipped", "cancelling",
)  # fmt: skip
"""The saga's steps that end by themselves (shipped and cancelled are where it rests)."""


def _shipping_rates(env: Mapping[str, str], name: str) -> dict[str, tuple[int, int]]:
    """`CUR:fee:free_from,...` (minor units), e.g. `JPY:800:8000,CHF:500:5000`."""
    rates = {}
    for part in filter(None, (p.strip() for p in env.get(name, "").replace(" ", ",").split(","))):
        found = re.fullmatch(r"([A-Z]{3}):(\d{1,9}):(\d{1,12})", part)
        if found is None:
            raise ValueError(
                f"{name} is CURRENCY:fee:free_from,... in minor units (e.g. JPY:800:8000),"
                f" not {part!r}"
            )
        rates[found[1]] = (int(found[2]), int(found[3]))
    return rates


def _step_bounds(env: Mapping[str, str], name: str) -> dict[str, float]:
    bounds = {}
    for part in filter(None, (p.strip() for p in env.get(name, "").split(","))):
        step, equals, seconds = part.partition("=")
        if not equals or step.strip() not in SAGA_STEPS:
            raise ValueError(f"{name} is step=seconds,... with steps among {', '.join(SAGA_STEPS)}")
        bounds[step.strip()] = _float({name: seconds.strip()}, name, 0.0)
    return bounds


TRACES_EXPORTERS = ("otlp", "console")
TRACING_VARIABLES = (
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_SERVICE_NAME",
    "OTEL_TRACES_SAMPLER",
)
"""Any of these set turns tracing on (see `_traces_exporters`)."""


def _traces_exporters(env: Mapping[str, str]) -> tuple[str, ...]:
    """Where spans go, by OpenTelemetry's own variables; () when tracing is off.

    Off unless one of TRACING_VARIABLES is set, and off when OTEL_SDK_DISABLED is true or
    OTEL_TRACES_EXPORTER is `none`. The exporter defaults to `otlp` (OTLP over HTTP, to
    OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, by default http://localhost:4318); `console`
    prints spans to stdout. The SDK reads every other OTEL_* variable itself (sampler,
    service name, resource, batching, headers, timeouts).
    """
    if (env.get("OTEL_SDK_DISABLED") or "").strip().lower() == "true":
        return ()
    if not any((env.get(name) or "").strip() for name in TRACING_VARIABLES):
        return ()
    raw = (env.get("OTEL_TRACES_EXPORTER") or "otlp").strip().lower()
    chosen = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    if chosen == ("none",):
        return ()
    unknown = [name for name in chosen if name not in TRACES_EXPORTERS]
    if unknown or not chosen:
        raise ValueError(
            f"OTEL_TRACES_EXPORTER must be {', '.join(TRACES_EXPORTERS)} or none, got {raw!r}"
        )
    if "otlp" in chosen:
        for name in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
            protocol = (env.get(name) or "").strip()
            if protocol:
                if protocol != "http/protobuf":
                    raise ValueError(
                        f"{name} must be http/protobuf (the shop exports OTLP over HTTP),"
                        f" got {protocol!r}"
                    )
                break
    return chosen


def _names(env: Mapping[str, str], name: str, default: str) -> frozenset[str]:
    raw = env.get(name, default)
    return frozenset(part.strip() for part in raw.split(",") if part.strip())


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    raw = env.get(name) or choices[0]
    if raw not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw
