"""The payment webhook inbox: each provider event is acted on once, keyed by its id."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Engine, text

from kernel.command_bus import CommandBus
from kernel.errors import ConcurrencyError
from kernel.logging import bind_correlation
from kernel.messages import Metadata
from kernel.results import Failure
from payments.commands import CompletePayment
from payments.webhooks import PROVIDER_ACTOR, PaymentNotification

log = logging.getLogger("payments.inbox")


@dataclass(frozen=True, slots=True)
class Receipt:
    """What became of a notification. `ignored` carries the refusal's code and message."""

    status: Literal["accepted", "duplicate", "ignored"]
    reason: str | None = None
    detail: str | None = None
    consistency_token: str | None = None


class PaymentInbox:
    """Stores every notification the provider delivers and completes its payment once.

    Contract of `receive`:
    - The inbox row (keyed by the provider's event id) and the `CompletePayment` it
      causes commit in one transaction: both happen or neither does.
    - An event id already in the inbox changes nothing and gives `duplicate`;
      concurrent deliveries of one event wait on the key, and only one is accepted.
    - A payment that cannot be completed (unknown order, not pending) still stores
      the row and gives `ignored`, so the provider stops retrying; the refusal is kept
      with the command id, like any refused command.
    - Retries on a concurrency conflict; after `max_attempts` raises ConcurrencyError,
      and nothing is stored. Database errors propagate, and nothing is stored.
    The engine must reach the database the bus writes to.
    """

    def __init__(self, engine: Engine, *, max_attempts: int = 8) -> None:
        self.engine = engine
        self.max_attempts = max_attempts

    def receive(
        self,
        bus: CommandBus,
        notification: PaymentNotification,
        payload: Mapping[str, Any],
        *,
        correlation_id: str = "",
    ) -> Receipt:
        """Record `payload` (the body as sent) and act on `notification` unless seen before."""
        metadata = Metadata(
            message_id=notification.command_id,
            correlation_id=correlation_id,
            actor=PROVIDER_ACTOR,
        )
        with bind_correlation(metadata.correlation_id):
            for attempt in range(1, self.max_attempts + 1):
                try:
                    receipt = self._receive_once(bus, notification, payload, metadata)
                except ConcurrencyError:
                    if attempt == self.max_attempts:
                        raise
                    time.sleep(random.uniform(0.002, 0.01) * attempt)
                    continue
                log.info(
                    "payment notification received",
                    extra={
                        "provider_event_id": notification.provider_event_id,
                        "order_id": notification.order_id,
                        "status": receipt.status,
                    },
                )
                return receipt
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _receive_once(
        self,
        bus: CommandBus,
        notification: PaymentNotification,
        payload: Mapping[str, Any],
        metadata: Metadata,
    ) -> Receipt:
        command = CompletePayment(
            notification.order_id,
            notification.provider_event_id,
            notification.outcome,
            notification.reason,
        )
        with self.engine.begin() as conn:
            claimed = conn.execute(
                text(
                    "INSERT INTO payment_webhook_inbox (provider_event_id, payload)"
                    " VALUES (:id, CAST(:payload AS jsonb))"
                    " ON CONFLICT DO NOTHING RETURNING provider_event_id"
                ),
                {"id": notification.provider_event_id, "payload": json.dumps(payload)},
            ).first()
            if claimed is None:
                return Receipt("duplicate")
            result, recorded = bus.dispatch_in(conn, command, metadata)
        bus.notify_committed(recorded)
        if isinstance(result, Failure):
            return Receipt("ignored", reason=result.code, detail=result.message)
        return Receipt("accepted", consistency_token=result.consistency_token)
