"""The payment webhook inbox: each provider event is acted on once, keyed by its id."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from sqlalchemy import text

from kernel.command_bus import CommandBus, Transaction
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
    - Retries on a concurrency conflict (`CommandBus.transaction`); when the bus gives
      up, raises ConcurrencyError, and nothing is stored. Database errors propagate,
      and nothing is stored.
    """

    def __init__(self, bus: CommandBus) -> None:
        self.bus = bus

    def receive(
        self,
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
            receipt = self.bus.transaction(
                partial(self._receive_once, notification, payload, metadata)
            )
            log.info(
                "payment notification received",
                extra={
                    "provider_event_id": notification.provider_event_id,
                    "order_id": notification.order_id,
                    "status": receipt.status,
                },
            )
            return receipt

    def _receive_once(
        self,
        notification: PaymentNotification,
        payload: Mapping[str, Any],
        metadata: Metadata,
        done: Transaction,
    ) -> Receipt:
        claimed = done.conn.execute(
            text(
                "INSERT INTO payment_webhook_inbox (provider_event_id, payload)"
                " VALUES (:id, CAST(:payload AS jsonb))"
                " ON CONFLICT DO NOTHING RETURNING provider_event_id"
            ),
            {"id": notification.provider_event_id, "payload": json.dumps(payload)},
        ).first()
        if claimed is None:
            return Receipt("duplicate")
        command = CompletePayment(
            notification.order_id,
            notification.provider_event_id,
            notification.outcome,
            notification.reason,
        )
        result = done.dispatch(command, metadata)
        if isinstance(result, Failure):
            return Receipt("ignored", reason=result.code, detail=result.message)
        return Receipt("accepted", consistency_token=result.consistency_token)
