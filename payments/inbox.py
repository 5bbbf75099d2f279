"""The webhook inbox: each provider event is acted on once, keyed by its id."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from sqlalchemy import Connection, text

from kernel.command_bus import CommandBus, Transaction
from kernel.logging import bind_correlation
from kernel.messages import Metadata
from kernel.results import Failure
from kernel.tracing import NO_TRACING, Tracing
from payments import tracking
from payments.domain import Payment
from payments.provider_calls import PROVIDER_ACTOR
from payments.webhooks import Ignored, ProviderEvent, command_for

log = logging.getLogger("payments.inbox")

# Fixed forever: a provider event id must always map to the same command id.
_COMMAND_IDS = uuid.UUID("5b0e7d3c-2f4a-5e61-9c8d-7a1b2c3d4e5f")


@dataclass(frozen=True, slots=True)
class Receipt:
    """What became of an event. `ignored` carries why: a refusal's code and message, or
    that the event asks nothing of the shop."""

    status: Literal["accepted", "duplicate", "ignored"]
    reason: str | None = None
    detail: str | None = None
    consistency_token: str | None = None


def command_id(event: ProviderEvent) -> str:
    """The id of the command an event causes; the same on every delivery."""
    return str(uuid.uuid5(_COMMAND_IDS, event.id))


class PaymentInbox:
    """Stores every event the provider delivers and acts on it once.

    Contract of `receive`:
    - The inbox row (keyed by the provider's event id) and the command it causes commit
      in one transaction: both happen or neither does.
    - An event id already in the inbox changes nothing and gives `duplicate`;
      concurrent deliveries of one event wait on the key, and only one is accepted.
    - An event that asks nothing (another type, another system's payment) or whose
      command is refused (the payment moved on) still stores the row and gives
      `ignored`, so the provider stops retrying; a refusal is kept with the command id,
      like any refused command.
    - Retries on a concurrency conflict (`CommandBus.transaction`); when the bus gives
      up, raises ConcurrencyError, and nothing is stored. Database errors propagate,
      and nothing is stored.
    """

    def __init__(self, bus: CommandBus, *, tracing: Tracing = NO_TRACING) -> None:
        self.bus = bus
        self.tracing = tracing

    def receive(
        self, event: ProviderEvent, payload: Mapping[str, Any], *, correlation_id: str = ""
    ) -> Receipt:
        """Record `payload` (the body as sent) and act on `event` unless seen before."""
        metadata = Metadata(
            message_id=command_id(event), correlation_id=correlation_id, actor=PROVIDER_ACTOR
        )
        with bind_correlation(metadata.correlation_id):
            receipt = self.bus.transaction(partial(self._receive_once, event, payload, metadata))
            log.info(
                "payment provider event received",
                extra={"provider_event_id": event.id, "type": event.type,
                       "status": receipt.status, "reason": receipt.reason},
            )  # fmt: skip
            return receipt

    def _payment_asked(self, conn: Connection, order_id: str) -> Metadata | None:
        """The metadata of the payment's last event (read only while tracing is on)."""
        if not self.tracing.enabled:
            return None
        history = self.bus.store.read_stream(conn, Payment.stream_for(order_id))
        return history[-1].metadata if history else None

    def _receive_once(
        self,
        event: ProviderEvent,
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
            {"id": event.id, "payload": json.dumps(payload)},
        ).first()
        if claimed is None:
            return Receipt("duplicate")
        command = command_for(event, partial(tracking.order_of, done.conn))
        if isinstance(command, Ignored):
            return Receipt("ignored", reason=command.reason, detail=command.detail)
        # The provider answers a call of an order's payment: what the answer records
        # joins the order's trace (the request's, which Stripe starts, is linked).
        order_id = str(getattr(command, "order_id", ""))  # Record{Charge,Refund}Outcome's
        about = {"shop.order_id": order_id, "shop.provider_event_id": event.id}
        with self.tracing.following(
            self._payment_asked(done.conn, order_id), "payment webhook", about
        ):
            result = done.dispatch(command, metadata)
        if isinstance(result, Failure):
            return Receipt("ignored", reason=result.code, detail=result.message)
        return Receipt("accepted", consistency_token=result.consistency_token)
